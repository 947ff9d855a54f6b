"""The wheel works outside the checkout: it carries the data files, installs into a fresh venv
and runs the metadata demo there without ray, mlcroissant or datasets."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

import builder
from builder.resources import bundled_audioset, committed_manifests, review_static

REPO = Path(__file__).resolve().parents[1]
OPTIONAL = ("ray", "mlcroissant", "datasets")   # the extras; a plain install must not need them
ENTRY_POINTS = {"llinet-build": "builder.commands.main:main", "llinet-train": "model.training.cli:main",
                "llinet-eval": "model.evaluation.cli:main"}
# Loaded through a .pth line in the fresh venv: every import of an optional package fails there.
BLOCKER = f"""import importlib.abc, sys
class _NoExtras(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {OPTIONAL!r}:
            raise ModuleNotFoundError(f"{{name}} is an optional extra, hidden in this test venv")
sys.meta_path.insert(0, _NoExtras())
"""

def _source_copy(dest: Path) -> Path:
    # Build from a copy: building in the checkout would leave build/ there, and setuptools reuses
    # build/lib, which keeps modules deleted since the last build.
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, check=False)
    if listed.returncode == 0:
        for name in filter(None, listed.stdout.decode().split("\0")):
            source = REPO / name
            if source.is_file():
                (dest / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, dest / name)
    else:  # an unpacked source tree without git
        shutil.copytree(REPO, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns(
            ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache"))
    return dest


def _run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(args, capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, f"{' '.join(map(str, args))} exited {done.returncode}:\n" \
                                 f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    source = _source_copy(tmp_path_factory.mktemp("source"))
    dist = tmp_path_factory.mktemp("dist")
    # No isolation: the build backend comes from this venv (the dev extra), so it works offline.
    _run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), str(source)])
    (path,) = dist.glob("llinet-*.whl")
    return path


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """A fresh venv outside the checkout with only the wheel installed; this venv's site-packages
    (the dependencies) is reachable through a plain path line, which does not run the editable
    install's .pth hook, so the checkout itself is not importable there."""
    root = tmp_path_factory.mktemp("venv")
    _run([sys.executable, "-m", "venv", "--without-pip", str(root)])
    python = root / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q",
          str(wheel)])
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    (site / "llinet_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    (site / "_llinet_no_extras.py").write_text(BLOCKER)
    (site / "llinet_test_no_extras.pth").write_text("import _llinet_no_extras\n")
    return root


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if not p.startswith(str(REPO)))
    return env


@pytest.mark.slow  # builds a wheel and a venv (~20 s together)
def test_wheel_contents(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        entry_points = archive.read(f"{info}/entry_points.txt").decode()
        license_text = archive.read(next(n for n in names if n.startswith(f"{info}/") and "LICENSE" in n)).decode()
    packaged = {
        "builder/review/static": review_static(),
        "manifests/instrument32": committed_manifests(),
        "builder/audioset/data/audioset_instrument32": bundled_audioset(),
    }
    for prefix, folder in packaged.items():
        files = sorted(p.name for p in folder.iterdir() if p.is_file())
        assert files, folder
        missing = [f for f in files if f"{prefix}/{f}" not in names]
        assert not missing, f"{wheel.name} lacks {prefix}/{missing}"
    assert {"builder/review/static/index.html", "manifests/__init__.py", "builder/resources.py",
            "model/training/cli.py"} <= names
    assert not any(n.startswith(("tests/", "bench/", "scripts/")) for n in names)
    for script, target in ENTRY_POINTS.items():
        assert f"{script} = {target}" in entry_points
    assert "Apache License" in license_text and "Version 2.0, January 2004" in license_text


@pytest.mark.slow
def test_installed_wheel_runs_outside_the_checkout(venv, tmp_path):
    python, env = venv / "bin" / "python", _clean_env()
    probe = _run([str(python), "-c", "import json, builder, model, manifests, builder.resources as r; "
                  "from builder.review.server import static_files; "
                  "print(json.dumps([builder.__file__, model.__file__, manifests.__file__, str(r.bundled_audioset()),"
                  " str(r.committed_classes()), sorted(static_files())]))"], cwd=tmp_path, env=env)
    *modules, static = json.loads(probe.stdout)
    for path in modules:
        assert Path(path).resolve().is_relative_to(venv.resolve()), f"{path} is not from the test venv"
    assert "index.html" in static

    out = tmp_path / "out"
    done = _run([str(venv / "bin" / "llinet-build"), "demo", "--metadata-only", "--out", str(out)], cwd=tmp_path,
                env=env)
    assert "byte-identical to the committed manifests/instrument32/clips.csv: yes" in done.stdout
    for name in ("clips.csv", "reserve.csv", "classes.csv"):
        assert (out / "manifests" / name).read_bytes() == (committed_manifests() / name).read_bytes(), name
    for script in ("llinet-train", "llinet-eval"):
        assert "usage:" in _run([str(venv / "bin" / script), "--help"], cwd=tmp_path, env=env).stdout


@pytest.mark.slow
def test_every_module_imports_without_the_extras(venv, tmp_path):
    # Lazy imports of the extras are fine; a top-level one would break `pip install llinet`.
    code = ("import importlib, pkgutil, builder, model\n"
            "for pkg in (builder, model):\n"
            "    for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
            "        importlib.import_module(info.name)\n"
            f"import sys; print(sorted(m for m in sys.modules if m.partition('.')[0] in {OPTIONAL!r}))\n")
    done = _run([str(venv / "bin" / "python"), "-c", code], cwd=tmp_path, env=_clean_env())
    assert done.stdout.strip() == "[]"


def test_citation_names_this_version():
    text = (REPO / "CITATION.cff").read_text(encoding="utf-8")
    assert re.search(rf"^version: {re.escape(builder.__version__)}$", text, re.M), \
        f"CITATION.cff version differs from builder.__version__ {builder.__version__}"
    assert re.search(r"^license: Apache-2.0$", text, re.M) and "cff-version: 1.2.0" in text
