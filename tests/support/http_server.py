"""A real, threaded HTTP server on 127.0.0.1 for tests (no mocks of HTTP).

It serves a table of routes (URL path -> content) on an ephemeral port and
honours what real download clients (urllib, requests, yt-dlp) rely on:
single-range ``Range`` requests (``bytes=a-b``, ``bytes=a-``, ``bytes=-n``)
answered with ``206`` + ``Content-Range``, ``416`` for unsatisfiable ranges,
``Content-Length``, ``Accept-Ranges: bytes``, ``ETag``/``Last-Modified`` with
``If-Range``, ``HEAD`` and HTTP/1.1 keep-alive. Every request is logged (method,
path, Range header, status, body bytes actually sent) so a test can assert
"resumed with a Range request" or "did not download again".

Route values:

* ``bytes`` -- the body;
* a ``pathlib.Path`` (any ``os.PathLike``) -- a file, read at request time
  in chunks, so large media files are fine;
* :class:`Route` -- content plus options for realistic faults (a server that
  ignores ``Range``, a connection dropped after N bytes, a slow answer);
* a callable ``handler(request: RequestLog) -> Route | Response | bytes | Path``
  -- decided per request, e.g. "fail the first attempt, then serve".
  ``request.index`` is the 1-based number of this request to that path
  since the server started (``clear_log`` does not reset it).
  A :class:`Response` is sent verbatim (no Range handling): use it for error
  statuses and odd replies.

Usage::

    with LocalHTTPServer({"/a.csv": data, "/v.mp4": Path("clip.mp4")}) as server:
        fetch(server.url("/a.csv"))
        assert server.count("/a.csv") == 1
        assert server.range_headers("/a.csv") == [None]
"""
from __future__ import annotations

import email.utils
import errno
import hashlib
import mimetypes
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from builder.demo.mirror import UNSATISFIABLE, parse_range  # one Range parser, shared with the demo mirror

CHUNK_BYTES = 64 * 1024
# errnos of shutdown() meaning "the client already closed its end"
CLIENT_GONE_ERRNOS = frozenset({errno.ENOTCONN, errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED})


@dataclass
class Route:
    """Content with server behaviour options (all default to a well-behaved server)."""

    content: bytes | bytearray | memoryview | os.PathLike
    content_type: str | None = None        # default: guessed from the URL path
    ignore_range: bool = False             # answer 200 + whole body, like servers without Range support
    truncate_after: int | None = None      # send only this many body bytes, then drop the connection
    delay_s: float = 0.0                   # sleep before answering (client timeouts)
    validators: bool = True                # send ETag / Last-Modified and honour If-Range
    headers: Mapping[str, str] = field(default_factory=dict)  # extra response headers


@dataclass
class Response:
    """A reply sent exactly as given (status, headers, body); no Range handling."""

    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass
class RequestLog:
    """One request as the server saw it; ``status``/``body_bytes`` are filled in after answering."""

    method: str
    path: str
    query: str
    headers: dict[str, str]                # lower-case names
    index: int                             # 1-based count of requests to this path (not reset by clear_log)
    status: int | None = None
    body_bytes: int = 0                    # body bytes handed to the socket

    @property
    def range(self) -> str | None:
        return self.headers.get("range")


RouteSpec = bytes | bytearray | memoryview | os.PathLike | Route | Callable[[RequestLog], object]

