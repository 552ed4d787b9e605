#!/usr/bin/env bash
# The GPU machine's service-level figures in one command, from the repository
# root (device tool: carry [".device"], which holds the Debian packages of
# docs/GPU.md and llama3-tokenizer.json.gz):
#
#   bash tools/gpu/run_all.sh
#
# 1. builds samplerd, runnerd, samplerctl, model_tool, generate_bench and the
#    Python client's stubs against the machine's PyTorch (tools/gpu/build.sh,
#    WITH_GRPC=ON);
# 2. adapter: the Hugging Face adapter (model.generate + samplerd) against
#    runnerd on the same saved checkpoint, CPU float32
#    (clients/python/tools/run.sh).
# 3. bench: runnerd tokens/s at 1/8/32 concurrent requests, sampler in process
#    vs in samplerd, on a random model of Llama-3.2-1B's shape and on
#    models/tiny, BF16 on CUDA (bench/generate_bench.sh);
#
# Environment, all optional: STEPS (which of "adapter bench", default both),
# OUT (reports and logs; the device tool's $OUT), BENCH_ARGS (more
# generate_bench.sh arguments), and those of tools/gpu/build.sh.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="${OUT:-$ROOT/build-gpu/run_all}"
STEPS="${STEPS:-adapter bench}"
export WITH_GRPC=ON
source "$ROOT/tools/gpu/build.sh"
mkdir -p "$OUT"
status=0

step "build"
if ! (gpu_build samplerd runnerd samplerctl model_tool generate_bench entroserve_python) \
    >"$OUT/build.log" 2>&1; then
  tail -40 "$OUT/build.log"
  echo "==> build failed (log: $OUT/build.log)"
  exit 1
fi
tail -3 "$OUT/build.log"
libdir="$PREFIX/usr/lib/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)"

if [[ " $STEPS " == *" adapter "* ]]; then
  step "adapter: clients/python/tools/run.sh"
  mkdir -p "$OUT/adapter"
  BUILD_DIR="$BUILD_DIR" OUT="$OUT/adapter" bash "$ROOT/clients/python/tools/run.sh" || status=1
fi
if [[ " $STEPS " == *" bench "* ]]; then
  step "bench: generate_bench, BF16 on CUDA"
  tokenizer="$ROOT/.device/llama3-tokenizer.json.gz"
  # shellcheck disable=SC2086  # BENCH_ARGS is a list of words
  LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" BIN="$BUILD_DIR/bin" \
    WORK=/tmp/entroserve-bench bash "$ROOT/bench/generate_bench.sh" --device cuda \
    --dtype bfloat16 --models 1b,tiny --tokenizer "$tokenizer" ${BENCH_ARGS:-} \
    2>&1 | tee "$OUT/generate_bench.txt"
  ((PIPESTATUS[0] == 0)) || status=1
  cp /tmp/entroserve-bench/*.log "$OUT/" 2>/dev/null || true
fi

echo "==> run_all exit status $status; reports in $OUT"
exit "$status"
