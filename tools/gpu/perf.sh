#!/usr/bin/env bash
# The GPU runner's figures of docs/PERFORMANCE.md ("Decode graphs") in one
# command on the GPU machine, from the repository root (device tool: carry
# [".device"]; docs/GPU.md):
#
#   PHASES="build check tokens model backend bench benchnopipe benchr1 benchoff conformance hf" \
#     bash tools/gpu/perf.sh
#
# build        samplerd, runnerd, model_tool, generate_bench, backend_bench
#              (tools/gpu/build.sh);
#              if the fused kernels do not build, again without them
# check        the fused decode kernels against the ATen operations: BF16
#              logits and scores of teacher-forced steps (tools/gpu/check_fused.py);
#              when they fail, later phases run with --fused_kernels=off
# tokens       F32 greedy tokens with decode graphs and fused projections
#              (the CUDA defaults) against both off (the runner before them):
#              random 1B shape at batch 8, models/tiny at batch 8; prints SAME
#              or DIFFERENT per model
# model        model_tool decode tokens/s, BF16 1B shape, batch 1/8/32, each
#              with the graphs on and off
# backend      backend_bench: one step's sampler call in process, through
#              samplerd's shared-memory channel, its messages, inline (no model);
#              then one row with 1.5 ms between calls, samplerd's channel
#              threads spinning or not (--channel_spinners)
# bench        generate_bench (runnerd, sampler local vs samplerd with and
#              without the channel), BF16 1B shape, 1/8/32 concurrent
#              requests, the defaults
# benchnopipe  the same with --pipeline=off
# benchr1      the same with --fused_kernels=off --pipeline=off (round 1's
#              runner, with its outputs read as BF16 into recycled vectors)
# benchoff     the same with the graphs and fusion off (the runner before them)
# conformance  tools/hf_conformance/compare.py on the model_tool just built
# hf           transformers on the same 1B checkpoint (tools/gpu/hf_speed.py)
#
# Environment, all optional: PHASES (default: all of the above), OUT (where
# the logs go, as one perf-logs.tgz: the device tool's $OUT), BUILD_DIR (default /tmp/entroserve-build, outside
# the tree so that a later call on the same machine reuses it), ROUNDS (5),
# NEW_TOKENS (128), BENCH_ARGS (more generate_bench.sh arguments), HF_ARGS.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
PHASES="${PHASES:-build check tokens model backend bench benchnopipe benchr1 benchoff conformance hf}"
FINAL_OUT="${OUT:-$ROOT/build-gpu/perf}"
OUT=/tmp/entroserve-perf-logs
export BUILD_DIR="${BUILD_DIR:-/tmp/entroserve-build}"
export WITH_GRPC=ON PYTHONUNBUFFERED=1
ROUNDS="${ROUNDS:-5}"
NEW_TOKENS="${NEW_TOKENS:-128}"
OFF_FLAGS="--decode_graphs=off --fuse_projections=off"
FUSED_FLAG=""  # --fused_kernels=off once the check failed
WORK=/tmp/entroserve-bench
MODEL_1B="$WORK/llama-3.2-1b-shape-bfloat16"
source "$ROOT/tools/gpu/build.sh"
mkdir -p "$OUT" "$WORK" "$FINAL_OUT"
libdir="$PREFIX/usr/lib/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)"
export LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
BIN="$BUILD_DIR/bin"
status=0
has() { [[ " $PHASES " == *" $1 "* ]]; }
seq_lines() { grep '^seq ' "$1" | sed 's/^seq \([0-9]*\) ([0-9]* prompt tokens) generated: //'; }

if has build; then
  step "build into $BUILD_DIR"
  SECONDS=0
  # ON explicitly: a build folder that fell back once keeps OFF in its cache.
  if ! (CMAKE_ARGS="-DENTROSERVE_FUSED_KERNELS=ON" gpu_build samplerd runnerd model_tool \
        generate_bench backend_bench) \
    >"$OUT/build.log" 2>&1; then
    grep -E "error|Error" "$OUT/build.log" | head -30
    echo "==> build failed; again without the fused kernels"
    if ! (CMAKE_ARGS="-DENTROSERVE_FUSED_KERNELS=OFF" gpu_build samplerd runnerd model_tool \
          generate_bench backend_bench) >"$OUT/build_nofused.log" 2>&1; then
      tail -20 "$OUT/build_nofused.log"
      echo "==> build failed (logs: $OUT/build*.log)"
      cp "$OUT"/build*.log "$FINAL_OUT/"; exit 1
    fi
  fi
  grep -E "fused decode kernels" "$OUT/build.log" "$OUT/build_nofused.log" 2>/dev/null
  grep -E "decode steps can run as CUDA graphs" "$OUT/build.log" || echo "warning: no CUDA graphs"
  echo "built in ${SECONDS}s"
fi

if has check; then
  step "check: fused decode kernels vs ATen operations (BF16, teacher forcing)"
  for mode in on off eager; do
    flags="--fused_kernels=$mode"
    [[ $mode == eager ]] && flags="--decode_graphs=off"
    # shellcheck disable=SC2086
    "$BIN/model_tool" --random=llama-3.2-1b --device=cuda --dtype=bf16 --batch=2 \
      --tokens=1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16 --force_tokens=17,18,19,20,21,22 \
      $flags --dump_json="$WORK/check_$mode.json" >"$OUT/check_$mode.txt" 2>&1 ||
      { echo "model_tool failed:"; tail -5 "$OUT/check_$mode.txt"; }
  done
  if ! python3 tools/gpu/check_fused.py "$WORK"/check_{on,off,eager}.json 2>&1 |
       tee "$OUT/check.txt"; then
    echo "==> the fused kernels FAILED the check: later phases run with --fused_kernels=off"
    FUSED_FLAG="--fused_kernels=off"; status=1
  fi
  rm -f "$WORK"/check_*.json
