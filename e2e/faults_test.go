package e2e

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sentryha/sentry/internal/readiness"
	"github.com/sentryha/sentry/lab"
)

// readinessFault is one fault of the readiness mutation test: injected on
// a READY lab, it must make the verdict of each node in judges NOT READY
// with exactly blocking (in the verdict's order) within two verifier
// rounds, and READY again within two rounds of its repair.
type readinessFault struct {
	name     string
	blocking []string
	judges   []string // the nodes whose verdict is watched ("P", "S")
	inject   func(t *testing.T)
	repair   func(t *testing.T)
}

// flipLimit is two of the lab's verifier rounds (15 s and up to 2 s of
// jitter each), a probe's timeout (10 s: a stalled service) and a hello
// (the peer's view follows the peer's status).
const flipLimit = 2*(15+2)*time.Second + 10*time.Second + 5*time.Second

// machineOf is the machine ("a", "b") disk set set runs on now.
func machineOf(t *testing.T, set string) string {
	t.Helper()
	return strings.TrimPrefix(nodeBySet(t, labStatus(t), set).Hardware, labName+"-hw-")
}

// writeMachineFile writes one of the machine files the lab's agents read
// (mdstat, clock-offset).
func writeMachineFile(t *testing.T, set, name, content string) {
	t.Helper()
	l := lab.New(lab.Options{Name: labName})
	if err := os.WriteFile(l.MachineFile(machineOf(t, set), name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func shell(t *testing.T, set, script string) string {
	t.Helper()
	return sentry(t, "lab", "exec", set, "--", "sh", "-c", script)
}

// readinessFaults: the mutation test of the verdict (issue 15): each fault
// alone, from READY, flips the verdict with exactly the expected checks
// blocking, and repaired, flips it back. Figures: each flip's time.
func readinessFaults(t *testing.T) {
	degraded, err := os.ReadFile("../internal/mdstat/testdata/degraded.mdstat")
	if err != nil {
		t.Fatal(err)
	}
	both := []string{"P", "S"}
	faults := []readinessFault{
		{name: "nginx stopped on S", blocking: []string{"verify.green"}, judges: both,
			inject: func(t *testing.T) { sentry(t, "lab", "exec", "S", "--", "systemctl", "stop", "nginx") },
			repair: func(t *testing.T) { sentry(t, "lab", "exec", "S", "--", "systemctl", "start", "nginx") }},
		{name: "samba stopped on P", blocking: []string{"verify.green"}, judges: both,
			inject: func(t *testing.T) { sentry(t, "lab", "exec", "P", "--", "systemctl", "stop", "smbd") },
			repair: func(t *testing.T) { sentry(t, "lab", "exec", "P", "--", "systemctl", "start", "smbd") }},
		{name: "the canary PostgreSQL user dropped on S", blocking: []string{"verify.green"}, judges: both,
			inject: func(t *testing.T) {
				shell(t, "S", "runuser -u postgres -- psql -Xq -d sentry_canary -c 'DROP OWNED BY sentry_canary' -c 'DROP ROLE sentry_canary'")
			},
			repair: func(t *testing.T) { sentry(t, "lab", "exec", "S", "--", "sentry", "verifier", "setup") }},
		{name: "dovecot stalled on P (SIGSTOP to the unit)", blocking: []string{"verify.green"}, judges: both,
			// Every process of the unit (its cgroup): the master alone
			// stopped leaves the login processes serving.
			inject: func(t *testing.T) { sentry(t, "lab", "exec", "P", "--", "systemctl", "kill", "-s", "STOP", "dovecot") },
			repair: func(t *testing.T) { sentry(t, "lab", "exec", "P", "--", "systemctl", "kill", "-s", "CONT", "dovecot") }},
		{name: "a package on S only", blocking: []string{"packages"}, judges: both,
			inject: func(t *testing.T) {
				sentry(t, "lab", "exec", "S", "--", "apt-get", "update", "-q", "-o", "Dir::Etc::sourcelist=sources.list.d/sentry-lab.list",
					"-o", "Dir::Etc::sourceparts=-", "-o", "APT::Get::List-Cleanup=0")
				sentry(t, "lab", "exec", "S", "--", "apt-get", "install", "-y", "-q", lab.HelloPackage)
			},
			repair: func(t *testing.T) {
				sentry(t, "lab", "exec", "S", "--", "apt-get", "purge", "-y", "-q", lab.HelloPackage)
			}},
		{name: "P lacks the driver of machine B's NIC", blocking: []string{"packages", "boot.compat"}, judges: both,
			inject: func(t *testing.T) {
				sentry(t, "lab", "exec", "P", "--", "apt-get", "purge", "-y", "-q", lab.LabDriverPackage)
			},
			repair: func(t *testing.T) { sentry(t, "lab", "exec", "P", "--", "sentry", "parity", "apply", "--yes") }},
		{name: "a failed apply on S (a change nginx refuses)", blocking: []string{"sync.failed"}, judges: both,
			inject: func(t *testing.T) {
				shell(t, "P", "echo 'this is not nginx syntax' > /etc/nginx/conf.d/zz-fault.conf")
			},
			repair: func(t *testing.T) { sentry(t, "lab", "exec", "P", "--", "rm", "/etc/nginx/conf.d/zz-fault.conf") }},
		{name: "a tracked file edited on S", blocking: []string{"sync.drift"}, judges: both,
			inject: func(t *testing.T) {
				shell(t, "S", "cp -p /etc/nginx/nginx.conf /root/nginx.conf.e2e && echo '# edited on S' >> /etc/nginx/nginx.conf")
			},
			repair: func(t *testing.T) { shell(t, "S", "cp -p /root/nginx.conf.e2e /etc/nginx/nginx.conf") }},
		{name: "S's agent stopped while P changes its configuration", blocking: []string{"peer"}, judges: []string{"P"},
			inject: func(t *testing.T) {
				sentry(t, "lab", "exec", "S", "--", "systemctl", "stop", "sentry-agent")
				shell(t, "P", "echo '# changed while S was away' > /etc/nginx/conf.d/zz-away.conf")
			},
			repair: func(t *testing.T) {
				sentry(t, "lab", "exec", "S", "--", "systemctl", "start", "sentry-agent")
				// READY means S applied P's head, with the change.
			}},
		{name: "a degraded RAID array on S", blocking: []string{"raid"}, judges: both,
			inject: func(t *testing.T) { writeMachineFile(t, "S", lab.MachineMdstat, string(degraded)) },
			repair: func(t *testing.T) { writeMachineFile(t, "S", lab.MachineMdstat, lab.NoArrays) }},
		{name: "the clocks 5 s apart", blocking: []string{"clock"}, judges: both,
			inject: func(t *testing.T) {
				writeMachineFile(t, "S", lab.MachineClockOffset, "5s")
				writeMachineFile(t, "P", lab.MachineClockOffset, "-5s")
			},
			repair: func(t *testing.T) {
				writeMachineFile(t, "S", lab.MachineClockOffset, "")
				writeMachineFile(t, "P", lab.MachineClockOffset, "")
			}},
		// S's own verdict: P still holds S's last good inventory.
		{name: "S's inventory cannot be taken (dpkg's status file damaged)", blocking: []string{"inventory.fresh"}, judges: []string{"S"},
			inject: func(t *testing.T) {
				shell(t, "S", "cp -p /var/lib/dpkg/status /root/status.e2e && printf 'Package: broken\\nthis line has no colon\\n\\n' >> /var/lib/dpkg/status")
			},
			repair: func(t *testing.T) { shell(t, "S", "cp -p /root/status.e2e /var/lib/dpkg/status") }},
	}
	for _, f := range faults {
		from := time.Now()
		ok := t.Run(strings.ReplaceAll(f.name, " ", "_"), func(t *testing.T) {
			for _, set := range f.judges {
				waitVerdict(t, set, readiness.Ready, nil, 2*flipLimit)
			}
			from = time.Now()
			injected := time.Now()
			f.inject(t)
			repaired := false
			defer func() {
				if !repaired {
					f.repair(t)
				}
			}()
			// Each node within the limit of the injection (of the repair).
			for _, set := range f.judges {
				waitVerdict(t, set, readiness.NotReady, f.blocking, flipLimit-time.Since(injected)+2*time.Second)
				figure(t, "fault %q: %s NOT READY (%s) %.0f s after it was injected", f.name, set, strings.Join(f.blocking, ", "), time.Since(injected).Seconds())
			}
			fixed := time.Now()
			f.repair(t)
			repaired = true
			for _, set := range f.judges {
				waitVerdict(t, set, readiness.Ready, nil, flipLimit-time.Since(fixed)+2*time.Second)
				figure(t, "fault %q repaired: %s READY %.0f s after the repair", f.name, set, time.Since(fixed).Seconds())
			}
		})
		// The fault's window ends with both nodes READY (the other node's
		// verdict may follow later than the judged one's).
		bothReady(t)
		declareFault(t, f.name, from, time.Now())
		if !ok {
			t.Logf("fault %q failed; the next faults start from READY again (or fail there)", f.name)
		}
	}
}
