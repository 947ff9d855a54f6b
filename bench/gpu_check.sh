#!/usr/bin/env bash
# The GPU checks in one script, run from the repository root; logs and the report go to $OUT.
# It needs only torch/torchvision/torchaudio, pandas, Pillow, tqdm, tensorboard and matplotlib:
# no pip install, no librosa/soundfile/ffmpeg (a bare CUDA image with PyTorch is enough).
#   1. bench/train_throughput.py on CUDA, paper preset (ResNet-101, 244 px, batch 32), per precision;
#   2. llinet-train on the synthetic set on CUDA (bf16 + channels_last), then llinet-eval on it;
#   3. torchrun with NCCL (1 process per visible GPU) for one short epoch.
# Usage there:  DEVICE=cuda bash bench/gpu_check.sh   (DEVICE=cpu runs the same steps on a CPU, slowly)
set -euo pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
DEVICE=${DEVICE:-cuda}
OUT=${OUT:-/tmp/llinet-gpu-check}
mkdir -p "$OUT"
WORK=$(mktemp -d)
log() { echo "== $*" | tee -a "$OUT/summary.txt"; }

command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.is_available())' | tee -a "$OUT/summary.txt"

log "1. training throughput ($DEVICE)"
if [ "$DEVICE" = cuda ]; then VARIANTS=fp32,tf32,bf16,bf16+cl,bf16+cl+compile; PRESET=paper; else VARIANTS=fp32; PRESET=cpu; fi
python bench/train_throughput.py --device "$DEVICE" --preset "$PRESET" --variants "$VARIANTS" \
    --workers "$(( $(nproc) > 8 ? 8 : $(nproc) ))" 2>&1 | tee "$OUT/throughput.log" | grep -v Warning

log "2. llinet-train + llinet-eval on the synthetic set ($DEVICE)"
python -c "from builder.demo.zeroshot_set import generate_synthetic_set; generate_synthetic_set('$WORK/synth')"
PRECISION=$([ "$DEVICE" = cuda ] && echo "bf16 --channels-last" || echo fp32)
# shellcheck disable=SC2086  # PRECISION holds two words on purpose
python -m model.training.cli "$WORK/synth/manifest.csv" --output-dir "$WORK/run" --backbone resnet18 --image-size 64 \
    --image-weights none --batch-size 16 --lr 0.005 --epochs 8 --device "$DEVICE" --precision $PRECISION \
    --no-progress 2>&1 | tee "$OUT/train.log"
python -m model.evaluation.cli --checkpoint "$WORK/run/best.pt" --manifest "$WORK/synth/manifest.csv" --split test \
    --no-localization --report "$OUT/report" --device "$DEVICE" --no-progress 2>&1 | tee "$OUT/eval.log"

log "3. torchrun ($DEVICE) one short epoch"
NPROC=$([ "$DEVICE" = cuda ] && python -c 'import torch; print(max(1, torch.cuda.device_count()))' || echo 2)
torchrun --standalone --nproc_per_node "$NPROC" -m model.training.cli "$WORK/synth/manifest.csv" --output-dir "$WORK/ddp" \
    --backbone resnet18 --image-size 64 --image-weights none --batch-size 16 --epochs 1 --device "$DEVICE" \
    --max-steps-per-epoch 5 --no-progress 2>&1 | tee "$OUT/ddp.log"
log "done; logs in $OUT"
