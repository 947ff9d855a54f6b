"""One command-line vocabulary across llinet-build, llinet-train and llinet-eval.

--root names the media root and --manifest-dir a manifest folder wherever a command reads or
writes one; -v/-q work on every command; every --help shows the defaults, and those are the
options dataclasses' own; the old spellings still parse to the same thing and warn once.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import re

import pytest

from builder.commands.common import BUNDLED_AUDIOSET
from builder.commands.main import build_parser as build_parser_build
from builder.commands.main import main as build_main
from builder.fetch.options import FetchOptions
from builder.media.trim import TrimOptions
from model.evaluation.api import EvalOptions
from model.evaluation.cli import build_parser as build_parser_eval
from model.training.options import TrainOptions, parse_options
from model.training.options import build_parser as build_parser_train

# Minimal valid arguments of every llinet-build command (a new command must be added here).
MINIMAL = {
    "metadata": ["--out", "d"],
    "resolve": ["Guitar", "--audioset", "a"],
    "select": ["--classes", "c.csv", "--audioset", "a", "--manifest-dir", "m"],
    "split": ["--manifest-dir", "m", "--classes", "c.csv", "--audioset", "a"],
    "subset": ["--classes", "c.csv", "--audioset", "a", "--out", "o"],
    "fetch": ["--manifest-dir", "m", "--root", "r"],
    "trim": ["--root", "r"],
    "frames": ["--root", "r"],
    "curate": ["--root", "r"],
    "annotate import": ["--root", "r", "--from-masks", "x"],
    "annotate tasks": ["--root", "r", "--out", "o"],
    "annotate preview": ["--root", "r", "--out", "o.png"],
    "review": ["--root", "r"],
    "export": ["--root", "r", "--out", "o"],
    "release": ["--version", "1.0.0", "--root", "r", "--out", "o"],
    "verify": ["--release", "rel", "--root", "r"],
    "demo": [],
    "doctor": [],
}
READS_MEDIA_ROOT = {"doctor", "fetch", "trim", "frames", "curate", "annotate import", "annotate tasks",
                    "annotate preview", "review", "export", "release", "verify"}
MANIFEST_FOLDER = {"doctor", "select", "split", "fetch", "curate", "annotate import", "annotate tasks",
                   "annotate preview", "review", "release"}


def subcommands(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, argparse.ArgumentParser]:
    """Leaf subcommand name ("annotate import") -> its parser."""
    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                nested = subcommands(sub, f"{prefix}{name} ")
                found.update(nested or {f"{prefix}{name}": sub})
    return found


def shown_options(parser: argparse.ArgumentParser) -> set[str]:
    """Option strings listed in the command's --help output (old spellings are not)."""
    return set(re.findall(r"^\s{2}(-[-\w]+)", parser.format_help(), flags=re.M)) | set(
        re.findall(r", (--[-\w]+)", parser.format_help()))


def flat(text: str) -> str:
    return " ".join(text.split())


def option_help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    """The --help entry of one option, as the parser prints it, on one line."""
    return flat(parser._get_formatter()._format_action(action))


def test_every_command_is_covered():
    assert set(subcommands(build_parser_build())) == set(MINIMAL)


@pytest.mark.parametrize("name", sorted(MINIMAL))
def test_help_names_root_manifest_dir_and_verbosity(name, capsys):
    parser = subcommands(build_parser_build())[name]
    options = shown_options(parser)
    assert {"-v", "--verbose", "-q", "--quiet"} <= options
    assert ("--root" in options) == (name in READS_MEDIA_ROOT)
    assert ("--manifest-dir" in options) == (name in MANIFEST_FOLDER)
    # The real --help output, through the command's entry point.
    with pytest.raises(SystemExit) as exit_info:
        build_main([*name.split(), "--help"])
    assert exit_info.value.code == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"usage: llinet-build {name}") and "-q, --quiet" in printed


@pytest.mark.parametrize("name", sorted(MINIMAL))
def test_every_default_is_shown_in_help(name):
    parser = subcommands(build_parser_build())[name]
    for action in parser._actions:
        default = action.default
        if not action.option_strings or action.help == argparse.SUPPRESS or default in (None, "", [], ()) \
                or isinstance(default, bool) or default is argparse.SUPPRESS:
            continue
        shown = " ".join(map(str, default)) if isinstance(default, list) else str(default)
        assert f"(default: {flat(shown)})" in option_help(parser, action), (name, action.option_strings)


@pytest.mark.parametrize("name", sorted(MINIMAL))
def test_v_and_q_on_every_command(name):
    parser = build_parser_build()
    words = name.split()
    assert parser.parse_args([*words, *MINIMAL[name], "-v"]).verbose == 1
    assert parser.parse_args([*words, *MINIMAL[name], "-q", "-q"]).quiet == 2
    before = parser.parse_args(["-v", *words, *MINIMAL[name]])     # before the stage counts too
    assert before.verbose == 1 and not hasattr(before, "quiet")


def test_command_defaults_come_from_the_options_dataclasses():
    commands = subcommands(build_parser_build())
    fetch = {a.dest: a.default for a in commands["fetch"]._actions}
    assert (fetch["height"], fetch["retries"], fetch["timeout"]) == \
        (FetchOptions.max_height, FetchOptions.retries, FetchOptions.timeout)
    trim = {a.dest: a.default for a in commands["trim"]._actions}
    assert (trim["window"], trim["policy"], trim["sample_rate"], trim["workers"]) == \
        (TrimOptions.window, TrimOptions.policy, TrimOptions.sample_rate, TrimOptions.workers)


