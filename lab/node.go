package lab

import (
	"context"
	"crypto/rand"
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

// mountSet mounts disk set id as an overlay on the base. fresh wipes what
// the set had written before (a new install).
func (l *Lab) mountSet(ctx context.Context, id string, fresh bool) error {
	dir := l.setDir(id)
	if fresh {
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("wipe disk set %s: %w", id, err)
		}
	}
	_, statErr := os.Stat(filepath.Join(dir, "upper"))
	isNew := errors.Is(statErr, os.ErrNotExist)
	for _, d := range []string{"upper", "work", "root"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", l.baseDir(), filepath.Join(dir, "upper"), filepath.Join(dir, "work"))
	if err := syscall.Mount("overlay", l.setRoot(id), "overlay", 0, opts); err != nil {
		return fmt.Errorf("mount disk set %s: %w", id, err)
	}
	if isNew {
		if err := l.installSet(ctx, id); err != nil {
			return fmt.Errorf("install disk set %s: %w", id, err)
		}
	}
	return nil
}

// installSet gives a new disk set what an installer would: its hostname,
// its own machine-id and ssh host keys, and a network configuration for the
// NIC of the machine it was installed on.
func (l *Lab) installSet(ctx context.Context, id string) error {
	ds, _ := diskSet(id)
	home, _ := machine(ds.Home)
	root := l.setRoot(id)
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
	return run(ctx, ChrootCmd, root, "ssh-keygen", "-A")
}

// installBinary puts the sentry binary into a disk set.
func (l *Lab) installBinary(id string) error {
	if l.opt.Binary == "" {
		return nil
	}
	src, err := os.Open(l.opt.Binary)
	if err != nil {
		return fmt.Errorf("install sentry into disk set %s: %w", id, err)
	}
	defer src.Close()
	dst := filepath.Join(l.setRoot(id), "usr/local/bin/sentry")
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

// boot starts disk set id on hardware hw and records it.
func (l *Lab) boot(ctx context.Context, st *State, id, hw string) (*NodeState, error) {
	if err := l.installBinary(id); err != nil {
		return nil, err
	}
	if err := l.flushNIC(ctx, hw); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(l.logFile(id)), 0o755); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(l.logFile(id), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	ds, _ := diskSet(id)
	fmt.Fprintf(logf, "\n==== sentry lab: booting disk set %s on hardware %s at %s ====\n", id, l.NS(hw), time.Now().UTC().Format(time.RFC3339))
	machineName := ds.Hostname
	if l.opt.Name != "" {
		machineName = l.opt.Name + "-" + ds.Hostname
	}
	cmd := exec.Command(NspawnCmd,
		"-D", l.setRoot(id), "-M", machineName, "-b",
		"--register=no", "--keep-unit",
		"--capability=CAP_NET_ADMIN",
		"--network-namespace-path=/run/netns/"+l.NS(hw),
		"--console=passive")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("boot disk set %s: %w", id, err)
	}
	start, ok := procStartTime(cmd.Process.Pid)
	if !ok {
		return nil, fmt.Errorf("boot disk set %s: systemd-nspawn exited at once; see %s", id, l.logFile(id))
	}
	n := NodeState{Set: id, Hardware: hw, NspawnPID: cmd.Process.Pid, StartTime: start,
		Root: l.setRoot(id), BootedAt: time.Now().UTC().Format(time.RFC3339)}
	st.Nodes = append(st.Nodes, n)
	if err := l.saveState(st); err != nil {
		return nil, err
	}
	cmd.Process.Release()
	l.logf("booting disk set %s on %s (systemd-nspawn PID %d)", id, l.NS(hw), n.NspawnPID)
	return &st.Nodes[len(st.Nodes)-1], nil
}

// nodeCmd runs a command inside a node, output captured.
func (l *Lab) nodeCmd(ctx context.Context, n *NodeState, args ...string) (string, error) {
	pid, err := n.pid1()
	if err != nil {
		return "", err
	}
	full := append([]string{"-t", fmt.Sprint(pid), "-a", "--", "env", "-i",
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"}, args...)
	return output(ctx, NsenterCmd, full...)
}

// serviceStates asks the node's systemd for each lab service's state.
func (l *Lab) serviceStates(ctx context.Context, n *NodeState) (map[string]string, error) {
	out, _ := l.nodeCmd(ctx, n, append([]string{"systemctl", "is-active"}, Services...)...)
	lines := strings.Fields(out)
	if len(lines) != len(Services) {
		return nil, fmt.Errorf("systemctl is-active in disk set %s answered %q", n.Set, out)
	}
	m := map[string]string{}
	for i, s := range Services {
		m[s] = lines[i]
	}
	return m, nil
}

// waitReady waits until the node's systemd has finished starting up and
// every lab service is active.
func (l *Lab) waitReady(ctx context.Context, n *NodeState) error {
	deadline := time.Now().Add(l.opt.BootTimeout)
	var last string
	for time.Now().Before(deadline) {
		if !n.alive() {
			return fmt.Errorf("disk set %s: systemd-nspawn exited during boot; see %s", n.Set, l.logFile(n.Set))
		}
		sys, _ := l.nodeCmd(ctx, n, "systemctl", "is-system-running")
		sys = strings.TrimSpace(sys)
		states, err := l.serviceStates(ctx, n)
		if err == nil {
			var notActive []string
			for _, s := range Services {
				if states[s] != "active" {
					notActive = append(notActive, s+"="+states[s])
				}
			}
			if len(notActive) == 0 && sys == "running" {
				return nil
			}
			if sys == "degraded" {
				failed, _ := l.nodeCmd(ctx, n, "systemctl", "--failed", "--no-legend", "--plain")
				return fmt.Errorf("disk set %s booted degraded; failed units:\n%s", n.Set, strings.TrimSpace(failed))
			}
			last = fmt.Sprintf("system %s; not active: %s", sys, strings.Join(notActive, " "))
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	return fmt.Errorf("disk set %s not ready after %s (%s); see %s", n.Set, l.opt.BootTimeout, last, l.logFile(n.Set))
}

// stopNode powers a node off cleanly (SIGTERM to nspawn: systemd inside
// halts), or pulls the plug if it does not halt in time. Only the recorded
// process is signalled.
func (l *Lab) stopNode(ctx context.Context, n *NodeState, grace time.Duration) error {
	if n.alive() {
		pid1, _ := childOf(n.NspawnPID)
		syscall.Kill(n.NspawnPID, syscall.SIGTERM)
		deadline := time.Now().Add(grace)
		for n.alive() && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		if n.alive() {
			l.logf("disk set %s did not halt within %s: killing its PID 1 (%d)", n.Set, grace, pid1)
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
	if err := l.flushNIC(ctx, n.Hardware); err != nil {
		return err
	}
	return l.unmountSet(n.Set)
}

// PowerLoss kills a node at once, as pulling its power cord would.
func (l *Lab) PowerLoss(ctx context.Context, node string) error {
	unlock, err := l.lock()
	if err != nil {
		return err
	}
	defer unlock()
	st, err := l.loadState()
	if err != nil {
		return err
	}
	n, err := st.resolveNode(l, node)
	if err != nil {
		return err
	}
	pid1, err := n.pid1()
	if err != nil {
		return err
	}
	syscall.Kill(pid1, syscall.SIGKILL)
	return l.stopNode(ctx, n, 10*time.Second)
}

func (l *Lab) unmountSet(id string) error {
	root := l.setRoot(id)
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
