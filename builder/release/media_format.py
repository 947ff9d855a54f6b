"""What format a built audio or frame file is in, and whether it decodes cleanly.

``release`` records each released file's format in the ID manifest and
``verify`` compares a rebuild's files against that record, so a resampled,
down-mixed, re-encoded or corrupted file is named as such instead of passing
on its content alone.

* Audio: ``container`` (``wav``, or FFmpeg's format name for anything else),
  ``codec`` (FFmpeg's name: ``pcm_s16le`` ...), ``sample_rate``, ``channels``
  and ``samples`` (frames per channel). A WAV is read from its own header,
  which is then checked against the bytes present: RIFF size, ``fmt``
  consistency, and a ``data`` chunk that the file really holds (a truncated or
  padded WAV decodes without complaint in most readers). Anything that is not
  RIFF/WAVE is described by ffprobe.
* Images: ``container`` (``jpeg``, ``png`` ...), ``width``, ``height`` and
  ``channels`` (colour components), read with Pillow. Pillow decodes a JPEG
  whose entropy-coded body was damaged without a word, and its content can
  still look like the original (a 16-byte change can keep a 32x32 correlation
  near 0.99), so a JPEG is checked twice and any complaint counts as
  corruption: the entropy-coded data is walked code by code for what libjpeg
  warns about (:mod:`builder.release.jpeg_scan`), then FFmpeg decodes it
  with ``-err_detect explode``. The two catch different damage: of 312
  frames with 16 bytes XORed (``bench/release_verify.py``, part 2) FFmpeg
  flags 127, the walk 190, either 219, and with the content comparison
  verify flags 266. The rest is damage the decoders resync over and too
  small to show in the content: only the bytes could tell.
"""
from __future__ import annotations

import io
import os
import re
import struct
import subprocess
from pathlib import Path
from typing import Any

Source = Path | bytes                     # a file on disk, or a member's bytes (tar shard, Parquet cell)

AUDIO_FIELDS = ("container", "codec", "sample_rate", "channels", "samples")
IMAGE_FIELDS = ("container", "width", "height", "channels")
DECODE_TIMEOUT = 60.0
# WAVE format tags and their FFmpeg codec names per bits per sample.
_PCM = {8: "pcm_u8", 16: "pcm_s16le", 24: "pcm_s24le", 32: "pcm_s32le"}
_FLOAT = {32: "pcm_f32le", 64: "pcm_f64le"}
_EXTENSIBLE = 0xFFFE


class FormatError(Exception):
    """The file's structure contradicts itself (header against data)."""


def read_bytes(source: Source) -> bytes:
    if isinstance(source, (bytes, bytearray)):
        return bytes(source)
    with open(source, "rb") as handle:
        return handle.read()


