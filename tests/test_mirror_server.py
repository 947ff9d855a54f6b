"""builder.demo.mirror: a folder served on loopback with Range, 416, HEAD; names cannot leave the folder."""
from __future__ import annotations

import http.client
import re
import urllib.request

import pytest

from builder.demo.mirror import MirrorServer

BODY = bytes(range(256)) * 40  # 10240 bytes; every slice is checkable


@pytest.fixture()
def folder(tmp_path):
    served = tmp_path / "mirror"
    served.mkdir()
    (served / "abcdefghijk.mp4").write_bytes(BODY)
    (served / ".hidden").write_bytes(b"dotfile")
    (served / "sub").mkdir()
    (served / "sub" / "inner.mp4").write_bytes(b"inner")
    (tmp_path / "secret.txt").write_bytes(b"outside the folder")
    return served


def request(server: MirrorServer, path: str, headers: dict[str, str] | None = None,
            method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    """Raw request: http.client sends ``path`` as given (no normalisation of '..')."""
    port = int(server.url.rsplit(":", 1)[1])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def test_url_template_names_loopback_and_the_ytid_placeholder(folder):
    with MirrorServer(folder) as server:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/\{ytid\}\.mp4", server.url_template)
        url = server.url_template.format(ytid="abcdefghijk")
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.status == 200 and response.read() == BODY
            assert response.headers["Content-Type"] == "video/mp4"
            assert response.headers["Accept-Ranges"] == "bytes"
    with pytest.raises(RuntimeError, match="not started"):
        _ = server.url


@pytest.mark.parametrize("range_header, first, last", [
    ("bytes=0-99", 0, 99),
    ("bytes=10000-", 10000, 10239),      # open-ended: to the end
    ("bytes=-40", 10200, 10239),         # suffix: the last 40 bytes
    ("bytes=10200-99999", 10200, 10239),  # last byte clamped to the file
])
def test_single_ranges_are_206_with_content_range(folder, range_header, first, last):
    with MirrorServer(folder) as server:
        status, headers, body = request(server, "/abcdefghijk.mp4", {"Range": range_header})
    assert status == 206
    assert headers["content-range"] == f"bytes {first}-{last}/{len(BODY)}"
    assert headers["content-length"] == str(last - first + 1)
    assert body == BODY[first:last + 1]


def test_range_past_the_end_is_416_and_ignorable_ranges_give_the_whole_file(folder):
    with MirrorServer(folder) as server:
        status, headers, body = request(server, "/abcdefghijk.mp4", {"Range": f"bytes={len(BODY)}-"})
        assert (status, headers["content-range"], body) == (416, f"bytes */{len(BODY)}", b"")
        assert request(server, "/abcdefghijk.mp4", {"Range": "bytes=-0"})[0] == 416
        for ignorable in ("bytes=0-1,5-6", "items=0-3", "bytes=9-2"):  # multi-range, other unit, invalid
            status, headers, body = request(server, "/abcdefghijk.mp4", {"Range": ignorable})
            assert (status, body) == (200, BODY) and "content-range" not in headers


def test_head_sends_the_headers_of_get_without_a_body(folder):
    with MirrorServer(folder) as server:
        status, headers, body = request(server, "/abcdefghijk.mp4", method="HEAD")
        assert (status, headers["content-length"], body) == (200, str(len(BODY)), b"")
        status, headers, body = request(server, "/abcdefghijk.mp4", {"Range": "bytes=5-9"}, method="HEAD")
        assert (status, headers["content-range"], headers["content-length"], body) == \
            (206, f"bytes 5-9/{len(BODY)}", "5", b"")
        assert request(server, "/missing.mp4", method="HEAD")[0] == 404


@pytest.mark.parametrize("path", [
    "/../secret.txt", "/%2e%2e/secret.txt", "/..%2fsecret.txt", "/sub/inner.mp4", "/sub", "/.hidden",
    "/", "//secret.txt", "/missing.mp4", "/abcdefghijk.mp4/", "/abcdefghijk.mp4%00",
])
def test_only_plain_names_of_files_in_the_folder_are_served(folder, path):
    with MirrorServer(folder) as server:
        status, _, body = request(server, path)
    assert status == 404
    assert b"outside the folder" not in body and b"inner" not in body and b"dotfile" not in body


def test_query_strings_are_ignored_and_a_missing_folder_is_refused(folder, tmp_path):
    with MirrorServer(folder) as server:
        status, _, body = request(server, "/abcdefghijk.mp4?itag=18")
    assert (status, body) == (200, BODY)
    with pytest.raises(FileNotFoundError):
        MirrorServer(tmp_path / "nope")
