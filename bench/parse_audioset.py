"""Parse all AudioSet segment lists (balanced + eval + 41 unbalanced parts, 2.08M rows).

Target: < 20 s and < 1.5 GB peak RSS on a 2-core CPU machine.
Each measurement runs in a fresh subprocess so peak RSS is its own. The
baseline is pandas.read_csv over the same files (no validation), in the same run.

    python bench/parse_audioset.py [AUDIOSET_DIR]
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "audioset"

OURS = """
import json, resource, sys, time
from builder.audioset.parse import discover_segment_files, iter_segments, load_ontology
root = sys.argv[1]
t = time.perf_counter()
known = frozenset(load_ontology(root + "/ontology.json").entries)
rows = labels = 0
for files in discover_segment_files(root).values():
    for f in files:
        for seg in iter_segments(f, known_mids=known):
            rows += 1
            labels += len(seg.labels)
print(json.dumps({"rows": rows, "labels": labels, "seconds": time.perf_counter() - t,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

PANDAS = """
import json, resource, sys, time
import pandas as pd
from builder.audioset.parse import discover_segment_files
root = sys.argv[1]
t = time.perf_counter()
rows = 0
for files in discover_segment_files(root).values():
    for f in files:
        with open(f) as h:
            skip = 0
            for line in h:
                if line.startswith("#") or line.strip() == "empty":
                    skip += 1
                else:
                    break
        df = pd.read_csv(f, skiprows=skip, header=None, skipinitialspace=True, quotechar='"',
                         names=["ytid", "start", "end", "labels"])
        rows += len(df)
print(json.dumps({"rows": rows, "seconds": time.perf_counter() - t,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run(code: str, root: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", code, str(root)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    ours = run(OURS, root)
    base = run(PANDAS, root)
    print(f"llinet streaming parser (validated): {ours['rows']:,} rows, {ours['labels']:,} labels in "
          f"{ours['seconds']:.2f} s, peak RSS {ours['peak_rss_mb']:.0f} MB  (target < 20 s, < 1536 MB)")
    print(f"baseline pandas.read_csv (no validation): {base['rows']:,} rows in {base['seconds']:.2f} s, "
          f"peak RSS {base['peak_rss_mb']:.0f} MB")
    print(f"ratio ours/pandas: time {ours['seconds'] / base['seconds']:.2f}x, "
          f"peak RSS {ours['peak_rss_mb'] / base['peak_rss_mb']:.2f}x")
    ok = ours["seconds"] < 20 and ours["peak_rss_mb"] < 1536
    print("target met" if ok else "TARGET MISSED")


if __name__ == "__main__":
    main()
