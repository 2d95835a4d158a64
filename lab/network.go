package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

func run(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

func output(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	// Killed at the context's end, it is not waited for past this even if
	// a child it left holds its output open.
	cmd.WaitDelay = 2 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		return string(b), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(b), nil
}

// netns is the lab's network namespaces: office with its bridge, and one
// per machine with the machine's NIC cabled to the bridge.
type netns struct {
	prefix string // the lab's name; "" for the default lab
}

// name returns the namespace name of hardware id ("a", "b") or "office".
func (n *netns) name(id string) string {
	s := "hw-" + id
	if id == "office" {
		s = "office"
	}
	if n.prefix != "" {
		s = n.prefix + "-" + s
	}
	return s
}

func nsExists(name string) bool {
	_, err := os.Stat("/run/netns/" + name)
	return err == nil
}

// setupNetwork creates office (with a bridge) and the two hardware
// namespaces, each NIC cabled to the office bridge. No default route anywhere.
func (n *netns) setup(ctx context.Context) error {
	office := n.name("office")
	steps := [][]string{
		{"netns", "add", office},
		{"-n", office, "link", "set", "lo", "up"},
		{"-n", office, "link", "add", "br0", "type", "bridge"},
		{"-n", office, "addr", "add", OfficeAddress, "dev", "br0"},
		{"-n", office, "link", "set", "br0", "up"},
	}
	for _, m := range Machines {
		ns := n.name(m.ID)
		port := "port-" + m.ID
		steps = append(steps,
			[]string{"netns", "add", ns},
			[]string{"-n", ns, "link", "set", "lo", "up"},
			[]string{"-n", office, "link", "add", port, "type", "veth", "peer", "name", m.NIC, "netns", ns},
			[]string{"-n", ns, "link", "set", m.NIC, "address", m.MAC},
			[]string{"-n", ns, "link", "set", m.NIC, "up"},
			[]string{"-n", office, "link", "set", port, "master", "br0"},
			[]string{"-n", office, "link", "set", port, "up"},
		)
	}
	for _, s := range steps {
		if err := run(ctx, IPCmd, s...); err != nil {
			return err
		}
	}
	return nil
}

// flushNIC drops every address of a machine's NIC: a real NIC forgets its
// configuration at power-off, and a stale address would let a boot test
// pass for the wrong reason.
func (n *netns) flushNIC(ctx context.Context, hw string) error {
	m, _ := machine(hw)
	if !nsExists(n.name(hw)) {
		return nil
	}
	return run(ctx, IPCmd, "-n", n.name(hw), "addr", "flush", "dev", m.NIC)
}

// all lists the names this lab may have created.
func (n *netns) all() []string {
	out := []string{n.name("office")}
	for _, m := range Machines {
		out = append(out, n.name(m.ID))
	}
	return out
}

// nsPIDs lists the processes that run in one of the lab's namespaces.
func nsPIDs(ctx context.Context, ns string) []int {
	if !nsExists(ns) {
		return nil
	}
	out, err := output(ctx, IPCmd, "netns", "pids", ns)
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(out) {
		var p int
		if _, err := fmt.Sscan(f, &p); err == nil {
			pids = append(pids, p)
		}
	}
	return pids
}

// nodePIDs lists the processes in namespace ns that belong to a booted
// node: those in a PID namespace other than this process's.
func nodePIDs(ctx context.Context, ns string) []int {
	own, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return nil
	}
	var res []int
	for _, p := range nsPIDs(ctx, ns) {
		if pidns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", p)); err == nil && pidns != own {
			res = append(res, p)
		}
	}
	return res
}

// NICInfo is one interface as a namespace sees it.
type NICInfo struct {
	Name    string   `json:"name"`
	MAC     string   `json:"mac"`
	Up      bool     `json:"up"`
	Address []string `json:"addresses"`
}

// nics reads the interfaces of a namespace (lo left out).
func nics(ctx context.Context, ns string) ([]NICInfo, error) {
	out, err := output(ctx, IPCmd, "-n", ns, "-j", "addr", "show")
	if err != nil {
		return nil, err
	}
	var raw []struct {
		IfName   string   `json:"ifname"`
		Address  string   `json:"address"`
		Flags    []string `json:"flags"`
		AddrInfo []struct {
			Family    string `json:"family"`
			Local     string `json:"local"`
			PrefixLen int    `json:"prefixlen"`
		} `json:"addr_info"`
	}
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		return nil, fmt.Errorf("ip -j addr in %s: %w", ns, err)
	}
	var res []NICInfo
	for _, r := range raw {
		if r.IfName == "lo" {
			continue
		}
		n := NICInfo{Name: r.IfName, MAC: r.Address}
		for _, f := range r.Flags {
			if f == "UP" {
				n.Up = true
			}
		}
		for _, a := range r.AddrInfo {
			if a.Family == "inet" || (a.Family == "inet6" && !strings.HasPrefix(a.Local, "fe80")) {
				n.Address = append(n.Address, fmt.Sprintf("%s/%d", a.Local, a.PrefixLen))
			}
		}
		res = append(res, n)
	}
	return res, nil
}

// DialFrom opens a connection from inside the network namespace ns (for
// example the office), as a client there would. The socket is created on a
// locked OS thread switched into ns; that thread is then thrown away.
func DialFrom(ns, network, addr string, timeout time.Duration) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{nil, err}
			return
		}
		defer orig.Close()
		f, err := os.Open("/run/netns/" + ns)
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{nil, fmt.Errorf("namespace %s: %w", ns, err)}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			ch <- result{nil, fmt.Errorf("enter namespace %s: %w", ns, err)}
			return
		}
		c, err := net.DialTimeout(network, addr, timeout)
		// Go back; only a thread that made it back may serve other
		// goroutines. One that did not stays locked and is discarded
		// when this goroutine ends.
		if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}
