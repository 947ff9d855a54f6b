"""What verify knows about a file's format: WAV headers against their data, the JPEG entropy walk, FFmpeg's
strict decode in batches. Valid files of many encoders and settings pass; damaged ones are named."""
from __future__ import annotations

import io
import struct
import subprocess

import cv2
import ffmpeg
import numpy as np
import pytest
import soundfile
from PIL import Image

from builder.demo.synthetic_release import render_frame, source_audio
from builder.media.ffmpeg import ffmpeg_argv
from builder.release.jpeg_scan import scan_errors
from builder.release.media_format import (
    FormatError,
    audio_format,
    decode_errors,
    ffmpeg_decode_errors,
    image_format,
    wav_format,
)


def wav_bytes(rate: int = 16000, channels: int = 2, subtype: str = "PCM_16", seconds: float = 0.5) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, source_audio(1, seconds, rate, channels), rate, format="WAV", subtype=subtype)
    return buffer.getvalue()


def jpeg(image: np.ndarray, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", **options)
    return buffer.getvalue()


def damaged(data: bytes, at: float, value: int = 0x5A) -> bytes:
    out = bytearray(data)
    start = int(len(out) * at)
    for i in range(16):
        out[start + i] ^= value
    return bytes(out)


@pytest.mark.parametrize("subtype, codec", [("PCM_16", "pcm_s16le"), ("PCM_24", "pcm_s24le"),
                                            ("FLOAT", "pcm_f32le"), ("PCM_U8", "pcm_u8")])
def test_wav_format_from_the_header(subtype, codec):
    assert wav_format(wav_bytes(22050, 1, subtype)) == {"container": "wav", "codec": codec, "sample_rate": 22050,
                                                        "channels": 1, "samples": 11025}


def test_wav_header_against_its_data():
    good = wav_bytes()
    with pytest.raises(FormatError, match="RIFF header says"):
        wav_format(good[:-10])                                      # truncated
    with pytest.raises(FormatError, match="RIFF header says"):
        wav_format(good + b"\0" * 8)                                # trailing bytes
    lying = bytearray(good)
    data_at = good.index(b"data")
    size = struct.unpack_from("<I", good, data_at + 4)[0]
    struct.pack_into("<I", lying, data_at + 4, size + 400)          # data chunk claims more than there is
    struct.pack_into("<I", lying, 4, len(lying) - 8)
    with pytest.raises(FormatError, match="'data' chunk says .* only .* follow"):
        wav_format(bytes(lying))
    odd = bytearray(good)
    struct.pack_into("<H", odd, 32, 3)                              # block align 3 for 2 x 16 bit
    with pytest.raises(FormatError, match="block align 3"):
        wav_format(bytes(odd))
    assert audio_format(good[:-10])["error"].startswith("RIFF header says")


def test_non_wav_audio_is_described_by_ffprobe(tmp_path):
    (tmp_path / "a.wav").write_bytes(wav_bytes(48000, 2, seconds=1.0))
    graph = ffmpeg.input(str(tmp_path / "a.wav")).output(str(tmp_path / "a.m4a"), **{"c:a": "aac"})
    subprocess.run(ffmpeg_argv(graph, "-nostdin", "-v", "error", "-y"), check=True)
    described = audio_format((tmp_path / "a.m4a").read_bytes())
    assert described["codec"] == "aac" and "mp4" in described["container"]
    assert (described["sample_rate"], described["channels"]) == (48000, 2)
    assert "error" in audio_format(b"neither audio nor anything")


def valid_jpegs() -> list[tuple[str, bytes]]:
    out = []
    image = render_frame(4, 1.0, 320, 184)
    for options in ({"quality": 95}, {"quality": 15}, {"quality": 80, "subsampling": 0},
                    {"quality": 80, "subsampling": 1}, {"quality": 90, "optimize": True},
                    {"quality": 85, "restart_marker_blocks": 3}, {"quality": 85, "restart_marker_rows": 1},
                    {"quality": 80, "progressive": True}):
        out.append((str(options), jpeg(image, **options)))
    out.append(("grey", jpeg(np.asarray(Image.fromarray(image).convert("L")))))
    for flags in ([cv2.IMWRITE_JPEG_QUALITY, 95], [cv2.IMWRITE_JPEG_RST_INTERVAL, 5]):
        out.append((f"opencv {flags}", cv2.imencode(".jpg", image, flags)[1].tobytes()))
    return out


def test_the_entropy_walk_passes_valid_jpegs_of_many_encoders(tmp_path):
    files = valid_jpegs()
    Image.fromarray(render_frame(2, 1.0, 250, 141)).save(tmp_path / "src.png")
    for pix_fmt in ("yuvj420p", "yuvj422p", "yuvj444p", "gray"):
        graph = ffmpeg.input(str(tmp_path / "src.png")).output(str(tmp_path / "f.jpg"), pix_fmt=pix_fmt,
                                                               **{"q:v": "5"})
        subprocess.run(ffmpeg_argv(graph, "-nostdin", "-v", "error", "-y"), check=True)
        files.append((f"ffmpeg {pix_fmt}", (tmp_path / "f.jpg").read_bytes()))
    assert {name: scan_errors(data) for name, data in files if scan_errors(data)} == {}
    assert [e for e in ffmpeg_decode_errors([d for _, d in files]) if e] == []


def test_damaged_jpegs_are_named_by_the_walk_and_by_ffmpeg():
    clean = jpeg(render_frame(7, 1.0, 96, 96), quality=95)
    walked = {at: scan_errors(damaged(clean, at)) for at in (0.3, 0.5, 0.7, 0.9)}
    assert any("bad Huffman code" in " ".join(e) or "extraneous bytes" in " ".join(e) for e in walked.values())
    assert scan_errors(clean[:len(clean) // 2]) == ["Corrupt JPEG data: premature end of data segment"]
    # one FFmpeg run for a batch: each complaint lands on its own input
    hurt = next(damaged(clean, at / 20) for at in range(6, 19) if ffmpeg_decode_errors([damaged(clean, at / 20)])[0])
    found = ffmpeg_decode_errors([clean, hurt, clean, b"not a jpeg"])
    assert found[0] == [] and found[2] == [] and found[1] and found[3]
    assert all("mjpeg" in line or "Invalid data" in line for line in found[1])
    assert decode_errors(clean, "jpeg") == [] and decode_errors(clean[:len(clean) // 2], "jpeg")


def test_image_format_and_pngs():
    assert image_format(jpeg(render_frame(1, 1.0, 40, 30))) == {"container": "jpeg", "width": 40, "height": 30,
                                                               "channels": 3}
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(buffer, "PNG")
    png = buffer.getvalue()
    assert image_format(png)["channels"] == 1 and decode_errors(png, "png") == []
    broken = bytearray(png)
    broken[-20] ^= 0xFF                                             # inside the IDAT chunk: its CRC fails
    assert decode_errors(bytes(broken), "png")
    assert "error" in image_format(b"GIF? no")
