"""HTTP front of the review page: routing, JSON errors, static and media files (stdlib only).

Routes (anything else is a JSON 4xx)::

    GET    /                         the page (static/index.html)
    GET    /static/<name>            a file of static/ (a fixed list read at start)
    GET    /api/state                every clip, decision, flag, mask flag and per-class counts
    GET    /api/changes?since=N&instance=I   the clips anyone changed after sequence N (or "reload")
    POST   /api/decision             {"clip_id", "decision": accept|reject|undecided, "reason", "reviewer",
                                      "base": version it was based on (optional), "time" (optional)}
    GET    /api/mask/<clip_id>       {"width", "height", "runs": row-major run lengths or null, "version"}
    PUT    /api/mask/<clip_id>       {"width", "height", "runs", "base"} -> validated, written as COCO RLE
    DELETE /api/mask/<clip_id>       {"base"}: remove the clip's mask
    GET    /media/frame/<clip_id>    the clip's frame_path file    (Range supported for both)
    GET    /media/audio/<clip_id>    the clip's audio_path file
    GET    /media/strip/<clip_id>    the clip's waveform strip (PNG, drawn once and cached)

A write whose ``base`` is not the version in the file gets 409 with the clip's
current state under ``conflict``: nobody's work is replaced without them seeing it.

No path from a request is ever joined to a folder: ``<name>`` must be a key of
the static list and ``<clip_id>`` a valid clip id of the manifest, whose row
names the file. Against other web pages in the same browser (the server has no
login): on a loopback address the Host header must be the server's own (DNS
rebinding), and writes need ``Content-Type: application/json`` (a cross-site
form cannot send it without a CORS preflight, which is never granted) and, when
the browser sends an Origin, the server's own origin.
"""
from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import re
import socket
import sys
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from builder.errors import InputError, LlinetError
from builder.resources import review_static
from builder.review.state import ReviewError, ReviewSession
from builder.review.strips import strip_png

logger = logging.getLogger(__name__)

STATIC_DIR = review_static()
STATIC_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png"}
MEDIA_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp",
               ".wav": "audio/wav", ".flac": "audio/flac", ".mp3": "audio/mpeg", ".ogg": "audio/ogg"}
