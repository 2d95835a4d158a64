package lab

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Services are the units every lab node must have running before the lab
// calls it up. postgresql.service is only a wrapper; the cluster unit is
// postgresql@15-main.
var Services = []string{
	"systemd-networkd", "ssh", "nginx", "postfix", "dovecot",
	"postgresql@15-main", "mariadb", "smbd",
}

// diskSets is the lab's disk sets: each an overlay on the base, installed
// as an installer would, mounted while it runs.
type diskSets struct {
	dir    string // the lab's state folder
	base   *baseCache
	apt    *aptCache
	binary string // the sentry binary installed into each set; "" none
	// noBootcheckInstall: no `sentry bootcheck install` after it.
	noBootcheckInstall bool
	log                logFunc
	prog               *progress
}

func (d *diskSets) setDir(id string) string { return filepath.Join(d.dir, "sets", id) }

// root is where disk set id is mounted on the host while it runs.
func (d *diskSets) root(id string) string    { return filepath.Join(d.setDir(id), "root") }
func (d *diskSets) logFile(id string) string { return filepath.Join(d.dir, "logs", id+".console.log") }
func (d *diskSets) hardwareDir() string      { return filepath.Join(d.dir, "hardware") }

// mount mounts disk set id as an overlay on the base. fresh wipes what
// the set had written before (a new install).
func (d *diskSets) mount(ctx context.Context, id string, fresh bool) error {
	dir := d.setDir(id)
	if fresh {
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("wipe disk set %s: %w", id, err)
		}
		os.Remove(d.logFile(id)) // new disks, new console log
	}
	_, statErr := os.Stat(filepath.Join(dir, "upper"))
	isNew := errors.Is(statErr, os.ErrNotExist)
	for _, d := range []string{"upper", "work", "root"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", d.base.dir(), filepath.Join(dir, "upper"), filepath.Join(dir, "work"))
	if err := syscall.Mount("overlay", d.root(id), "overlay", 0, opts); err != nil {
		return fmt.Errorf("mount disk set %s: %w", id, err)
	}
	if isNew {
		task := d.prog.task("disk set " + id)
		task.step("installing (hostname, network, kernel modules, lab packages, ssh keys)", "")
		err := d.install(ctx, id)
		task.done()
		if err != nil {
			return fmt.Errorf("install disk set %s: %w", id, err)
		}
	}
	return nil
}

// install gives a new disk set what an installer would: its hostname,
// its own machine-id and ssh host keys, and a network configuration for the
// NIC of the machine it was installed on.
func (d *diskSets) install(ctx context.Context, id string) error {
	ds, _ := diskSet(id)
	home, _ := machine(ds.Home)
	root := d.root(id)
	mid := make([]byte, 16)
	if _, err := rand.Read(mid); err != nil {
		return err
	}
	files := map[string]string{
		"etc/hostname":   ds.Hostname + "\n",
		"etc/machine-id": hex.EncodeToString(mid) + "\n",
		"etc/hosts": fmt.Sprintf("127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\t\tlocalhost ip6-localhost ip6-loopback\n",
			ds.Hostname),
		"etc/systemd/network/10-installer.network": fmt.Sprintf(
			"# Written by the installer for the NIC of machine %s.\n[Match]\nMACAddress=%s\n\n[Network]\nAddress=%s\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n",
			home.ID, home.MAC, ds.Address),
	}
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		os.Remove(p) // the base's read-only machine-id, for one
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
	}
	if err := d.installLabSoftware(ctx, id); err != nil {
		return err
	}
	return run(ctx, ChrootCmd, root, "ssh-keygen", "-A")
}

// labAgentConfig is the node's sentry.toml as the lab writes it: the lab's
// NICs are veth pairs and it has no DMI of its own.
const labAgentConfig = `# Written by sentry lab at install: the lab's machines are network
# namespaces whose NICs are veth pairs, and they have no DMI of their own.
[hardware]
identity = "mac"
nic_kinds = ["device", "veth"]

# The lab verifies more often than an office server needs to.
[verifier]
interval = "15s"
jitter = "2s"
timeout = "10s"
`

// services lists the units that must be active on a lab node.
func (r *nodeRunner) services() []string {
	if r.binary != "" {
		return append(append([]string{}, Services...), "sentry-agent")
	}
	return Services
}

