#!/usr/bin/env bash
# Issue 8's GPU figures on a lent H200, in one call of at most 8 minutes. Prepare on the CPU machine first:
#   python -c "from visionlab.data.pack import pack; pack('../shared/data/cifar10', '.gpu/cifar10')"
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux_2_17_x86_64 \
#       -d .gpu/whl pydantic pydantic-core annotated-types typing-inspection airbench
# and carry `.gpu` (ignored by git; about 58 MiB). The machine's own torch 2.11 is used.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-out}
python3 -m pip install -q --no-index --no-deps --target /tmp/site .gpu/whl/*.whl
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1
python3 -c "from visionlab.data.pack import unpack; unpack('.gpu/cifar10', '/tmp/cifar10')"
nvidia-smi --query-gpu=name,memory.used,utilization.gpu --format=csv
(nvidia-smi dmon -s u -d 2 > "$OUT/gpu_util.log" 2>&1 &)
timeout 470 python3 benchmarks/gpu_bench.py --data /tmp/cifar10 --out "$OUT" "$@"
