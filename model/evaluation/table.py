"""Table 1 over runs of several methods × seeds: ``llinet-eval --table RUN [RUN ...] --out DIR``.

Each RUN is an llinet-eval output folder (or its ``metrics.json``); its method and training seed
come from the checkpoint it was evaluated from (``context.method`` / ``context.train_seed``). The
report puts the mean ± standard deviation over each method's seeds beside the published numbers
(with the source of each, and the one cell the sources disagree on flagged) and the chance level
on the runs' data, for Table 1 (retrieval) and for the paper's recognition and localisation
tables, as Markdown (``table1.md``), CSV (``table1.csv``, ``recognition.csv``,
``localization.csv``) and plots (``table1.png``, ``recognition.png``, ``localization.png``).
Numbers are in percent.
"""
from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from builder.errors import InputError, read_json_file
from builder.io.atomic import atomic_write_text
from model.evaluation import plots as eval_plots
from model.evaluation.chance import chance_levels, data_banner, is_instrument32
from model.evaluation.published import (
    LOCALIZATION,
    LOCALIZATION_SOURCES,
    METHOD_LABELS,
    RECOGNITION,
    RECOGNITION_SOURCES,
    RETRIEVAL_COLUMNS,
    SOURCES,
    TABLE1,
    Published,
)

COLUMNS = tuple(name for name, _, _ in RETRIEVAL_COLUMNS)
RECOGNITION_COLUMNS = ("ZSL accuracy", "GZSL seen", "GZSL unseen", "GZSL H")
LOCALIZATION_COLUMNS = ("mIoU", "AUC")
FILES = {"markdown": "table1.md", "table1_csv": "table1.csv", "recognition_csv": "recognition.csv",
         "localization_csv": "localization.csv", "table1_plot": "table1.png",
         "recognition_plot": "recognition.png", "localization_plot": "localization.png"}
SOURCE_MARKS = {"paper": "P", "results page": "W", "transcription": "T"}


@dataclass
class Run:
    """The numbers of one evaluated run, in percent (None: not computed for that run)."""

    path: Path
    method: str
    seed: int | None
    clips_per_class: dict[str, int]
    table1: dict[str, float]
    recognition: dict[str, float | None]
    localization: dict[str, float | None]


def _percent(value: Any) -> float | None:
    return None if value is None else 100.0 * float(value)


def read_run(path: str | os.PathLike) -> Run:
    """One run from an llinet-eval folder or its metrics.json; errors name the file and field."""
    given = Path(path)
    file = given / "metrics.json" if given.is_dir() else given
    data = read_json_file(file, "llinet-eval metrics.json")
    context = data.get("context") or {}
    method = context.get("method")
    if method not in METHOD_LABELS:
        raise InputError(f"no known method ({method!r}): evaluate the run's checkpoint with this llinet-eval, which "
                         "records the method", file=file, field="context.method")
    try:
        retrieval = data["retrieval"]
        table1 = {}
        for column, (direction, key), _ in RETRIEVAL_COLUMNS:
            block = retrieval[direction]
            table1[column] = 100.0 * float(block["llinet"]["map"] if key == "map" else block["standard"][key])
        recognition: dict[str, float | None] = {"ZSL accuracy": _percent(data["recognition"]["published"]["accuracy"])}
        gzsl = data.get("gzsl", {}).get("average_class")
        for column, key in (("GZSL seen", "seen"), ("GZSL unseen", "unseen"), ("GZSL H", "harmonic_mean")):
            recognition[column] = _percent(gzsl[key]) if gzsl else None
        localization = data.get("localization", {}).get("llinet") or {}
        clips = {str(c): int(n) for c, n in data["clips_per_class"].items()}
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"not an llinet-eval metrics.json (missing or bad {exc})", file=file) from exc
    seed = context.get("train_seed")
    return Run(path=file.parent, method=str(method), seed=None if seed is None else int(seed), clips_per_class=clips,
               table1=table1, recognition=recognition,
               localization={"mIoU": _percent(localization.get("miou")), "AUC": _percent(localization.get("auc"))})