MAX_BODY = 16 << 20          # a 720x720 mask as worst-case runs is ~4 MB of JSON
CSP = ("default-src 'self'; img-src 'self' data: blob:; media-src 'self'; style-src 'self'; script-src 'self'; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
WRITE_METHODS = ("POST", "PUT", "DELETE")
CLIP = r"([^/]*)"
# (pattern, {method: handler name}); patterns match the raw path (no percent-decoding, no query).
ROUTES: tuple[tuple[re.Pattern, dict[str, str]], ...] = (
    (re.compile(r"/(?:index\.html)?"), {"GET": "page"}),
    (re.compile(r"/static/([^/]*)"), {"GET": "static"}),
    (re.compile(r"/api/state"), {"GET": "state"}),
    (re.compile(r"/api/changes"), {"GET": "changes"}),
    (re.compile(r"/api/decision"), {"POST": "decision"}),
    (re.compile(r"/api/mask/" + CLIP), {"GET": "get_mask", "PUT": "put_mask", "DELETE": "delete_mask"}),
    (re.compile(r"/media/(frame|audio)/" + CLIP), {"GET": "media"}),
    (re.compile(r"/media/strip/" + CLIP), {"GET": "strip"}),
)


def static_files(folder: Path = STATIC_DIR) -> dict[str, Path]:
    """name -> file for every servable file of the static folder (fixed at start)."""
    return {p.name: p for p in sorted(folder.iterdir()) if p.is_file() and p.suffix in STATIC_TYPES}


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class ReviewServer(ThreadingHTTPServer):
    daemon_threads = True
    # The stdlib's listen backlog of 5 resets connections when a page (or a script) opens dozens at once.
    request_queue_size = 256

    def __init__(self, session: ReviewSession, host: str = "127.0.0.1", port: int = 0, *,
                 verbose: bool = False) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__((host, port), ReviewHandler)
        self.session = session
        self.verbose = verbose
        self.static = static_files()
        self.port = int(self.server_address[1])
        self.host = host
        self.allowed_hosts: set[str] | None = None
        if is_loopback(host):
            self.allowed_hosts = {f"{name}:{self.port}" for name in ("127.0.0.1", "localhost", "[::1]")}
            self.allowed_hosts.add(f"{host if ':' not in host else '[' + host + ']'}:{self.port}")

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A browser closing a kept-alive connection is normal; anything else gets one line on stderr."""
        error = sys.exc_info()[1]
        if not isinstance(error, (ConnectionError, TimeoutError)):
            logger.error(f"review: error while serving {client_address}: {error!r}")

    @property
    def url(self) -> str:
        host = self.host if ":" not in self.host else f"[{self.host}]"
        return f"http://{host}:{self.port}/"


class ReviewHandler(BaseHTTPRequestHandler):
    server: ReviewServer
    server_version = "llinet-review"
    protocol_version = "HTTP/1.1"
    # A garbled request line is answered with a status line and JSON, not as a headerless HTTP/0.9 reply.
    default_request_version = "HTTP/1.0"

    # ------------------------------------------------------------------ plumbing
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        if self.server.verbose:
            logger.info(f"review: {self.address_string()} {format % args}")

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Every error, including the stdlib's own (bad request line, unknown method...), as JSON."""
        if code == HTTPStatus.NOT_IMPLEMENTED:  # a method no route knows: the client's mistake, not ours
            code, message = HTTPStatus.METHOD_NOT_ALLOWED, f"method {self.command!r} is not supported"
        self._json({"error": message or HTTPStatus(code).phrase, "status": code}, code,
                   headers={"Connection": "close"})
        self.close_connection = True

    def _headers(self, status: int, content_type: str, length: int | None,
                 extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if length is not None:  # None: a 304, which has no body
            self.send_header("Content-Length", str(length))
        self.send_header("Cache-Control", "no-cache")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Content-Security-Policy", CSP)
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()

    def _json(self, obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        self._headers(status, "application/json; charset=utf-8", len(body), headers)
        if self.command != "HEAD":
            self.wfile.write(body)

    def _file(self, path: Path, content_type: str, *, ranged: bool = False) -> None:
        """A file with an ETag (mtime + size): a browser revalidating an unchanged frame gets a 304."""
        stat = path.stat()
        etag = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'
        if etag in [tag.strip() for tag in self.headers.get("If-None-Match", "").split(",")]:
            self._headers(304, content_type, None, {"ETag": etag})
            return
        self._bytes(path.read_bytes(), content_type, ranged=ranged, extra={"ETag": etag})

    def _bytes(self, data: bytes, content_type: str, *, ranged: bool = False,
               extra: dict[str, str] | None = None) -> None:
        status, size = 200, len(data)
        extra = {**(extra or {}), **({"Accept-Ranges": "bytes"} if ranged else {})}
        header = self.headers.get("Range") if ranged else None
        if header:
            match = re.fullmatch(r"bytes=(\d*)-(\d*)", header.strip())
            first = last = -1  # stays unsatisfiable unless the header parses
            if match and (match[1] or match[2]):
                if match[1]:
                    first, last = int(match[1]), int(match[2]) if match[2] else size - 1
                else:  # suffix range: the last N bytes
                    first, last = max(0, size - int(match[2])), size - 1
                last = min(last, size - 1)
            if first < 0 or first > last or first >= size:
                raise ReviewError(416, f"unsatisfiable Range {header!r} for {size} bytes")
            status, data = 206, data[first:last + 1]
            extra["Content-Range"] = f"bytes {first}-{last}/{size}"
        self._headers(status, content_type, len(data), extra)
        if self.command != "HEAD":
            self.wfile.write(data)

    # ------------------------------------------------------------------ dispatch
    def do_GET(self) -> None:
        self._dispatch()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_GET

    def _dispatch(self) -> None:
        try:
            self._route()
        except ReviewError as exc:
            self._json({"error": exc.message, "status": exc.status, **exc.extra}, exc.status)
        except InputError as exc:          # well-formed request the data rules refuse (empty mask, no reason...)
            self._json({"error": str(exc), "status": 422}, 422)
        except LlinetError as exc:
            self._json({"error": str(exc), "status": 409}, 409)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:  # noqa: BLE001 - the page shows the message; the terminal gets the traceback
            logger.exception(f"review: internal error answering {self.command} {self.path}")
            self._json({"error": f"internal error: {type(exc).__name__}: {exc}", "status": 500}, 500)

    def _route(self) -> None:
        allowed = self.server.allowed_hosts
        if allowed is not None and self.headers.get("Host", "") not in allowed:
            raise ReviewError(403, f"unexpected Host header {self.headers.get('Host')!r}; open {self.server.url}")
        path = urlsplit(self.path).path
        decoded = unquote(path)
        if ".." in decoded.split("/") or "\\" in decoded or "\x00" in decoded:
            raise ReviewError(400, "refused: the path contains '..', a backslash or a NUL byte")
        for pattern, methods in ROUTES:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            method = "GET" if self.command == "HEAD" else self.command
            if method not in methods:
                allow = ", ".join(sorted(set(methods) | ({"HEAD"} if "GET" in methods else set())))
                raise ReviewError(405, f"{self.command} is not allowed on {path} (allowed: {allow})")
            body = self._read_body() if method in WRITE_METHODS else None
            handler: Callable = getattr(self, f"handle_{methods[method]}")
            handler(*match.groups(), **({"body": body} if body is not None else {}))
            return
        raise ReviewError(404, f"no such page or endpoint: {path}")

    def _read_body(self) -> dict:
        origin = self.headers.get("Origin")
        if origin is not None and self.server.allowed_hosts is not None and \
                origin.removeprefix("http://") not in self.server.allowed_hosts:
            raise ReviewError(403, f"cross-origin write from {origin!r} refused")
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise ReviewError(415, f"send the body as application/json (got {content_type or 'no Content-Type'!r})")
        length_text = self.headers.get("Content-Length")
        if length_text is None or not length_text.isdigit():
            raise ReviewError(411, "a Content-Length header is required")
        length = int(length_text)
        if length > MAX_BODY:
            self.close_connection = True  # the body is not read; the connection cannot be reused
            raise ReviewError(413, f"request body of {length} bytes exceeds the limit of {MAX_BODY}")
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw.decode("utf-8")) if raw else {}
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ReviewError(400, f"the body is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise ReviewError(400, f"the body must be a JSON object, got {type(body).__name__}")
        return body

    # ------------------------------------------------------------------ handlers
    def handle_page(self) -> None:
        self.handle_static("index.html")

    def handle_static(self, name: str) -> None:
        path = self.server.static.get(name)
        if path is None:
            raise ReviewError(404, f"no static file {name!r}")
        self._file(path, STATIC_TYPES[path.suffix])

    def handle_state(self) -> None:
        self._json(self.server.session.state())

    def handle_changes(self) -> None:
        query = parse_qs(urlsplit(self.path).query)
        since = query.get("since", ["0"])[0]
        if not since.isdigit():
            raise ReviewError(400, f"'since' must be a sequence number, got {since!r}")
        self._json(self.server.session.changes(int(since), query.get("instance", [""])[0]))

    def handle_strip(self, clip_id: str) -> None:
        session = self.server.session
        data = strip_png(session.media_root, clip_id, session.clip_row(clip_id))
        etag = f'"{hashlib.blake2b(data, digest_size=8).hexdigest()}"'
        if etag in [tag.strip() for tag in self.headers.get("If-None-Match", "").split(",")]:
            self._headers(304, "image/png", None, {"ETag": etag})
            return
        self._bytes(data, "image/png", extra={"ETag": etag})

    def handle_decision(self, body: dict) -> None:
        self._json(self.server.session.decide(body))

    def handle_get_mask(self, clip_id: str) -> None:
        self._json(self.server.session.mask(clip_id))

    def handle_put_mask(self, clip_id: str, body: dict) -> None:
        self._json(self.server.session.save_mask(clip_id, body))

    def handle_delete_mask(self, clip_id: str, body: dict) -> None:
        self._json(self.server.session.delete_mask(clip_id, body))

    def handle_media(self, kind: str, clip_id: str) -> None:
        path = self.server.session.media_file(kind, clip_id)
        content_type = MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream")
        self._file(path, content_type, ranged=True)
