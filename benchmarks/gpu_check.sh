#!/usr/bin/env bash
# The CUDA rows of benchmarks/RESULTS.md in one run (about 6 minutes on an H200, at most 9): face detection and stages
# 2 + 3 per backend x size x batch (bench_candidates.py), training input against the zoo's compute rate for
# r18 and r3d-18 (bench_train_input.py), and the tests that only run where a GPU is.
#
#   bash benchmarks/gpu_check.sh [OUT_DIR] [LABELLED_CATALOG]
#
# OUT_DIR (default gpu-check/) receives candidates.txt, train_input.txt and tests.txt. Without a catalog,
# bench_train_input builds one from the demo crops (needs the project's assets). Runs with the project's
# virtual environment where there is one, else python3 (a bare CUDA box needs only the torch stack plus
# pydantic, PyAV, scenedetect, platformdirs and onnx2torch).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-gpu-check}
catalog=${2:-}
py=python3
[ -x .venv/bin/python ] && py=.venv/bin/python
mkdir -p "$out"
export PYTHONUNBUFFERED=1

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt" || {
  echo "no NVIDIA GPU here: nothing to check" >&2
  exit 2
}

echo "=== detection, stages 2 + 3 ($(date +%T))"
timeout 200 "$py" benchmarks/bench_candidates.py --device cuda --minutes 3 \
  --rows reference onnxruntime:640:16:cpu torch:640:64 torch:640:256 torch:480:256 torch:320:256 \
  2>&1 | grep -v Warning | tee "$out/candidates.txt"
echo "bench_candidates exit status ${PIPESTATUS[0]} (124: out of time)"

echo "=== training input ($(date +%T))"
args=(--tile 64 --train-only --model r18 r3d-18 --device cuda --amp --batch 32 --frames 8 --workers 14 --epochs 3)
[ -n "$catalog" ] && args+=(--catalog "$catalog")
timeout 260 "$py" benchmarks/bench_train_input.py "${args[@]}" 2>&1 | grep -vi warn | tee "$out/train_input.txt"
echo "bench_train_input exit status ${PIPESTATUS[0]} (124: out of time)"

echo "=== tests that need a GPU ($(date +%T))"
timeout 60 "$py" -m pytest -q -p no:cacheprovider tests/models/test_detectors.py -k cuda 2>&1 | tail -3 \
  | tee "$out/tests.txt"
