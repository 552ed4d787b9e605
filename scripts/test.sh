#!/usr/bin/env bash
# The test command: installs what is missing, builds, runs every suite.
#   bash scripts/test.sh
# Sanitizer builds, each in a build folder of its own (build-<sanitizers>/),
# with the suites that matter for it unless --tests names others:
#   bash scripts/test.sh --sanitize=address,undefined   # every suite but the
#                                                       # long fuzz smoke test
#   bash scripts/test.sh --sanitize=thread              # services and engine
#   bash scripts/test.sh --sanitize=thread --tests='samplerd_integration'
# --tests is a ctest -R regex; --targets limits what is built to the test
# binaries a run needs (space-separated target names).
# Without --sanitize (CI's run), the plain suites are followed by an
# AddressSanitizer + UBSan pass over every suite that does not link libtorch
# (ASAN_SUITES below: the sampler, the services' wire and samplerd, the
# tokenizer, samplerctl, the logs); --no-asan skips it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SANITIZE=""
TESTS=""
TARGETS=""
ASAN_PASS=1
for arg in "$@"; do
  case "$arg" in
    --no-asan) ASAN_PASS=0 ;;
    --sanitize=*) SANITIZE="${arg#*=}" ;;
    --tests=*) TESTS="${arg#*=}" ;;
    --targets=*) TARGETS="${arg#*=}" ;;
    *) echo "unknown argument $arg (see the top of $0)" >&2; exit 2 ;;
  esac
done
EXCLUDE=""
if [ -n "$SANITIZE" ]; then
  export BUILD_DIR="${BUILD_DIR:-$ROOT/build-${SANITIZE//,/-}}"
  # -O1 -g: readable reports at a bearable speed; the fuzzers have their own
  # build (scripts/fuzz.sh), and ctest's fuzz_smoke is left to the plain one.
  export CMAKE_ARGS="${CMAKE_ARGS:-} -DCMAKE_BUILD_TYPE=RelWithDebInfo -DENTROSERVE_SANITIZE=$SANITIZE \
    -DENTROSERVE_FUZZ_SECONDS=0 -DENTROSERVE_BUILD_BENCH=OFF"
  export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:strict_string_checks=1}"
  export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
  export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:suppressions=$ROOT/scripts/tsan_suppressions.txt}"
  if [ "$SANITIZE" = thread ] && [ -z "$TESTS" ]; then
    # The threaded code: the services (worker pool, reactors, backends,
    # processes) and the engine's scheduler.
    TESTS='^(worker_pool|message_bytes|shared_memory|convert|samplerd|runner|runnerd|engine|tiny_model)_'
  fi

  # Python and Node suites drive the built binaries, not sanitized code of
  # their own; the podman end to end needs containers of a release build.
  EXCLUDE='numpy|python|node|deploy|podman|browser'
fi
export BUILD_TARGETS="$TARGETS"
bash "$ROOT/scripts/setup.sh"
if [ "$SANITIZE" = thread ]; then
  # absl::Mutex must be instrumented too (scripts/tsan_absl.sh says why).
  TSAN_ABSL="${TSAN_ABSL:-$ROOT/build-thread-absl}"
  bash "$ROOT/scripts/tsan_absl.sh" "$TSAN_ABSL"
  export LD_LIBRARY_PATH="$TSAN_ABSL/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
echo "==> ctest${SANITIZE:+ ($SANITIZE)}"
cd "$BUILD_DIR"
ctest --output-on-failure -j "${JOBS:-$(nproc)}" --timeout 600 ${TESTS:+-R "$TESTS"} \
  ${EXCLUDE:+-E "$EXCLUDE"}

if [ -z "$SANITIZE" ] && ((ASAN_PASS)); then
  ASAN_SUITES="utf8 signals tensor rng candidates configs fast_math top_tokens entropix alpha \
    stages stages_samplers chain_order chain_presets pre_stages sample_row_mask sample_row_bf16 convert \
    config_reflection shared_memory shared_memory_channel worker_pool message_bytes \
    samplerd_integration \
    samplerd_security tokenizer tokenizer_regex_syntax chat_template samplerctl_core log"
  targets="samplerd samplerctl"
  for suite in $ASAN_SUITES; do targets="$targets ${suite}_test"; done
  BUILD_DIR="" bash "$ROOT/scripts/test.sh" --sanitize=address,undefined --targets="$targets" \
    --tests="^($(echo $ASAN_SUITES | tr ' ' '|'))_test\."
fi
