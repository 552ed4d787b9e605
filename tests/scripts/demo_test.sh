#!/usr/bin/env bash
# scripts/demo.sh end to end on binaries already built (--no-setup: no
# package check, no build), with a small budget:
#   1. it exits 0 and prints the replays, the entropix generation with its
#      summary, the trace paths (the files hold a line per token and a page),
#      compare's four blocks and the chat answer; the default ports 50051 and
#      50052 are held by this test meanwhile (the demo picks free ports);
#   2. SIGINT to its process group (what Ctrl-C sends) once runnerd is up:
#      it exits 130 and both servers are gone (their ports refuse).
#   bash tests/scripts/demo_test.sh BUILD_DIR OUT_DIR
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD_DIR="$1"
OUT="$2"
TOKENS=16
rm -rf "$OUT"
mkdir -p "$OUT"

failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
expect() {  # expect TEXT FILE: FILE contains the line fragment TEXT
  grep -qF -- "$1" "$2" || fail "the output lacks \"$1\""
}
port_closed() {  # port_closed PORT: nothing accepts on 127.0.0.1:PORT
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Hold the default ports where they are free, so that a demo needing them
# would fail.
python3 -c '
import socket, sys, time
held = []
for port in (50051, 50052):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port)); s.listen(1); held.append(s)
    except OSError:
        pass  # taken already: as good
sys.stdout.write("ready\n"); sys.stdout.flush()
time.sleep(300)
' >"$OUT/ports.log" 2>&1 &
HOLDER=$!
trap 'kill "$HOLDER" 2>/dev/null' EXIT
for _ in $(seq 1 50); do grep -q ready "$OUT/ports.log" && break; sleep 0.1; done

# 1. The whole demo.
LOG="$OUT/demo.log"
start=$SECONDS
BUILD_DIR="$BUILD_DIR" timeout 120 bash "$ROOT/scripts/demo.sh" --no-setup --steps 6 \
  --max_new_tokens "$TOKENS" --out "$OUT/traces" >"$LOG" 2>&1
rc=$?
cat "$LOG"
echo "(demo took $((SECONDS - start)) s)"
[ "$rc" -eq 0 ] || fail "demo.sh exited $rc"
expect "==> entropix, 6 steps" "$LOG"
expect "==> generate, entropix" "$LOG"
expect "[summary: $TOKENS tokens, " "$LOG"
expect " tokens/s; modes: " "$LOG"
expect "; mean entropy " "$LOG"
expect "[trace: $OUT/traces/entropix.jsonl]" "$LOG"
expect "[trace: $OUT/traces/entropix.html]" "$LOG"
expect "==> trace: open file://$OUT/traces/entropix.html in a browser" "$LOG"
for sampler in greedy chain entropix alpha; do expect "== $sampler ==" "$LOG"; done
expect ", the same for every sampler" "$LOG"
expect "==> chat, greedy" "$LOG"
lines="$(wc -l <"$OUT/traces/entropix.jsonl" 2>/dev/null || echo 0)"
[ "$lines" -eq "$TOKENS" ] || fail "entropix.jsonl has $lines lines, not $TOKENS"
grep -q '<!DOCTYPE html>' "$OUT/traces/entropix.html" 2>/dev/null ||
  fail "entropix.html is not a page"
for port in $(sed -n 's/^==> \(samplerd\|runnerd\) on 127\.0\.0\.1:\([0-9]*\).*/\2/p' "$LOG"); do
  port_closed "$port" || fail "a server still listens on port $port after the demo"
done

# 2. Ctrl-C while runnerd serves: its own process group, as a terminal's
# foreground job, and SIGINT to the group.
LOG="$OUT/interrupted.log"
set -m
BUILD_DIR="$BUILD_DIR" bash "$ROOT/scripts/demo.sh" --no-setup --steps 2 \
  --max_new_tokens 400 --out "$OUT/traces2" >"$LOG" 2>&1 &
DEMO=$!
set +m
for _ in $(seq 1 300); do
  grep -q "^==> generate" "$LOG" && break
  kill -0 "$DEMO" 2>/dev/null || break
  sleep 0.1
done
kill -INT -- "-$DEMO" 2>/dev/null
wait "$DEMO"
rc=$?
cat "$LOG"
[ "$rc" -eq 130 ] || fail "the interrupted demo exited $rc, not 130"
expect "interrupted" "$LOG"
ports="$(sed -n 's/^==> \(samplerd\|runnerd\) on 127\.0\.0\.1:\([0-9]*\).*/\2/p' "$LOG")"
[ "$(echo "$ports" | wc -w)" -eq 2 ] || fail "the interrupted demo did not start both servers"
for port in $ports; do
  port_closed "$port" || fail "a server still listens on port $port after Ctrl-C"
done

if ((failures)); then
  echo "demo_test: $failures failures" >&2
  exit 1
fi
echo "demo_test: passed"
