#!/usr/bin/env bash
# The demo: installs what is missing, builds, starts samplerd on a free
# loopback port, streams a sequence through it with the entropix sampler
# (each step coloured by the mode it chose), then the same through alpha,
# and stops the server cleanly (also on Ctrl-C).
#   bash scripts/demo.sh [--steps N]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
STEPS=40
while (($#)); do
  case "$1" in
    --steps) STEPS="$2"; shift 2 ;;
    --steps=*) STEPS="${1#*=}"; shift ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "demo.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done

bash "$ROOT/scripts/setup.sh"
BIN="$BUILD_DIR/bin"
LOG="$(mktemp -t samplerd.XXXXXX.log)"
SAMPLERD_PID=""
cleanup() {
  if [ -n "$SAMPLERD_PID" ] && kill -0 "$SAMPLERD_PID" 2>/dev/null; then
    kill -TERM "$SAMPLERD_PID" 2>/dev/null || true
    wait "$SAMPLERD_PID" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'echo; echo "interrupted"; exit 130' INT TERM

"$BIN/samplerd" --host=127.0.0.1 --port=0 >"$LOG" 2>&1 &
SAMPLERD_PID=$!
PORT=""
for _ in $(seq 1 100); do
  PORT="$(sed -n 's/.*listening on .*:\([0-9][0-9]*\).*/\1/p' "$LOG" | head -n1)"
  [ -n "$PORT" ] && break
  kill -0 "$SAMPLERD_PID" 2>/dev/null || { cat "$LOG" >&2; exit 1; }
  sleep 0.1
done
[ -n "$PORT" ] || { echo "samplerd did not start:" >&2; cat "$LOG" >&2; exit 1; }
echo "==> samplerd on 127.0.0.1:$PORT"
echo
echo "==> entropix, $STEPS steps"
"$BIN/samplerctl" replay --server="127.0.0.1:$PORT" --sampler=entropix --steps="$STEPS" --seed=7
echo
echo "==> alpha, $STEPS steps"
"$BIN/samplerctl" replay --server="127.0.0.1:$PORT" --sampler=alpha --steps="$STEPS" --seed=7
