#!/usr/bin/env bash
# The demo: installs what is missing, builds, starts samplerd on a free
# loopback port, streams a sequence through it with the entropix sampler
# (each step coloured by the mode it chose), then the same through alpha;
# then starts runnerd on the bundled tiny model (models/tiny) with samplerd
# as its sampler and generates text, each token coloured by its mode; and
# stops the servers cleanly (also on Ctrl-C).
#   bash scripts/demo.sh [--steps N]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
STEPS=40
while (($#)); do
  case "$1" in
    --steps) STEPS="$2"; shift 2 ;;
    --steps=*) STEPS="${1#*=}"; shift ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "demo.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done

bash "$ROOT/scripts/setup.sh"
BIN="$BUILD_DIR/bin"
LOG="$(mktemp -t samplerd.XXXXXX.log)"
RUNNERD_LOG="$(mktemp -t runnerd.XXXXXX.log)"
SAMPLERD_PID=""
RUNNERD_PID=""
cleanup() {
  for pid in "$RUNNERD_PID" "$SAMPLERD_PID"; do
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
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

if [ ! -x "$BIN/runnerd" ]; then
  echo
  echo "(runnerd was not built: libtorch missing; skipping the generation demo)"
  exit 0
fi
"$BIN/runnerd" --model="$ROOT/models/tiny" --sampler="127.0.0.1:$PORT" --host=127.0.0.1 \
  --port=0 --threads=2 >"$RUNNERD_LOG" 2>&1 &
RUNNERD_PID=$!
RUNNERD_PORT=""
for _ in $(seq 1 300); do
  if grep -q "runnerd serving" "$RUNNERD_LOG"; then
    RUNNERD_PORT="$(sed -n 's/.*runnerd listening on .*:\([0-9][0-9]*\).*/\1/p' "$RUNNERD_LOG" | head -n1)"
    break
  fi
  kill -0 "$RUNNERD_PID" 2>/dev/null || { cat "$RUNNERD_LOG" >&2; exit 1; }
  sleep 0.1
done
[ -n "$RUNNERD_PORT" ] || { echo "runnerd did not start:" >&2; cat "$RUNNERD_LOG" >&2; exit 1; }
echo
echo "==> runnerd on 127.0.0.1:$RUNNERD_PORT serving models/tiny, sampling through samplerd"
"$BIN/samplerctl" info --server="127.0.0.1:$RUNNERD_PORT"
echo
echo "==> generate, entropix"
"$BIN/samplerctl" generate --server="127.0.0.1:$RUNNERD_PORT" --prompt="The jury said" \
  --max_new_tokens=60 --seed=7 --show-modes
echo
echo "==> chat, greedy"
"$BIN/samplerctl" generate --server="127.0.0.1:$RUNNERD_PORT" --sampler=greedy \
  --chat="Continue the text.

The committee met on Monday to discuss the new budget."
