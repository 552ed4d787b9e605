#!/usr/bin/env bash
# The long fuzzing run recorded in docs/RELIABILITY.md: every target of fuzz/
# for $1 seconds (default 1800), two at a time, then the executions each made.
#   bash bench/fuzz_long.sh 1800
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
exec bash "$ROOT/scripts/fuzz.sh" --seconds="${1:-1800}" --jobs="${JOBS:-2}"
