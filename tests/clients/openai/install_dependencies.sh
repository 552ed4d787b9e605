#!/usr/bin/env bash
# Installs the pinned npm packages of the OpenAI SDK tests (package-lock.json)
# into tests/clients/openai/node_modules with `npm ci`, when they are missing
# or older than the lock file. The ctest fixture openai_sdk_setup runs it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ] ||
   [ ! -f node_modules/openai/package.json ]; then
  echo "==> npm ci in $PWD"
  npm ci --no-audit --no-fund
fi
