#!/usr/bin/env bash
# Installs the Node.js client's pinned npm packages (package-lock.json) into
# clients/node/node_modules with `npm ci`, when they are missing or older than
# the lock file; otherwise does nothing. The ctest fixture node_client_setup
# runs it, so the tests work on a fresh clone.
#   bash clients/node/install_dependencies.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ] ||
   [ ! -f node_modules/@grpc/grpc-js/package.json ] ||
   [ ! -f node_modules/@grpc/proto-loader/package.json ]; then
  echo "==> npm ci in $PWD"
  npm ci --no-audit --no-fund
fi
