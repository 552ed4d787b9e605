#!/usr/bin/env bash
# Builds model_tool against this machine's PyTorch and compares the model runner with
# transformers (compare.py). One command, from the repository root:
#
#   bash tools/hf_conformance/run.sh
#
# Made for the GPU machine (pip PyTorch with CUDA, nvcc, transformers; no -dev packages
# and no package registry): the Debian packages in .device/debs (git-ignored; carried
# with the device tool's `carry: [".device"]`, list in docs/GPU.md) are unpacked into a
# prefix with dpkg -x, never into /. Also runs on any machine with torch and transformers
# in python3 (CPU only there; with Debian's -dev packages installed no .debs are needed).
#
# Environment, all optional:
#   PYTHON        python with torch and transformers              (python3)
#   DEBS          folders of .deb files to unpack                  (.device/debs .device/debs-grpc)
#   PREFIX        where they are unpacked                          (/tmp/debprefix)
#   BUILD_DIR     CMake build folder                               (build-conf)
#   JOBS          parallel compile jobs                            (nproc)
#   OUT           report and log: run.log, conformance.json/.md   (BUILD_DIR/hf_conformance)
#   WORK          checkpoints and dumps                            (/tmp/hf_conformance)
#   COMPARE_ARGS  extra compare.py arguments, e.g. "--runs cpu:float32 --models qwen2"
# Exit status: compare.py's (0 pass, 1 a tolerance exceeded, 2 setup error), or the
# failing build step's.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PYTHON="${PYTHON:-python3}"
BUILD_DIR="${BUILD_DIR:-$ROOT/build-conf}"
OUT="${OUT:-$BUILD_DIR/hf_conformance}"
WORK="${WORK:-/tmp/hf_conformance}"
export PYTHONUNBUFFERED=1
# PYTHON, DEBS, PREFIX, BUILD_DIR, JOBS as documented there; gpu_build, step.
source "$ROOT/tools/gpu/build.sh"

main() {
  set -euo pipefail
  cd "$ROOT"
  step "machine: $(uname -m), $(nproc) cores; python: $(command -v "$PYTHON")"
  "$PYTHON" -c 'import torch, transformers; print("torch", torch.__version__, "cuda", torch.version.cuda, "gpu", torch.cuda.is_available(), "| transformers", transformers.__version__)'

  # 1-3. Debian packages into a prefix, PyTorch, and the build of model_tool
  # (the model runner; no gRPC, tests or benchmarks): tools/gpu/build.sh.
  WITH_GRPC=OFF gpu_build model_tool
  local libdir="$GPU_LIBDIR"

  # 4. A smoke run (the prefix's libraries load through LD_LIBRARY_PATH: docs/GPU.md).
  local tool="$BUILD_DIR/bin/model_tool"
  step "smoke run of $tool"
  LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$tool" --random=tiny \
    --new_tokens=4
  if [[ -n "$torch_cuda" ]] && "$PYTHON" -c 'import sys, torch; sys.exit(not torch.cuda.is_available())'; then
    # Not fatal: compare.py then reports the CUDA runs as errors and still does the CPU's.
    LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$tool" --random=tiny \
      --new_tokens=4 --device=cuda --dtype=bfloat16 || echo "warning: the CUDA smoke run failed"
  fi

  # 5. The comparison.
  step "compare.py"
  rm -rf "$WORK"
  # shellcheck disable=SC2086  # COMPARE_ARGS is a list of words
  "$PYTHON" "$ROOT/tools/hf_conformance/compare.py" --model_tool "$tool" \
    --library_path "$libdir" --work "$WORK" --out "$OUT" ${COMPARE_ARGS:-}
}

mkdir -p "$OUT"
set +e
main 2>&1 | tee "$OUT/run.log"
status=${PIPESTATUS[0]}
echo "==> exit status $status; report and log in $OUT"
exit "$status"
