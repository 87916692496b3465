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
answers() {
  python3 - "$1" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
try:
    s.connect(sys.argv[1])
    s.sendall(b"GET /_ping HTTP/1.0\r\nHost: d\r\n\r\n")
    ok = s.recv(64).startswith(b"HTTP/1.")
except OSError:
    ok = False
finally:
    s.close()
sys.exit(0 if ok else 1)
PY
}
# A service whose working directory was deleted (started from a clone that is gone) still
# answers pings but cannot start containers: conmon fails with "Failed to get working
# directory" and every start is "write child: broken pipe". Stop such a service.
for pid in $(pgrep -f "podman system service.*$SOCK" || true); do
  if readlink "/proc/$pid/cwd" 2>/dev/null | grep -q ' (deleted)$'; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "$SOCK"
  fi
done
# A socket file left by a service that has since died (a reboot, a killed session) refuses
# connections: remove it and start a new service rather than skipping the container tests.
if [ -S "$SOCK" ] && ! answers "$SOCK"; then
  rm -f "$SOCK"
fi
if [ ! -S "$SOCK" ]; then
  # From / (the service outlives this checkout, and its containers inherit its directory), in
  # a session of its own (setsid -f: this script does not wait for it), with the standard
  # streams redirected and every other descriptor closed: a copy of a caller's pipe kept open
  # by the service holds that caller's $(...) or log reader open for ever (CI once hung here
  # until its time limit).
  setsid -f python3 -c '
import os, sys
os.chdir("/")
os.closerange(3, os.sysconf("SC_OPEN_MAX"))
os.execvp("podman", ["podman", "system", "service", "--time=0", "unix://" + sys.argv[1]])
' "$SOCK" </dev/null >/tmp/llem-podman.log 2>&1
  for _ in $(seq 1 100); do answers "$SOCK" && break; sleep 0.2; done
fi
answers "$SOCK" || { echo "podman API at $SOCK does not answer (see /tmp/llem-podman.log)" >&2; exit 1; }
"$(dirname "$0")/build.sh" >/dev/null
echo "unix://$SOCK"
