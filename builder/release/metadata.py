"""Who made and publishes a release, its licences, languages and dates: ``release`` options or a config file.

A release config file (TOML, or JSON with the same keys) holds what does not
change between versions, so it can be kept next to the build and reused::

    name = "INSTRUMENT-32CLASS (my rebuild)"
    url = "https://example.org/instrument32"
    license = "https://creativecommons.org/licenses/by/4.0/"
    sd_license = "https://creativecommons.org/licenses/by/4.0/"
    in_language = ["en"]
    creator = [{name = "Ada Lovelace", url = "https://orcid.org/0000-0000-0000-0000"}]
    publisher = {name = "Example Lab", type = "Organization", url = "https://example.org"}

Command-line options override the file. ``creator`` and ``publisher`` have
no default: an unset one is written as :data:`UNSET` (and ``release`` warns),
never as an invented name. Dates default to what the build recorded:
``dateCreated`` is the first stage record's day, ``dateModified`` the last
one's, ``datePublished`` the release date.
"""
from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.errors import InputError
from builder.io.status_log import StatusLog
from builder.manifest.media_root import MediaRoot

UNSET = "UNSET"
AGENT_TYPES = ("Person", "Organization")
CONFIG_KEYS = ("name", "url", "license", "sd_license", "in_language", "creator", "publisher", "date_created",
               "date_modified", "description")
_AGENT_TEXT = re.compile(r"\s*(?P<name>[^<>]*?)\s*(?:<(?P<url>[^<>]+)>)?\s*")


@dataclass(frozen=True)
class Agent:
    """A creator or publisher: schema.org Person or Organization."""

    name: str
    url: str | None = None
    type: str = "Person"

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise InputError("a creator or publisher needs a name", field="name")
        if self.type not in AGENT_TYPES:
            raise InputError(f"creator/publisher type must be one of {AGENT_TYPES}, got {self.type!r}", field="type")

    def jsonld(self) -> dict[str, Any]:
        out = {"@type": f"sc:{self.type}", "name": self.name}
        return {**out, "url": self.url} if self.url else out

    def text(self) -> str:
        return f"{self.name} <{self.url}>" if self.url else self.name


def unset_agent(role: str) -> dict[str, Any]:
    """What Croissant gets for a creator/publisher nobody named: loud, and clearly not a name."""
    return {"@type": "sc:Organization",
            "name": f"{UNSET}: no {role} given (llinet-build release --{role} or the release config file)"}


def parse_agent(text: str, default_type: str = "Person") -> Agent:
    """``"Name"`` or ``"Name <URL>"`` (git's author syntax)."""
    match = _AGENT_TEXT.fullmatch(text)
    if match is None or not match["name"]:
        raise InputError(f"expected 'Name' or 'Name <URL>', got {text!r}", field="creator")
    return Agent(match["name"], match["url"], default_type)


def _agent(value: Any, where: str, default_type: str) -> Agent:
    if isinstance(value, str):
        return parse_agent(value, default_type)
    if isinstance(value, dict) and isinstance(value.get("name"), str):
        unknown = set(value) - {"name", "url", "type"}
        if unknown:
            raise InputError(f"unknown key(s) {sorted(unknown)}; expected name, url, type", field=where)
        return Agent(value["name"], value.get("url"), str(value.get("type", default_type)))
    raise InputError("expected a name, 'Name <URL>', or a table with name (and url, type)", field=where)


def agents(value: Any, where: str, default_type: str) -> tuple[Agent, ...]:
    items = value if isinstance(value, list) else [value]
    return tuple(_agent(item, where, default_type) for item in items)


def load_release_config(path: str | Path) -> dict[str, Any]:
    """A release config file as :class:`builder.release.build.ReleaseOptions` keyword arguments."""
    path = Path(path)
    if not path.is_file():
        raise InputError("release config file not found", file=path)
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
        else:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"not valid {'JSON' if path.suffix.lower() == '.json' else 'TOML'}: {exc}",
                         file=path) from None
    if not isinstance(data, dict):
        raise InputError("expected a table of settings", file=path)
    unknown = sorted(set(data) - set(CONFIG_KEYS))
    if unknown:
        raise InputError(f"unknown setting(s) {unknown}; known: {list(CONFIG_KEYS)}", file=path)
    out: dict[str, Any] = {}
    try:
        for key in ("name", "url", "sd_license", "date_created", "date_modified", "description"):
            if key in data:
                out[key] = _string(data[key], key)
        if "license" in data:
            out["license_url"] = _string(data["license"], "license")
        if "in_language" in data:
            languages = data["in_language"] if isinstance(data["in_language"], list) else [data["in_language"]]
            out["in_language"] = tuple(_string(v, "in_language") for v in languages)
        if "creator" in data:
            out["creator"] = agents(data["creator"], "creator", "Person")
        if "publisher" in data:
            out["publisher"] = agents(data["publisher"], "publisher", "Organization")
    except InputError as exc:
        raise InputError(exc.detail, file=path, field=exc.field) from None
    return out


def _string(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"expected a non-empty string, got {value!r}", field=key)
    return value.strip()


def recorded_days(root: Path) -> tuple[str | None, str | None]:
    """(first, last) UTC day any stage's status log recorded, or (None, None) without records."""
    times = []
    for log in MediaRoot(root).status_logs().values():
        times += [str(r["time"])[:10] for r in StatusLog(log).read().records if r.get("time")]
    times = [t for t in times if re.fullmatch(r"\d{4}-\d{2}-\d{2}", t)]
    return (min(times), max(times)) if times else (None, None)
