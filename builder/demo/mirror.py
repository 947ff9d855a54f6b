"""A loopback HTTP server for one folder of media files that honours ``Range``.

yt-dlp's section downloads and resumed downloads send ``Range`` requests;
``python -m http.server`` ignores them. This server serves the files directly
inside one folder by their plain names (``/<name>``: letters, digits, ``_``,
``-`` and ``.``, not starting with a dot; no subfolders, so no path leaves the
folder) with single-range support (``206`` + ``Content-Range``, ``416`` for a
range past the end), ``HEAD``, ``Content-Length`` and ``Accept-Ranges``.
It binds to 127.0.0.1 unless told otherwise.

Usage (a local "YouTube mirror" for ``fetch --url-template``)::

    with MirrorServer(folder) as server:
        fetch(manifest, FetchOptions(..., url_template=server.url_template))

:func:`parse_range` is also the Range parser of the tests' HTTP server.
"""
from __future__ import annotations

import mimetypes
import os
import re
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

CHUNK_BYTES = 64 * 1024
UNSATISFIABLE = "unsatisfiable"
FILE_NAME_RE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")


def parse_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """Interpret a ``Range`` header for a body of ``size`` bytes (RFC 9110 section 14).

    Returns ``(first, last)`` (inclusive), :data:`UNSATISFIABLE` (answer 416) or
    ``None`` (ignore the header and send the whole body with 200: used for
    absent, malformed, non-``bytes`` and multi-range headers, which a server may
    legally ignore).
    """
    if header is None:
        return None
    unit, sep, spec = header.strip().partition("=")
    if not sep or unit.strip().lower() != "bytes" or "," in spec:
        return None
    first_text, dash, last_text = spec.strip().partition("-")
    first_text, last_text = first_text.strip(), last_text.strip()
    if not dash or (first_text and not first_text.isdigit()) or (last_text and not last_text.isdigit()):
        return None
    if not first_text:                      # suffix range: the last n bytes
        if not last_text:
            return None
        suffix = int(last_text)
        if suffix == 0 or size == 0:
            return UNSATISFIABLE
        return max(0, size - suffix), size - 1
    first = int(first_text)
    last = int(last_text) if last_text else size - 1
    if last_text and last < first:
        return None                         # syntactically invalid: ignore
    if first >= size:
        return UNSATISFIABLE
    return first, min(last, size - 1)


class _FolderHandler(BaseHTTPRequestHandler):
    server: _FolderHTTPServer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass  # a demo/test helper: no access log on stderr

    def do_HEAD(self) -> None:
        self._serve(send_body=False)

    def do_GET(self) -> None:
        self._serve(send_body=True)

    def _serve(self, send_body: bool) -> None:
        path = self.server.file_for(urlsplit(self.path).path)
        if path is None:
            self.send_error(HTTPStatus.NOT_FOUND)
            return
        size = path.stat().st_size
        wanted = parse_range(self.headers.get("Range"), size)
        if isinstance(wanted, str):  # UNSATISFIABLE, the only string parse_range returns
            self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        first, last = (0, size - 1) if wanted is None else wanted
        self.send_response(HTTPStatus.OK if wanted is None else HTTPStatus.PARTIAL_CONTENT)
        self.send_header("Content-Type", mimetypes.guess_type(path.name)[0] or "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(last - first + 1))
        if wanted is not None:
            self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
        self.end_headers()
        if not send_body:
            return
        try:
            with open(path, "rb") as handle:
                handle.seek(first)
                left = last - first + 1
                while left > 0:
                    chunk = handle.read(min(CHUNK_BYTES, left))
                    if not chunk:
                        break
                    self.wfile.write(chunk)
                    left -= len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client read what it needed (yt-dlp probes, then closes)


class _FolderHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], folder: Path) -> None:
        super().__init__(address, _FolderHandler)
        self.folder = folder

    def file_for(self, url_path: str) -> Path | None:
        """The folder's file named by ``/<name>``, or None (bad name, subfolder, missing, not a file)."""
        name = url_path[1:] if url_path.startswith("/") else ""
        if not FILE_NAME_RE.fullmatch(name):
            return None
        path = self.folder / name
        return path if path.is_file() else None


class MirrorServer:
    """Serve ``folder``'s files on ``host`` (default 127.0.0.1) and an ephemeral or given port.

    Use as a context manager; :attr:`url` is the base URL and
    :attr:`url_template` the ``{ytid}.mp4`` template ``fetch`` expects.
    """

    def __init__(self, folder: str | os.PathLike, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise FileNotFoundError(f"mirror folder {self.folder} does not exist")
        self._address = (host, port)
        self._server: _FolderHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> MirrorServer:
        if self._server is None:
            self._server = _FolderHTTPServer(self._address, self.folder)
            self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                            name="MirrorServer", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        assert self._thread is not None
        self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> MirrorServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:43121`` (no trailing slash)."""
        if self._server is None:
            raise RuntimeError("mirror server not started")
        host, port = self._server.socket.getsockname()[:2]
        return f"http://{host}:{port}"

    @property
    def url_template(self) -> str:
        """``<url>/{ytid}.mp4``: the ``fetch --url-template`` for a folder of ``<ytid>.mp4`` files."""
        return self.url + "/{ytid}.mp4"
