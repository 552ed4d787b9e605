#!/usr/bin/env bash
# A long fuzzing run (docs/RELIABILITY.md, "Fuzzers"): every target of fuzz/,
# or the TARGET[:PROCESSES] given, for $1 seconds (default 1800), $JOBS
# targets at a time (default 2), then the executions each made.
#   bash bench/fuzz_long.sh 1800
#   JOBS=8 bash bench/fuzz_long.sh 480 tokenizer_json:5 tokenizer_text:4 chat_template
# Prebuilt binaries elsewhere: FUZZ_BUILD_DIR=DIR with DIR/bin/*_fuzzer, and
# --no-build among the arguments.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
exec bash "$ROOT/scripts/fuzz.sh" --seconds="${1:-1800}" --jobs="${JOBS:-2}" "${@:2}"
