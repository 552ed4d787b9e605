#!/usr/bin/env bash
# End to end on this machine: builds the images (deploy/build-images.sh), plays
# the rendered Kubernetes manifests with `podman kube play`, and checks them
# against the binaries run directly:
#   sidecar  runnerd + samplerd in one Pod (shared memory through /dev/shm)
#   split    samplerd Deployment of 3 replicas + runnerd reaching them through
#            dns:///samplerd-headless:50051
# For each: every gRPC probe of the manifests answers SERVING (what kubelet's
# native probe asks), the security context holds (uid 10001, read-only root,
# no capabilities), `samplerctl generate` gives the tokens the binaries give
# when run directly, and a samplerd container killed (SIGKILL) mid-generation
# changes no token. The split topology also plays components/metrics: each
# replica's and runnerd's /metrics counters add up to the tokens generated.
#
# What podman 4.3 lacks is replaced, and only that (tests/deploy/podman_kube.py
# says each change): Services and cluster DNS (the headless Service's name
# becomes /etc/hosts lines of runnerd's Pod, one per replica address: the
# answer the cluster's DNS gives; gRPC's resolver reads both), emptyDir
# (pre-created volumes), restartPolicy Always on init containers, and
# containerPort publishing on the host.
#
#   bash tests/deploy/podman_e2e.sh [BUILD_DIR] [WORK_DIR]
# Exit 77 (ctest: skipped) when podman, runc or kubectl is missing.
# Env: E2E_TAG (image tag, default ctest), E2E_TOKENS (default 160),
#      E2E_KEEP=1 leaves the pods running, E2E_SKIP_BUILD=1 uses the images as
#      they are.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
BUILD_DIR="$(cd "${1:-$ROOT/build}" && pwd)"
WORK="${2:-$BUILD_DIR/deploy_e2e}"
TAG="${E2E_TAG:-ctest}"
TOKENS="${E2E_TOKENS:-160}"
KILL_AFTER=$((TOKENS / 5))
SEED=7
PROMPT="The jury said"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
BIN="$BUILD_DIR/bin"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$HERE/containers.conf}"
# Names of the volumes podman makes for this test (see podman_kube.py).
VOLUME_PREFIX="entroserve-e2e-"

for tool in podman runc kubectl; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "SKIP: $tool is not installed (apt-get install podman runc catatonit; kubectl)"
    exit 77
  fi
done
for b in samplerd runnerd samplerctl; do
  [ -x "$BIN/$b" ] || { echo "FAIL: $BIN/$b is missing (build first)"; exit 1; }
done

if podman pod exists runnerd-pod-0 || podman pod exists samplerd-pod-0 ||
   podman volume ls -q | grep -q "^$VOLUME_PREFIX"; then
  echo "FAIL: pods or volumes of an earlier run are left (E2E_KEEP=1?): remove them first:"
  echo "  podman pod rm -f runnerd-pod-0 samplerd-pod-0 samplerd-pod-1 samplerd-pod-2"
  echo "  podman volume ls -q | grep '^$VOLUME_PREFIX' | xargs podman volume rm"
  exit 1
fi
rm -rf "$WORK"
mkdir -p "$WORK"
T0=$EPOCHREALTIME
PHASE_T0=$EPOCHREALTIME
elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }
say() { echo "    [$(elapsed "$T0") s] $*"; }
phase() {
  echo "    (phase: $(elapsed "$PHASE_T0") s)"
  PHASE_T0=$EPOCHREALTIME
  echo "==> $*"
}
fail() { echo "FAIL: $*"; exit 1; }

