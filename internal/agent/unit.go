package agent

// Unit is sentry-agent.service. The lab installs it into both disk sets;
// docs/operations.md shows it.
const Unit = `[Unit]
Description=Sentry agent (peer link, status, synchronizer and verifier)
Documentation=man:sentry-agent(1)
After=network.target sentry-bootcheck.service
Wants=network.target

[Service]
Type=notify
NotifyAccess=main
ExecStart=/usr/local/bin/sentry agent
ExecReload=/bin/kill -HUP $MAINPID
WatchdogSec=30s
Restart=on-failure
RestartSec=2s
TimeoutStopSec=30s

[Install]
WantedBy=multi-user.target
`

// UnitName is the unit's file name.
const UnitName = "sentry-agent.service"