def group_runs(runs: Sequence[Run]) -> dict[str, list[Run]]:
    """Runs by method in Table 1's order; one data split for all, one run per (method, seed)."""
    if not runs:
        raise InputError("no runs given")
    first = runs[0]
    for run in runs[1:]:
        if run.clips_per_class != first.clips_per_class:
            raise InputError(f"evaluated on other data than {first.path} (classes and clip counts differ): a table "
                             "compares methods on one split", file=run.path / "metrics.json", field="clips_per_class")
    seen: dict[tuple[str, int | None], Path] = {}
    for run in runs:
        key = (run.method, run.seed)
        if key in seen:
            raise InputError(f"{run.method} seed {run.seed} given twice (also {seen[key]})", file=run.path)
        seen[key] = run.path
    return {method: [r for r in runs if r.method == method] for method in METHOD_LABELS
            if any(r.method == method for r in runs)}


def spread(values: Sequence[float | None]) -> tuple[float | None, float | None, int]:
    """(mean, sample standard deviation (None for one value), count) of the values present."""
    present = np.array([v for v in values if v is not None], dtype=float)
    if len(present) == 0:
        return None, None, 0
    return float(present.mean()), float(present.std(ddof=1)) if len(present) > 1 else None, len(present)


def fmt(mean: float | None, std: float | None = None) -> str:
    if mean is None:
        return "–"
    return f"{mean:.1f}" if std is None else f"{mean:.1f} ± {std:.1f}"


def published_text(cell: Published) -> str:
    """'49.3 [P,W]'; a flagged conflict as '25.7 [W] ⚠ 35.7 [T]'; 'not found' without a value."""
    if cell.value is None:
        return "not found"
    marks = ",".join(SOURCE_MARKS[s] for s in cell.sources)
    text = f"{cell.value} [{marks}]"
    for value, source in cell.conflicts:
        text += f" ⚠ {value} [{SOURCE_MARKS[source]}]"
    return text


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else ('es' if noun.endswith('s') else 's')}"


