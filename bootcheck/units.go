package bootcheck

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// UnitName is the bootcheck's unit; RoleTarget is the target the role's
// services are wanted by.
const (
	UnitName   = "sentry-bootcheck.service"
	RoleTarget = "sentry-role.target"
)

// UnitTimeout is the unit's TimeoutStartSec: systemd kills the boot check
// there, and then no decision is written. DefaultBudget is the boot check's
// own deadline (`sentry bootcheck run --budget`), below it by a margin that
// leaves the safe-mode decision time to be written.
const (
	UnitTimeout   = 20 * time.Second
	DefaultBudget = 15 * time.Second
)

// Unit is sentry-bootcheck.service: a oneshot before the network is
// configured (network-pre.target) and before the role's services, with a
// hard time budget (TimeoutStartSec is UnitTimeout, --budget DefaultBudget).
const Unit = `[Unit]
Description=Sentry bootcheck: decide this node's role from the disks and the hardware
Documentation=man:sentry-bootcheck(1)
DefaultDependencies=no
After=local-fs.target systemd-journald.socket
Wants=network-pre.target
Before=network-pre.target systemd-networkd.service sentry-role.target sentry-agent.service shutdown.target
Conflicts=shutdown.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/bin/sentry bootcheck run --budget 15s
TimeoutStartSec=20s
StandardOutput=journal

[Install]
WantedBy=multi-user.target
`

// Target is sentry-role.target. It starts only when bootcheck decided a
// role; safe mode leaves it (and every unit it wants) down.
const Target = `[Unit]
Description=Sentry: the services of this node's role
Documentation=man:sentry-bootcheck(1)
Requires=sentry-bootcheck.service
After=sentry-bootcheck.service
ConditionPathExists=/run/sentry/role

[Install]
WantedBy=multi-user.target
`

// DropIn is added to each role service: it waits for the decision and does
// not start in safe mode, whoever asks for it.
const DropIn = `# Written by sentry bootcheck install: this service belongs to the node's
# role; it starts after the boot decision, and not in safe mode.
[Unit]
Wants=sentry-bootcheck.service
After=sentry-bootcheck.service
ConditionPathExists=/run/sentry/role
`

// DropInName is the drop-in's file name in <unit>.d/.
const DropInName = "50-sentry-role.conf"

// RoleUnits are the services held in safe mode when no module names them.
// Template units get the drop-in on the template.
var RoleUnits = []string{
	"nginx.service", "apache2.service", "postfix.service", "postfix@.service", "dovecot.service",
	"postgresql.service", "postgresql@.service", "mariadb.service", "mysql.service",
	"smbd.service", "nmbd.service",
}

// InstallResult lists what Install wrote and removed (paths as the system
// sees them).
type InstallResult struct {
	Wrote   []string `json:"wrote"`
	Removed []string `json:"removed,omitempty"`
}

// packagedDirs are where a package puts unit files.
var packagedDirs = []string{"lib/systemd/system", "usr/lib/systemd/system"}

// packagedUnit is where a package installed unit u ("/lib/systemd/system/u"),
// or "".
func packagedUnit(root, u string) string {
	for _, d := range packagedDirs {
		if fi, err := os.Lstat(filepath.Join(root, d, u)); err == nil && fi.Mode().IsRegular() {
			return "/" + filepath.Join(d, u)
		}
	}
	return ""
}

// Install writes the bootcheck unit, the role target and the role units'
// drop-ins under root (an installed system's "/"), and enables them. It
// lists what it wrote.
//
// Where a package installed the bootcheck unit and the role target (the
// Debian package puts them in /lib/systemd/system, running /usr/bin/sentry),
// Install writes no copy of them into /etc/systemd/system, which would
// shadow the package's: it enables the package's units and writes only the
// role services' drop-ins and the target's wants. A copy an earlier
// `bootcheck install` wrote there (before the package) is removed when it
// is still as that install wrote it; one the administrator edited is kept,
// and Install stops with an error that says what to do with it.
func Install(root string, units []string) (res InstallResult, err error) {
	sys := filepath.Join(root, "etc/systemd/system")
	wrote := &res.Wrote
	write := func(rel, content string) error {
		p := filepath.Join(sys, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := writeFile(p, []byte(content)); err != nil {
			return err
		}
		*wrote = append(*wrote, filepath.Join("/etc/systemd/system", rel))
		return nil
	}
	link := func(wants, target, unit string) error {
		d := filepath.Join(sys, wants)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		l := filepath.Join(d, unit)
		os.Remove(l)
		return os.Symlink(target, l)
	}
	own := map[string]string{UnitName: Unit, RoleTarget: Target}
	for _, u := range []string{UnitName, RoleTarget} {
		target := "/etc/systemd/system/" + u
		if pkg := packagedUnit(root, u); pkg != "" {
			// The package's unit: an earlier copy of ours in /etc goes.
			p := filepath.Join(sys, u)
			if b, err := os.ReadFile(p); err == nil {
				if string(b) != own[u] {
					return res, fmt.Errorf("%s shadows the packaged %s and is not as `sentry bootcheck install` wrote it: merge your change into a drop-in (%s.d/*.conf) and remove it", target, pkg, target)
				}
				if err := os.Remove(p); err != nil {
					return res, err
				}
				res.Removed = append(res.Removed, target)
			}
			target = pkg
		} else if err := write(u, own[u]); err != nil {
			return res, err
		}
		if err := link("multi-user.target.wants", target, u); err != nil {
			return res, err
		}
	}
	for _, u := range units {
		if !strings.Contains(u, ".") {
			return res, fmt.Errorf("role unit %q has no type suffix (.service)", u)
		}
		if !unitExists(root, u) {
			continue
		}
		if err := write(u+".d/"+DropInName, DropIn); err != nil {
			return res, err
		}
		// The role target wants every role unit that is not a template.
		if !strings.Contains(u, "@.") {
			if err := link(RoleTarget+".wants", unitPath(root, u), u); err != nil {
				return res, err
			}
		}
	}
	return res, nil
}

// unitDirs are where unit files are looked up, in systemd's order.
var unitDirs = []string{"etc/systemd/system", "lib/systemd/system", "usr/lib/systemd/system"}

func unitPath(root, u string) string {
	for _, d := range unitDirs {
		if fi, err := os.Lstat(filepath.Join(root, d, u)); err == nil && fi.Mode().IsRegular() {
			return "/" + filepath.Join(d, u)
		}
	}
	return ""
}

// unitExists says whether unit u is installed (a real file, not an alias).
func unitExists(root, u string) bool { return unitPath(root, u) != "" }