# old argv, new argv (after the command name)
RENAMED = [
    ("fetch", ["m1", "m2", "--out", "r"], ["--manifest-dir", "m1", "m2", "--root", "r"]),
    ("metadata", ["--dest", "d"], ["--out", "d"]),
    ("select", ["--classes", "c.csv", "--audioset", "a", "--out", "m"],
     ["--classes", "c.csv", "--audioset", "a", "--manifest-dir", "m"]),
    ("review", ["--media", "r", "--manifest", "r/m.csv"], ["--root", "r", "--manifest", "r/m.csv"]),
    ("export", ["--root", "r", "--format", "hf", "o"], ["--root", "r", "--format", "hf", "--out", "o"]),
    ("release", ["--version", "1.0.0", "--root", "r", "--manifests-dir", "m", "o"],
     ["--version", "1.0.0", "--root", "r", "--manifest-dir", "m", "--out", "o"]),
    ("verify", ["rel", "data"], ["--release", "rel", "--root", "data"]),
]


@pytest.mark.parametrize("command, old, new", RENAMED, ids=[r[0] for r in RENAMED])
def test_old_spellings_parse_the_same_and_warn(command, old, new, caplog):
    parser = build_parser_build()
    old_options = {w for w in old if w.startswith("--")} - set(new)
    assert not old_options & shown_options(subcommands(parser)[command]), "--help lists an old spelling"
    with caplog.at_level(logging.WARNING):
        expected = vars(parser.parse_args([command, *new]))
        assert not caplog.records
        assert vars(parser.parse_args([command, *old])) == expected
    assert caplog.records and all(r.levelno == logging.WARNING for r in caplog.records)
    for record in caplog.records:
        message = record.getMessage()
        assert f"llinet-build {command}: " in message and "is deprecated, use --" in message
        assert "\n" not in message


def test_an_old_spelling_warns_on_stderr_through_the_real_command(tmp_path, capsys):
    # A run that fails after parsing (no manifest there): the warning still comes first, on stderr.
    assert build_main(["trim", "--root", str(tmp_path), "-q"]) == 2
    assert build_main(["export", "--root", str(tmp_path), str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "warning: llinet-build export: the positional OUT is deprecated, use --out OUT" in err
    assert "manifest not found" in err


def test_a_value_given_both_ways_is_an_error(capsys):
    with pytest.raises(SystemExit):
        build_parser_build().parse_args(["export", "--root", "r", "--out", "a", "b"])
    assert "OUT given twice" in capsys.readouterr().err


def test_quiet_silences_the_summary_and_verbose_adds_nothing_harmful(capsys):
    argv = ["resolve", "Guitar", "--test", "Tabla", "--audioset", str(BUNDLED_AUDIOSET)]
    assert build_main(argv) == 0
    assert "2 classes resolved: 1 train, 1 test" in capsys.readouterr().out
    assert build_main([*argv, "-q"]) == 0
    assert build_main(["-q", *argv]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    assert build_main([*argv, "-v"]) == 0
    assert "2 classes resolved" in capsys.readouterr().out


def test_train_help_shows_the_dataclass_defaults():
    parser = build_parser_train()
    checked = 0
    for field in dataclasses.fields(TrainOptions):
        default = field.default
        if default in (None, "") or isinstance(default, bool) or default is dataclasses.MISSING:
            continue
        actions = [a for a in parser._actions if a.dest == field.name and a.option_strings]
        if not actions:
            continue                        # not a command-line option (e.g. the manifest)
        assert actions[0].default == default, field.name
        assert f"(default: {default})" in option_help(parser, actions[0]), field.name
        checked += 1
    assert checked >= 20         # every recipe, optimiser, model and speed option with a fixed default


def test_train_vocabulary_and_old_spellings(caplog):
    new = parse_options(["--root", "media", "--out", "runs/x", "-q"])
    assert (new.manifest, new.media_root, new.output_dir) == ("media/manifest.csv", "media", "runs/x")
    with caplog.at_level(logging.WARNING):
        old = parse_options(["media/manifest.csv", "--media-root", "media", "--output-dir", "runs/x", "-v"])
    assert old == new
    assert sorted(r.getMessage().split(": ", 1)[1].split(" is ")[0] for r in caplog.records) == \
        ["--media-root", "--output-dir", "the positional MANIFEST"]
    assert build_parser_train().parse_args(["--root", "m", "-v", "-v"]).verbose == 2
    with pytest.raises(SystemExit):
        parse_options(["--out", "runs/x"])       # no manifest: neither --root nor --manifest


def test_eval_vocabulary_defaults_and_old_spellings(tmp_path, caplog):
    parser = build_parser_eval()
    by_dest = {a.dest: a for a in parser._actions if a.option_strings}
    for field in dataclasses.fields(EvalOptions):
        if isinstance(field.default, (int, str)) and not isinstance(field.default, bool) and field.default != "":
            assert by_dest[field.name].default == field.default, field.name
            assert f"(default: {field.default})" in option_help(parser, by_dest[field.name]), field.name
    (tmp_path / "annotations.json").write_text("{}")
    args = parser.parse_args(["--checkpoint", "c.pt", "--root", str(tmp_path), "--out", "r", "-q"])
    assert args.manifest == str(tmp_path / "manifest.csv") and args.masks == str(tmp_path / "annotations.json")
    assert (args.report, args.quiet) == ("r", 1)
    with caplog.at_level(logging.WARNING):
        old = parser.parse_args(["--checkpoint", "c.pt", "--media-root", str(tmp_path), "--report", "r", "-q"])
    assert vars(old) == vars(args) and len(caplog.records) == 2
