#!/usr/bin/env bash
# Installs what entroserve needs on Debian 12 (only the packages missing),
# then configures and builds into build/. Sourced by demo.sh and test.sh;
# safe to run on its own: bash scripts/setup.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
JOBS="${JOBS:-$(nproc)}"

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git curl clang-14 libclang-rt-14-dev
  libabsl-dev libprotobuf-dev protobuf-compiler libgrpc++-dev protobuf-compiler-grpc
  libgtest-dev libgmock-dev libbenchmark-dev
  libtorch-dev libopenblas0-pthread libpcre2-dev libicu-dev nlohmann-json3-dev
  libcpp-httplib-dev prometheus-cpp-dev prometheus openssl
  python3-numpy python3-grpcio python3-protobuf python3-pytest python3-torch
  chromium fonts-noto-color-emoji
  podman runc catatonit mmdebstrap uidmap slirp4netns fuse-overlayfs
)
# Node.js and npm run the tokenizer conformance reference; any install on PATH
# will do (Debian's or another), else Debian's.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  PACKAGES+=(nodejs npm)
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
if ((${#missing[@]})); then
  echo "==> installing ${#missing[@]} Debian packages: ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

echo "==> configuring $BUILD_DIR"
cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release ${CMAKE_ARGS:-} >/dev/null
echo "==> building ($JOBS jobs)"
# BUILD_TARGETS (scripts/test.sh --targets): only those, e.g. for a sanitizer run.
# shellcheck disable=SC2086
cmake --build "$BUILD_DIR" -j "$JOBS" ${BUILD_TARGETS:+--target $BUILD_TARGETS}
