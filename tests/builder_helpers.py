"""Helpers for builder tests: crafted segment CSVs in Google's format, the real ontology."""
from __future__ import annotations

from pathlib import Path

GOOGLE_HEADER = ("# Segments csv created Sun Mar  5 10:54:31 2017\n"
                 "# num_ytids=3, num_segs=3, num_unique_labels=3, num_positive_labels=3\n"
                 "# YTID, start_seconds, end_seconds, positive_labels\n")
EMPTY_HEADER = "empty\nempty\nempty\n"

MID = {
    "Guitar": "/m/0342h", "Electric guitar": "/m/02sgy", "Drum": "/m/026t6", "Tabla": "/m/01p970",
    "Marimba": "/m/0dwsp", "Glockenspiel": "/m/0dwtp", "Bell": "/m/0395lw", "Chime": "/m/0f8s22",
    "Wind chime": "/m/026fgl", "Piano": "/m/05r5c", "Speech": "/m/09x0r", "Snare drum": "/m/06rvn",
    "Acoustic guitar": "/m/042v_gx", "Violin": "/m/07y_7", "Cello": "/m/01xqw",
}


def row(ytid: str, labels: list[str], start: float = 0.0, end: float = 10.0) -> str:
    return f'{ytid}, {start:.3f}, {end:.3f}, "{",".join(labels)}"\n'


def write_segments(path: Path, rows: list[str], header: str = GOOGLE_HEADER) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + "".join(rows), encoding="utf-8")
    return path


def ytid(i: int, prefix: str = "t") -> str:
    """A valid, distinct 11-character YouTube ID."""
    return f"{prefix[:1]}{i:010d}"


def classes_csv(path: Path, train: list[str], test: list[str]) -> Path:
    names = {**{n: "train" for n in train}, **{n: "test" for n in test}}
    display = {"Marimba": "Marimba, xylophone", "Violin": "Violin, fiddle"}
    lines = ["name,mid,display_name,split"]
    for name, split in names.items():
        disp = display.get(name, name)
        lines.append(f'{name},{MID[name]},"{disp}",{split}')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