def wav_format(data: bytes) -> dict[str, Any]:
    """Format of a RIFF/WAVE file from its header; :class:`FormatError` when header and bytes disagree."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise FormatError("not a RIFF/WAVE file")
    riff_size = struct.unpack_from("<I", data, 4)[0]
    if riff_size + 8 != len(data):
        raise FormatError(f"RIFF header says {riff_size + 8} bytes, the file has {len(data)}")
    fmt: dict[str, int] | None = None
    data_size: int | None = None
    offset = 12
    while offset + 8 <= len(data):
        chunk, size = data[offset:offset + 4], struct.unpack_from("<I", data, offset + 4)[0]
        body = offset + 8
        if body + size > len(data):
            raise FormatError(f"{chunk.decode('latin-1')!r} chunk says {size} bytes, only {len(data) - body} "
                              "follow (truncated)")
        if chunk == b"fmt ":
            if size < 16:
                raise FormatError(f"fmt chunk is {size} bytes, at least 16 expected")
            tag, channels, rate, byte_rate, align, bits = struct.unpack_from("<HHIIHH", data, body)
            if tag == _EXTENSIBLE and size >= 40:
                tag = struct.unpack_from("<H", data, body + 24)[0]   # the sub-format GUID starts with the tag
            fmt = {"tag": tag, "channels": channels, "rate": rate, "byte_rate": byte_rate, "align": align,
                   "bits": bits}
        elif chunk == b"data":
            data_size = size
        offset = body + size + (size & 1)                           # chunks are padded to even sizes
    if fmt is None or data_size is None:
        raise FormatError("no " + ("fmt" if fmt is None else "data") + " chunk")
    if fmt["channels"] < 1 or fmt["align"] != fmt["channels"] * ((fmt["bits"] + 7) // 8):
        raise FormatError(f"fmt chunk: block align {fmt['align']} does not fit {fmt['channels']} channel(s) "
                          f"of {fmt['bits']} bits")
    if fmt["byte_rate"] != fmt["rate"] * fmt["align"]:
        raise FormatError(f"fmt chunk: byte rate {fmt['byte_rate']} is not sample rate {fmt['rate']} x block "
                          f"align {fmt['align']}")
    if data_size % fmt["align"]:
        raise FormatError(f"data chunk of {data_size} bytes is not a whole number of {fmt['align']}-byte frames")
    codecs = {1: _PCM, 3: _FLOAT}.get(fmt["tag"], {})
    codec = codecs.get(fmt["bits"], f"wave_tag_{fmt['tag']:#06x}_{fmt['bits']}bit")
    return {"container": "wav", "codec": codec, "sample_rate": fmt["rate"], "channels": fmt["channels"],
            "samples": data_size // fmt["align"]}


def audio_format(source: Source) -> dict[str, Any]:
    """The audio format record; ``{"error": ...}`` when the file cannot be described."""
    data = read_bytes(source)
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        try:
            return wav_format(data)
        except FormatError as exc:
            return {"container": "wav", "error": str(exc)}
    return _probe_audio(source)


def _probe_audio(source: Source) -> dict[str, Any]:
    from builder.media.ffmpeg import MediaError, probe

    with as_file(source, ".bin") as path:
        try:
            info = probe(path)
        except MediaError as exc:
            return {"error": str(exc).replace(os.fspath(path), Path(path).name)}
    stream = info.audio
    out: dict[str, Any] = {"container": info.format_name or "unknown"}
    if stream is None:
        return {**out, "error": "no audio stream"}
    seconds = stream.duration if stream.duration is not None else info.duration
    samples = round(seconds * stream.sample_rate) if seconds is not None and stream.sample_rate else None
    return {**out, "codec": stream.codec_name, "sample_rate": stream.sample_rate, "channels": stream.channels,
            "samples": samples}


def image_format(source: Source) -> dict[str, Any]:
    """The image format record (Pillow); ``{"error": ...}`` when it is not an image."""
    from PIL import Image, UnidentifiedImageError

    data = read_bytes(source)
    try:
        with Image.open(io.BytesIO(data)) as image:
            return {"container": str(image.format or "unknown").lower(), "width": image.width,
                    "height": image.height, "channels": len(image.getbands())}
    except (UnidentifiedImageError, OSError) as exc:
        return {"error": f"not an image: {exc}"}


def structure_errors(data: bytes, container: str) -> list[str]:
    """In-process checks of an image's structure: the JPEG entropy walk, Pillow's PNG CRCs and full decode."""
    if container == "jpeg":
        from builder.release.jpeg_scan import scan_errors

        return scan_errors(data)
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
        with Image.open(io.BytesIO(data)) as image:
            image.load()
    except (OSError, SyntaxError, ValueError) as exc:
        return [str(exc)]
    return []


def decode_errors(source: Source, container: str) -> list[str]:
    """Every decoder complaint about one image (empty when it decodes cleanly)."""
    data = read_bytes(source)
    found = structure_errors(data, container)
    if found or container != "jpeg":
        return found
    return ffmpeg_decode_errors([data])[0]


_DECODE_ERROR = re.compile(r"Error while decoding stream #(\d+):\d+")
_CONTEXT = re.compile(r"^\[(\w+) @ (0x[0-9a-f]+)\]")


def ffmpeg_decode_errors(sources: list[Source]) -> list[list[str]]:
    """FFmpeg's complaints per JPEG, decoding them all in one FFmpeg run (its start costs ~0.1 s, a decode ~ms).

    ``-err_detect explode`` turns the MJPEG decoder's concealed errors into failures, each reported as
    ``Error while decoding stream #i`` and preceded by the decoder's own lines (``[mjpeg @ 0x..]``):
    that names the input. A batch with a line that cannot be placed is decoded again file by file.
    """
    if len(sources) <= 1:
        return [_ffmpeg_run(sources)[1]] if sources else []
    code, lines = _ffmpeg_run(sources, keep_raw=True)
    found: list[list[str]] = [[] for _ in sources]
    owner: dict[str, int] = {}
    waiting: list[str] = []
    unplaced = False
    for line in lines:
        error, context = _DECODE_ERROR.search(line), _CONTEXT.match(line)
        if error and int(error.group(1)) < len(sources):
            index = int(error.group(1))
            found[index] += [_strip_context(w) for w in waiting] + [line.split(": ", 1)[-1]]
            for waited in waiting:
                match = _CONTEXT.match(waited)
                if match is not None:
                    owner[match.group(2)] = index
            waiting = []
        elif context and context.group(2) in owner:
            found[owner[context.group(2)]].append(_strip_context(line))
        elif context:
            waiting.append(line)
        else:
            unplaced = True
    if unplaced or waiting or (code != 0 and not any(found)):
        return [_ffmpeg_run([source])[1] for source in sources]
    return found


def _ffmpeg_run(sources: list[Source], keep_raw: bool = False) -> tuple[int, list[str]]:
    """Decode ``sources`` to nothing with FFmpeg's strict MJPEG decoder; (exit status, stderr lines)."""
    import contextlib

    import ffmpeg

    from builder.media.ffmpeg import ffmpeg_argv

    with contextlib.ExitStack() as stack:
        paths = [stack.enter_context(as_file(source, ".jpg")) for source in sources]
        # One decoding thread per input: its messages come in order, next to the error that names it.
        outputs = [ffmpeg.input(os.fspath(path), err_detect="explode", threads="1").output("-", format="null")
                   for path in paths]
        graph = outputs[0] if len(outputs) == 1 else ffmpeg.merge_outputs(*outputs)
        # -v error: only errors reach stderr, each one a reason to refuse; -xerror (one input) stops at the first.
        argv = ffmpeg_argv(graph, "-nostdin", "-hide_banner", "-v", "error", *(["-xerror"] if len(paths) == 1 else []))
        try:
            done = subprocess.run(argv, capture_output=True, timeout=DECODE_TIMEOUT * len(paths), check=False)
        except subprocess.TimeoutExpired:
            return 1, [f"FFmpeg decode timed out after {DECODE_TIMEOUT * len(paths):g} s"]
        except FileNotFoundError:
            return 1, ["FFmpeg not found; install FFmpeg to check images"]
        lines = [line.strip() for line in done.stderr.decode("utf-8", "replace").splitlines() if line.strip()]
        for path in paths:
            lines = [line.replace(os.fspath(path), Path(path).name) for line in lines]
    if not keep_raw:
        lines = [_strip_context(line) for line in lines]
        if done.returncode != 0 and not lines:
            lines = [f"FFmpeg exit status {done.returncode}"]
    return done.returncode, lines


def _strip_context(line: str) -> str:
    """``[mjpeg @ 0x55d5ef6a7800] error count: 72`` -> ``mjpeg: error count: 72`` (no pointer values)."""
    line = line.strip()
    if line.startswith("[") and " @ " in line and "]" in line:
        head, _, rest = line[1:].partition("]")
        return f"{head.split(' @ ')[0]}: {rest.strip()}"
    return line


class as_file:  # noqa: N801 -- used like a function: ``with as_file(source) as path``
    """A path for ``source``: the file itself, or the bytes in a temporary file removed afterwards."""

    def __init__(self, source: Source, suffix: str) -> None:
        self.source, self.suffix = source, suffix
        self._tmp: str | None = None

    def __enter__(self) -> Path:
        if not isinstance(self.source, (bytes, bytearray)):
            return Path(self.source)
        import tempfile

        handle, self._tmp = tempfile.mkstemp(prefix="llinet-verify-", suffix=self.suffix)
        with os.fdopen(handle, "wb") as out:
            out.write(self.source)
        return Path(self._tmp)

    def __exit__(self, *exc: object) -> None:
        if self._tmp is not None:
            os.unlink(self._tmp)
