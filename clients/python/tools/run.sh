#!/usr/bin/env bash
# Runs hf_adapter_check.py (the Hugging Face adapter against runnerd) with the
# servers of a build folder. From the repository root:
#
#   bash clients/python/tools/run.sh
#
# Environment, all optional:
#   PYTHON      python with torch and transformers               (python3)
#   BUILD_DIR   where bin/samplerd and bin/runnerd are            (build)
#   PREFIX      Debian packages unpacked with dpkg -x: its lib/<arch> goes on
#               LD_LIBRARY_PATH, its protoc and grpc_python_plugin generate
#               the stubs when present                            (/tmp/debprefix)
#   OUT         report: hf_adapter_check.json/.md, server logs    (BUILD_DIR/hf_adapter_check)
#   CHECK_ARGS  extra arguments, e.g. "--seed 11 --new_tokens 64"
# Exit status: the check's (0 pass, 1 a difference, 2 setup error).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
PYTHON="${PYTHON:-python3}"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
PREFIX="${PREFIX:-/tmp/debprefix}"
OUT="${OUT:-$BUILD_DIR/hf_adapter_check}"
export PYTHONUNBUFFERED=1

libdir="$PREFIX/usr/lib/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)"
tools=()
if [[ -x "$PREFIX/usr/bin/protoc" ]]; then tools+=(--protoc "$PREFIX/usr/bin/protoc"); fi
if [[ -x "$PREFIX/usr/bin/grpc_python_plugin" ]]; then
  tools+=(--grpc_python_plugin "$PREFIX/usr/bin/grpc_python_plugin")
fi
mkdir -p "$OUT"
set +e
# shellcheck disable=SC2086  # CHECK_ARGS is a list of words
"$PYTHON" "$ROOT/clients/python/tools/hf_adapter_check.py" \
  --samplerd "$BUILD_DIR/bin/samplerd" --runnerd "$BUILD_DIR/bin/runnerd" \
  --library_path "$([[ -d "$libdir" ]] && echo "$libdir")" "${tools[@]}" \
  --out "$OUT" --work "${WORK:-/tmp/hf_adapter_check}" ${CHECK_ARGS:-} 2>&1 | tee "$OUT/run.log"
status=${PIPESTATUS[0]}
echo "==> exit status $status; report and log in $OUT"
exit "$status"
