#!/usr/bin/env bash
# Build the offline test image for the container tests: an almost empty root filesystem
# (no network needed). The tests bind-mount the host's /usr, the Python installation, the
# virtual environment and the project read-only, so the container runs the code under test.
set -euo pipefail
TAG="${1:-localhost/llem-test:latest}"
ROOT="$(mktemp -d)"
trap 'rm -rf "$ROOT"' EXIT
mkdir -p "$ROOT"/{tmp,root,run,etc,proc,sys,dev,var/tmp}
chmod 1777 "$ROOT/tmp" "$ROOT/var/tmp"
echo "root:x:0:0:root:/root:/bin/sh" > "$ROOT/etc/passwd"
echo "root:x:0:" > "$ROOT/etc/group"
ENGINE="${CONTAINER_ENGINE:-podman}"
tar -C "$ROOT" -cf "$ROOT.tar" .
"$ENGINE" import --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' --change 'WORKDIR /tmp' \
  "$ROOT.tar" "$TAG" >/dev/null
rm -f "$ROOT.tar"
echo "$TAG"
