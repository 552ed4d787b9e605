#!/usr/bin/env bash
# Builds the entroserve container images from binaries already built (nothing
# is compiled in the image build): entroserve/samplerd and entroserve/runnerd
# (CPU, models/tiny bundled). Run with --help for the options.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

usage() {
  cat <<'EOF'
Usage: deploy/build-images.sh [options]

Builds the samplerd and runnerd images (deploy/Containerfile.samplerd,
deploy/Containerfile.runnerd) from the binaries of a build folder, then
checks that every library they load is in the image and prints the sizes.

Options:
  --build-dir DIR     build folder holding bin/samplerd and bin/runnerd
                      (default: $BUILD_DIR, else build/)
  --engine NAME       podman or docker (default: podman if installed, else docker)
  --tag TAG           image tag (default: dev)
  --repo PREFIX       image name prefix (default: entroserve, giving
                      entroserve/samplerd:TAG and entroserve/runnerd:TAG)
  --only NAME         build only samplerd or only runnerd
  --base IMAGE        Debian 12 base image (default: debian:bookworm-slim)
  --base-from HOW     where the base comes from when it is not present
                      locally: auto (pull, and when that fails make it with
                      mmdebstrap; the default), pull, mmdebstrap, local (fail)
  --network MODE      network of the apt-get steps (default: host)
  --no-check          skip the library check (ldd in each image)
  -h, --help          this help

Without a reachable image registry, the base is made from Debian's packages:
  mmdebstrap --variant=minbase bookworm base.tar (the configured apt mirror)
then imported under the base image's name, with the same apt sources and
path exclusions (man pages, docs, locales) as Docker's official slim image.
It needs mmdebstrap (apt-get install mmdebstrap) and root or a user namespace.

Podman on a host where crun fails (setrlimit, cgroups): use runc, and a
containers.conf holding
  [containers]
  default_ulimits = []
  [engine]
  runtime = "runc"
EOF
}

BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
ENGINE=""
TAG="dev"
REPO="entroserve"
ONLY=""
BASE_IMAGE="debian:bookworm-slim"
BASE_FROM="auto"
NETWORK="host"
CHECK=1
while (($#)); do
  case "$1" in
    --build-dir) BUILD_DIR="$2"; shift 2 ;;
    --build-dir=*) BUILD_DIR="${1#*=}"; shift ;;
    --engine) ENGINE="$2"; shift 2 ;;
    --engine=*) ENGINE="${1#*=}"; shift ;;
    --tag) TAG="$2"; shift 2 ;;
    --tag=*) TAG="${1#*=}"; shift ;;
    --repo) REPO="$2"; shift 2 ;;
    --repo=*) REPO="${1#*=}"; shift ;;
    --only) ONLY="$2"; shift 2 ;;
    --only=*) ONLY="${1#*=}"; shift ;;
    --base) BASE_IMAGE="$2"; shift 2 ;;
    --base=*) BASE_IMAGE="${1#*=}"; shift ;;
    --base-from) BASE_FROM="$2"; shift 2 ;;
    --base-from=*) BASE_FROM="${1#*=}"; shift ;;
    --network) NETWORK="$2"; shift 2 ;;
    --network=*) NETWORK="${1#*=}"; shift ;;
    --no-check) CHECK=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "build-images.sh: unknown argument '$1' (--help lists the options)" >&2; exit 2 ;;
  esac
done

die() { echo "build-images.sh: $*" >&2; exit 1; }

if [ -z "$ENGINE" ]; then
  if command -v podman >/dev/null 2>&1; then ENGINE=podman
  elif command -v docker >/dev/null 2>&1; then ENGINE=docker
  else die "neither podman nor docker is installed (apt-get install podman runc)"; fi
fi
case "$ENGINE" in podman|docker) ;; *) die "--engine must be podman or docker, got '$ENGINE'" ;; esac
command -v "$ENGINE" >/dev/null 2>&1 || die "$ENGINE is not installed"
case "$ONLY" in ""|samplerd|runnerd) ;; *) die "--only must be samplerd or runnerd, got '$ONLY'" ;; esac
case "$BASE_FROM" in auto|pull|mmdebstrap|local) ;;
  *) die "--base-from must be auto, pull, mmdebstrap or local, got '$BASE_FROM'" ;; esac

IMAGES=(samplerd runnerd)
[ -n "$ONLY" ] && IMAGES=("$ONLY")
for name in "${IMAGES[@]}"; do
  [ -x "$BUILD_DIR/bin/$name" ] ||
    die "$BUILD_DIR/bin/$name is missing: build first (bash scripts/setup.sh) or give --build-dir"
done

