#!/usr/bin/env bash
# Start podman's Docker-compatible API on this machine (Debian, root) and build the offline
# test image, so tests/containers run for real. Prints the DOCKER_HOST to export.
set -euo pipefail
SOCK="${LLEM_PODMAN_SOCKET:-/run/podman/podman.sock}"
if ! command -v podman >/dev/null 2>&1; then
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc >/dev/null
fi
mkdir -p /etc/containers "$(dirname "$SOCK")"
if [ ! -f /etc/containers/containers.conf ]; then
  cat > /etc/containers/containers.conf <<'CONF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
CONF
fi
if [ ! -S "$SOCK" ]; then
  nohup podman system service --time=0 "unix://$SOCK" >/tmp/llem-podman.log 2>&1 &
  for _ in $(seq 1 50); do [ -S "$SOCK" ] && break; sleep 0.2; done
fi
"$(dirname "$0")/build.sh" >/dev/null
echo "unix://$SOCK"
