#!/usr/bin/env bash
# The agent's footprint while it probes: RSS and CPU of sentry-agent on both
# nodes of a paired, set-up lab running its full probe set every 10 s, over
# DURATION (default 5m). The CPU figure includes the probes' own work (TLS,
# SSH, SMB, database clients run inside the agent); the services' side of
# the work is not counted.
#   bench/agent-probing.sh            # or: DURATION=1m bench/agent-probing.sh
# LAB names the lab (default bench).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-5m}
# The agent as the package ships it (make deb): static, without cgo, so
# without libc's pages in its RSS.
CGO_ENABLED=0 go build -trimpath -o bin/sentry ./sentry
go build -o bin/sentry-lab ./cmd/sentry-lab
LAB=${LAB:-bench}
S="bin/sentry-lab --name $LAB" # installs bin/sentry, beside it
trap '$S down >/dev/null 2>&1 || true' EXIT
$S up
$S pair --cluster "$LAB"
$S exec P -- sentry verifier setup >/dev/null
# The steady state measured is a READY pair: the lab's machine B has a NIC
# whose driver P's disk set lacks until the parity plan installs it.
$S exec P -- sentry parity apply --yes >/dev/null
for n in P S; do
	$S exec $n -- sed -i 's/^interval = .*/interval = "10s"/; s/^jitter = .*/jitter = "0s"/; s/^timeout = .*/timeout = "8s"/' /etc/sentry/sentry.toml
	$S exec $n -- systemctl restart sentry-agent
done
sleep 30 # S makes its canaries from P's declaration; both settle
for _ in $(seq 1 60); do # both verdicts READY
	if $S exec P -- sentry ready >/dev/null 2>&1 && $S exec S -- sentry ready >/dev/null 2>&1; then break; fi
	sleep 2
done
for n in P S; do echo "$n before: $($S exec $n -- sentry ready 2>&1 | head -1)"; done
$S exec P -- sentry verify --node node-s >/dev/null # both nodes have results by now
$S exec P -- sentry bench idle --cpu-target 0.35 --duration "$DURATION" &
$S exec S -- sentry bench idle --cpu-target 0.35 --duration "$DURATION" &
wait
for n in P S; do
	node=node-$(echo $n | tr PS ps)
	echo "$n: $($S exec $n -- sentry status | grep "^$node.*verifier" | head -1); $($S exec $n -- sentry ready 2>&1 | head -1)"
done
