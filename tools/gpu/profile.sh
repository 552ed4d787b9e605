#!/usr/bin/env bash
# Where a decode step's time goes on the GPU machine, in one command from the
# repository root (device tool: carry [".device"]; docs/GPU.md):
#
#   OUT=$OUT bash tools/gpu/profile.sh
#
# 1. tools/gpu/step_profile.py (while model_tool builds): the graphed step's
#    operations in variants that leave parts out, and the logits' copy to the
#    host in float32 and bfloat16;
# 2. model_tool with ENTROSERVE_PROFILE_GRAPHS=1 (decode_graphs.cc): per batch,
#    the host time of a graphed step's launch (inputs, replay, the queued copy
#    to the host), of the wait for its outputs (the GPU's work and the copy)
#    and of their widening into each sequence's logits.
# Logs in $OUT (profile.txt, step_profile.txt, model_b*.txt, build.log).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
OUT="${OUT:-$ROOT/build-gpu/profile}"
mkdir -p "$OUT"
export BUILD_DIR="${BUILD_DIR:-/tmp/entroserve-build}" WITH_GRPC=OFF PYTHONUNBUFFERED=1
BATCHES="${BATCHES:-1 16 32}"
source "$ROOT/tools/gpu/build.sh"
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu --format=csv >"$OUT/gpu.txt" 2>&1
python3 tools/gpu/step_profile.py >"$OUT/step_profile.txt" 2>&1 &
py=$!
SECONDS=0
(gpu_build model_tool) >"$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; exit 1; }
echo "built in ${SECONDS}s"
wait "$py"
cat "$OUT/step_profile.txt"
export LD_LIBRARY_PATH="$PREFIX/usr/lib/x86_64-linux-gnu"
for batch in $BATCHES; do
  ENTROSERVE_PROFILE_GRAPHS=1 "$BUILD_DIR/bin/model_tool" --random=llama-3.2-1b --device=cuda \
    --dtype=bf16 --batch="$batch" --new_tokens=64 --tokens=1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16 \
    >"$OUT/model_b$batch.txt" 2>&1
  grep -E "^decode:|graph profile" "$OUT/model_b$batch.txt"
done | tee "$OUT/profile.txt"