// installBinary puts sentry into a disk set. A Debian package (a
// binary path ending in .deb, as the end-to-end tests and make demo give
// it) is installed with dpkg in a chroot, as on a server: /usr/bin/sentry,
// the units in /lib/systemd/system, enabled by its postinst; it is
// installed again only when the package file changed since the lab last
// installed it (a test that upgrades inside a running node is not undone
// at the next boot). A bare binary is copied to /usr/local/bin/sentry with
// the agent's unit it prints (sentry agent unit), for a quick loop on the
// code. Either way the lab's sentry.toml is written once, and `sentry
// bootcheck install` runs as an operator runs it after installing.
func (d *diskSets) installBinary(id string) error {
	if d.binary == "" {
		return nil
	}
	root := d.root(id)
	bin := "/usr/local/bin/sentry"
	if strings.HasSuffix(d.binary, ".deb") {
		bin = "/usr/bin/sentry"
		if err := d.installPackage(id); err != nil {
			return err
		}
	} else {
		if err := d.copyBinary(id); err != nil {
			return err
		}
		unit, err := output(context.Background(), ChrootCmd, root, bin, "agent", "unit")
		if err != nil {
			return fmt.Errorf("install sentry into disk set %s: %w", id, err)
		}
		if err := os.WriteFile(filepath.Join(root, "etc/systemd/system/sentry-agent.service"), []byte(unit), 0o644); err != nil {
			return err
		}
		want := filepath.Join(root, "etc/systemd/system/multi-user.target.wants/sentry-agent.service")
		os.Remove(want)
		if err := os.Symlink("/etc/systemd/system/sentry-agent.service", want); err != nil {
			return err
		}
	}
	// The lab's configuration replaces the default (the package's
	// conffile) once, when the disk set gets sentry first; the rolling
	// upgrade keeps it (dpkg --force-confold, as unattended-upgrades).
	cfg := filepath.Join(root, "etc/sentry/sentry.toml")
	mark := filepath.Join(d.setDir(id), "sentry-config-written")
	if _, err := os.Stat(mark); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(cfg), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(cfg, []byte(labAgentConfig), 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(mark, nil, 0o644); err != nil {
			return err
		}
	}
	// What an operator does once after installing sentry: the bootcheck
	// unit (the package's, or written here), the role target and the role
	// services' drop-ins.
	if d.noBootcheckInstall {
		return nil
	}
	return run(context.Background(), ChrootCmd, root, bin, "bootcheck", "install")
}

// installPackage installs the package d.binary into disk set id with dpkg
// in a chroot, unless it is the one the lab installed there last.
func (d *diskSets) installPackage(id string) error {
	sum, err := fileSHA256(d.binary)
	if err != nil {
		return fmt.Errorf("install sentry into disk set %s: %w", id, err)
	}
	mark := filepath.Join(d.setDir(id), "sentry-package")
	if b, err := os.ReadFile(mark); err == nil && string(b) == sum {
		return nil
	}
	root := d.root(id)
	name := filepath.Base(d.binary)
	// /root, not /tmp: a booted node mounts a tmpfs over /tmp.
	dst := filepath.Join(root, "root", name)
	if err := copyFile(d.binary, dst); err != nil {
		return fmt.Errorf("install sentry into disk set %s: %w", id, err)
	}
	defer os.Remove(dst)
	d.log("disk set %s: dpkg -i %s", id, name)
	out, err := output(context.Background(), ChrootCmd, root, "env", "DEBIAN_FRONTEND=noninteractive",
		"dpkg", "--force-confdef", "--force-confold", "-i", "/root/"+name)
	if err != nil {
		return fmt.Errorf("install %s into disk set %s: %w\n%s", name, id, err, out)
	}
	return os.WriteFile(mark, []byte(sum), 0o644)
}

func fileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func (d *diskSets) copyBinary(id string) error {
	src, err := os.Open(d.binary)
	if err != nil {
		return fmt.Errorf("install sentry into disk set %s: %w", id, err)
	}
	defer src.Close()
	dst := filepath.Join(d.root(id), "usr/local/bin/sentry")
	tmp := dst + ".new"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
	if err != nil {
		return fmt.Errorf("install sentry into disk set %s: %w", id, err)
	}
	if _, err := io.Copy(f, src); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

// nodeRunner is a node's lifecycle: boot a disk set on a machine, wait
// until it is ready, run commands in it, power it off.
type nodeRunner struct {
	name        string // the lab's name; "" for the default lab
	net         *netns
	sets        *diskSets
	state       *stateFile
	binary      string // the sentry binary installed; "" none
	bootTimeout time.Duration
	log         logFunc
	prog        *progress
}

// boot starts disk set id on hardware hw and records it.
func (r *nodeRunner) boot(ctx context.Context, st *State, id, hw string) (*NodeState, error) {
	if err := r.sets.installBinary(id); err != nil {
		return nil, err
	}
	if err := r.net.flushNIC(ctx, hw); err != nil {
		return nil, err
	}
	logFile := r.sets.logFile(id)
	if err := os.MkdirAll(filepath.Dir(logFile), 0o755); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(logFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	ds, _ := diskSet(id)
	fmt.Fprintf(logf, "\n==== sentry lab: booting disk set %s on hardware %s at %s ====\n", id, r.net.name(hw), time.Now().UTC().Format(time.RFC3339))
	machineName := ds.Hostname
	if r.name != "" {
		machineName = r.name + "-" + ds.Hostname
	}
	binds, err := r.sets.nodeBinds(id, hw)
	if err != nil {
		return nil, err
	}
	cgs, err := r.makeCgroups(id)
	if err != nil {
		return nil, err
	}
	// With --keep-unit and no host systemd, nspawn leaves the node in the
	// cgroup it was started in. Two nodes in one cgroup share their
	// system.slice, and their units' cgroups collide (units failed with
	// 219/CGROUP). So a shell joins this set's own cgroup, then becomes nspawn.
	cmd := exec.Command("/bin/sh", append([]string{"-c",
		`for f in $SENTRY_LAB_CGROUPS; do echo $$ > "$f/cgroup.procs" || exit 97; done; exec "$@"`,
		"sh", NspawnCmd,
		"-D", r.sets.root(id), "-M", machineName, "-b",
		"--register=no", "--keep-unit",
		"--capability=CAP_NET_ADMIN",
		"--network-namespace-path=/run/netns/" + r.net.name(hw),
		"--console=passive"}, binds...)...)
	cmd.Env = append(os.Environ(), "SENTRY_LAB_CGROUPS="+strings.Join(cgs, " "))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("boot disk set %s: %w", id, err)
	}
	start, ok := procStartTime(cmd.Process.Pid)
	if !ok {
		return nil, fmt.Errorf("boot disk set %s: systemd-nspawn exited at once; see %s", id, logFile)
	}
	n := NodeState{Set: id, Hardware: hw, NspawnPID: cmd.Process.Pid, StartTime: start,
		Root: r.sets.root(id), BootedAt: time.Now().UTC().Format(time.RFC3339)}
	// nspawn forks an intermediate child first; the node's PID 1 is the
	// child that lives in a PID namespace of its own.
	ownPidNS, _ := os.Readlink("/proc/self/ns/pid")
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		c, err := childOf(n.NspawnPID)
		if err != nil {
			continue
		}
		if pidns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", c)); err != nil || pidns == ownPidNS {
			continue
		}
		if cst, ok := procStartTime(c); ok {
			n.PID1, n.PID1StartTime = c, cst
			break
		}
	}
	if n.PID1 == 0 {
		r.log("disk set %s: could not record the node's PID 1 (a crash of nspawn would leave it for the namespace sweep)", id)
	}
	st.Nodes = append(st.Nodes, n)
	if err := r.state.save(st); err != nil {
		return nil, err
	}
	cmd.Process.Release()
	r.log("booting disk set %s on %s (systemd-nspawn PID %d)", id, r.net.name(hw), n.NspawnPID)
	return &st.Nodes[len(st.Nodes)-1], nil
}

// CgroupRoot is where the host's cgroup hierarchies are mounted.
var CgroupRoot = "/sys/fs/cgroup"

// cgroupHierarchies lists the hierarchies a node's systemd writes to: the
// named systemd one and the unified one on a hybrid host, or the single
// cgroup2 root on a unified host.
func cgroupHierarchies() []string {
	var hs []string
	for _, sub := range []string{"systemd", "unified"} {
		if _, err := os.Stat(filepath.Join(CgroupRoot, sub, "cgroup.procs")); err == nil {
			hs = append(hs, filepath.Join(CgroupRoot, sub))
		}
	}
	if len(hs) == 0 {
		if _, err := os.Stat(filepath.Join(CgroupRoot, "cgroup.procs")); err == nil {
			hs = append(hs, CgroupRoot)
		}
	}
	return hs
}

