"""What yt-dlp needs for YouTube, as installed by the setup: Deno, the EJS scripts, the options that reach them.

No network: yt-dlp's own ``-v`` header is printed before it looks at any URL.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from builder.errors import InputError
from builder.fetch.errors import Failure, classify_message, warning_class
from builder.fetch.health import NO_FORMAT_STREAK, ExtractionHealth
from builder.fetch.options import FetchOptions
from builder.fetch.runtime import (
    default_cache_dir,
    ejs_version,
    find_deno,
    inspect_js_runtime,
    js_runtimes_param,
    parse_extractor_args,
    parse_js_runtime,
)
from support.fake_youtube import N_CHALLENGE_FAILED, NO_JS_RUNTIME

VENV_BIN = Path(sys.executable).parent


def ytdlp_header(tmp_path: Path) -> str:
    """``yt-dlp -v`` of the venv with no URL: the debug header, then a usage error (nothing is downloaded).
    PATH holds no venv folder, as for a user who never activated it."""
    script = VENV_BIN / "yt-dlp"
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "yt_dlp"]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    done = subprocess.run([*command, "-v", "--ignore-config", "--simulate"], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and "You must provide at least one URL" in done.stderr
    return done.stderr


def test_venv_ytdlp_reports_deno_and_ejs(tmp_path):
    header = ytdlp_header(tmp_path)
    runtimes = next(line for line in header.splitlines() if "JS runtimes:" in line)
    assert "deno-" in runtimes and "none" not in runtimes and "unsupported" not in runtimes
    libraries = next(line for line in header.splitlines() if "Optional libraries:" in line)
    assert "yt_dlp_ejs-" in libraries


def test_the_venv_deno_is_found_and_runs():
    deno = find_deno()
    assert deno is not None and deno.parent == VENV_BIN
    assert js_runtimes_param(None) == {"deno": {"path": str(deno)}}
    report = inspect_js_runtime(None)
    assert report.name == "deno" and report.supported and report.path == str(deno)
    assert report.version and report.version[0].isdigit()
    assert ejs_version() not in (None, "unknown")


def test_js_runtime_spellings(tmp_path):
    assert parse_js_runtime("node") == ("node", None)
    assert parse_js_runtime(f"Deno:{tmp_path}") == ("deno", str(tmp_path))
    assert js_runtimes_param(f"quickjs:{tmp_path}") == {"quickjs": {"path": str(tmp_path)}}
    with pytest.raises(InputError, match="one of deno, node, quickjs, bun"):
        parse_js_runtime("spidermonkey")
    with pytest.raises(InputError, match="no such file") as err:
        FetchOptions(root=tmp_path, js_runtime="deno:/nonexistent/deno")
    assert err.value.file == "/nonexistent/deno"
    # A folder without the runtime: yt-dlp's own probe finds nothing there.
    report = inspect_js_runtime(f"deno:{tmp_path}")
    assert not report.supported and report.version is None


def test_extractor_args_in_ytdlp_spelling():
    parsed = parse_extractor_args(["youtube:player_client=default,mweb;player-skip=webpage",
                                   r"youtube:po_token=a\,b", "generic:impersonate"])
    assert parsed == {"youtube": {"player_client": ["default", "mweb"], "player_skip": ["webpage"],
                                  "po_token": ["a,b"]},
                      "generic": {"impersonate": [""]}}
    for bad in ("player_client=web", "you tube:x=1", "youtube:"):
        with pytest.raises(InputError, match="--extractor-args"):
            parse_extractor_args([bad])


def test_cache_dir_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "yt-dlp"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir() == Path(os.path.expanduser("~")) / ".cache" / "yt-dlp"


def test_warning_classes_match_ytdlp_wording():
    assert warning_class(f"[youtube] {NO_JS_RUNTIME}") == "js_runtime"
    assert warning_class(f"[youtube] abcdefghijk: {N_CHALLENGE_FAILED}") == "challenge_failed"
    assert warning_class("[youtube] x: Signature solving failed: Some formats may be missing.") == "challenge_failed"
    assert warning_class("[youtube] [jsc] Remote component challenge solver script (deno) was skipped. It may be "
                         "required to solve JS challenges.") == "ejs_missing"
    # The EJS scripts of another release than this yt-dlp's (a bare `pip install -U yt-dlp`).
    assert warning_class("[youtube] [jsc:deno] Challenge solver core script version 0.7.0 is not supported "
                         "(source: python package, variant: ScriptVariant.MINIFIED, supported version: 0.8.0)"
                         ) == "ejs_missing"
    assert warning_class("Only images are available for download. use --list-formats to see them") == "no_formats"
    assert warning_class("[youtube] x: Some formats are unusual") == "other"
    assert classify_message("ERROR: [youtube] x: No video formats found!").error_class == "no_format"


def no_format() -> Failure:
    return classify_message("[youtube] x: Requested format is not available. Use --list-formats")


def test_health_halts_on_setup_warnings_at_once_and_holds_the_clip():
    verdict = ExtractionHealth().judge([f"[youtube] {NO_JS_RUNTIME}"], no_format())
    assert verdict.halt == "js_runtime" and verdict.hold and "No supported JavaScript runtime" in verdict.message
    ok_but_no_runtime = ExtractionHealth().judge([NO_JS_RUNTIME], None)
    assert ok_but_no_runtime.halt == "js_runtime" and not ok_but_no_runtime.hold
    challenge = ExtractionHealth().judge([N_CHALLENGE_FAILED], no_format())
    assert challenge.halt == "challenge_failed" and challenge.hold
    # A clip that went through despite a failed challenge is fine: nothing to stop.
    assert ExtractionHealth().judge([N_CHALLENGE_FAILED], None).halt is None


def test_health_no_format_streak_before_any_success():
    health = ExtractionHealth()
    verdicts = [health.judge([], no_format()) for _ in range(NO_FORMAT_STREAK)]
    assert [v.hold for v in verdicts] == [True] * NO_FORMAT_STREAK
    assert [v.halt for v in verdicts] == [None] * (NO_FORMAT_STREAK - 1) + ["no_formats"]
    # Once a clip has come through, "no formats" is the video's own: final, no halt.
    proven = ExtractionHealth()
    assert proven.judge([], None) == proven.judge([], None)
    assert all(proven.judge([], no_format()).halt is None and not proven.judge([], no_format()).hold
               for _ in range(NO_FORMAT_STREAK + 1))
    # Other failures neither count nor prove anything.
    other = ExtractionHealth()
    timeout = classify_message("timed out")
    assert not other.judge([], timeout).hold and other.streak == 0
