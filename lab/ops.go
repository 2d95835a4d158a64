package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// UpOptions tune Up.
type UpOptions struct {
	// KeepDisks reuses the disk sets' earlier contents instead of
	// installing them afresh.
	KeepDisks bool
}

func checkTools() error {
	var missing []string
	for _, t := range []string{IPCmd, NspawnCmd, NsenterCmd, ChrootCmd, DepmodCmd, GPGCmd} {
		if _, err := exec.LookPath(t); err != nil {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing %s: apt-get install -y debootstrap systemd-container iproute2 kmod gnupg", strings.Join(missing, ", "))
	}
	return nil
}

// Up builds the base if needed, clears whatever an earlier lab left behind,
// creates the network, and boots P on hw-a and S on hw-b, returning when
// every lab service runs on both.
func (l *Lab) Up(ctx context.Context, opt UpOptions) error {
	if err := needRoot(); err != nil {
		return err
	}
	if err := checkTools(); err != nil {
		return err
	}
	unlock, err := l.state.lock()
	if err != nil {
		return err
	}
	defer unlock()
	if err := l.down(ctx); err != nil {
		return fmt.Errorf("clearing the earlier lab: %w", err)
	}
	if err := l.EnsureBase(ctx); err != nil {
		return err
	}
	start := time.Now()
	if err := l.net.setup(ctx); err != nil {
		return err
	}
	st := &State{}
	for _, s := range Sets {
		if err := l.sets.mount(ctx, s.ID, !opt.KeepDisks); err != nil {
			return err
		}
	}
	var nodes []*NodeState
	for _, s := range Sets {
		n, err := l.nodes.boot(ctx, st, s.ID, s.Home)
		if err != nil {
			return err
		}
		nodes = append(nodes, n)
	}
	if err := l.waitAll(ctx, st); err != nil {
		return err
	}
	l.log("all services running on both nodes, %s after the network was made", time.Since(start).Round(100*time.Millisecond))
	return nil
}

func (l *Lab) waitAll(ctx context.Context, st *State) error {
	errs := make([]error, len(st.Nodes))
	var wg sync.WaitGroup
	for i := range st.Nodes {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs[i] = l.nodes.waitReady(ctx, &st.Nodes[i])
		}(i)
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Down stops exactly what the lab started and removes its mounts and
// namespaces; the disk sets' contents stay on disk.
func (l *Lab) Down(ctx context.Context) error {
	if err := needRoot(); err != nil {
		return err
	}
	unlock, err := l.state.lock()
	if err != nil {
		return err
	}
	defer unlock()
	return l.down(ctx)
}

func (l *Lab) down(ctx context.Context) error {
	st, err := l.state.load()
	if err != nil {
		l.log("ignoring unreadable state: %v", err)
		st = &State{}
	}
	var wg sync.WaitGroup
	errs := make([]error, len(st.Nodes))
	for i := range st.Nodes {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			n := &st.Nodes[i]
			if !n.alive() && !n.pid1Alive() {
				return
			}
			l.log("powering off disk set %s on %s", n.Set, l.NS(n.Hardware))
			errs[i] = l.nodes.stop(ctx, n, 60*time.Second)
		}(i)
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	// A node whose state was lost (a crash before the state file was
	// written): its processes run in one of the lab's own network
	// namespaces and in a PID namespace of their own. Clients such as tests
	// or `ip netns exec` share the host's PID namespace and are left alone.
	for _, ns := range l.net.all() {
		pids := nodePIDs(ctx, ns)
		for _, p := range pids {
			l.log("killing process %d of an unrecorded node in lab namespace %s", p, ns)
			syscall.Kill(p, syscall.SIGKILL)
		}
		deadline := time.Now().Add(10 * time.Second)
		for len(nodePIDs(ctx, ns)) > 0 && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
	}
	for _, s := range Sets {
		l.nodes.removeCgroups(s.ID)
		if err := l.sets.unmount(s.ID); err != nil {
			return err
		}
	}
	for _, ns := range l.net.all() {
		if nsExists(ns) {
			if err := run(ctx, IPCmd, "netns", "del", ns); err != nil {
				return err
			}
		}
	}
	if err := os.Remove(l.state.path()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return l.checkClean(ctx)
}

// Leftovers lists what of this lab still exists on the host: namespaces,
// mounts and processes. Empty after a clean Down.
func (l *Lab) Leftovers(ctx context.Context) []string {
	var left []string
	for _, ns := range l.net.all() {
		if nsExists(ns) {
			left = append(left, "namespace "+ns)
		}
		for _, p := range nsPIDs(ctx, ns) {
			left = append(left, fmt.Sprintf("process %d in %s", p, ns))
		}
	}
	for _, s := range Sets {
		for _, m := range mountsUnder(l.sets.root(s.ID)) {
			left = append(left, "mount "+m)
		}
		for _, h := range cgroupHierarchies() {
			if _, err := os.Stat(filepath.Join(h, l.nodes.cgroupName(s.ID))); err == nil {
				left = append(left, "cgroup "+filepath.Join(h, l.nodes.cgroupName(s.ID)))
			}
		}
	}
	return left
}

func (l *Lab) checkClean(ctx context.Context) error {
	if left := l.Leftovers(ctx); len(left) > 0 {
		return fmt.Errorf("lab not fully removed: %s", strings.Join(left, "; "))
	}
	return nil
}

// Swap powers both nodes off cleanly, moves each disk set into the other
// machine, and boots them: the manual failover, done by the lab's hands.
func (l *Lab) Swap(ctx context.Context) error {
	if err := needRoot(); err != nil {
		return err
	}
	unlock, err := l.state.lock()
	if err != nil {
		return err
	}
	defer unlock()
	st, err := l.state.load()
	if err != nil {
		return err
	}
	if len(st.Nodes) != 2 {
		return ErrNotRunning
	}
	placement := map[string]string{}
	var wg sync.WaitGroup
	errs := make([]error, len(st.Nodes))
	for i := range st.Nodes {
		n := &st.Nodes[i]
		placement[n.Set] = other(n.Hardware)
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs[i] = l.nodes.stop(ctx, &st.Nodes[i], 60*time.Second)
		}(i)
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	l.log("both nodes powered off; moving the disk sets")
	st.Nodes = nil
	if err := l.state.save(st); err != nil {
		return err
	}
	for _, s := range Sets {
		if err := l.sets.mount(ctx, s.ID, false); err != nil {
			return err
		}
		if _, err := l.nodes.boot(ctx, st, s.ID, placement[s.ID]); err != nil {
			return err
		}
	}
	return l.waitAll(ctx, st)
}

// PowerLoss kills a node at once, as pulling its power cord would.
func (l *Lab) PowerLoss(ctx context.Context, node string) error {
	unlock, err := l.state.lock()
	if err != nil {
		return err
	}
	defer unlock()
	st, err := l.state.load()
	if err != nil {
		return err
	}
	n, err := st.resolveNode(l.net, node)
	if err != nil {
		return err
	}
	pid1, err := n.pid1()
	if err != nil {
		return err
	}
	syscall.Kill(pid1, syscall.SIGKILL)
	return l.nodes.stop(ctx, n, 10*time.Second)
}

// PID1 is the node's systemd as the lab recorded it at its boot (0: the
// set is not running, or its recorded PID 1 has exited). It reads the
// lab's state without taking its lock and runs nothing in the node, so a
// test may ask while a lab command waits for that very boot (to cut the
// boot short with a SIGKILL to it, the recorded process and no other).
func (l *Lab) PID1(set string) int {
	st, err := l.state.load()
	if err != nil {
		return 0
	}
	for i := range st.Nodes {
		n := &st.Nodes[i]
		if strings.EqualFold(n.Set, set) && n.pid1Alive() {
			return n.PID1
		}
	}
	return 0
}

func other(hw string) string {
	if hw == "a" {
		return "b"
	}
	return "a"
}

// NodeStatus is one node as `sentry-lab status` shows it.
type NodeStatus struct {
	DiskSet     string            `json:"disk_set"`
	Hostname    string            `json:"hostname"`
	Hardware    string            `json:"hardware"`
	Running     bool              `json:"running"`
	NspawnPID   int               `json:"nspawn_pid,omitempty"`
	BootedAt    string            `json:"booted_at,omitempty"`
	SystemState string            `json:"system_state,omitempty"`
	Services    map[string]string `json:"services,omitempty"`
	NICs        []NICInfo         `json:"nics,omitempty"`
	Error       string            `json:"error,omitempty"`
}

// Status is the whole lab.
type Status struct {
	Name      string       `json:"name"`
	BaseReady bool         `json:"base_ready"`
	Base      string       `json:"base"`
	Office    string       `json:"office_namespace"`
	Nodes     []NodeStatus `json:"nodes"`
}

// Status reports which disk set runs on which hardware and its services.
func (l *Lab) Status(ctx context.Context) (*Status, error) {
	if err := needRoot(); err != nil {
		return nil, err
	}
	st, err := l.state.load()
	if err != nil {
		return nil, err
	}
	res := &Status{Name: l.opt.Name, BaseReady: l.BaseReady(), Base: l.base.dir(), Office: l.NS("office")}
	for i := range st.Nodes {
		n := &st.Nodes[i]
		ds, _ := diskSet(n.Set)
		ns := NodeStatus{DiskSet: n.Set, Hostname: ds.Hostname, Hardware: l.NS(n.Hardware), BootedAt: n.BootedAt}
		if n.alive() {
			ns.Running = true
			ns.NspawnPID = n.NspawnPID
			sys, _ := l.nodes.cmd(ctx, n, "systemctl", "is-system-running")
			ns.SystemState = strings.TrimSpace(sys)
			if ss, err := l.nodes.serviceStates(ctx, n); err == nil {
				ns.Services = ss
			} else {
				ns.Error = err.Error()
			}
			if nics, err := nics(ctx, l.NS(n.Hardware)); err == nil {
				ns.NICs = nics
			}
		}
		res.Nodes = append(res.Nodes, ns)
	}
	sort.Slice(res.Nodes, func(i, j int) bool { return res.Nodes[i].DiskSet < res.Nodes[j].DiskSet })
	return res, nil
}

// Exec runs a command inside a node with the caller's stdio and returns its
// exit code.
func (l *Lab) Exec(ctx context.Context, node string, args []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	if err := needRoot(); err != nil {
		return 0, err
	}
	if len(args) == 0 {
		return 0, errors.New("no command given")
	}
	st, err := l.state.load()
	if err != nil {
		return 0, err
	}
	n, err := st.resolveNode(l.net, node)
	if err != nil {
		return 0, err
	}
	pid, err := n.pid1()
	if err != nil {
		return 0, err
	}
	full := append([]string{"-t", fmt.Sprint(pid), "-a", "--", "env", "-i",
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "HOME=/root", "TERM=" + os.Getenv("TERM")}, args...)
	cmd := exec.CommandContext(ctx, NsenterCmd, full...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	err = cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), nil
	}
	return 0, err
}

// Logs writes the console log of a disk set (every boot, oldest first) and,
// when the set is running, the journal of its current boot. (nspawn passes
// the console on in chunks, so the console log of a running boot can lag.)
func (l *Lab) Logs(ctx context.Context, node string, w io.Writer) error {
	id := ""
	for _, s := range Sets {
		for _, alias := range []string{s.ID, strings.ToLower(s.ID), s.Hostname} {
			if node == alias {
				id = s.ID
			}
		}
	}
	if id == "" {
		// A hardware name: whichever set runs there now.
		st, err := l.state.load()
		if err != nil {
			return err
		}
		n, err := st.resolveNode(l.net, node)
		if err != nil {
			return err
		}
		id = n.Set
	}
	f, err := os.Open(l.sets.logFile(id))
	if err != nil {
		return fmt.Errorf("no console log for disk set %s yet: %w", id, err)
	}
	defer f.Close()
	if _, err := io.Copy(w, f); err != nil {
		return err
	}
	st, err := l.state.load()
	if err != nil {
		return err
	}
	for i := range st.Nodes {
		n := &st.Nodes[i]
		if n.Set != id || !n.alive() {
			continue
		}
		j, err := l.nodes.cmd(ctx, n, "journalctl", "-b", "--no-pager", "-o", "short-iso")
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "\n==== sentry lab: journal of the running boot of disk set %s on %s ====\n%s", id, l.NS(n.Hardware), j)
	}
	return nil
}

// Move powers disk set set off (if it runs) and boots it on machine hw ("a",
// "b", "c" or "hw-a"...): disks carried into another machine, or with its own
// machine a reboot. hw "off" only powers it off. It returns when the node is
// ready (or in safe mode).
func (l *Lab) Move(ctx context.Context, set, hw string) error {
	if err := needRoot(); err != nil {
		return err
	}
	unlock, err := l.state.lock()
	if err != nil {
		return err
	}
	defer unlock()
	st, err := l.state.load()
	if err != nil {
		return err
	}
	id := ""
	for _, s := range Sets {
		if strings.EqualFold(set, s.ID) || set == s.Hostname {
			id = s.ID
		}
	}
	if id == "" {
		return fmt.Errorf("no disk set %q (use P or S)", set)
	}
	hw = strings.TrimPrefix(hw, "hw-")
	if _, ok := machine(hw); !ok && hw != "off" {
		return fmt.Errorf("no machine %q (use a, b, c or off)", hw)
	}
	if !nsExists(l.NS("office")) {
		return ErrNotRunning
	}
	var keep []NodeState
	for i := range st.Nodes {
		n := &st.Nodes[i]
		switch {
		case n.Set == id:
			if err := l.nodes.stop(ctx, n, 60*time.Second); err != nil {
				return err
			}
			l.log("disk set %s powered off (was on %s)", id, l.NS(n.Hardware))
		case n.Hardware == hw && n.alive():
			return fmt.Errorf("machine %s runs disk set %s: power it off first (sentry-lab move %s off)", l.NS(hw), n.Set, n.Set)
		default:
			keep = append(keep, *n)
		}
	}
	st.Nodes = keep
	if err := l.state.save(st); err != nil {
		return err
	}
	if hw == "off" {
		return nil
	}
	if err := l.sets.mount(ctx, id, false); err != nil {
		return err
	}
	n, err := l.nodes.boot(ctx, st, id, hw)
	if err != nil {
		return err
	}
	return l.nodes.waitReady(ctx, n)
}