fi

if has tokens; then
  step "tokens: F32 with decode graphs + fused projections vs both off"
  for spec in "1b:--random=llama-3.2-1b" "tiny:--model=models/tiny"; do
    name="${spec%%:*}"
    for mode in on off; do
      flags=""
      [[ $mode == off ]] && flags="$OFF_FLAGS"
      # shellcheck disable=SC2086
      "$BIN/model_tool" "${spec#*:}" --device=cuda --dtype=float32 --batch=8 --new_tokens=48 \
        --tokens=1,2,3,4,5,6,7,8,9,10,11,12 $flags >"$OUT/tokens_${name}_$mode.txt" 2>&1 ||
        { echo "model_tool failed:"; tail -5 "$OUT/tokens_${name}_$mode.txt"; status=1; }
    done
    if cmp -s <(seq_lines "$OUT/tokens_${name}_on.txt") <(seq_lines "$OUT/tokens_${name}_off.txt") &&
       [[ -n "$(seq_lines "$OUT/tokens_${name}_on.txt")" ]]; then
      echo "$name F32 tokens: SAME ($(seq_lines "$OUT/tokens_${name}_on.txt" | wc -l) sequences)"
    else
      echo "$name F32 tokens: DIFFERENT"; status=1
      diff <(seq_lines "$OUT/tokens_${name}_on.txt") <(seq_lines "$OUT/tokens_${name}_off.txt") | head -6
    fi
  done
fi

if has model; then
  step "model_tool: BF16 1B shape, decode tokens/s"
  for batch in ${MODEL_BATCHES:-1 8 32}; do
    for mode in ${MODEL_MODES:-on r1 off}; do
      flags="$FUSED_FLAG"
      [[ $mode == r1 ]] && flags="--fused_kernels=off"
      [[ $mode == off ]] && flags="$OFF_FLAGS"
      # shellcheck disable=SC2086
      ENTROSERVE_PROFILE_GRAPHS=1 "$BIN/model_tool" --random=llama-3.2-1b --device=cuda \
        --dtype=bf16 --batch=$batch --new_tokens=64 --tokens=1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16 $flags \
        >"$OUT/model_b${batch}_$mode.txt" 2>&1
      echo "batch $batch $mode: $(grep '^decode:' "$OUT/model_b${batch}_$mode.txt")"
      grep "graph profile" "$OUT/model_b${batch}_$mode.txt"
    done
  done
fi

if has backend; then
  step "backend_bench"
  "$BIN/backend_bench" --samplerd="$BIN/samplerd" --rounds "$ROUNDS" 2>&1 |
    tee "$OUT/backend_bench.txt" | grep -v "round" || status=1
  # One row with a forward pass's pause between calls: samplerd's channel
  # thread spinning for the next step (the default here) or asleep.
  for spinners in -1 0; do
    step "backend_bench, one row, 1.5 ms between calls, samplerd --channel_spinners=$spinners"
    "$BIN/backend_bench" --samplerd="$BIN/samplerd" --rounds "$ROUNDS" --batches=1 \
      --gap_us=1500 --transports=shared_memory,shared_memory+messages \
      --samplerd_flags="--channel_spinners=$spinners" 2>&1 |
      tee "$OUT/backend_bench_gap_$spinners.txt" | grep -v "round" || status=1
  done
fi

bench() {  # $1: label, rest: more generate_bench flags
  local label="$1"; shift
  step "bench ($label)"
  # shellcheck disable=SC2086  # BENCH_ARGS is a list of words
  BIN="$BIN" WORK="$WORK" bash bench/generate_bench.sh --device cuda --dtype bfloat16 \
    --models 1b --tokenizer .device/llama3-tokenizer.json.gz --backends=local,remote,remote_messages \
    --rounds "$ROUNDS" --new_tokens "$NEW_TOKENS" "$@" ${BENCH_ARGS:-} \
    2>&1 | tee "$OUT/bench_$label.txt" | grep -vE "^  round|^==> round" || status=1
}
has bench && bench graphs ${FUSED_FLAG:+"--runnerd_flags=$FUSED_FLAG"}
has benchnopipe && bench nopipe "--runnerd_flags=--pipeline=off $FUSED_FLAG"
has benchr1 && bench r1 "--runnerd_flags=--fused_kernels=off --pipeline=off"
has benchoff && bench off "--runnerd_flags=$OFF_FLAGS"

if has conformance; then
  step "conformance: tools/hf_conformance/compare.py"
  python3 tools/hf_conformance/compare.py --model_tool "$BIN/model_tool" \
    --library_path "$libdir" --work /tmp/hf_conformance --out "$OUT" \
    >"$OUT/conformance.txt" 2>&1 || status=1
  tail -15 "$OUT/conformance.txt"
fi

if has hf; then
  step "transformers on the same checkpoint"
  [[ -f "$MODEL_1B/config.json" ]] ||
    "$BIN/model_tool" --random=llama-3.2-1b --dtype=bfloat16 --save="$MODEL_1B" >/dev/null
  # shellcheck disable=SC2086
  timeout 420 python3 tools/gpu/hf_speed.py --model "$MODEL_1B" --json "$OUT/hf_speed.json" \
    ${HF_ARGS:-} 2>&1 | tee "$OUT/hf_speed.txt" | grep -vE "Warning|warn" || status=1
fi

mkdir -p "$FINAL_OUT"
tar -czf "$FINAL_OUT/perf-logs.tgz" -C "$OUT" .
echo "==> perf.sh exit status $status; logs in $FINAL_OUT/perf-logs.tgz"
exit "$status"
