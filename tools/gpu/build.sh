#!/usr/bin/env bash
# Builds entroserve against this machine's PyTorch (CUDA or not) and Debian
# packages unpacked into a prefix: steps 1-3 of docs/GPU.md, shared by
# tools/hf_conformance/run.sh and tools/gpu/run_all.sh. Source it and call
#
#   gpu_build TARGET...        (sets GPU_LIBDIR: the prefix's library folder,
#                               for LD_LIBRARY_PATH; empty without a prefix)
#
# or run it: bash tools/gpu/build.sh TARGET...
#
# Environment, all optional:
#   PYTHON     python with torch                                  (python3)
#   DEBS       folders of .deb files to unpack (space-separated)  (.device/debs .device/debs-grpc)
#   PREFIX     where they are unpacked, never /                   (/tmp/debprefix)
#   BUILD_DIR  CMake build folder                                 (build-gpu)
#   JOBS       parallel compile jobs                              (nproc)
#   WITH_GRPC  ON: also gRPC, the services, clients and bench/    (OFF)
#   CMAKE_ARGS more configure arguments (space-separated)         (none)
#              (needs .device/debs-grpc: docs/GPU.md)

_GPU_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PYTHON="${PYTHON:-python3}"
DEBS="${DEBS:-$_GPU_ROOT/.device/debs $_GPU_ROOT/.device/debs-grpc}"
PREFIX="${PREFIX:-/tmp/debprefix}"
BUILD_DIR="${BUILD_DIR:-$_GPU_ROOT/build-gpu}"
JOBS="${JOBS:-$(nproc)}"
WITH_GRPC="${WITH_GRPC:-OFF}"
GPU_LIBDIR=""

step() { echo "==> $*"; }

gpu_build() {
  set -euo pipefail
  (($#)) || { echo "gpu_build: name the targets to build" >&2; return 2; }
  local ROOT="$_GPU_ROOT"
  # 1. Debian packages (Abseil, nlohmann-json, PCRE2, ICU, GoogleTest) into a prefix.
  local prefixes="" libdir="" dir debs=() deb
  for dir in $DEBS; do
    if compgen -G "$dir/*.deb" >/dev/null; then debs+=("$dir"/*.deb); fi
  done
  if ((${#debs[@]})); then
    step "unpacking ${#debs[@]} packages from $DEBS into $PREFIX"
    mkdir -p "$PREFIX"
    for deb in "${debs[@]}"; do
      if command -v dpkg-deb >/dev/null; then
        dpkg-deb -x "$deb" "$PREFIX" || return 1
      else  # a .deb is an ar archive holding data.tar.*
        (cd "$(mktemp -d)" && ar x "$deb" && tar -xf data.tar.* -C "$PREFIX") || return 1
      fi
    done
    prefixes="$PREFIX/usr"
    libdir="$PREFIX/usr/lib/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)"
  else
    step "no .deb files in $DEBS: using the system's packages"
  fi

  # 2. PyTorch: its CMake prefix, ABI and CUDA.
  local torch_cmake torch_cuda abi
  torch_cmake="$("$PYTHON" -c 'import torch; print(torch.utils.cmake_prefix_path)')" || return 1
  torch_cuda="$("$PYTHON" -c 'import torch; print(torch.version.cuda or "")')" || return 1
  abi="$("$PYTHON" -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))')" || return 1
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

  # 3. Configure and build the targets.
  local generator=()
  if [[ ! -f "$BUILD_DIR/CMakeCache.txt" ]] && command -v ninja >/dev/null; then
    generator=(-G Ninja)
  fi
  step "cmake: ENTROSERVE_PREFIXES=$prefixes"
  # The prefix's protoc and grpc_cpp_plugin run during the build: they find
  # their libraries (libprotoc, libgrpc_plugin_support) through this path.
  local path="$libdir${LD_LIBRARY_PATH:+${libdir:+:}$LD_LIBRARY_PATH}"
  LD_LIBRARY_PATH="$path" cmake -S "$ROOT" -B "$BUILD_DIR" "${generator[@]}" \
    -DCMAKE_BUILD_TYPE=Release -DENTROSERVE_WITH_GRPC="$WITH_GRPC" \
    -DENTROSERVE_BUILD_TESTS=OFF -DENTROSERVE_BUILD_BENCH="$WITH_GRPC" \
    -DENTROSERVE_PREFIXES="$prefixes" ${CMAKE_ARGS:-} || return 1
  step "building $* with $JOBS jobs"
  LD_LIBRARY_PATH="$path" cmake --build "$BUILD_DIR" --target "$@" -j "$JOBS" || return 1
  GPU_LIBDIR="$libdir"

}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  gpu_build "$@"
  echo "==> built; run with LD_LIBRARY_PATH=$GPU_LIBDIR"
fi
