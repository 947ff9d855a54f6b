"""A stand-in for YouTube's extractor: the only thing the fetch tests mock.

It is a real yt-dlp ``InfoExtractor``: yt-dlp calls it, it fetches a JSON
"player response" from the local test server over HTTP, and it answers the
way YouTube's extractor does -- a list of DASH-like formats (video-only
renditions at several heights + an audio-only track, all real files on the
server) or YouTube's error wording ("Video unavailable", "Private video",
"Sign in to confirm you're not a bot"). Everything after extraction (format
selection, section download with FFmpeg, merging) is yt-dlp's real code.

Like YouTube's, the formats of a player response with a ``player_js`` need
the player's JavaScript challenge solved: the extractor downloads that script
(unless yt-dlp's cache already holds its answer), runs it with the JavaScript
runtime yt-dlp was configured with (``js_runtimes``: really executed, e.g. by
the venv's Deno) and keeps the answer in yt-dlp's cache, as YouTube's
extractor keeps its solved challenges. With no runtime, or a wrong answer,
it drops the formats and warns in yt-dlp's own words (see the constants).

The player JSON for video ``ID`` is served at ``/player/ID.json``; the URL
template the tests use is ``http://127.0.0.1:PORT/watch/{ytid}``.
"""
from __future__ import annotations

import json
import subprocess
from urllib.parse import urlsplit

from yt_dlp.extractor.common import InfoExtractor
from yt_dlp.extractor.youtube.jsc._builtin.ejs import _EJS_WIKI_URL
from yt_dlp.utils import ExtractorError

# yt-dlp's wording (yt_dlp/extractor/youtube/_video.py, release 2026.10.26).
NO_JS_RUNTIME = (
    "No supported JavaScript runtime could be found. Only deno is enabled by default; "
    "to use another runtime add  --js-runtimes RUNTIME[:PATH]  to your command/config. "
    "YouTube extraction without a JS runtime has been deprecated, and some formats may be missing. "
    f"See  {_EJS_WIKI_URL}  for details on installing one")
CHALLENGE_HELP = (
    "Ensure you have a supported JavaScript runtime and challenge solver script distribution installed. "
    "Review any warnings presented before this message. "
    f"For more details, refer to  {_EJS_WIKI_URL}")
N_CHALLENGE_FAILED = f"n challenge solving failed: Some formats may be missing. {CHALLENGE_HELP}"
_RUN = {"deno": ["eval"], "node": ["-e"], "bun": ["-e"]}   # "evaluate this script" per runtime
CACHE_SECTION = "fakeyoutube-n"


class FakeYouTubeIE(InfoExtractor):
    IE_NAME = "fakeyoutube"
    _VALID_URL = r"https?://127\.0\.0\.1:\d+/watch/(?P<id>[A-Za-z0-9_-]{11})"

    def _real_extract(self, url: str) -> dict:
        video_id = self._match_id(url)
        parts = urlsplit(url)
        base = f"{parts.scheme}://{parts.netloc}"
        # YouTube's own --extractor-args (youtube:player_client=...) pick the client, as they do for YouTube.
        client = self._configuration_arg("player_client", ["web"], ie_key="youtube")[0]
        player = self._download_json(f"{base}/player/{video_id}.json", video_id, query={"client": client})
        error = player.get("error")
        if error:
            raise ExtractorError(error, expected=True, video_id=video_id)
        for message in player.get("warnings", []):
            self.report_warning(message, video_id)
        formats = player["formats"]
        if player.get("player_js") and not self._solve(base, player, video_id):
            formats = []
        return {"id": video_id, "title": f"clip {video_id}", "duration": player.get("duration"),
                "formats": formats}

    def _solve(self, base: str, player: dict, video_id: str) -> bool:
        """Solve the player's challenge as YouTube's extractor does: cached answer, else run the player JS."""
        runtime = next((r.info for r in self._downloader._js_runtimes.values() if r is not None and r.info), None)
        if runtime is None:
            self.report_warning(NO_JS_RUNTIME, only_once=True)
            return False
        key = player["player_js"].strip("/").replace("/", "_")
        answer = self.cache.load(CACHE_SECTION, key)
        if answer is None:
            code = self._download_webpage(base + player["player_js"], video_id, note="Downloading player JS")
            done = subprocess.run([runtime.path, *_RUN[runtime.name], code], capture_output=True, text=True,
                                  timeout=60)
            answer = done.stdout.strip()
            if done.returncode == 0:
                self.cache.store(CACHE_SECTION, key, answer)
        if answer != player["expected"]:
            self.report_warning(N_CHALLENGE_FAILED, video_id=video_id, only_once=True)
            return False
        return True


def player_json(base_url: str, renditions: dict[int, str], audio_path: str, duration: float, *,
                player_js: str | None = None, expected: str = "", warnings: tuple[str, ...] = ()) -> bytes:
    """A player response listing video-only renditions {height: url path} and one audio track; with
    ``player_js`` the formats need that script's output to equal ``expected``."""
    formats = []
    for height, path in sorted(renditions.items()):
        formats.append({"format_id": f"v{height}", "url": base_url + path, "ext": "mp4", "protocol": "http",
                        "vcodec": "avc1.4d401e", "acodec": "none", "height": height,
                        "width": height * 16 // 9 // 2 * 2, "fps": 10, "tbr": height * 3})
    formats.append({"format_id": "a140", "url": base_url + audio_path, "ext": "m4a", "protocol": "http",
                    "vcodec": "none", "acodec": "mp4a.40.2", "abr": 160, "asr": 44100, "audio_channels": 2})
    player: dict = {"duration": duration, "formats": formats, "warnings": list(warnings)}
    if player_js:
        player.update(player_js=player_js, expected=expected)
    return json.dumps(player).encode()


def player_error(message: str) -> bytes:
    return json.dumps({"error": message}).encode()