def _row(cells: Sequence[Any]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    return [_row(header), _row(["---"] * len(header)), *(_row(r) for r in rows), ""]


def _seeds(runs: Sequence[Run]) -> str:
    return ", ".join(str(r.seed) for r in runs)


def _csv(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([["" if v is None else (round(v, 4) if isinstance(v, float) else v) for v in row]
                      for row in rows])
    return buffer.getvalue()


class TableReport:
    """The three tables of one set of runs (``groups`` from :func:`group_runs`)."""

    def __init__(self, groups: dict[str, list[Run]]) -> None:
        self.groups = groups
        self.clips = next(iter(groups.values()))[0].clips_per_class
        self.chance = {key: 100.0 * value for key, value in chance_levels(self.clips).items()}
        self.comparable = is_instrument32(self.clips)

    def table1_chance(self, column: str) -> float:
        key = dict((name, k) for name, (_, k), _ in RETRIEVAL_COLUMNS)[column]
        return self.chance["map" if key == "map" else "r1"]

    def ours(self, method: str, section: str, column: str) -> tuple[float | None, float | None, int]:
        return spread([getattr(run, section)[column] for run in self.groups.get(method, [])])

    # --- Table 1 ---------------------------------------------------------------------------------
    def table1_markdown(self) -> list[str]:
        header = ["Method", "seeds"] + [f"{c} {part}" for c in COLUMNS for part in ("paper", "ours")]
        rows = []
        for method, label in METHOD_LABELS.items():     # every row of the paper's table
            cells: list[Any] = [label, _seeds(self.groups[method]) if method in self.groups else "–"]
            for column in COLUMNS:
                cells.append(published_text(TABLE1[method][column]))
                if method == "sir":
                    cells.append("open")
                elif method not in self.groups:
                    cells.append("not run")
                else:
                    mean, std, _ = self.ours(method, "table1", column)
                    cells.append(fmt(mean, std))
            rows.append(cells)
        rows.append(["chance (this data)", "", *(v for c in COLUMNS for v in ("", fmt(self.table1_chance(c))))])
        return _markdown_table(header, rows)

    def table1_csv(self) -> str:
        header = ["method", "seeds"] + [f"{c} {part}" for c in COLUMNS
                                        for part in ("paper", "paper sources", "paper conflict", "ours mean",
                                                     "ours std", "chance")]
        rows = []
        for method in METHOD_LABELS:
            row: list[Any] = [method, " ".join(str(r.seed) for r in self.groups.get(method, []))]
            for column in COLUMNS:
                cell = TABLE1[method][column]
                mean, std, _ = self.ours(method, "table1", column)
                conflict = "; ".join(f"{v} ({s})" for v, s in cell.conflicts)
                row += [cell.value, "; ".join(cell.sources), conflict, mean, std, self.table1_chance(column)]
            rows.append(row)
        return _csv(header, rows)

    def table1_plot(self, path: Path) -> Path:
        methods = list(METHOD_LABELS)
        stats = [[self.ours(m, "table1", c) for c in COLUMNS] for m in methods]
        return eval_plots.comparison_bars(
            COLUMNS, [METHOD_LABELS[m] for m in methods], [[TABLE1[m][c].value for c in COLUMNS] for m in methods],
            [[s[0] for s in row] for row in stats], [[s[1] for s in row] for row in stats],
            [self.table1_chance(c) for c in COLUMNS], path, "Table 1: zero-shot cross-modal retrieval")

    # --- recognition and localisation --------------------------------------------------------------
    def recognition_rows(self) -> list[list[Any]]:
        """[label, source, (published value | (mean, std)) per column, seeds]."""
        rows: list[list[Any]] = []
        for name, values in RECOGNITION.items():
            published = [values.get("zsl"), values.get("gzsl_seen"), values.get("gzsl_unseen"), values.get("gzsl_h")]
            rows.append([f"{name} (paper)", "published", *published, ""])
        for method, runs in self.groups.items():
            stats = [self.ours(method, "recognition", c)[:2] for c in RECOGNITION_COLUMNS]
            rows.append([f"{METHOD_LABELS[method]} (ours)", "ours", *stats, _seeds(runs)])
        rows.append(["chance (this data)", "chance", (self.chance["recognition"], None), None, None, None, ""])
        return rows

    def localization_rows(self) -> list[list[Any]]:
        rows: list[list[Any]] = [[f"{name} (paper)", "published", v["miou"], v["auc"], ""]
                                 for name, v in LOCALIZATION.items()]
        if "llinet" in self.groups:
            rows.append(["LLINet (ours)", "ours", *(self.ours("llinet", "localization", c)[:2]
                                                    for c in LOCALIZATION_COLUMNS), _seeds(self.groups["llinet"])])
        return rows

    @staticmethod
    def _cell(value: Any) -> str:
        if isinstance(value, tuple):
            return fmt(*value)
        return "–" if value is None else f"{value}"

    def section_markdown(self, rows: list[list[Any]], columns: Sequence[str], sources: Sequence[str]) -> list[str]:
        marks = ",".join(SOURCE_MARKS[s] for s in sources)
        body = [[row[0], *(self._cell(v) + (f" [{marks}]" if row[1] == "published" and v is not None else "")
                           for v in row[2:-1]), row[-1] or "–"] for row in rows]
        return _markdown_table(["Method", *columns, "seeds"], body)

    @staticmethod
    def section_csv(rows: list[list[Any]], columns: Sequence[str], sources: Sequence[str]) -> str:
        header = ["method", "kind", "sources"] + [f"{c} {p}" for c in columns for p in ("mean", "std")] + ["seeds"]
        out = []
        for row in rows:
            cells: list[Any] = [row[0], row[1], "; ".join(sources) if row[1] == "published" else ""]
            for value in row[2:-1]:
                cells += list(value) if isinstance(value, tuple) else [value, None]
            out.append([*cells, row[-1]])
        return _csv(header, out)

    def section_plot(self, rows: list[list[Any]], columns: Sequence[str], path: Path, title: str,
                     chance: Sequence[float | None]) -> Path:
        kept = [row for row in rows if row[1] != "chance"]
        labels = [str(row[0]).replace(" (VGGish audio encoder)", ", VGGish") for row in kept]
        published = [[None if row[1] != "published" else v for v in row[2:-1]] for row in kept]
        ours = [[v[0] if isinstance(v, tuple) else None for v in row[2:-1]] for row in kept]
        errors = [[v[1] if isinstance(v, tuple) else None for v in row[2:-1]] for row in kept]
        return eval_plots.comparison_bars(columns, labels, published, ours, errors, chance, path, title)


def markdown(report: TableReport) -> str:
    runs = [run for group in report.groups.values() for run in group]
    lines = ["# Table 1 and the recognition and localisation tables, over methods × seeds", "",
             *data_banner(report.clips),
             f"{len(runs)} runs on one split ({plural(len(report.clips), 'class')}, "
             f"{sum(report.clips.values())} clips); "
             f"ours = mean ± standard deviation over the seeds listed (no ± for one seed). All numbers in %.", "",
             "## Zero-shot cross-modal retrieval (Table 1)", "", *report.table1_markdown()]
    lines += ["Columns are the paper's. Directions named query→gallery, each column is this number of ours (the "
              "official code names its one-query mAP the other way round):", ""]
    lines += [f"- {name}: {explanation} → our {direction.replace('_to_', '→')} "
              f"{'LLINet-protocol mAP (one query per class)' if key == 'map' else 'R@1 (every clip a query)'}."
              for name, (direction, key), explanation in RETRIEVAL_COLUMNS]
    lines += ["", "Sources of the published numbers: "
              + "; ".join(f"[{mark}] {SOURCES[name]}" for name, mark in SOURCE_MARKS.items()) + ".",
              "⚠ marks the cell the sources disagree on: CME's R@1(I2A) is 25.7 on the results page and 35.7 in "
              "a transcription of the paper's Table 1; the results page's value is printed first.",
              "SIR's row stays open: SIR is reference [26] of the LLINet paper, which could not be identified "
              "(see docs/baselines.md).", "",
              "## Zero-shot recognition", "",
              *report.section_markdown(report.recognition_rows(), RECOGNITION_COLUMNS, RECOGNITION_SOURCES),
              "ZSL accuracy: the published protocol (raw image embedding, Euclidean distance to each unseen class's "
              "mean audio embedding, accuracy over samples). GZSL: ours calibrated stacking (per-class mean), the "
              "paper's a seen-class classifier with a confidence gate; not the same method.", "",
              "## Zero-shot sound localisation", "",
              *report.section_markdown(report.localization_rows(), LOCALIZATION_COLUMNS, LOCALIZATION_SOURCES),
              "LLINet protocol (maps thresholded at k·0.1·max, k chosen on validation; the paper chose it on test). "
              "Only LLINet trains the attention that makes the map, so only its runs are listed. No chance row: a "
              "random map's IoU depends on each mask's size.", "",
              "## Runs", "", *(f"- {run.method} seed {run.seed}: `{run.path}`" for run in runs), ""]
    return "\n".join(lines)


def write_table_report(paths: Sequence[str | os.PathLike], out_dir: str | os.PathLike) -> dict[str, Path]:
    """Read the runs, write the Markdown, CSV and plots into ``out_dir``; returns the files by :data:`FILES` key."""
    report = TableReport(group_runs([read_run(p) for p in paths]))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {key: out / name for key, name in FILES.items()}
    recognition, localization = report.recognition_rows(), report.localization_rows()
    atomic_write_text(files["markdown"], markdown(report))
    atomic_write_text(files["table1_csv"], report.table1_csv())
    atomic_write_text(files["recognition_csv"],
                      report.section_csv(recognition, RECOGNITION_COLUMNS, RECOGNITION_SOURCES))
    atomic_write_text(files["localization_csv"],
                      report.section_csv(localization, LOCALIZATION_COLUMNS, LOCALIZATION_SOURCES))
    report.table1_plot(files["table1_plot"])
    report.section_plot(recognition, RECOGNITION_COLUMNS, files["recognition_plot"], "Zero-shot recognition",
                        [report.chance["recognition"], None, None, None])
    report.section_plot(localization, LOCALIZATION_COLUMNS, files["localization_plot"],
                        "Zero-shot sound localisation (LLINet protocol)", [None, None])
    return files
