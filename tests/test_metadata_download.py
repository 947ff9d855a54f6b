"""`llinet-build metadata`: real downloads from a real local HTTP server, and `--from` copies.

The server serves the real bytes of ../shared/audioset (so the pinned sha256
values are exercised for real) plus a small synthetic unbalanced list (the real
one is ~100 MB in 41 parts; too slow for a unit test).
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
import urllib.request
from pathlib import Path

import pytest

from builder.audioset.download import (
    BALANCED,
    CLASS_INDEX,
    EVAL,
    MANIFEST_NAME,
    METADATA_FILES,
    ONTOLOGY,
    PINNED_SHA256,
    UNBALANCED,
    ChecksumError,
    DownloadError,
    copy_metadata,
    default_urls,
    download_metadata,
)
from builder.commands.main import main
from builder.errors import InputError, LlinetError
from builder.io.http import fetch
from support.http_server import LocalHTTPServer, Response, Route

PINNED = (ONTOLOGY, CLASS_INDEX, BALANCED, EVAL)
SYNTHETIC_UNBALANCED = (
    b"# Segments csv created Sun Mar  5 10:54:31 2017\n"
    b"# num_ytids=3, num_segs=3, num_unique_labels=2, num_positive_labels=4\n"
    b"# YTID, start_seconds, end_seconds, positive_labels\n"
    b'--4gqARaEJE, 0.000, 10.000, "/m/0342h,/m/02sgy"\n'
    b'--BfvyPmVMo, 20.000, 30.000, "/m/05r5c"\n'
    b'--U7joUcTCo, 0.000, 10.000, "/m/0342h"\n'
)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def real_bytes(real_audioset: Path) -> dict[str, bytes]:
    return {name: (real_audioset / name).read_bytes() for name in PINNED}


@pytest.fixture
def server(real_audioset: Path):
    routes = {f"/csv/{name}": real_audioset / name for name in PINNED}
    routes[f"/csv/{UNBALANCED}"] = SYNTHETIC_UNBALANCED
    with LocalHTTPServer(routes) as running:
        yield running


def download(dest: Path, server: LocalHTTPServer, **kwargs):
    kwargs.setdefault("backoff_s", 0.0)
    kwargs.setdefault("progress", False)
    return download_metadata(dest, base_url=server.url("/csv"), **kwargs)


def leftovers(dest: Path) -> list[str]:
    return sorted(p.name for p in dest.iterdir() if p.name.endswith((".part", ".part.json", ".tmp")))


def test_real_pins_match_shared_copy(real_audioset: Path, real_bytes):
    # The embedded constants are the ones SHA256SUMS and the bytes agree on.
    for name in PINNED:
        assert PINNED_SHA256[name] == sha256(real_bytes[name])
    assert set(default_urls()) == set(METADATA_FILES)
    assert default_urls()[EVAL] == "http://storage.googleapis.com/us_audioset/youtube_corpus/v1/csv/eval_segments.csv"
    assert default_urls()[ONTOLOGY].startswith("https://raw.githubusercontent.com/audioset/ontology/")


def test_full_download_verified_recorded_and_not_repeated(tmp_path: Path, server, real_bytes):
    dest = tmp_path / "meta"
    records = download(dest, server)
    assert [r.path for r in records] == list(METADATA_FILES)
    for name in PINNED:
        assert (dest / name).read_bytes() == real_bytes[name]
    assert (dest / UNBALANCED).read_bytes() == SYNTHETIC_UNBALANCED
    assert leftovers(dest) == []
    manifest = json.loads((dest / MANIFEST_NAME).read_text())
    for name in PINNED:
        entry = manifest["files"][name]
        assert entry["sha256"] == PINNED_SHA256[name]
        assert entry["size"] == len(real_bytes[name])
        assert entry["source"] == server.url(f"/csv/{name}")
        assert entry["verified"] == "pinned sha256"
    assert manifest["files"][UNBALANCED]["sha256"] == sha256(SYNTHETIC_UNBALANCED)
    assert manifest["files"][UNBALANCED]["verified"].startswith("not verified")
    assert all(server.range_headers(f"/csv/{n}") == [None] for n in METADATA_FILES)

    # Second run: everything is present with the right hash, nothing is fetched again.
    again = download(dest, server)
    assert {r.action for r in again} == {"already present"}
    assert all(server.count(f"/csv/{n}") == 1 for n in METADATA_FILES)
    assert json.loads((dest / MANIFEST_NAME).read_text())["files"][EVAL]["retrieved"] == \
        manifest["files"][EVAL]["retrieved"]


def test_interrupted_download_resumes_with_range(tmp_path: Path, real_audioset: Path, real_bytes):
    data = real_bytes[BALANCED]
    cut = 400_000

    def drops_first_connection(request):
        return Route(data, truncate_after=cut) if request.index == 1 else data

    dest = tmp_path / "meta"
    with LocalHTTPServer({f"/csv/{BALANCED}": drops_first_connection}) as server:
        with pytest.raises(DownloadError, match="rerun to resume"):
            download(dest, server, names=[BALANCED], retries=0)
        assert not (dest / BALANCED).exists()                       # nothing half-written at the final path
        assert (dest / f"{BALANCED}.part").stat().st_size == cut     # what arrived is kept
        server.clear_log()

        download(dest, server, names=[BALANCED])
        [resume] = server.requests_for(f"/csv/{BALANCED}")
        assert resume.range == f"bytes={cut}-" and resume.status == 206
        head = urllib.request.urlopen(urllib.request.Request(server.url(f"/csv/{BALANCED}"), method="HEAD"))
        assert resume.headers.get("if-range") == head.headers["ETag"]  # guarded by the saved validator
        assert server.bytes_sent(f"/csv/{BALANCED}") == len(data) - cut < len(data)
    assert (dest / BALANCED).read_bytes() == data
    assert leftovers(dest) == []


def test_dropped_connection_retried_within_one_run(tmp_path: Path, real_bytes):
    data = real_bytes[EVAL]
    route = lambda request: Route(data, truncate_after=300_000) if request.index <= 2 else data  # noqa: E731
    with LocalHTTPServer({f"/csv/{EVAL}": route}) as server:
        messages: list[str] = []
        download(tmp_path, server, names=[EVAL], retries=1, log=messages.append)
        assert server.range_headers(f"/csv/{EVAL}") == [None, "bytes=300000-", "bytes=600000-"]
        assert server.bytes_sent(f"/csv/{EVAL}") == len(data)       # no byte fetched twice
    assert (tmp_path / EVAL).read_bytes() == data
    assert any("retry" in m for m in messages)


def test_resume_from_part_left_by_another_tool(tmp_path: Path, server, real_bytes):
    data = real_bytes[EVAL]
    (tmp_path / f"{EVAL}.part").write_bytes(data[:500_000])          # no .part.json beside it
    download(tmp_path, server, names=[EVAL])
    assert server.range_headers(f"/csv/{EVAL}") == ["bytes=500000-"]
    assert server.bytes_sent(f"/csv/{EVAL}") == len(data) - 500_000
    assert (tmp_path / EVAL).read_bytes() == data


def test_server_ignoring_range_restarts_cleanly(tmp_path: Path, real_bytes):
    data = real_bytes[EVAL]
    (tmp_path / f"{EVAL}.part").write_bytes(data[:500_000])
    with LocalHTTPServer({f"/csv/{EVAL}": Route(data, ignore_range=True)}) as server:
        download(tmp_path, server, names=[EVAL])
        [request] = server.requests_for(f"/csv/{EVAL}")
        assert request.range == "bytes=500000-" and request.status == 200
    assert (tmp_path / EVAL).read_bytes() == data                    # not prefix + whole file


def test_stale_part_gets_one_clean_retry(tmp_path: Path, server, real_bytes):
    data = real_bytes[CLASS_INDEX]
    (tmp_path / f"{CLASS_INDEX}.part").write_bytes(b"x" * 1000)       # wrong bytes from some old run
    download(tmp_path, server, names=[CLASS_INDEX])
    assert server.range_headers(f"/csv/{CLASS_INDEX}") == ["bytes=1000-", None]
    assert (tmp_path / CLASS_INDEX).read_bytes() == data


def test_complete_part_is_finished_after_416(tmp_path: Path, server, real_bytes):
    data = real_bytes[CLASS_INDEX]
    (tmp_path / f"{CLASS_INDEX}.part").write_bytes(data)             # killed just before the rename
    download(tmp_path, server, names=[CLASS_INDEX])
    assert [r.status for r in server.requests_for(f"/csv/{CLASS_INDEX}")] == [416]
    assert server.bytes_sent(f"/csv/{CLASS_INDEX}") == 0
    assert (tmp_path / CLASS_INDEX).read_bytes() == data


def test_unpinned_part_of_unknown_origin_is_not_spliced(tmp_path: Path, server):
    (tmp_path / f"{UNBALANCED}.part").write_bytes(b"--zzzzzzzzz, 0.0")
    download(tmp_path, server, names=[UNBALANCED])
    assert server.range_headers(f"/csv/{UNBALANCED}") == [None]
    assert (tmp_path / UNBALANCED).read_bytes() == SYNTHETIC_UNBALANCED


def test_checksum_mismatch_leaves_nothing(tmp_path: Path, real_audioset: Path, real_bytes):
    tampered = bytearray(real_bytes[EVAL])
    tampered[1000] ^= 0x01
    routes = {f"/csv/{ONTOLOGY}": real_audioset / ONTOLOGY, f"/csv/{EVAL}": bytes(tampered)}
    dest = tmp_path / "meta"
    with LocalHTTPServer(routes) as server:
        with pytest.raises(ChecksumError) as info:
            download(dest, server, names=[ONTOLOGY, EVAL])
        message = str(info.value)
        assert EVAL in message and PINNED_SHA256[EVAL] in message and sha256(bytes(tampered)) in message
        assert not (dest / EVAL).exists() and leftovers(dest) == []
        assert (dest / ONTOLOGY).read_bytes() == real_bytes[ONTOLOGY]   # earlier work is kept
        assert EVAL not in json.loads((dest / MANIFEST_NAME).read_text())["files"]

        # The same through the CLI: exit 2, the error on stderr, no traceback.
        code = main(["metadata", "--dest", str(dest), "--base-url", server.url("/csv"),
                     "--files", EVAL, "--no-progress", "--retries", "0"])
        assert code == 2 and not (dest / EVAL).exists()


def test_cli_reports_checksum_error(tmp_path: Path, capsys):
    with LocalHTTPServer({f"/csv/{CLASS_INDEX}": b"index,mid,display_name\n"}) as server:
        code = main(["metadata", "--dest", str(tmp_path), "--base-url", server.url("/csv"),
                     "--files", CLASS_INDEX, "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert "sha256 mismatch" in err and PINNED_SHA256[CLASS_INDEX] in err and "Traceback" not in err
    assert not (tmp_path / CLASS_INDEX).exists()


def test_existing_file_with_wrong_hash_is_replaced(tmp_path: Path, server, real_bytes):
    (tmp_path / ONTOLOGY).write_bytes(b"{}")
    download(tmp_path, server, names=[ONTOLOGY])
    assert (tmp_path / ONTOLOGY).read_bytes() == real_bytes[ONTOLOGY]


def test_404_is_a_clear_error_and_not_retried(tmp_path: Path):
    with LocalHTTPServer() as server:
        with pytest.raises(DownloadError) as info:
            download(tmp_path, server, names=[EVAL], retries=3)
        assert "404" in str(info.value) and server.url(f"/csv/{EVAL}") in str(info.value)
        assert server.count(f"/csv/{EVAL}") == 1
    assert not (tmp_path / EVAL).exists() and leftovers(tmp_path) == []


def test_transient_errors_retried_then_given_up(tmp_path: Path, real_bytes):
    flaky = lambda request: Response(503, b"busy") if request.index <= 2 else real_bytes[EVAL]  # noqa: E731
    with LocalHTTPServer({f"/csv/{EVAL}": flaky, "/csv/down": Response(503)}) as server:
        download(tmp_path, server, names=[EVAL], retries=2)
        assert server.count(f"/csv/{EVAL}") == 3
        with pytest.raises(DownloadError, match="giving up after 3 failed attempts"):
            fetch(server.url("/csv/down"), tmp_path / "down", retries=2, backoff_s=0, progress=False)
        assert server.count("/csv/down") == 3
    assert (tmp_path / EVAL).read_bytes() == real_bytes[EVAL]


def test_unreachable_server_is_a_clear_error(tmp_path: Path):
    with LocalHTTPServer() as server:
        url = server.url("/csv")
    with pytest.raises(DownloadError, match="cannot connect"):   # the port is closed now
        download_metadata(tmp_path, base_url=url, names=[EVAL], retries=1, backoff_s=0, progress=False)


def test_bad_base_url_and_busy_destination(tmp_path: Path):
    with pytest.raises(InputError, match="http"):
        download_metadata(tmp_path, base_url="file:///etc", names=[EVAL])
    with open(tmp_path / ".metadata.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(LlinetError, match="another"):
            download_metadata(tmp_path, base_url="http://127.0.0.1:9", names=[EVAL])


def test_from_real_shared_copy_with_parts(tmp_path: Path, real_audioset: Path):
    dest = tmp_path / "meta"
    records = copy_metadata(dest, real_audioset)
    parts = sorted((real_audioset / "unbalanced_partial_csvs").glob("*.csv"))
    assert len(parts) == 41 and len(records) == 4 + 41
    for path in [real_audioset / n for n in PINNED] + parts:
        relative = path.relative_to(real_audioset)
        assert (dest / relative).stat().st_size == path.stat().st_size
    manifest = json.loads((dest / MANIFEST_NAME).read_text())["files"]
    assert manifest[EVAL]["sha256"] == PINNED_SHA256[EVAL]
    part00 = "unbalanced_partial_csvs/unbalanced_train_segments_part00.csv"
    assert manifest[part00]["verified"] == "source SHA256SUMS"
    assert manifest[part00]["sha256"] == "6c2a26c327d7edb6e8fa1f377d8dfc2091480aa2c646cad24d288640574eb3cb"
    assert {r.action for r in copy_metadata(dest, real_audioset, link=True)} == {"already present"}


@pytest.fixture
def local_copy(tmp_path: Path, real_audioset: Path) -> Path:
    """A small local copy: the four real files + two synthetic unbalanced parts with SHA256SUMS."""
    source = tmp_path / "source"
    (source / "unbalanced_partial_csvs").mkdir(parents=True)
    for name in PINNED:
        shutil.copyfile(real_audioset / name, source / name)
    sums = []
    for index in range(2):
        part = f"unbalanced_partial_csvs/unbalanced_train_segments_part{index:02d}.csv"
        data = b"empty\nempty\nempty\n" + SYNTHETIC_UNBALANCED.splitlines(keepends=True)[3 + index]
        (source / part).write_bytes(data)
        sums.append(f"{sha256(data)}  {part}")
    (source / "SHA256SUMS").write_text("\n".join(sums) + "\n")
    return source


def test_from_copy_and_link(tmp_path: Path, local_copy: Path):
    records = copy_metadata(tmp_path / "copy", local_copy)
    assert {r.action for r in records} == {"copied"} and len(records) == 6
    linked = copy_metadata(tmp_path / "link", local_copy, link=True)
    assert {r.action for r in linked} <= {"linked", "copied"}
    for name in PINNED:
        assert (tmp_path / "link" / name).read_bytes() == (local_copy / name).read_bytes()


def test_from_single_unbalanced_file_preferred(tmp_path: Path, local_copy: Path):
    (local_copy / UNBALANCED).write_bytes(SYNTHETIC_UNBALANCED)
    records = copy_metadata(tmp_path / "meta", local_copy, names=[UNBALANCED])
    assert [r.path for r in records] == [UNBALANCED]
    assert records[0].verified.startswith("not verified")


def test_from_corrupt_file_is_rejected(tmp_path: Path, local_copy: Path):
    with open(local_copy / BALANCED, "ab") as handle:
        handle.write(b"extra\n")
    dest = tmp_path / "meta"
    with pytest.raises(ChecksumError) as info:
        copy_metadata(dest, local_copy, names=[ONTOLOGY, BALANCED])
    assert str(local_copy / BALANCED) in str(info.value) and PINNED_SHA256[BALANCED] in str(info.value)
    assert not (dest / BALANCED).exists() and leftovers(dest) == []
    assert (dest / ONTOLOGY).is_file()


def test_from_part_disagreeing_with_sha256sums(tmp_path: Path, local_copy: Path):
    part = local_copy / "unbalanced_partial_csvs" / "unbalanced_train_segments_part01.csv"
    part.write_bytes(part.read_bytes().replace(b"20.000", b"21.000"))
    with pytest.raises(ChecksumError, match="part01"):
        copy_metadata(tmp_path / "meta", local_copy, names=[UNBALANCED])
    assert not (tmp_path / "meta" / "unbalanced_partial_csvs" / part.name).exists()


def test_from_missing_files(tmp_path: Path, local_copy: Path):
    (local_copy / EVAL).unlink()
    with pytest.raises(InputError, match=EVAL):
        copy_metadata(tmp_path / "meta", local_copy, names=[EVAL])
    shutil.rmtree(local_copy / "unbalanced_partial_csvs")
    with pytest.raises(InputError, match="--no-unbalanced"):
        copy_metadata(tmp_path / "meta", local_copy, names=[UNBALANCED])
    with pytest.raises(InputError, match="not a folder"):
        copy_metadata(tmp_path / "meta", tmp_path / "nowhere")


def test_cli_download_from_and_options(tmp_path: Path, server, local_copy: Path, capsys):
    dest = tmp_path / "dl"
    assert main(["metadata", "--dest", str(dest), "--base-url", server.url("/csv"),
                 "--no-unbalanced", "--no-progress"]) == 0
    assert sorted(p.name for p in dest.glob("*.*") if not p.name.startswith(".")) == \
        sorted([*PINNED, MANIFEST_NAME])
    assert "4 downloaded" in capsys.readouterr().out

    assert main(["metadata", "--dest", str(dest), "--base-url", server.url("/csv"),
                 "--files", UNBALANCED, "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "1 downloaded" in out and "no pinned sha256" in out
    assert len(json.loads((dest / MANIFEST_NAME).read_text())["files"]) == 5

    copied = tmp_path / "copied"
    assert main(["metadata", "--dest", str(copied), "--from", str(local_copy), "--files", EVAL]) == 0
    assert (copied / EVAL).is_file() and not (copied / ONTOLOGY).exists()
    assert main(["metadata", "--dest", str(copied), "--from", str(tmp_path / "absent")]) == 2
    assert "not a folder" in capsys.readouterr().err

    with pytest.raises(SystemExit):  # --from and --base-url exclude each other
        main(["metadata", "--dest", str(copied), "--from", str(local_copy), "--base-url", "http://x"])
    with pytest.raises(SystemExit):
        main(["metadata", "--dest", str(copied), "--files", "passwords.csv"])


def test_bad_records_are_reported_with_file_and_line(tmp_path: Path, local_copy: Path):
    with pytest.raises(InputError, match="unknown metadata file"):
        copy_metadata(tmp_path / "meta", local_copy, names=["ontology.json", "other.csv"])
    assert not (tmp_path / "meta").exists()                  # rejected before anything was created
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(InputError, match=MANIFEST_NAME):
        copy_metadata(tmp_path / "meta", local_copy, names=[EVAL])
    assert not (tmp_path / "meta" / EVAL).exists()
    (local_copy / "SHA256SUMS").write_text(f"{'0' * 64}  a.csv\nnot-a-hash  b.csv\n")
    with pytest.raises(InputError, match="SHA256SUMS, line 2"):
        copy_metadata(tmp_path / "other", local_copy, names=[EVAL])
