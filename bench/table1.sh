#!/usr/bin/env bash
# Table 1 on one codebase: every method x every seed trained by llinet-train on the same media root
# (same encoders, data, splits), each evaluated by llinet-eval on the test split, then one
# llinet-eval --table over all of them. Run from the repository root; docs/baselines.md has the
# expected run time. A rerun skips what is done and resumes an interrupted training run.
#
#   bash bench/table1.sh --root media                       # one GPU (or CPU), every method, 3 seeds
#   bash bench/table1.sh --root media --nproc 8             # each run under torchrun, 8 processes (DDP)
#   bash bench/table1.sh --root media --jobs 8              # 8 runs at once, one GPU each
#   bash bench/table1.sh --root media --methods "llinet cmpm" --seeds "200" -- --epochs 20 --precision bf16
#
# Options: --root ROOT (media root with manifest.csv; annotations.json if present gives localisation),
# --out DIR (default runs/table1), --methods "..." (default every trainable method), --seeds "..."
# (default "200 201 202"), --nproc N (torchrun processes per run), --jobs N (runs in parallel, one
# GPU each: CUDA_VISIBLE_DEVICES 0..N-1), --python PY (default python); everything after -- goes to
# every llinet-train call (e.g. --epochs, --precision bf16, --recipe official-code).
set -euo pipefail
export PYTHONUNBUFFERED=1

ROOT="" OUT=runs/table1 SEEDS="200 201 202" NPROC=1 JOBS=1 PY=python
METHODS="llinet dar ulslvc scan dscmr timam cmpm cme"   # sir: reference [26] not identified, not trainable
TRAIN_EXTRA=()
while [ $# -gt 0 ]; do
    case "$1" in
        --root) ROOT=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --methods) METHODS=$2; shift 2 ;;
        --seeds) SEEDS=$2; shift 2 ;;
        --nproc) NPROC=$2; shift 2 ;;
        --jobs) JOBS=$2; shift 2 ;;
        --python) PY=$2; shift 2 ;;
        --) shift; TRAIN_EXTRA=("$@"); break ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "table1.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
if [ -z "$ROOT" ] || [ ! -f "$ROOT/manifest.csv" ]; then
    echo "table1.sh: --root must name a media root with a manifest.csv (got '${ROOT}')" >&2; exit 2
fi
if [ "$NPROC" -gt 1 ] && [ "$JOBS" -gt 1 ]; then
    echo "table1.sh: give --nproc (DDP per run) or --jobs (runs in parallel), not both" >&2; exit 2
fi
mkdir -p "$OUT"
# One decoded-media cache for every run: the same manifest and media give the same cache.
CACHE="$OUT/cache"
EVAL_EXTRA=()
if [ -f "$ROOT/annotations.json" ]; then EVAL_EXTRA=(--masks "$ROOT/annotations.json"); else EVAL_EXTRA=(--no-localization); fi

# train_and_eval METHOD SEED [GPU]: one run, skipped when its evaluation exists.
train_and_eval() {
    local method=$1 seed=$2 gpu=${3:-} run="$OUT/$1/seed$2"
    if [ -f "$run/eval/metrics.json" ]; then echo "== $method seed $seed: done"; return 0; fi
    mkdir -p "$run"
    local resume=() pin=() launcher=("$PY" -m model.training.cli)
    [ -f "$run/last.pt" ] && resume=(--resume)
    [ -n "$gpu" ] && pin=(env "CUDA_VISIBLE_DEVICES=$gpu")
    [ "$NPROC" -gt 1 ] && launcher=("$PY" -m torch.distributed.run --standalone --nproc_per_node "$NPROC"
                                    -m model.training.cli)
    echo "== $method seed $seed: training ($run/train.log)"
    # (set -e does not reach into a function called from a || list: every step checks its status.)
    "${pin[@]}" "${launcher[@]}" --root "$ROOT" --out "$run" --cache-dir "$CACHE" --method "$method" \
        --seed "$seed" --no-progress "${resume[@]}" "${TRAIN_EXTRA[@]}" > "$run/train.log" 2>&1 || return 1
    local checkpoint="$run/best.pt"
    [ -f "$checkpoint" ] || checkpoint="$run/last.pt"   # no validation split: the last epoch's weights
    echo "== $method seed $seed: evaluating $checkpoint"
    "${pin[@]}" "$PY" -m model.evaluation.cli --checkpoint "$checkpoint" --root "$ROOT" --split test \
        --out "$run/eval" --no-progress "${EVAL_EXTRA[@]}" > "$run/eval.log" 2>&1 || return 1
}

# run_or_note METHOD SEED [GPU]: a failed run is noted (its log says why) and the others go on.
run_or_note() {
    train_and_eval "$@" || { echo "== $1 seed $2: FAILED, see $OUT/$1/seed$2/*.log" | tee -a "$OUT/failed.txt"; }
}

started=$(date +%s)
rm -f "$OUT/failed.txt"
pairs=()
for method in $METHODS; do for seed in $SEEDS; do pairs+=("$method $seed"); done; done
# The first run builds the shared cache alone; the others then only read it.
# shellcheck disable=SC2086  # "method seed" splits into two arguments on purpose
run_or_note ${pairs[0]} "$([ "$JOBS" -gt 1 ] && echo 0)"
if [ "$JOBS" -gt 1 ]; then
    # One queue per GPU: GPU g trains runs g, g + JOBS, g + 2·JOBS, ... one after the other.
    for (( gpu = 0; gpu < JOBS; gpu++ )); do
        (
            for (( i = 1 + gpu; i < ${#pairs[@]}; i += JOBS )); do
                # shellcheck disable=SC2086
                run_or_note ${pairs[$i]} "$gpu"
            done
        ) &
    done
    wait
else
    for (( i = 1; i < ${#pairs[@]}; i++ )); do
        # shellcheck disable=SC2086
        run_or_note ${pairs[$i]}
    done
fi
reports=()
for pair in "${pairs[@]}"; do
    report="$OUT/${pair% *}/seed${pair#* }/eval"
    [ -f "$report/metrics.json" ] && reports+=("$report")
done
if [ ${#reports[@]} -eq 0 ]; then echo "table1.sh: no run finished" >&2; exit 1; fi
"$PY" -m model.evaluation.cli --table "${reports[@]}" --out "$OUT/table"
echo "== Table 1: $OUT/table/table1.md (${#reports[@]} of ${#pairs[@]} runs, $(( ($(date +%s) - started) / 60 )) min)"
if [ -f "$OUT/failed.txt" ]; then echo "table1.sh: some runs failed (listed in $OUT/failed.txt)" >&2; exit 1; fi
