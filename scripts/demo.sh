#!/usr/bin/env bash
# The README's first command (make demo): bring up the two-node lab, pair it,
# change the primary's configuration and watch the secondary follow, then
# show the status. Every command is printed before it runs.
set -euo pipefail
cd "$(dirname "$0")/.."
S=${SENTRY:-bin/sentry}
run() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

run $S lab up
run $S lab pair --cluster office
run $S lab status

# A change on the primary: a new page in nginx's default site.
run $S lab exec P -- sed -i --follow-symlinks \
  's|^\tserver_name _;|\tserver_name _;\n\tlocation = /hello { return 200 "hello from the primary'"'"'s configuration\\n"; }|' \
  /etc/nginx/sites-enabled/default
printf '\nwaiting for the secondary to serve it'
for _ in $(seq 1 50); do
  if out=$(ip netns exec office curl -fsS -m 1 http://192.0.2.20/hello 2>/dev/null); then
    printf '\n$ curl http://192.0.2.20/hello   (from the office, to the secondary)\n%s\n' "$out"
    break
  fi
  printf '.'; sleep 0.2
done
run $S lab exec P -- sentry config log -n 3
run $S lab exec P -- sentry verifier setup
run $S lab exec S -- sentry verifier setup
run $S lab exec S -- sentry verify
run $S lab exec S -- sentry events -n 5
run $S lab exec S -- sentry status
cat <<MSG

The lab stays up. Try:
  $S lab exec P -- sentry status          both nodes, as the primary sees them
  $S lab exec P -- sentry config diff     the last configuration change
  $S lab exec P -- journalctl -u sentry-agent
  $S lab swap                             the failover by hand: P's disks into machine B
  $S lab down                             stop everything the lab started
MSG