class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = 10  # idle keep-alive connections are closed after this many seconds

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass  # keep test output clean; the request log is the record

    def setup(self) -> None:
        super().setup()
        self.server.owner._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner._track(self.connection, add=False)

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def _method_not_allowed(self) -> None:
        record = self.server.owner._log_request(self)
        self._send_plain(record, Response(HTTPStatus.METHOD_NOT_ALLOWED, b"", {"Allow": "GET, HEAD"}), True)

    do_POST = do_PUT = do_DELETE = do_PATCH = _method_not_allowed

    def _answer(self, send_body: bool) -> None:
        owner = self.server.owner
        record = owner._log_request(self)
        spec = owner._route_for(record.path)
        try:
            if callable(spec) and not isinstance(spec, (Route, os.PathLike)):
                spec = spec(record)
            if spec is None:
                self._send_plain(record, Response(HTTPStatus.NOT_FOUND, b"not found\n"), send_body)
            elif isinstance(spec, Response):
                self._send_plain(record, spec, send_body)
            else:
                route = spec if isinstance(spec, Route) else Route(spec)
                self._send_route(record, route, send_body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True     # the client went away; nothing to answer
        except Exception as exc:  # a bug in a test's handler: report it, don't hang the client
            owner._handler_errors.append(exc)
            self.close_connection = True
            if record.status is None:
                self._send_plain(record, Response(HTTPStatus.INTERNAL_SERVER_ERROR, repr(exc).encode()), send_body)

    def _send_plain(self, record: RequestLog, response: Response, send_body: bool) -> None:
        record.status = int(response.status)
        self.send_response(record.status)
        names = {name.lower() for name in response.headers}
        for name, value in response.headers.items():
            self.send_header(name, value)
        if "content-length" not in names:
            self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if send_body and response.body:
            self._write_counted(record, response.body)

    def _send_route(self, record: RequestLog, route: Route, send_body: bool) -> None:
        if route.delay_s:
            time.sleep(route.delay_s)
        content = route.content
        if isinstance(content, os.PathLike):
            file_path = Path(content)
            stat = file_path.stat()
            size, mtime = stat.st_size, stat.st_mtime
            etag = f'"{stat.st_mtime_ns:x}-{size:x}"'
        elif isinstance(content, (bytes, bytearray, memoryview)):
            file_path, content = None, bytes(content)
            size, mtime = len(content), self.server.owner.started_at
            etag = '"' + hashlib.sha1(content).hexdigest()[:20] + '"'
        else:
            raise TypeError(f"route content must be bytes or a path, not {type(content).__name__}")
        last_modified = email.utils.formatdate(mtime, usegmt=True)

        wanted = None if route.ignore_range else parse_range(record.range, size)
        if_range = record.headers.get("if-range")
        if wanted is not None and if_range is not None and if_range not in (etag, last_modified):
            wanted = None  # the client's copy is stale: RFC 9110 says send the whole new body

        headers: dict[str, str] = {
            "Content-Type": route.content_type
            or mimetypes.guess_type(record.path)[0] or "application/octet-stream",
            "Accept-Ranges": "none" if route.ignore_range else "bytes",
        }
        if route.validators:
            headers.update({"ETag": etag, "Last-Modified": last_modified})
        headers.update(route.headers)

        if wanted == UNSATISFIABLE:
            headers["Content-Range"] = f"bytes */{size}"
            self._send_plain(record, Response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, b"", headers), send_body)
            return
        if wanted is None:
            status, first, last = HTTPStatus.OK, 0, size - 1
        else:
            status, (first, last) = HTTPStatus.PARTIAL_CONTENT, wanted
            headers["Content-Range"] = f"bytes {first}-{last}/{size}"
        length = last - first + 1

        record.status = int(status)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(length))
        if route.truncate_after is not None:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if not send_body:
            return
        to_send = length if route.truncate_after is None else min(length, route.truncate_after)
        if file_path is None:
            self._write_counted(record, memoryview(content)[first:first + to_send])
        else:
            with open(file_path, "rb") as handle:
                handle.seek(first)
                remaining = to_send
                while remaining > 0:
                    chunk = handle.read(min(CHUNK_BYTES, remaining))
                    if not chunk:
                        break
                    self._write_counted(record, chunk)
                    remaining -= len(chunk)
        if to_send < length:
            # A dropped connection, as a flaky network produces it: the headers
            # promised `length` bytes, the socket closes early.
            self.wfile.flush()
            drop_connection(self.connection)

    def _write_counted(self, record: RequestLog, data: bytes | memoryview) -> None:
        view = memoryview(data)
        for offset in range(0, len(view), CHUNK_BYTES):
            chunk = view[offset:offset + CHUNK_BYTES]
            # Counted before writing: a client may read the last byte and check
            # the log before this thread runs again.
            record.body_bytes += len(chunk)
            self.wfile.write(chunk)


