"""curate: automatic flags, human decisions, deterministic re-capping, and the CLI on a manifest folder."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from builder.commands.main import main
from builder.curate.decisions import make_decision
from builder.curate.stage import CurateOptions, clip_flags, curate
from builder.errors import InputError
from builder.manifest.ids import make_clip_id
from builder.manifest.schema import read_manifest, read_manifest_dir, write_manifest, write_manifest_dir

DRUM, TABLA, GUITAR, EGUITAR = "/m/026t6", "/m/01p970", "/m/0342h", "/m/02sgy"
CAP = 3


def clip(cls: str, rank: int) -> str:
    return make_clip_id(f"{cls[:4].lower():_<4}{rank:07d}", 0.0)


def make_manifest() -> pd.DataFrame:
    """Two classes, cap 3, ranks 0..5; the media stages ran on the selection (ranks 0-2) and on ranks 3-4."""
    rows = []
    for cls, mid, split in (("Drum", DRUM, "train"), ("Tabla", TABLA, "test")):
        for rank in range(6):
            ready = rank <= 4
            rows.append({"clip_id": clip(cls, rank), "ytid": clip(cls, rank)[:11], "start": 0.0, "end": 10.0,
                         "class": cls, "mid": mid, "split": split, "source": "eval", "labels": mid, "rank": rank,
                         "selected": rank < CAP,
                         "fetch_status": "ok" if ready else "unused",
                         "media_path": f"clips/{rank}.mp4" if ready else "",
                         "trim_status": "ok" if ready else "", "trim_flags": "",
                         "frames_status": "ok" if ready else "", "frame_flags": ""})
    return pd.DataFrame(rows)


def set_value(df, clip_id, column, value):
    df.loc[df["clip_id"] == clip_id, column] = value


def row(df, clip_id):
    return df[df["clip_id"] == clip_id].iloc[0]


def selected(df, cls):
    return sorted(df.loc[(df["class"] == cls) & df["selected"], "rank"].tolist())


def test_no_decisions_no_flags_keeps_the_selection():
    out, summary = curate(make_manifest(), {})
    assert selected(out, "Drum") == [0, 1, 2] and selected(out, "Tabla") == [0, 1, 2]
    assert set(out["curation"]) == {"undecided"}
    assert out["curation_outcome"].value_counts().to_dict() == {"selected": 6, "beyond_cap": 4, "no_media": 2}
    assert summary.cap == CAP and summary.per_class["Drum"]["promoted"] == 0


def test_flags_from_every_stage_and_ambiguity():
    targets = frozenset([DRUM, TABLA])
    assert clip_flags({"fetch_status": "unavailable"}, targets) == ["unavailable"]
    assert clip_flags({"trim_status": "error", "frames_status": "error"}, targets) == ["trim_error", "frames_error"]
    assert clip_flags({"trim_flags": "too_short,silent", "frame_flags": "dark,uniform"}, targets) == \
        ["too_short", "silent", "dark", "uniform"]
    assert clip_flags({"labels": f"{DRUM},/m/09x0r,{TABLA}"}, targets) == ["ambiguous"]
    assert clip_flags({"labels": f"{DRUM},/m/09x0r", "trim_flags": float("nan")}, targets) == []


def test_auto_rejections_promote_ready_reserve_by_rank():
    df = make_manifest()
    set_value(df, clip("Drum", 1), "trim_flags", "silent")
    set_value(df, clip("Drum", 2), "fetch_status", "unavailable")
    out, summary = curate(df, {})
    assert row(out, clip("Drum", 1))["curation"] == "auto_rejected"
    assert row(out, clip("Drum", 1))["curation_reason"] == "auto: silent"
    assert row(out, clip("Drum", 2))["curation_reason"] == "auto: unavailable"
    # ranks 3 and 4 are ready reserve clips; rank 5 has no media and can never be selected
    assert selected(out, "Drum") == [0, 3, 4]
    drum = summary.per_class["Drum"]
    assert (drum["promoted"], drum["dropped"], drum["auto_rejected"], drum["short"]) == (2, 2, 2, 0)
    set_value(df, clip("Drum", 3), "frame_flags", "dark")
    out, summary = curate(df, {})
    assert selected(out, "Drum") == [0, 4]
    assert row(out, clip("Drum", 5))["curation_outcome"] == "no_media"
    assert summary.short_classes() == {"Drum": 1}


def test_human_decisions_win_over_soft_flags_but_not_missing_media():
    df = make_manifest()
    set_value(df, clip("Tabla", 0), "frame_flags", "dark")
    set_value(df, clip("Tabla", 1), "fetch_status", "unavailable")
    decisions = {d.clip_id: d for d in (
        make_decision(clip("Tabla", 0), "accept", "visible despite the low light", "ana"),
        make_decision(clip("Tabla", 1), "accept", "", "ana"),
        make_decision(clip("Tabla", 2), "reject", "no tabla on screen", "ben"))}
    out, _ = curate(df, decisions)
    first = row(out, clip("Tabla", 0))
    assert (first["curation"], first["curation_outcome"], first["curation_flags"]) == ("accepted", "selected", "dark")
    assert first["curation_reviewer"] == "ana" and first["curation_time"]
    assert (row(out, clip("Tabla", 1))["curation"], row(out, clip("Tabla", 1))["curation_outcome"]) == \
        ("accepted", "no_media")
    rejected = row(out, clip("Tabla", 2))
    assert (rejected["curation"], rejected["curation_reason"], rejected["selected"]) == \
        ("rejected", "no tabla on screen", False)
    assert selected(out, "Tabla") == [0, 3, 4]


def test_reject_flags_are_configurable():
    df = make_manifest()
    set_value(df, clip("Drum", 0), "frame_flags", "dark")
    out, _ = curate(df, {}, CurateOptions(reject_flags=("silent",)))
    assert row(out, clip("Drum", 0))["curation"] == "undecided" and selected(out, "Drum") == [0, 1, 2]
    with pytest.raises(InputError, match="unknown reject flag"):
        CurateOptions(reject_flags=("blurry",))


def test_ambiguous_clips_are_rejected_by_default():
    df = make_manifest()
    set_value(df, clip("Drum", 0), "labels", f"{DRUM},{TABLA}")
    set_value(df, clip("Drum", 1), "labels", f"{DRUM},{EGUITAR}")   # Electric guitar is not a target here...
    out, _ = curate(df, {})
    assert row(out, clip("Drum", 0))["curation_reason"] == "auto: ambiguous"
    assert row(out, clip("Drum", 1))["curation"] == "undecided"
    out, _ = curate(df, {}, CurateOptions(target_mids=(EGUITAR, GUITAR)))   # ... unless the class list says so
    assert row(out, clip("Drum", 1))["curation"] == "auto_rejected"


def test_require_accept_selects_only_accepted_clips():
    df = make_manifest()
    decisions = {d.clip_id: d for d in (make_decision(clip("Drum", 4), "accept", reviewer="ana"),
                                        make_decision(clip("Drum", 0), "accept", reviewer="ana"))}
    out, summary = curate(df, decisions, CurateOptions(require_accept=True))
    assert selected(out, "Drum") == [0, 4] and selected(out, "Tabla") == []
    assert row(out, clip("Drum", 1))["curation_outcome"] == "needs_review"
    assert summary.per_class["Tabla"]["needs_review"] == 5


def test_recap_is_deterministic_and_reruns_start_from_the_same_pool():
    df = make_manifest()
    decisions = {clip("Drum", 0): make_decision(clip("Drum", 0), "reject", "cover art", "ana", "")}
    out, _ = curate(df, decisions)
    shuffled, _ = curate(df.sample(frac=1.0, random_state=3).reset_index(drop=True), decisions)
    key = ["clip_id", "selected", "curation", "curation_outcome"]
    assert out[key].sort_values("clip_id").reset_index(drop=True).equals(
        shuffled[key].sort_values("clip_id").reset_index(drop=True))
    # Rerun on the output: same result; then withdraw the rejection: the original selection returns.
    again, _ = curate(out, decisions)
    assert again[key].equals(out[key])
    back, summary = curate(out, {})
    assert selected(back, "Drum") == [0, 1, 2] and summary.cap == CAP


def test_explicit_cap_and_unknown_clip():
    out, summary = curate(make_manifest(), {}, CurateOptions(cap=2))
    assert selected(out, "Drum") == [0, 1] and summary.cap == 2
    with pytest.raises(InputError, match="unknown clip"):
        curate(make_manifest(), {"zzzzzzzzzzz_0": make_decision("zzzzzzzzzzz_0", "accept", reviewer="a")})


# --------------------------------------------------------------------------- CLI
def test_cli_on_a_manifest_folder(tmp_path, capsys):
    folder = tmp_path / "manifest"
    df = make_manifest()
    set_value(df, clip("Drum", 1), "trim_flags", "too_short")
    write_manifest_dir(df, folder)
    decisions = tmp_path / "decisions.csv"
    decisions.write_text("clip_id,decision,reason,reviewer\n"
                         f"{clip('Tabla', 0)},reject,\"two instruments, one is a sitar\",ana\n"
                         f"{clip('Tabla', 3)},accept,,ana\n", encoding="utf-8")
    assert main(["curate", "--manifest-dir", str(folder), "--decisions", str(decisions)]) == 0
    out = read_manifest_dir(folder)
    assert selected(out, "Drum") == [0, 2, 3] and selected(out, "Tabla") == [1, 2, 3]
    assert read_manifest(folder / "clips.csv")["curation_outcome"].eq("selected").all()
    reserve = read_manifest(folder / "reserve.csv")
    assert row(reserve, clip("Tabla", 0))["curation_reason"] == "two instruments, one is a sitar"
    report = json.loads((folder / "curate_report.json").read_text())
    assert report["decisions"] == 2 and report["per_class"]["Drum"]["auto_rejected"] == 1
    assert "Drum" in capsys.readouterr().out


def test_cli_conflict_is_an_error_and_writes_nothing(tmp_path, capsys):
    folder = tmp_path / "manifest"
    write_manifest_dir(make_manifest(), folder)
    before = (folder / "clips.csv").read_bytes()
    decisions = tmp_path / "decisions.csv"
    decisions.write_text("clip_id,decision,reason,reviewer\n"
                         f"{clip('Drum', 0)},accept,,ana\n{clip('Drum', 1)},accept,,ana\n"
                         f"{clip('Drum', 0)},reject,blurry,ben\n", encoding="utf-8")
    assert main(["curate", "--manifest-dir", str(folder), "--decisions", str(decisions)]) == 2
    err = capsys.readouterr().err
    assert "conflicting decision" in err and "lines 2 and 4" in err and str(decisions) in err
    assert (folder / "clips.csv").read_bytes() == before and not (folder / "curate_report.json").exists()
    assert main(["curate", "--manifest-dir", str(folder), "--decisions", str(decisions), "--latest-wins"]) == 0
    assert row(read_manifest_dir(folder), clip("Drum", 0))["curation"] == "rejected"


def test_cli_on_a_single_csv_with_options(tmp_path):
    path = tmp_path / "root" / "manifest.csv"
    df = make_manifest()
    set_value(df, clip("Drum", 0), "frame_flags", "uniform")
    write_manifest(df, path)
    out_path = tmp_path / "curated.csv"
    assert main(["curate", "--manifest", str(path), "--out", str(out_path), "--cap", "2",
                 "--reject-flags", "none"]) == 0
    out = read_manifest(out_path)
    assert selected(out, "Drum") == [0, 1] and row(out, clip("Drum", 0))["curation_flags"] == "uniform"
    assert (tmp_path / "curate_report.json").is_file()
    assert main(["curate", "--manifest", str(path), "--reject-flags", "blurry"]) == 2