image_exists() { "$ENGINE" image inspect "$1" >/dev/null 2>&1; }

# Makes the Debian 12 base from the configured apt mirror and imports it
# under BASE_IMAGE's name.
make_base() {
  command -v mmdebstrap >/dev/null 2>&1 ||
    die "no $BASE_IMAGE and no mmdebstrap to make it (apt-get install mmdebstrap)"
  local work
  work="$(mktemp -d)"
  echo "==> making $BASE_IMAGE with mmdebstrap (Debian bookworm, minbase)"
  local t0=$SECONDS
  # The apt sources and dpkg exclusions of Docker's debian:bookworm-slim.
  nice -n 10 mmdebstrap --variant=minbase --quiet \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-include=/usr/share/locale/locale.alias' \
    --dpkgopt='path-exclude=/usr/share/lintian/*' \
    --customize-hook='rm -f "$1"/etc/apt/sources.list' \
    --customize-hook='printf "%s\n" "Types: deb" "URIs: http://deb.debian.org/debian" "Suites: bookworm bookworm-updates" "Components: main" "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" "" "Types: deb" "URIs: http://deb.debian.org/debian-security" "Suites: bookworm-security" "Components: main" "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" > "$1"/etc/apt/sources.list.d/debian.sources' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
    bookworm "$work/base.tar" ||
    { rm -rf "$work"; die "mmdebstrap failed"; }
  "$ENGINE" import --change 'CMD ["bash"]' "$work/base.tar" "$BASE_IMAGE" >/dev/null ||
    { rm -rf "$work"; die "$ENGINE import failed"; }
  rm -rf "$work"
  echo "    made $BASE_IMAGE in $((SECONDS - t0)) s"
}

if ! image_exists "$BASE_IMAGE"; then
  case "$BASE_FROM" in
    local) die "$BASE_IMAGE is not present locally (--base-from=local)" ;;
    pull) "$ENGINE" pull "$BASE_IMAGE" || die "cannot pull $BASE_IMAGE" ;;
    mmdebstrap) make_base ;;
    auto)
      echo "==> $BASE_IMAGE is not present: pulling it"
      if ! timeout 120 "$ENGINE" pull "$BASE_IMAGE" >/dev/null 2>&1; then
        echo "    no registry answered: making it from Debian's packages instead"
        make_base
      fi ;;
  esac
fi

# The build context: the binaries and the bundled model, nothing else (the
# build folder itself is gigabytes of objects).
CONTEXT="$(mktemp -d)"
trap 'rm -rf "$CONTEXT"' EXIT
mkdir -p "$CONTEXT/bin" "$CONTEXT/models/tiny"
for name in "${IMAGES[@]}"; do cp "$BUILD_DIR/bin/$name" "$CONTEXT/bin/"; done
if [[ " ${IMAGES[*]} " == *" runnerd "* ]]; then
  for f in config.json generation_config.json model.safetensors tokenizer.json \
           tokenizer_config.json entropix.txtpb README.md; do
    cp "$ROOT/models/tiny/$f" "$CONTEXT/models/tiny/"
  done
fi

BUILD_ARGS=(--build-arg "BASE_IMAGE=$BASE_IMAGE" --network "$NETWORK")
[ "$ENGINE" = podman ] && BUILD_ARGS+=(--pull=never)
for name in "${IMAGES[@]}"; do
  ref="$REPO/$name:$TAG"
  echo "==> building $ref ($ENGINE)"
  t0=$SECONDS
  "$ENGINE" build "${BUILD_ARGS[@]}" -f "$ROOT/deploy/Containerfile.$name" -t "$ref" "$CONTEXT"
  echo "    built $ref in $((SECONDS - t0)) s"
  if ((CHECK)); then
    missing="$("$ENGINE" run --rm --network=none --entrypoint ldd "$ref" "/usr/local/bin/$name" |
               grep 'not found' || true)"
    [ -z "$missing" ] || die "$ref lacks libraries:"$'\n'"$missing"
    user="$("$ENGINE" image inspect --format '{{.Config.User}}' "$ref")"
    [ "$user" = "10001:10001" ] || die "$ref runs as '$user', not 10001:10001"
  fi
done

echo "==> images"
for name in "${IMAGES[@]}"; do
  ref="$REPO/$name:$TAG"
  bytes="$("$ENGINE" image inspect --format '{{.Size}}' "$ref")"
  printf '    %-32s %6d MB\n' "$ref" $((bytes / 1000000))
done
printf '    %-32s %6d MB  (base)\n' "$BASE_IMAGE" \
  $(( $("$ENGINE" image inspect --format '{{.Size}}' "$BASE_IMAGE") / 1000000 ))