def drop_connection(connection: socket.socket) -> None:
    """Shut both directions of ``connection``; a client that already hung up is no error.

    A client may close first (yt-dlp's probe GET, ffprobe reading only the
    header): then ``shutdown`` fails with ENOTCONN, ECONNRESET or EPIPE, which
    is the expected end of a deliberately truncated reply. Any other error
    (e.g. EBADF: a bug here) is raised.
    """
    try:
        connection.shutdown(socket.SHUT_RDWR)
    except OSError as exc:
        if exc.errno not in CLIENT_GONE_ERRNOS:
            raise


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: LocalHTTPServer


class LocalHTTPServer:
    """Threaded HTTP server on 127.0.0.1 with an ephemeral port; use as a context manager."""

    def __init__(self, routes: Mapping[str, RouteSpec] | None = None, *, keep_alive: bool = True,
                 raise_handler_errors: bool = True) -> None:
        self._routes: dict[str, RouteSpec] = {}
        self._lock = threading.Lock()
        self._log: list[RequestLog] = []
        self._served: dict[str, int] = {}   # requests per path since start; clear_log() keeps it
        self._connections: set[socket.socket] = set()
        self._handler_errors: list[BaseException] = []
        self._keep_alive = keep_alive
        self._raise_handler_errors = raise_handler_errors
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.started_at = time.time()
        for path, spec in (routes or {}).items():
            self.set_route(path, spec)

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> LocalHTTPServer:
        if self._server is not None:
            return self
        handler = type("Handler", (_Handler,), {
            "protocol_version": "HTTP/1.1" if self._keep_alive else "HTTP/1.0"})
        self._server = _Server(("127.0.0.1", 0), handler)
        self._server.owner = self
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"LocalHTTPServer:{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and cut open keep-alive connections; re-raise a handler's exception."""
        if self._server is None:
            return
        self._server.shutdown()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._server.server_close()
        assert self._thread is not None
        self._thread.join(timeout=5)
        self._server = None
        if self._raise_handler_errors and self._handler_errors:
            raise RuntimeError("a route handler raised an exception") from self._handler_errors[0]

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until no client connection is open (every handler has finished); False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._connections:
                    return True
            time.sleep(0.01)
        return False

    def __enter__(self) -> LocalHTTPServer:
        return self.start()

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self._raise_handler_errors = False  # don't mask the test's own failure
        self.stop()

    # -- addresses ---------------------------------------------------------
    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("server not started")
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + _normalise_path(path)

    # -- routes ------------------------------------------------------------
    def set_route(self, path: str, spec: RouteSpec) -> None:
        if isinstance(spec, str):
            raise TypeError("a str route is ambiguous: pass bytes for content or pathlib.Path for a file")
        with self._lock:
            self._routes[_normalise_path(path)] = spec

    __setitem__ = set_route

    def remove_route(self, path: str) -> None:
        with self._lock:
            self._routes.pop(_normalise_path(path), None)

    def _route_for(self, path: str) -> RouteSpec | None:
        with self._lock:
            return self._routes.get(path)

    # -- request log -------------------------------------------------------
    @property
    def requests(self) -> list[RequestLog]:
        with self._lock:
            return list(self._log)

    def requests_for(self, path: str, method: str | None = None) -> list[RequestLog]:
        path = _normalise_path(path)
        return [r for r in self.requests if r.path == path and (method is None or r.method == method)]

    def count(self, path: str, method: str | None = None) -> int:
        return len(self.requests_for(path, method))

    def range_headers(self, path: str) -> list[str | None]:
        return [r.range for r in self.requests_for(path)]

    def bytes_sent(self, path: str) -> int:
        return sum(r.body_bytes for r in self.requests_for(path))

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()

    def _log_request(self, handler: BaseHTTPRequestHandler) -> RequestLog:
        parts = urlsplit(handler.path)
        path = parts.path or "/"
        headers = {name.lower(): value for name, value in handler.headers.items()}
        with self._lock:
            index = self._served[path] = self._served.get(path, 0) + 1
            record = RequestLog(handler.command, path, parts.query, headers, index)
            self._log.append(record)
        return record

    def _track(self, connection: socket.socket, add: bool) -> None:
        with self._lock:
            (self._connections.add if add else self._connections.discard)(connection)


def _normalise_path(path: str) -> str:
    return path if path.startswith("/") else "/" + path
