#!/usr/bin/env bash
# The demo: installs what is missing, builds, starts samplerd on a free
# loopback port, streams a sequence through it with the entropix sampler
# (each step coloured by the mode it chose), then the same through alpha;
# then starts runnerd on the bundled tiny model (models/tiny) with samplerd
# as its sampler and generates text, each token coloured by its mode, with a
# summary (tokens, tokens/s, modes, mean entropy and varentropy) and a trace
# (.jsonl and .html, paths printed); compares greedy, chain, entropix and
# alpha on the same prompt; and stops the servers cleanly (also on Ctrl-C).
# Both servers listen on ports the kernel picks (--port=0), so a port in use
# never stops it.
#   bash scripts/demo.sh [--steps N] [--max_new_tokens N | --tokens N]
#                        [--out DIR] [--no-setup]
#   --steps N           length of the synthetic replays (default 40)
#   --max_new_tokens N  tokens of each generation (default 60)
#   --out DIR           where the traces go (default $BUILD_DIR/demo)
#   --no-setup          use the binaries already in $BUILD_DIR/bin: no
#                       package check, no build (tests run it so)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
STEPS=40
TOKENS=60
OUT=""
SETUP=1
while (($#)); do
  case "$1" in
    --steps|--max_new_tokens|--max-new-tokens|--tokens|--out)
      if (($# < 2)); then echo "demo.sh: $1 needs a value (try --help)" >&2; exit 2; fi ;;&
    --steps) STEPS="$2"; shift 2 ;;
    --steps=*) STEPS="${1#*=}"; shift ;;
    --max_new_tokens|--max-new-tokens|--tokens) TOKENS="$2"; shift 2 ;;
    --max_new_tokens=*|--max-new-tokens=*|--tokens=*) TOKENS="${1#*=}"; shift ;;
    --out) OUT="$2"; shift 2 ;;
    --out=*) OUT="${1#*=}"; shift ;;
    --no-setup|--no_setup) SETUP=0; shift ;;
    -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
    *) echo "demo.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done
OUT="${OUT:-$BUILD_DIR/demo}"

if ((SETUP)); then
  bash "$ROOT/scripts/setup.sh"
fi
BIN="$BUILD_DIR/bin"
for tool in samplerd samplerctl; do
  if [ ! -x "$BIN/$tool" ]; then
    echo "demo.sh: $BIN/$tool is missing: build first (or run without --no-setup)" >&2
    exit 1
  fi
done
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
# A free port for the OpenAI-compatible HTTP API (--http_port has no "pick one").
HTTP_PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$BIN/runnerd" --model="$ROOT/models/tiny" --sampler="127.0.0.1:$PORT" --host=127.0.0.1 \
  --port=0 --http_port="$HTTP_PORT" --threads=2 >"$RUNNERD_LOG" 2>&1 &
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
echo "==> runnerd on 127.0.0.1:$RUNNERD_PORT (gRPC) and http://127.0.0.1:$HTTP_PORT (OpenAI API)"
echo "    serving models/tiny, sampling through samplerd"
"$BIN/samplerctl" info --server="127.0.0.1:$RUNNERD_PORT"
PROMPT="The jury said"
SEED=4
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
echo
echo "==> generate, entropix with thresholds calibrated to models/tiny (models/tiny/entropix.txtpb;"
echo "    the defaults suit large models: on this one nearly every token would be resample or"
echo "    explore). --show-modes: each token coloured by its mode, then a summary"
"$BIN/samplerctl" generate --server="127.0.0.1:$RUNNERD_PORT" --prompt="$PROMPT" \
  --spec="$(cat "$ROOT/models/tiny/entropix.txtpb")" --max_new_tokens="$TOKENS" --seed="$SEED" \
  --show-modes \
  --trace="$OUT/entropix.jsonl" --trace-html="$OUT/entropix.html"
echo "==> trace: open file://$OUT/entropix.html in a browser ($OUT/entropix.jsonl has a" \
  "JSON line per token)"
echo
echo "==> compare: the same prompt and seed through greedy, chain, entropix (default thresholds)"
echo "    and alpha"
"$BIN/samplerctl" compare --server="127.0.0.1:$RUNNERD_PORT" --prompt="$PROMPT" \
  --samplers=greedy,chain,entropix,alpha --max_new_tokens="$TOKENS" --seed="$SEED"
echo
echo "==> chat, greedy"
"$BIN/samplerctl" generate --server="127.0.0.1:$RUNNERD_PORT" --sampler=greedy \
  --max_new_tokens="$TOKENS" --chat="Continue the text.

The committee met on Monday to discuss the new budget."
echo
echo "==> the OpenAI-compatible API: curl http://127.0.0.1:$HTTP_PORT/v1/chat/completions (entropix)"
curl -sS "http://127.0.0.1:$HTTP_PORT/v1/chat/completions" -H 'Content-Type: application/json' \
  -d "{\"model\": \"tiny\", \"messages\": [{\"role\": \"user\", \"content\": \"Tell me about Texas.\"}],
       \"max_tokens\": $TOKENS, \"seed\": $SEED, \"sampler\": \"entropix\"}"
echo
