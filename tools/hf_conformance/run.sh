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
#   DEBS          folder of .deb files to unpack                   (.device/debs)
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
DEBS="${DEBS:-$ROOT/.device/debs}"
PREFIX="${PREFIX:-/tmp/debprefix}"
BUILD_DIR="${BUILD_DIR:-$ROOT/build-conf}"
JOBS="${JOBS:-$(nproc)}"
OUT="${OUT:-$BUILD_DIR/hf_conformance}"
WORK="${WORK:-/tmp/hf_conformance}"
export PYTHONUNBUFFERED=1

step() { echo "==> $*"; }

main() {
  set -euo pipefail
  cd "$ROOT"
  step "machine: $(uname -m), $(nproc) cores; python: $(command -v "$PYTHON")"
  "$PYTHON" -c 'import torch, transformers; print("torch", torch.__version__, "cuda", torch.version.cuda, "gpu", torch.cuda.is_available(), "| transformers", transformers.__version__)'

  # 1. Debian packages (Abseil, nlohmann-json, PCRE2, ICU, GoogleTest) into a prefix.
  local prefixes="" libdir=""
  if compgen -G "$DEBS/*.deb" >/dev/null; then
    local debs=("$DEBS"/*.deb) deb
    step "unpacking ${#debs[@]} packages from $DEBS into $PREFIX"
    mkdir -p "$PREFIX"
    for deb in "${debs[@]}"; do
      if command -v dpkg-deb >/dev/null; then
        dpkg-deb -x "$deb" "$PREFIX"
      else  # a .deb is an ar archive holding data.tar.*
        (cd "$(mktemp -d)" && ar x "$deb" && tar -xf data.tar.* -C "$PREFIX")
      fi
    done
    prefixes="$PREFIX/usr"
    libdir="$PREFIX/usr/lib/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)"
  else
    step "no .deb files in $DEBS: using the system's Abseil, nlohmann-json, PCRE2 and ICU"
  fi

  # 2. PyTorch: its CMake prefix, ABI and CUDA.
  local torch_cmake torch_cuda abi
  torch_cmake="$("$PYTHON" -c 'import torch; print(torch.utils.cmake_prefix_path)')"
  torch_cuda="$("$PYTHON" -c 'import torch; print(torch.version.cuda or "")')"
  abi="$("$PYTHON" -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))')"
  if [[ "$abi" != 1 ]]; then
    echo "error: this PyTorch uses the pre-C++11 libstdc++ ABI; Debian's Abseil uses the" \
         "C++11 ABI (docs/GPU.md)" >&2
    return 1
  fi
  if [[ -d "$torch_cmake/Torch" ]]; then
    prefixes="${prefixes:+$prefixes;}$torch_cmake"
  else  # e.g. Debian's python3-torch: its libtorch-dev config is found in /usr
    step "no $torch_cmake/Torch: CMake looks for Torch in the system's prefixes"
  fi
  if [[ -n "$torch_cuda" ]]; then
    # PyTorch's CMake config enables the CUDA language: it needs nvcc.
    if ! command -v nvcc >/dev/null; then
      local dir
      for dir in /usr/local/cuda/bin /usr/local/cuda-*/bin; do
        if [[ -x "$dir/nvcc" ]]; then PATH="$dir:$PATH"; break; fi
      done
    fi
    if ! command -v nvcc >/dev/null; then
      echo "error: PyTorch is a CUDA $torch_cuda build and its CMake config needs CUDA's" \
           "nvcc; none on PATH or in /usr/local/cuda*/bin" >&2
      return 1
    fi
    export CUDACXX="${CUDACXX:-$(command -v nvcc)}"
    # Skips the GPU detection of PyTorch's config (we compile no CUDA code).
    export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-$("$PYTHON" -c 'import torch; print("%d.%d" % torch.cuda.get_device_capability() if torch.cuda.is_available() else "9.0")')}"
    step "CUDA $torch_cuda: nvcc $CUDACXX, TORCH_CUDA_ARCH_LIST=$TORCH_CUDA_ARCH_LIST"
  fi

  # 3. Configure and build model_tool (the model runner; no gRPC, tests or benchmarks).
  local generator=()
  if [[ ! -f "$BUILD_DIR/CMakeCache.txt" ]] && command -v ninja >/dev/null; then
    generator=(-G Ninja)
  fi
  step "cmake: ENTROSERVE_PREFIXES=$prefixes"
  cmake -S "$ROOT" -B "$BUILD_DIR" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
    -DENTROSERVE_WITH_GRPC=OFF -DENTROSERVE_BUILD_TESTS=OFF -DENTROSERVE_BUILD_BENCH=OFF \
    -DENTROSERVE_PREFIXES="$prefixes"
  step "building model_tool with $JOBS jobs"
  cmake --build "$BUILD_DIR" --target model_tool -j "$JOBS"

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