HOST_PIDS=()
PLAYED=()
cleanup() {
  local pid
  for pid in "${HOST_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  if [ "${E2E_KEEP:-0}" != 1 ]; then
    local y
    for y in "${PLAYED[@]}"; do podman kube down "$y" >/dev/null 2>&1 || true; done
    # Not rm -f: that stops containers still using a volume, and podman 4.3
    # can deadlock doing it. After kube down nothing uses them.
    cat "$WORK"/*.volumes 2>/dev/null | cut -d' ' -f1 | sort -u |
      xargs -r podman volume rm >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

echo "==> images (deploy/build-images.sh --tag $TAG)"
if [ "${E2E_SKIP_BUILD:-0}" != 1 ]; then
  bash "$ROOT/deploy/build-images.sh" --build-dir "$BUILD_DIR" --tag "$TAG" > "$WORK/build-images.log" 2>&1 ||
    { tail -30 "$WORK/build-images.log"; fail "image build"; }
  sed -n '/==> images/,$p' "$WORK/build-images.log"
fi

# --- the binaries run directly: the reference tokens --------------------
phase "reference: samplerd and runnerd run directly"
SPEC="$(cat "$ROOT/deploy/kubernetes/base/presets/entropix-tiny.txtpb")"
cmp -s "$ROOT/deploy/kubernetes/base/presets/entropix-tiny.txtpb" "$ROOT/models/tiny/entropix.txtpb" ||
  fail "deploy/kubernetes/base/presets/entropix-tiny.txtpb differs from models/tiny/entropix.txtpb"
"$BIN/samplerd" --host=127.0.0.1 --port=0 --workers=1 > "$WORK/ref-samplerd.log" 2>&1 &
HOST_PIDS+=($!)
listening_port() {  # LOG NAME: the port a "NAME listening on HOST:PORT" line gives
  local i
  for i in $(seq 100); do
    if grep -q "$2 listening on" "$1"; then
      sed -n "s/^$2 listening on .*:\([0-9]*\)\$/\1/p" "$1"; return
    fi
    sleep 0.1
  done
  cat "$1"; fail "$2 did not start"
}
SD_PORT="$(listening_port "$WORK/ref-samplerd.log" samplerd)"
# The flags the manifests give runnerd (base/runnerd-deployment.yaml; threads
# from the CPU limit, 2).
"$BIN/runnerd" --model="$ROOT/models/tiny" --host=127.0.0.1 --port=0 \
  --sampler="127.0.0.1:$SD_PORT" --threads=2 --sampler_workers=2 --max_batch=8 \
  > "$WORK/ref-runnerd.log" 2>&1 &
HOST_PIDS+=($!)
RD_PORT="$(listening_port "$WORK/ref-runnerd.log" runnerd)"

wait_serving() {  # SECONDS HOST:PORT/SERVICE...: every one SERVING within SECONDS
  local seconds=$1
  shift
  "$PY" "$HERE/grpc_health.py" --wait="$seconds" "$@" > "$WORK/health.out" ||
    { cat "$WORK/health.out"; return 1; }
}
wait_serving 60 "127.0.0.1:$RD_PORT/runner.v1.Runner" || fail "runnerd (direct) not serving"
generate() {  # SERVER OUT.jsonl: samplerctl generate, one JSON record per token
  "$BIN/samplerctl" generate --server="$1" --prompt="$PROMPT" --seed=$SEED \
    --max_new_tokens="$TOKENS" --ignore_eos --spec="$SPEC" --json --timeout_ms=120000 > "$2"
}
ids() { "$PY" -c 'import json,sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if "id" in r: print(r["id"])' "$1"; }
rate() {  # OUT.jsonl: tokens/s of the generation (runnerd's usage record)
  "$PY" -c 'import json,sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if "usage" in r:
        u = r["usage"]
        print("%.0f tokens/s" % (u["generated_tokens"] / u["total_ms"] * 1000))' "$1"; }
generate "127.0.0.1:$RD_PORT" "$WORK/ref.jsonl"
ids "$WORK/ref.jsonl" > "$WORK/ref.ids"
[ "$(wc -l < "$WORK/ref.ids")" -eq "$TOKENS" ] || fail "reference gave $(wc -l < "$WORK/ref.ids") tokens, not $TOKENS"
say "reference: $TOKENS tokens ($(rate "$WORK/ref.jsonl")): $(head -c 60 "$WORK/ref.ids" | tr '\n' ' ')..."
for pid in "${HOST_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
HOST_PIDS=()

# --- helpers for the played pods ----------------------------------------
render() {  # OVERLAY OUT [COMPONENT...]: kubectl kustomize of the overlay with
            # this run's image tag and the components named
  local dir="$WORK/kustomize-$1" out="$2" overlay component components=""
  # kustomize takes relative paths only.
  mkdir -p "$dir"
  overlay="$(realpath --relative-to="$dir" "$ROOT/deploy/kubernetes/overlays/$1")"
  shift 2
  for component in "$@"; do
    components+="  - $(realpath --relative-to="$dir" "$ROOT/deploy/kubernetes/components/$component")"$'\n'
  done
  cat > "$dir/kustomization.yaml" <<EOF
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - $overlay
components:
${components:-  []}
images:
  - name: entroserve/runnerd
    newTag: $TAG
  - name: entroserve/samplerd
    newTag: $TAG
EOF
  kubectl kustomize "$dir" > "$out"
}
metric() {  # HOST:PORT NAME: the sum of NAME's samples on that /metrics page
  "$PY" - "$1" "$2" <<'EOF'
import sys, urllib.request
page = urllib.request.urlopen(f"http://{sys.argv[1]}/metrics", timeout=10).read().decode()
total = 0.0
for line in page.splitlines():
    if line.split("{")[0].split(" ")[0] == sys.argv[2]:
        total += float(line.rsplit(" ", 1)[1])
print(int(total))
EOF
}
# emptyDir as Kubernetes makes it: mode 1777; medium Memory a tmpfs of the size
# limit. Each volume is mounted once by a throwaway container at a path the
# image lacks: podman 4.3 otherwise copies the image's /dev/shm (root, 0755)
# over the volume when it is first mounted there.
make_volumes() {  # FILE of "name medium bytes" lines from podman_kube.py
  local name medium bytes mounts=()
  while read -r name medium bytes; do
    [ "$medium" = ConfigMap ] && continue  # podman makes those
    podman volume exists "$name" && continue
    if [ "$medium" = Memory ]; then
      podman volume create --opt type=tmpfs --opt device=tmpfs \
        --opt o=mode=1777,nr_blocks=$((bytes / 4096)) "$name" >/dev/null
    else
      podman volume create "$name" >/dev/null
      chmod 1777 "$(podman volume inspect --format '{{.Mountpoint}}' "$name")"
    fi
    mounts+=(-v "$name:/entroserve-e2e/$name")
  done < "$1"
  [ "${#mounts[@]}" -eq 0 ] ||
    podman run --rm --network=none "${mounts[@]}" --entrypoint true "entroserve/samplerd:$TAG" ||
    fail "cannot mount the volumes of $1"
}
play() {  # ADAPTED.yaml
  PLAYED+=("$1")
  podman kube play "$1" > "$1.play.log" 2>&1 || { cat "$1.play.log"; fail "podman kube play $1"; }
}
pod_ip() {  # POD
  podman inspect "$(podman pod inspect "$1" --format '{{.InfraContainerID}}')" \
    --format '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}'
}
check_probes() {  # RENDERED.yaml DEPLOYMENT POD: every grpc probe of the manifest
  local container kind port service ip targets=()
  ip="$(pod_ip "$3")"
  while read -r container kind port service; do
    targets+=("$ip:$port/$service")
  done < <("$PY" "$HERE/podman_kube.py" --probes "$1" --only-deployment "$2")
  [ "${#targets[@]}" -gt 0 ] || fail "no gRPC probe in $2"
  wait_serving 60 "${targets[@]}" || fail "$3: a probe is not SERVING"
  say "$3: its ${#targets[@]} gRPC probes (startup, readiness, liveness) answer SERVING"
}
check_security() {  # CONTAINER
  local out
  out="$(podman exec "$1" sh -c 'id -u; touch /usr/.x 2>/dev/null && echo writable-root;
                                 sed -n "s/^CapEff:\t//p" /proc/1/status' | tr '\n' ' ')"
  [ "$out" = "10001 0000000000000000 " ] ||
    fail "$1: uid, root filesystem or capabilities not as the securityContext says: $out"
  say "$1: uid 10001, read-only root, no capabilities"
}
compare() {  # OUT.jsonl WHAT
  ids "$1" > "$1.ids"
  if ! cmp -s "$WORK/ref.ids" "$1.ids"; then
    diff "$WORK/ref.ids" "$1.ids" | head -5
    fail "$2: tokens differ from the binaries run directly"
  fi
  say "$2: $TOKENS tokens, identical to the binaries run directly ($(rate "$1"))"
}
restarts() { podman inspect "$1" --format '{{.RestartCount}}'; }
# Generates in the background, SIGKILLs CONTAINER's process once KILL_AFTER tokens have
# come, checks the generation went on past it with the same tokens. On a loaded
# machine the polling loop can stall past the whole generation (CI's ctest -j2 runs
# this beside other suites); such an attempt proves nothing, so it is tried again
# (the killed container restarts in between) rather than failed or passed.
generate_and_kill() {  # SERVER CONTAINER OUT.jsonl WHAT
  local attempt
  for attempt in 1 2 3; do
    kill_once "$@" && return 0
    wait_restarted "$2" "$KILL_BEFORE"
    say "$4: the generation ended before the kill (attempt $attempt of 3)"
  done
  fail "$4: three generations ended before the kill (raise E2E_TOKENS)"
}
kill_once() {  # SERVER CONTAINER OUT.jsonl WHAT; 1 when the generation beat the kill
  local pid n victim
  KILL_BEFORE="$(restarts "$2")"
  victim="$(podman inspect "$2" --format '{{.State.Pid}}')"
  generate "$1" "$3" &
  pid=$!
  n=0
  while [ "$n" -lt "$KILL_AFTER" ] && kill -0 "$pid" 2>/dev/null; do
    sleep 0.01
    n=$(wc -l < "$3")
  done
  # SIGKILL to the container's process from the host, as a crash or the OOM
  # killer would end it (podman kill counts as a user's stop, which podman's
  # restart policy leaves stopped).
  kill -KILL "$victim"
  n=$(wc -l < "$3")
  say "killed $2 (SIGKILL to its process) after $n of $TOKENS tokens"
  if [ "$n" -ge "$TOKENS" ]; then
    wait "$pid" || true
    return 1
  fi
  wait "$pid" || fail "$4: samplerctl generate failed after the kill"
  compare "$3" "$4"
  wait_restarted "$2" "$KILL_BEFORE"
}
wait_restarted() {  # CONTAINER RESTARTS_BEFORE
  for _ in $(seq 100); do
    [ "$(restarts "$1")" -gt "$2" ] && break
    sleep 0.2
  done
  [ "$(restarts "$1")" -gt "$2" ] || fail "$1 was not restarted"
  say "$1 restarted by its restart policy"
}

# --- sidecar ------------------------------------------------------------
phase "sidecar: podman kube play of overlays/sidecar"
render sidecar "$WORK/sidecar.yaml"
"$PY" "$HERE/podman_kube.py" "$WORK/sidecar.yaml" "$WORK/sidecar.podman.yaml" \
  --volume-prefix "$VOLUME_PREFIX" --volumes-out "$WORK/sidecar.volumes" 2> "$WORK/sidecar.adapt.log"
make_volumes "$WORK/sidecar.volumes"
say "emptyDir volumes made"
play "$WORK/sidecar.podman.yaml"
say "played (podman kube play)"
check_probes "$WORK/sidecar.yaml" runnerd runnerd-pod-0
IP="$(pod_ip runnerd-pod-0)"
check_security runnerd-pod-0-runnerd
check_security runnerd-pod-0-samplerd
podman exec runnerd-pod-0-runnerd cat /etc/entroserve/presets/entropix-tiny.txtpb |
  cmp -s - "$ROOT/models/tiny/entropix.txtpb" || fail "presets ConfigMap not mounted in runnerd"
generate "$IP:50052" "$WORK/sidecar.jsonl"
compare "$WORK/sidecar.jsonl" "sidecar"
# The transport is shared_memory (strict): a generation fails rather than fall
# back. The regions are in the shared /dev/shm, owned by uid 10001.
regions="$(podman exec runnerd-pod-0-samplerd sh -c 'ls -ln /dev/shm | grep -c " 10001 10001 .* entroserve-"' || true)"
[ "${regions:-0}" -ge 1 ] || fail "no entroserve-* region in samplerd's /dev/shm"
say "$regions shared-memory regions of runnerd's, seen from samplerd's /dev/shm"
if grep -qi "fall" <(podman logs runnerd-pod-0-runnerd 2>&1); then
  podman logs runnerd-pod-0-runnerd 2>&1 | tail -5; fail "runnerd fell back from shared memory"
fi
generate_and_kill "$IP:50052" runnerd-pod-0-samplerd "$WORK/sidecar-kill.jsonl" "sidecar, samplerd killed"
[ "$(restarts runnerd-pod-0-runnerd)" = 0 ] || fail "runnerd restarted"
check_probes "$WORK/sidecar.yaml" runnerd runnerd-pod-0
podman kube down "$WORK/sidecar.podman.yaml" >/dev/null
say "sidecar down (podman kube down)"

# --- split --------------------------------------------------------------
phase "split: podman kube play of overlays/split, 3 samplerd replicas"
render split "$WORK/split.yaml" metrics
"$PY" "$HERE/podman_kube.py" "$WORK/split.yaml" "$WORK/split-samplerd.podman.yaml" \
  --only-deployment samplerd --volume-prefix "$VOLUME_PREFIX" \
  --volumes-out "$WORK/split-samplerd.volumes" 2> "$WORK/split.adapt.log"
make_volumes "$WORK/split-samplerd.volumes"
play "$WORK/split-samplerd.podman.yaml"
say "samplerd replicas played"
IPS=()
for i in 0 1 2; do
  check_probes "$WORK/split.yaml" samplerd "samplerd-pod-$i"
  IPS+=("$(pod_ip "samplerd-pod-$i")")
done
# No Services in podman: the headless Service's DNS answer (every ready
# replica's address) becomes runnerd's /etc/hosts lines for its name.
ALIAS="samplerd-headless=$(IFS=,; echo "${IPS[*]}")"
say "podman has no Services: $ALIAS in runnerd's /etc/hosts"
"$PY" "$HERE/podman_kube.py" "$WORK/split.yaml" "$WORK/split-runnerd.podman.yaml" \
  --only-deployment runnerd --volume-prefix "$VOLUME_PREFIX" --host-alias "$ALIAS" \
  --volumes-out "$WORK/split-runnerd.volumes" 2>> "$WORK/split.adapt.log"
grep -q 'value: dns:///samplerd-headless:50051' "$WORK/split-runnerd.podman.yaml" ||
  fail "runnerd's sampler is not dns:///samplerd-headless:50051"
make_volumes "$WORK/split-runnerd.volumes"
play "$WORK/split-runnerd.podman.yaml"
say "runnerd played"
check_probes "$WORK/split.yaml" runnerd runnerd-pod-0
check_security runnerd-pod-0-runnerd
check_security samplerd-pod-0-samplerd
IP="$(pod_ip runnerd-pod-0)"
generate "$IP:50052" "$WORK/split.jsonl"
compare "$WORK/split.jsonl" "split"
# components/metrics: each replica's /metrics port, and runnerd's. One row
# per token, spread over the replicas runnerd's streams went to.
rows=0
per_replica=()
for ip in "${IPS[@]}"; do
  n="$(metric "$ip:9091" entroserve_sampler_rows_total)" || fail "no /metrics on samplerd $ip:9091"
  per_replica+=("$n")
  rows=$((rows + n))
done
tokens="$(metric "$IP:9090" entroserve_runner_generated_tokens_total)" || fail "no /metrics on runnerd"
[ "$rows" -eq "$TOKENS" ] && [ "$tokens" -eq "$TOKENS" ] ||
  fail "metrics: samplerd rows ${per_replica[*]} (sum $rows), runnerd tokens $tokens; expected $TOKENS"
say "metrics scraped: runnerd generated_tokens_total $tokens; samplerd rows_total ${per_replica[*]} (sum $rows)"
# The replicas runnerd's streams are connected to (its Pod's TCP table).
connected() {
  local pid
  pid="$(podman inspect runnerd-pod-0-runnerd --format '{{.State.Pid}}')"
  "$PY" - "$pid" <<'EOF'
import socket, struct, sys
seen = set()
for table in ("tcp", "tcp6"):  # gRPC's sockets are IPv6 with v4-mapped addresses
    for line in open(f"/proc/{sys.argv[1]}/net/{table}").readlines()[1:]:
        f = line.split()
        ip, port = f[2].split(":")
        if int(port, 16) != 50051 or f[3] != "01":  # ESTABLISHED
            continue
        # The last 32 bits hold the IPv4 address (v4-mapped in tcp6).
        seen.add(socket.inet_ntoa(struct.pack("<I", int(ip[-8:], 16))))
print(" ".join(sorted(seen)))
EOF
}
# dns:/// with round_robin: one subchannel per address the name resolves to,
# so runnerd holds a connection to every replica and spreads its streams.
before="$(connected)"
for ip in "${IPS[@]}"; do
  [[ " $before " == *" $ip "* ]] || fail "runnerd is not connected to replica $ip (only: ${before:-none})"
done
victim="samplerd-pod-0-samplerd"
say "runnerd's sampler streams are connected to every replica: $before"
generate_and_kill "$IP:50052" "$victim" "$WORK/split-kill.jsonl" "split, one replica killed"
after="$(connected)"
say "runnerd's sampler streams are now connected to ${after:-nothing}"
for ip in "${IPS[1]}" "${IPS[2]}"; do
  [[ " $after " == *" $ip "* ]] || fail "runnerd lost the surviving replica $ip (now: ${after:-none})"
done

phase "done"
echo "PASS: podman e2e in $(elapsed "$T0") s"
