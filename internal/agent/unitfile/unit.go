// Package unitfile is the agent's systemd unit, as `sentry agent unit` prints it.
package unitfile

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
# Timers may fire up to 4 ms late: the Go runtime's monitor thread sleeps
# 20 us at a time while the agent is busy (a round of probes), and the
# slack lets the kernel wake it far less often. Half the agent's context
# switches, a fifth less CPU (bench/README.md); nothing the agent times
# needs a finer timer (a probe's latency is read from the clock around
# its answers, which wake it at once).
TimerSlackNSec=4ms
# Hardening, as far as the agent's work allows: it runs dpkg and apt (so
# no ProtectSystem, no RestrictSUIDSGID: packages ship setuid files), writes
# under /etc and /var/lib, makes the canary accounts (so no ProtectHome)
# and reads /lib/modules and /sys (so no ProtectKernelModules). See
# docs/security.md.
NoNewPrivileges=yes
PrivateTmp=yes
ProtectKernelTunables=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
LockPersonality=yes
RestrictRealtime=yes
RestrictNamespaces=yes
SystemCallArchitectures=native
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK AF_PACKET
KeyringMode=private

[Install]
WantedBy=multi-user.target
`

// UnitName is the unit's file name.
const UnitName = "sentry-agent.service"

// ReportService is sentry-report.service: the weekly report, kept and
// mailed (`sentry report --mail`, through the agent). The timer starts it.
const ReportService = `[Unit]
Description=Sentry weekly report: keep the last week's report and mail it
Documentation=man:sentry-report(1)
After=sentry-agent.service network-online.target
Wants=network-online.target

[Service]
Type=oneshot
ExecStart=/usr/local/bin/sentry report --mail
`

// ReportTimer is sentry-report.timer: Monday morning, with a randomized
// delay (pairs watched by one IT provider do not all mail at once), and
// Persistent (a node that was off on Monday reports when it is back).
const ReportTimer = `[Unit]
Description=Sentry weekly report, each Monday morning
Documentation=man:sentry-report(1)

[Timer]
OnCalendar=Mon *-*-* 06:00:00
RandomizedDelaySec=1h
Persistent=true

[Install]
WantedBy=timers.target
`

// Names are the units `sentry agent unit NAME` prints, the package ships.
func Names() []string { return []string{UnitName, "sentry-report.service", "sentry-report.timer"} }

// Text is the unit named name, and false when there is none of that name.
func Text(name string) (string, bool) {
	switch name {
	case UnitName:
		return Unit, true
	case "sentry-report.service":
		return ReportService, true
	case "sentry-report.timer":
		return ReportTimer, true
	}
	return "", false
}
