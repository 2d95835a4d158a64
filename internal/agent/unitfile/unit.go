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
