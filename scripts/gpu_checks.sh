#!/usr/bin/env bash
# The GPU checks of issues 6 and 9 as one script (what produced figures/09_bench_gpu.json and the
# paper-scale training numbers in the README). Run from the repository root on a CUDA machine:
#   OUT=gpu_results TNN_DATA_DIR=/path/to/folder/with/tinyshakespeare.txt bash scripts/gpu_checks.sh
# Needs torch with CUDA, numpy, scipy, tqdm, scikit-learn and tokenizers (no install of this package:
# it runs from the checkout). Each step is independent: one failing does not stop the others.
set -u
OUT=${OUT:-gpu_results}
mkdir -p "$OUT"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
STEPS=${STEPS:-300}
BUDGET=${BUDGET:-75}  # training seconds per model

step() { echo; echo "=== $* ($(date -u +%H:%M:%S))"; }

step "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"

step "CUDA tests (tests/test_cuda.py and the CUDA test of test_toeplitz.py)"
$PY -m pytest -q -p no:cacheprovider tests/test_cuda.py tests/test_toeplitz.py -k cuda

step "layers: TNN block vs Transformer block, bf16 autocast, n = 1K..64K"
$PY -m tnn_ref.bench layers --device cuda --autocast bf16 --sizes 1024 2048 4096 8192 16384 32768 65536 \
  --out "$OUT/09_bench_gpu_layers.json"

step "TNO against its FFT floor, float32"
$PY -m tnn_ref.bench tno --device cuda --sizes 4096 16384 65536 --out "$OUT/09_bench_gpu_tno.json"

for model in paper_lm paper_lm_transformer; do
  step "$model: paper recipe on Tiny Shakespeare BPE (model vocabulary padded to 50,265), $STEPS updates or ${BUDGET}s"
  $PY -m tnn_ref.train --model "$model" --data tinyshakespeare --tokenizer bpe --pad-vocab-to 50265 \
    --steps "$STEPS" --time-budget "$BUDGET" --batch-size 64 --eval-every 25 --checkpoint-every 100000 \
    --out "/tmp/runs/$model" --cache-dir /tmp/tnn_cache --no-progress
  cp "/tmp/runs/$model/metrics.jsonl" "$OUT/${model}_metrics.jsonl"
done

step "extrapolation of the short TNN run: test perplexity at 512..8K"
$PY -m tnn_ref.evaluate /tmp/runs/paper_lm/checkpoint.pt --split test --context 512 1024 2048 4096 8192 \
  --cache-dir /tmp/tnn_cache --out "$OUT/paper_lm_extrapolation.json"
step "done"
