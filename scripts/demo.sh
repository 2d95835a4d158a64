#!/usr/bin/env bash
# The README's first command (make demo): bring up the two-node lab, pair it,
# change the primary's configuration and watch the secondary follow, set the
# verifier's canaries up and show both nodes' results, the readiness verdict, the modules, package
# drift and cross-boot compatibility, the failover plan, then swap the disks
# and show the primary come up on the other machine, with the failover
# record of the downtime, and the weekly report of the week so far. Every
# command is printed before it runs.
set -euo pipefail
cd "$(dirname "$0")/.."
# sentry-lab runs the lab and installs sentry into both nodes: SENTRY names
# its Debian package (make demo builds it: make deb) or a binary; without
# it, the sentry binary beside sentry-lab (bin/, make build).
L=${SENTRY_LAB:-bin/sentry-lab}
if [ -n "${SENTRY:-}" ]; then L="$L --sentry $SENTRY"; fi
run() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }
# A command that exits 1 when the nodes are not in step (drift, compat):
# what it says is the point, so the demo goes on.
show() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@" || [ $? -eq 1 ]; }
# The readiness verdict: exit 0 READY, 1 NOT READY, 5 UNKNOWN; each is told.
verdict() { printf '\n\033[1m$ %s\033[0m\n' "$*"; local rc=0; "$@" || rc=$?; [ $rc -le 1 ] || [ $rc -eq 5 ]; }

run $L up
run $L pair --cluster office
run $L status

# A change on the primary: a new page in nginx's default site.
run $L exec P -- sed -i --follow-symlinks \
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
run $L exec P -- sentry config log -n 3
# The canaries, made on the primary; the secondary follows the declaration.
run $L exec P -- sentry verifier setup
printf '\nwaiting for both nodes to run their probes'
for _ in $(seq 1 60); do
  if $L exec P -- sentry status 2>/dev/null | grep -q 'node-s: verifier 15/15 green'; then break; fi
  printf '.'; sleep 1
done
echo
run $L exec P -- sentry verify --node node-s
# One verdict: would the swap work now? (Not yet: the lab's machine B has
# a NIC whose driver P's disk set lacks.)
printf '\nwaiting for the verdict'
for _ in $(seq 1 60); do
  rc=0; $L exec P -- sentry ready >/dev/null 2>&1 || rc=$?
  if [ $rc -ne 5 ]; then break; fi
  printf '.'; sleep 2
done
verdict $L exec P -- sentry ready
run $L exec P -- sentry modules list
show $L exec P -- sentry drift
show $L exec P -- sentry compat
# The plan's fix: the driver package machine B needs, onto P's disks, from
# the lab's signed apt repository (a dry run without --yes).
run $L exec P -- sentry parity apply --yes
run $L exec P -- sh -c "sentry compat | grep 'boots on'"
printf '\nwaiting for the verdict'
for _ in $(seq 1 60); do
  if $L exec P -- sentry ready >/dev/null 2>&1; then break; fi
  printf '.'; sleep 2
done
verdict $L exec P -- sentry ready
# The guided failover: the plan (refused unless READY; the lab's disk sets
# are overlays, and the plan says so rather than inventing disks), then
# both off, P's disks into machine B, boot.
run $L exec P -- sentry failover plan
run $L swap
run $L status
run $L exec P -- sentry bootcheck explain
printf '\nwaiting for both nodes, swapped, to be green'
for _ in $(seq 1 90); do
  st=$($L exec P -- sentry status 2>/dev/null || true)
  if grep -q 'node-p: verifier 15/15 green' <<<"$st" && grep -q 'node-s: verifier 15/15 green' <<<"$st"; then break; fi
  printf '.'; sleep 1
done
echo
run $L exec P -- sentry events --kind bootcheck,failover -n 4
run $L exec P -- sentry status
# The failover record: each phase of the downtime, timed.
printf '\nwaiting for the failover record'
for _ in $(seq 1 90); do
  if $L exec P -- sentry failover status >/dev/null 2>&1; then break; fi
  printf '.'; sleep 1
done
show $L exec P -- sentry failover status
# The weekly report, of the week so far (the timer mails the last full
# week each Monday: sentry report --mail).
run $L exec P -- sentry report --week current
# The operator's terminal UI on P, as a terminal shows it (through a tmux
# server of the demo's own, stopped right after).
sock="sentry-demo-$$"
tmux -L "$sock" new-session -d -s demo -x 100 -y 30 "$L exec P -- sentry tui"
for _ in $(seq 1 20); do
  tmux -L "$sock" capture-pane -p -t demo 2>/dev/null | grep -q VERDICT && break
  sleep 0.5
done
printf '\n$ sentry tui   (on P; shown at 100x30 through tmux)\n'
tmux -L "$sock" capture-pane -p -t demo
tmux -L "$sock" send-keys -t demo q 2>/dev/null || true
sleep 1
tmux -L "$sock" kill-server 2>/dev/null || true
cat <<MSG

The lab stays up, swapped (P on machine B). Try:
  $L exec P -- sentry tui             the operator's terminal UI (q quits)
  $L exec P -- sentry status          both nodes, as the primary sees them
  $L exec P -- sentry bootcheck explain   why this boot is what it is
  $L exec P -- sentry failover plan --planned   then: $L swap   (swap back, planned)
  $L exec P -- sentry failover history
  $L exec P -- sentry report --week current --format markdown
  $L move P c                         P's disks into an unknown machine: safe mode
  $L exec S -- sentry verify --debug mail
  $L down                             stop everything the lab started
MSG
