"""A stand-in for YouTube's extractor: the only thing the fetch tests mock.

It is a real yt-dlp ``InfoExtractor``: yt-dlp calls it, it fetches a JSON
"player response" from the local test server over HTTP, and it answers the
way YouTube's extractor does -- a list of DASH-like formats (video-only
renditions at several heights + an audio-only track, all real files on the
server) or YouTube's error wording ("Video unavailable", "Private video",
"Sign in to confirm you're not a bot"). Everything after extraction (format
selection, section download with FFmpeg, merging) is yt-dlp's real code.

The player JSON for video ``ID`` is served at ``/player/ID.json``; the URL
template the tests use is ``http://127.0.0.1:PORT/watch/{ytid}``.
"""
from __future__ import annotations

import json
from urllib.parse import urlsplit

from yt_dlp.extractor.common import InfoExtractor
from yt_dlp.utils import ExtractorError


class FakeYouTubeIE(InfoExtractor):
    IE_NAME = "fakeyoutube"
    _VALID_URL = r"https?://127\.0\.0\.1:\d+/watch/(?P<id>[A-Za-z0-9_-]{11})"

    def _real_extract(self, url: str) -> dict:
        video_id = self._match_id(url)
        parts = urlsplit(url)
        player = self._download_json(f"{parts.scheme}://{parts.netloc}/player/{video_id}.json", video_id)
        error = player.get("error")
        if error:
            raise ExtractorError(error, expected=True, video_id=video_id)
        return {"id": video_id, "title": f"clip {video_id}", "duration": player.get("duration"),
                "formats": player["formats"]}


def player_json(base_url: str, renditions: dict[int, str], audio_path: str, duration: float) -> bytes:
    """A player response listing video-only renditions {height: url path} and one audio track."""
    formats = []
    for height, path in sorted(renditions.items()):
        formats.append({"format_id": f"v{height}", "url": base_url + path, "ext": "mp4", "protocol": "http",
                        "vcodec": "avc1.4d401e", "acodec": "none", "height": height,
                        "width": height * 16 // 9 // 2 * 2, "fps": 10, "tbr": height * 3})
    formats.append({"format_id": "a140", "url": base_url + audio_path, "ext": "m4a", "protocol": "http",
                    "vcodec": "none", "acodec": "mp4a.40.2", "abr": 160, "asr": 44100, "audio_channels": 2})
    return json.dumps({"duration": duration, "formats": formats}).encode()


def player_error(message: str) -> bytes:
    return json.dumps({"error": message}).encode()