func (r *nodeRunner) cgroupName(id string) string {
	name := "default"
	if r.name != "" {
		name = r.name
	}
	return filepath.Join("sentry-lab", name+"-"+id)
}

// makeCgroups creates disk set id's own cgroup in each hierarchy.
func (r *nodeRunner) makeCgroups(id string) ([]string, error) {
	var res []string
	for _, h := range cgroupHierarchies() {
		d := filepath.Join(h, r.cgroupName(id))
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("cgroup for disk set %s: %w", id, err)
		}
		res = append(res, d)
	}
	return res, nil
}

// removeCgroups removes disk set id's cgroups (deepest first); they are
// empty once the node is off.
func (r *nodeRunner) removeCgroups(id string) {
	for _, h := range cgroupHierarchies() {
		top := filepath.Join(h, r.cgroupName(id))
		var dirs []string
		filepath.WalkDir(top, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		// Killed processes can take a moment to leave their cgroup.
		for try := 0; try < 50; try++ {
			ok := true
			for i := len(dirs) - 1; i >= 0; i-- {
				if err := os.Remove(dirs[i]); err != nil && !errors.Is(err, os.ErrNotExist) {
					ok = false
				}
			}
			if ok {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		os.Remove(filepath.Dir(top)) // the shared parent, once no lab uses it
	}
}

// cmd runs a command inside a node, output captured.
func (r *nodeRunner) cmd(ctx context.Context, n *NodeState, args ...string) (string, error) {
	pid, err := n.pid1()
	if err != nil {
		return "", err
	}
	// A query of a node never hangs the lab: one into a node that is
	// shutting down can be stopped by its systemd-shutdown (SIGSTOP to
	// every process it finds), and then holds that shutdown up too.
	ctx, cancel := context.WithTimeout(ctx, nodeCmdTimeout)
	defer cancel()
	full := append([]string{"-t", fmt.Sprint(pid), "-a", "--", "env", "-i",
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"}, args...)
	return output(ctx, NsenterCmd, full...)
}

// nodeCmdTimeout bounds a query run in a node (a service's state, the
// journal of its boot).
const nodeCmdTimeout = 30 * time.Second

// serviceStates asks the node's systemd for each lab service's state.
func (r *nodeRunner) serviceStates(ctx context.Context, n *NodeState) (map[string]string, error) {
	svcs := r.services()
	out, _ := r.cmd(ctx, n, append([]string{"systemctl", "is-active"}, svcs...)...)
	lines := strings.Fields(out)
	if len(lines) != len(svcs) {
		return nil, fmt.Errorf("systemctl is-active in disk set %s answered %q", n.Set, out)
	}
	m := map[string]string{}
	for i, s := range svcs {
		m[s] = lines[i]
	}
	return m, nil
}

// waitReady waits until the node's systemd has finished starting up and
// every lab service is active, showing how far the boot is.
func (r *nodeRunner) waitReady(ctx context.Context, n *NodeState) error {
	task := r.prog.task("node " + n.Set)
	defer task.done()
	step := "booting on " + r.net.name(n.Hardware)
	task.step(step, "")
	deadline := time.Now().Add(r.bootTimeout)
	var last string
	for time.Now().Before(deadline) {
		if !n.alive() {
			return fmt.Errorf("disk set %s: systemd-nspawn exited during boot; see %s", n.Set, r.sets.logFile(n.Set))
		}
		sys, _ := r.cmd(ctx, n, "systemctl", "is-system-running")
		sys = strings.TrimSpace(sys)
		if why, safe := r.safeMode(ctx, n); safe && sys == "running" {
			// Bootcheck held the role's services: ready means ssh and
			// the agent run, and nothing else is asked of the node.
			states, err := r.serviceStates(ctx, n)
			if err == nil && states["ssh"] == "active" && (r.binary == "" || states["sentry-agent"] == "active") {
				task.step(step, "up, in safe mode")
				r.log("disk set %s is in SAFE MODE: %s", n.Set, why)
				return nil
			}
		}
		states, err := r.serviceStates(ctx, n)
		if err == nil {
			var notActive []string
			svcs := r.services()
			for _, s := range svcs {
				if states[s] != "active" {
					notActive = append(notActive, s+"="+states[s])
				}
			}
			task.step(step, bootDetail(sys, len(svcs)-len(notActive), len(svcs)))
			if len(notActive) == 0 && sys == "running" {
				return nil
			}
			if sys == "degraded" {
				return r.degradedError(ctx, n)
			}
			last = fmt.Sprintf("system %s; not active: %s", sys, strings.Join(notActive, " "))
		} else {
			if sys != "" {
				task.step(step, "system "+sys)
			}
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	return fmt.Errorf("disk set %s not ready after %s (%s); see %s", n.Set, r.bootTimeout, last, r.sets.logFile(n.Set))
}

// bootDetail says how far a boot is: systemd's state (is-system-running)
// and how many of the lab's services are active.
func bootDetail(sys string, active, total int) string {
	switch sys {
	case "running":
		sys = "multi-user reached"
	case "starting", "initializing":
		sys = "system " + sys
	case "":
		sys = "system not answering yet"
	default:
		sys = "system " + sys
	}
	return fmt.Sprintf("%s, %d/%d services active", sys, active, total)
}

// safeMode says whether bootcheck put the node in safe mode, and why.
func (r *nodeRunner) safeMode(ctx context.Context, n *NodeState) (string, bool) {
	out, err := r.cmd(ctx, n, "cat", "/run/sentry/safe-mode")
	if err != nil {
		return "", false
	}
	return strings.TrimSpace(out), true
}

// degradedError names the failed units of a node, with their journal.
func (r *nodeRunner) degradedError(ctx context.Context, n *NodeState) error {
	failed, _ := r.cmd(ctx, n, "systemctl", "--failed", "--no-legend", "--plain")
	var b strings.Builder
	fmt.Fprintf(&b, "disk set %s booted degraded; failed units:\n%s", n.Set, strings.TrimSpace(failed))
	for _, line := range strings.Split(strings.TrimSpace(failed), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		j, _ := r.cmd(ctx, n, "journalctl", "-b", "--no-pager", "-n", "25", "-u", f[0])
		fmt.Fprintf(&b, "\n--- journal of %s:\n%s", f[0], strings.TrimSpace(j))
	}
	return errors.New(b.String())
}

// stop powers a node off cleanly (SIGTERM to nspawn: systemd inside
// halts), or pulls the plug if it does not halt in time. Only the recorded
// process is signalled.
func (r *nodeRunner) stop(ctx context.Context, n *NodeState, grace time.Duration) error {
	if !n.alive() && n.pid1Alive() {
		// nspawn is gone but the node runs on, orphaned: pull its plug.
		r.log("disk set %s runs on without its systemd-nspawn: killing its PID 1 (%d)", n.Set, n.PID1)
		syscall.Kill(n.PID1, syscall.SIGKILL)
		for deadline := time.Now().Add(10 * time.Second); n.pid1Alive() && time.Now().Before(deadline); {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if n.alive() {
		pid1 := n.PID1
		syscall.Kill(n.NspawnPID, syscall.SIGTERM)
		deadline := time.Now().Add(grace)
		for n.alive() && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		if n.alive() {
			r.log("disk set %s did not halt within %s: killing its PID 1 (%d)", n.Set, grace, pid1)
			if pid1 > 0 {
				syscall.Kill(pid1, syscall.SIGKILL)
			}
			deadline = time.Now().Add(10 * time.Second)
			for n.alive() && time.Now().Before(deadline) {
				time.Sleep(100 * time.Millisecond)
			}
			if n.alive() {
				syscall.Kill(n.NspawnPID, syscall.SIGKILL)
			}
		}
	}
	if err := r.net.flushNIC(ctx, n.Hardware); err != nil {
		return err
	}
	r.removeCgroups(n.Set)
	return r.sets.unmount(n.Set)
}

// unmount unmounts disk set id and everything mounted below it.
func (d *diskSets) unmount(id string) error {
	root := d.root(id)
	for _, mp := range mountsUnder(root) {
		if err := syscall.Unmount(mp, 0); err != nil {
			if err := syscall.Unmount(mp, syscall.MNT_DETACH); err != nil {
				return fmt.Errorf("unmount %s: %w", mp, err)
			}
		}
	}
	return nil
}

// mountsUnder lists mount points at or below dir, deepest first.
func mountsUnder(dir string) []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var res []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := unescapeMount(f[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			res = append(res, mp)
		}
	}
	for i, j := 0, len(res)-1; i < j; i, j = i+1, j-1 {
		res[i], res[j] = res[j], res[i]
	}
	return res
}

func unescapeMount(s string) string {
	r := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`)
	return r.Replace(s)
}
