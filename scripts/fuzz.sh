#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ (clang-14, AddressSanitizer +
# UndefinedBehaviorSanitizer) into build-fuzz/ and runs each one for a
# bounded time, in parallel, from its seed corpus (fuzz/corpus/<target>/; the
# inputs a run finds are kept in build-fuzz/corpus/<target>/, not in git).
#   bash scripts/fuzz.sh                     every target, 20 s each (CI)
#   bash scripts/fuzz.sh --seconds=3600 sample_request
#   bash scripts/fuzz.sh --seconds=500 --jobs=8 tokenizer_json:5 chat_template
# TARGET:N runs N fuzzing processes for that target (libFuzzer's -fork=N,
# which merges what they find); --no-build runs the binaries already in
# $FUZZ_BUILD_DIR/bin (e.g. copied to a machine without clang).
# A crash, leak, sanitizer report or timeout fails the run; its input is left
# in build-fuzz/findings/. Executions per target are printed at the end.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${FUZZ_BUILD_DIR:-$ROOT/build-fuzz}"
SECONDS_EACH=20
JOBS="${JOBS:-$(nproc)}"
BUILD=1
TARGETS=()
declare -A FORKS=()
for arg in "$@"; do
  case "$arg" in
    --seconds=*) SECONDS_EACH="${arg#*=}" ;;
    --jobs=*) JOBS="${arg#*=}" ;;
    --no-build) BUILD=0 ;;
    -*) echo "unknown flag $arg" >&2; exit 2 ;;
    *:*) TARGETS+=("${arg%%:*}"); FORKS[${arg%%:*}]="${arg#*:}" ;;
    *) TARGETS+=("$arg") ;;
  esac
done
if ((${#TARGETS[@]} == 0)); then
  TARGETS=($(cd "$ROOT/fuzz" && ls -1 *_fuzzer.cc | sed 's/_fuzzer\.cc$//'))
fi

if ((BUILD)); then
  echo "==> configuring $BUILD_DIR (clang-14, ASan + UBSan, libFuzzer)"
  cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 -DENTROSERVE_FUZZ=ON \
    -DENTROSERVE_WITH_TORCH=OFF -DENTROSERVE_BUILD_TESTS=OFF -DENTROSERVE_BUILD_BENCH=OFF >/dev/null
  echo "==> building ${#TARGETS[@]} fuzzers"
  cmake --build "$BUILD_DIR" -j "$JOBS" --target "${TARGETS[@]/%/_fuzzer}"
fi

mkdir -p "$BUILD_DIR/findings" "$BUILD_DIR/logs"
run_one() {
  local target="${1%%:*}" forks="${1#*:}" work="$BUILD_DIR/corpus/${1%%:*}"
  local fork_flag=()
  if [ "$forks" != "$1" ] && [ "$forks" -gt 1 ]; then fork_flag=(-fork="$forks"); fi
  mkdir -p "$work"
  # -rss_limit_mb: a request may ask for big tensors, but not for gigabytes.
  # -timeout=60: one input taking that long is a hang; less flags inputs that
  # only waited for a CPU on a loaded machine.
  "$BUILD_DIR/bin/${target}_fuzzer" "$work" "$ROOT/fuzz/corpus/$target" \
    -seed="${FUZZ_SEED:-1}" -max_total_time="$SECONDS_EACH" -timeout=60 -rss_limit_mb=2560 -max_len=65536 \
    -print_final_stats=1 -artifact_prefix="$BUILD_DIR/findings/${target}-" "${fork_flag[@]}" \
    >"$BUILD_DIR/logs/$target.log" 2>&1
}
export -f run_one
export BUILD_DIR ROOT SECONDS_EACH
echo "==> running ${#TARGETS[@]} fuzzers for ${SECONDS_EACH} s each, $JOBS at a time"
status=0
for target in "${TARGETS[@]}"; do echo "$target:${FORKS[$target]:-1}"; done |
  xargs -P "$JOBS" -I{} bash -c 'run_one {}' || status=$?
for target in "${TARGETS[@]}"; do
  log="$BUILD_DIR/logs/$target.log"
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  # -fork=N prints its running total of every process's executions instead.
  [ -n "$runs" ] || runs=$(sed -n 's/^#\([0-9]*\): cov:.*/\1/p' "$log" | tail -1)
  if grep -qE "ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: |oom/timeout/crash: ([1-9]|0/[1-9]|0/0/[1-9])" "$log"; then
    echo "FAIL $target (${runs:-?} runs): see $log"
    grep -m5 -E "ERROR|runtime error|SUMMARY" "$log" || true
    status=1
  else
    echo "ok   $target: ${runs:-?} runs in ${SECONDS_EACH} s (${FORKS[$target]:-1} process(es))"
  fi
done
exit "$status"
