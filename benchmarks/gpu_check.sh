#!/usr/bin/env bash
# Everything medssl checks on a GPU, in one call of under 8 minutes on one H100 or H200:
#   1. the `gpu`-marked tests (speed options, the streamed feed's pinned copy on a side stream,
#      intensity mappings on the device; fine-tuning under fp16/bf16 autocast with its gradient
#      scaler, channels-last feature extraction and compiled fine-tuning:
#      tests/evaluation/test_eval_precision.py);
#   2. benchmarks/gpu_speed.py's table (fp32, bf16, bf16 + channels-last; 3 epochs each);
#   3. trainer.feed=streamed against resident on CUDA (images/s and their ratio).
#
#   MEDMNIST_ROOT=/path/to/medmnist bash benchmarks/gpu_check.sh | tee gpu_check.log
#
# The device machine reaches no network: carry the genuine MedMNIST files (pneumoniamnist.npz,
# breastmnist_64.npz) in an ignored folder of the checkout and point MEDMNIST_ROOT there, and
# carry as wheels whatever Python packages its image lacks (installed with --target, then
# PYTHONPATH, before this script runs).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 WANDB_MODE=offline
export MEDMNIST_ROOT="${MEDMNIST_ROOT:-$(cd .. && pwd)/shared/data/medmnist}"
export MEDSSL_STORE_DIR="${MEDSSL_STORE_DIR:-$(mktemp -d)}"
export PYTHONPATH="$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}"
PYTHON="${PYTHON:-python3}"

"$PYTHON" - <<'PY'
import torch
assert torch.cuda.is_available(), "no CUDA device: gpu_check.sh needs one"
print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}")
PY
echo "== gpu-marked tests"
"$PYTHON" -m pytest -m gpu -q -p no:cacheprovider tests
echo "== gpu_speed.py: setups, then streamed against resident"
"$PYTHON" benchmarks/gpu_speed.py --epochs 3 --setups fp32 bf16 bf16+channels_last \
  --feed-setup bf16+channels_last --ratio-repeats 5
