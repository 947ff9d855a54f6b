"""The release's README: every Python block runs as written, from the release folder, with the exports it names.

One fresh interpreter runs all the blocks in order (pandas, pycocotools, datasets, webdataset, mlcroissant,
the authors' layout), with its own caches for mlcroissant and datasets.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from builder.demo.synthetic_release import make_dataset
from builder.export.stage import ExportOptions, export
from builder.manifest.schema import read_manifest
from builder.release.documents import EXPORT_DIRS
from support.release import release_of


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("built"))


def python_blocks(markdown: str) -> list[tuple[str, str]]:
    """(the section heading above it, code) of every ```python block."""
    out, heading = [], ""
    for part in re.split(r"^(#{2,3} .*)$", markdown, flags=re.M):
        if re.match(r"#{2,3} ", part):
            heading = part
            continue
        out += [(heading, code) for code in re.findall(r"```python\n(.*?)```", part, flags=re.S)]
    return out


def test_readme_python_blocks_run_from_the_release_folder(built, tmp_path):
    folder = release_of(built, tmp_path / "release")
    manifest = read_manifest(built.manifest_path)
    for fmt, name in EXPORT_DIRS.items():      # the exports the README tells the reader to make
        export(manifest, ExportOptions(root=built.root, out=folder / name, format=fmt,
                                       annotations=built.annotations, shard_size=4, progress=False))
    blocks = python_blocks((folder / "README.md").read_text())
    headings = [h for h, _ in blocks]
    assert headings == ["### pandas", "### pycocotools", "### datasets (Hugging Face)", "### webdataset",
                        "### mlcroissant", "### The authors' code (LLINet)"]
    script = "\n".join(f"print({'== ' + h!r}, flush=True)\n{code}" for h, code in blocks)
    env = {**os.environ, "CROISSANT_CACHE": str(tmp_path / "croissant"), "HF_HOME": str(tmp_path / "hf-home"),
           "HF_DATASETS_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", script], cwd=folder, capture_output=True, text=True, env=env,
                          timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    out = done.stdout
    sections = dict(re.findall(r"^== (.*)\n((?:(?!== ).*\n)*)", out, flags=re.M))
    assert re.search(r"train\s+Accordion\s+2", sections["### pandas"])
    assert re.search(r"syn\d+_\d+ \(96, 96\) \d+", sections["### pycocotools"])
    assert re.match(r"(Accordion|Banjo|Piano) \(96, 96\) 16000", sections["### datasets (Hugging Face)"])
    assert re.match(r"(Accordion|Banjo|Piano) syn\d+_\d+ \(96, 96\) \(48000, 2\) 16000", sections["### webdataset"])
    assert re.match(r"20 syn00000001_0\n\(96, 96\) \d+", sections["### mlcroissant"])
    assert sections["### The authors' code (LLINet)"].startswith("8 train/")
    shutil.rmtree(tmp_path / "croissant", ignore_errors=True)
