#!/usr/bin/env bash
# The agent's steady-state footprint, idle, in the lab: RSS and CPU of
# sentry-agent on both nodes of a paired lab, over DURATION (default 5m).
# Targets (issue 3): under 40 MB RSS, under 0.5 % of one core.
#   bench/agent-idle.sh            # or: DURATION=1m bench/agent-idle.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-5m}
go build -o bin/sentry ./sentry
go build -o bin/sentry-lab ./cmd/sentry-lab
S="bin/sentry-lab --name bench" # installs bin/sentry, beside it
trap '$S down >/dev/null 2>&1 || true' EXIT
$S up
$S pair --cluster bench
sleep 15 # let both agents settle into their steady state (hello every 10 s)
$S exec P -- sentry bench idle --duration "$DURATION" &
$S exec S -- sentry bench idle --duration "$DURATION" &
wait
