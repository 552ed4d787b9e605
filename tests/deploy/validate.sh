#!/usr/bin/env bash
# ctest deploy_manifests: renders every kustomization of deploy/kubernetes
# (base, overlays, examples, and each overlay with each optional component)
# with `kubectl kustomize`, validates every object offline against the
# Kubernetes OpenAPI schema (validate.mjs: the pinned npm kubernetes-models,
# strict about unknown fields) and checks what the manifests promise
# (policy.mjs). Installs the pinned packages (package-lock.json) with npm ci
# when node_modules is missing. Exit 77 (skipped) without kubectl or node.
#   bash tests/deploy/validate.sh [OUT_DIR]
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
K="$ROOT/deploy/kubernetes"
OUT="${1:-$(mktemp -d)}"
mkdir -p "$OUT"
for tool in kubectl node npm; do
  command -v "$tool" >/dev/null 2>&1 || { echo "SKIP: $tool is not installed"; exit 77; }
done
cd "$HERE"
if [ ! -f node_modules/kubernetes-models/package.json ] ||
   [ ! -f node_modules/@kubernetes-models/prometheus-operator/package.json ] ||
   [ ! -f node_modules/yaml/package.json ]; then
  echo "==> npm ci in $HERE"
  npm ci --no-audit --no-fund
fi
T0=$SECONDS

echo "==> the validator rejects known-bad objects"
node validate.mjs --self-test > "$OUT/self-test.log" || { cat "$OUT/self-test.log"; exit 1; }

echo "==> presets: base/presets/entropix-tiny.txtpb is models/tiny/entropix.txtpb"
cmp "$K/base/presets/entropix-tiny.txtpb" "$ROOT/models/tiny/entropix.txtpb"

fail=0
rendered=()
pids=()
render() {  # NAME DIR: in the background (kubectl's start-up dominates)
  kubectl kustomize "$2" > "$OUT/$1.yaml" 2> "$OUT/$1.err" &
  pids+=($!)
  rendered+=("$OUT/$1.yaml")
}
checks=()
policy() {  # TOPOLOGY NAME
  checks+=("$1:$OUT/$2.yaml")
}

echo "==> render"
render base "$K/base"
for o in sidecar split gpu; do render "$o" "$K/overlays/$o"; done
for e in "$K"/examples/*/; do render "example-$(basename "$e")" "$e"; done
# Each overlay with each optional component (and all of them), as a user's
# kustomization would compose them.
COMBOS=("tls" "auth-token" "metrics servicemonitor" "model-pvc" "tls auth-token metrics servicemonitor")
for o in sidecar split gpu; do
  for combo in "${COMBOS[@]}"; do
    [ "$o" = gpu ] && [ "$combo" = model-pvc ] && continue  # gpu has it already
    name="$o+${combo// /+}"
    dir="$OUT/kustomize/$name"
    mkdir -p "$dir"
    {
      echo "apiVersion: kustomize.config.k8s.io/v1beta1"
      echo "kind: Kustomization"
      echo "resources:"
      echo "  - $(realpath --relative-to="$dir" "$K/overlays/$o")"
      echo "components:"
      for c in $combo; do echo "  - $(realpath --relative-to="$dir" "$K/components/$c")"; done
    } > "$dir/kustomization.yaml"
    render "$name" "$dir"
  done
done

for i in "${!pids[@]}"; do
  if ! wait "${pids[$i]}"; then
    echo "FAIL: kubectl kustomize for ${rendered[$i]}"; cat "${rendered[$i]%.yaml}.err"; fail=1
  fi
done

echo "==> validate ${#rendered[@]} renderings against the Kubernetes schema"
node validate.mjs "${rendered[@]}" || fail=1

echo "==> policy"
policy base base
for o in sidecar split gpu; do
  policy "$o" "$o"
  for combo in "${COMBOS[@]}"; do
    [ "$o" = gpu ] && [ "$combo" = model-pvc ] && continue
    policy "$o" "$o+${combo// /+}"
  done
done
policy split example-production
node policy.mjs "${checks[@]}" || fail=1

if ((fail)); then echo "FAIL"; exit 1; fi
echo "PASS: ${#rendered[@]} renderings valid, policies hold ($((SECONDS - T0)) s)"
