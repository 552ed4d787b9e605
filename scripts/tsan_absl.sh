#!/usr/bin/env bash
# Builds Debian's own Abseil (the same 20220623 source, with Debian's patches
# and inline namespace) instrumented for ThreadSanitizer, into $1 (default
# build-thread-absl/). `scripts/test.sh --sanitize=thread` runs the suites
# with these libraries first on LD_LIBRARY_PATH: same ABI, same sonames.
# Why: TSan sees only instrumented code, and absl::Mutex lives in Debian's
# uninstrumented libabsl_synchronization.so, so without this every access
# guarded by an absl::Mutex is reported as a race.
#   bash scripts/tsan_absl.sh [PREFIX]
# Needs the network to Debian's archive (deb-src of bookworm); ~5 min on 2 cores.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PREFIX="${1:-$ROOT/build-thread-absl}"
if [ -e "$PREFIX/lib/libabsl_synchronization.so.20220623" ]; then
  echo "==> TSan Abseil already in $PREFIX"
  exit 0
fi
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/lists/partial" "$WORK/src"
cat >"$WORK/sources.list" <<'LIST'
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main
LIST
APT=(-o Dir::Etc::sourcelist="$WORK/sources.list" -o Dir::Etc::sourceparts=/nonexistent
     -o Dir::State::Lists="$WORK/lists" -o APT::Sandbox::User=root)
echo "==> fetching Debian's abseil source"
apt-get "${APT[@]}" update >/dev/null
version="$(dpkg-query -W -f='${source:Version}' libabsl-dev)"
(cd "$WORK/src" && apt-get "${APT[@]}" source --download-only "abseil=$version" >/dev/null)
dpkg-source -x "$WORK/src"/abseil_*.dsc "$WORK/absl" >/dev/null
echo "==> building it with -fsanitize=thread into $PREFIX"
cmake -S "$WORK/absl" -B "$WORK/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_STANDARD=17 -DBUILD_SHARED_LIBS=ON -DCMAKE_CXX_FLAGS=-fsanitize=thread \
  -DCMAKE_SHARED_LINKER_FLAGS=-fsanitize=thread -DCMAKE_INSTALL_PREFIX="$PREFIX" >/dev/null
cmake --build "$WORK/build" -j "${JOBS:-$(nproc)}" >/dev/null
cmake --install "$WORK/build" >/dev/null
echo "==> $PREFIX/lib"
