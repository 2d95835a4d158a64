#!/usr/bin/env bash
# The agent's footprint while it probes: RSS and CPU of sentry-agent on both
# nodes of a paired, set-up lab running its full probe set every 10 s, over
# DURATION (default 5m). The CPU figure includes the probes' own work (TLS,
# SSH, SMB, database clients run inside the agent); the services' side of
# the work is not counted.
#   bench/agent-probing.sh            # or: DURATION=1m bench/agent-probing.sh
# LAB names the lab (default bench). FULL_STORE=1 measures a long-running
# agent's state instead of a fresh one's: before the measure, each node's
# store is filled (bench/storefill) with keep_results (1000) results of
# every probe of both nodes and 40 days of hourly history.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-5m}
# The agent as the package ships it (make deb): static, without cgo, so
# without libc's pages in its RSS.
CGO_ENABLED=0 go build -trimpath -o bin/sentry ./sentry
go build -o bin/sentry-lab ./cmd/sentry-lab
if [ "${FULL_STORE:-}" = 1 ]; then CGO_ENABLED=0 go build -o bin/storefill ./bench/storefill; fi
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
ready() {
	for _ in $(seq 1 60); do # both verdicts READY
		if $S exec P -- sentry ready >/dev/null 2>&1 && $S exec S -- sentry ready >/dev/null 2>&1; then break; fi
		sleep 2
	done
}
sleep 30 # S makes its canaries from P's declaration; both settle
ready
if [ "${FULL_STORE:-}" = 1 ]; then
	for n in P S; do $S exec $n -- systemctl stop sentry-agent; done
	for n in P S; do
		$S exec $n -- sh -c 'cat > /run/storefill && chmod 755 /run/storefill' < bin/storefill
		$S exec $n -- /run/storefill -store /var/lib/sentry/state.db -n 1000 -days 40
		$S exec $n -- rm -f /run/storefill
	done
	for n in P S; do $S exec $n -- systemctl start sentry-agent; done
	sleep 30
	ready
fi
for n in P S; do echo "$n before: $($S exec $n -- sentry ready 2>&1 | head -1)"; done
$S exec P -- sentry verify --node node-s >/dev/null # both nodes have results by now
$S exec P -- sentry bench idle --cpu-target 0.35 --duration "$DURATION" &
$S exec S -- sentry bench idle --cpu-target 0.35 --duration "$DURATION" &
wait
for n in P S; do
	node=node-$(echo $n | tr PS ps)
	echo "$n: $($S exec $n -- sentry status | grep "^$node.*verifier" | head -1); $($S exec $n -- sentry ready 2>&1 | head -1)"
done
