#!/usr/bin/env bash
# The unit tests, as CI runs them: under the race detector, inside a mount
# namespace where /etc, /var/lib and /run are empty tmpfs, so that a test
# that reads or writes the host's files fails instead of passing by luck.
# The test binaries are built first, outside it (the Go toolchain and the
# module cache live in /usr/local/go and $HOME).
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
pkgs=$($GO list ./... | grep -v '/e2e$' | tr '\n' ' ')
$GO test -race -count=1 -run '^$' $pkgs >/dev/null # compile everything once, outside
if [ "$(id -u)" -ne 0 ] || ! command -v unshare >/dev/null; then
  echo "unit tests: need root and unshare for the empty /etc, /var/lib, /run namespace" >&2
  exit 1
fi
exec unshare -m --propagation private bash -c '
set -e
for d in /etc /var/lib /run; do mount -t tmpfs -o mode=0755 tmpfs "$d"; done
echo "unit tests: /etc, /var/lib and /run are empty tmpfs here; go test -race"
exec '"$GO"' test -race -count=1 '"$pkgs"'
'
