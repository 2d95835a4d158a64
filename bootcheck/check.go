package bootcheck

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sentryha/sentry/internal/peer"
	"github.com/sentryha/sentry/internal/pki"
	"github.com/sentryha/sentry/internal/stamp"
	"github.com/vishvananda/netlink"
)

// netOps are the network operations of the one check before taking the
// primary role. probeNet is a variable so tests replace it: no unit test
// touches a real link.
type netOps struct {
	// linkUp sets a NIC up (an ARP probe needs it up).
	linkUp func(nic string) error
	// arp is ProbeARP.
	arp func(ctx context.Context, nic string, ips []net.IP, window time.Duration) (net.IP, net.HardwareAddr, error)
	// addAddr adds an address (CIDR) to a NIC; added is false when the NIC
	// held it already.
	addAddr func(nic, cidr string) (added bool, err error)
	// delAddr removes an address addAddr added.
	delAddr func(nic, cidr string) error
	// hello is AskPeer.
	hello func(ctx context.Context, node *pki.Node, peerName, addr string, self peer.NodeStatus, timeout time.Duration) (*PeerClaim, error)
}

var probeNet = netOps{
	linkUp: func(nic string) error {
		l, err := netlink.LinkByName(nic)
		if err != nil {
			return fmt.Errorf("netlink: %s: %w", nic, err)
		}
		if err := netlink.LinkSetUp(l); err != nil {
			return fmt.Errorf("netlink: set %s up: %w", nic, err)
		}
		return nil
	},
	arp: ProbeARP,
	addAddr: func(nic, cidr string) (bool, error) {
		l, err := netlink.LinkByName(nic)
		if err != nil {
			return false, err
		}
		a, err := netlink.ParseAddr(cidr)
		if err != nil {
			return false, err
		}
		if err := netlink.AddrAdd(l, a); err != nil {
			if errors.Is(err, os.ErrExist) {
				return false, nil
			}
			return false, err
		}
		return true, nil
	},
	delAddr: func(nic, cidr string) error {
		l, err := netlink.LinkByName(nic)
		if err != nil {
			return err
		}
		a, err := netlink.ParseAddr(cidr)
		if err != nil {
			return err
		}
		return netlink.AddrDel(l, a)
	},
	hello: AskPeer,
}

// takenAddr is an address the check added to a NIC (so the peer can be
// asked); a refusal gives it back.
type takenAddr struct{ nic, cidr string }

// nicCheck is the ARP half of the check on one NIC.
type nicCheck struct {
	nic   string
	addrs []string // all the role's addresses on it (CIDR)
	ips   []net.IP // the IPv4 ones, probed
	// Filled by run, before done is closed:
	probe  *Probe // nil when the NIC has no IPv4 address to probe
	held   net.IP
	holder net.HardwareAddr
	err    error // the check could not be made on this NIC
	done   chan struct{}
}

// blocked says whether the NIC's addresses must not be used: someone holds
// one of them.
func (c *nicCheck) blocked() bool { return c.holder != nil }

// probePrimary makes the one bounded check before taking the primary role:
// does anything answer ARP for the primary's addresses, and does the peer
// agent hold a newer primary generation? Both halves start together and end
// within one window (ProbeWindow + PeerTimeout at most); the hello waits for
// an ARP verdict only when it would have to be sent from one of the probed
// addresses (RFC 5227: an address is not used before its probe ends). Both
// pieces of evidence go into the result's probes. It returns the reason to
// refuse, and the errors of the checks that could not be made (which do not
// refuse: see docs/operations.md, "When the check cannot be made").
func (r *runner) probePrimary(ctx context.Context, in Input, node *pki.Node, cl *stamp.Cluster) (string, bool, error) {
	plan := r.res.Network
	if plan == nil {
		return "", false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, r.opt.ProbeWindow+r.opt.PeerTimeout)
	defer cancel()
	var checks []*nicCheck
	for _, nic := range in.Here.NICs {
		addrs := plan.Addresses[nic.Name]
		if len(addrs) == 0 {
			continue
		}
		c := &nicCheck{nic: nic.Name, addrs: addrs, done: make(chan struct{})}
		for _, a := range addrs {
			if ip, _, err := net.ParseCIDR(a); err == nil && ip.To4() != nil {
				c.ips = append(c.ips, ip)
			}
		}
		checks = append(checks, c)
	}
	var wg sync.WaitGroup
	for _, c := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(c.done)
			r.arpCheck(ctx, c, in.Machines)
		}()
	}
	var pp *Probe
	var claim *PeerClaim
	if node != nil && cl != nil && cl.PeerAddress != "" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pp, claim = r.helloCheck(ctx, in, node, cl, checks)
		}()
	}
	wg.Wait()

	var errs []error
	var held *nicCheck
	for _, c := range checks {
		if c.probe != nil {
			r.res.Probes = append(r.res.Probes, *c.probe)
		}
		if c.err != nil {
			errs = append(errs, c.err)
			what := joinIPs(c.ips)
			if what == "" {
				what = strings.Join(c.addrs, " ")
			}
			r.warn(fmt.Sprintf("the check of the primary's address %s on %s could not be made (%v): the primary role is taken without it (the peer's word and the physical swap stand; see docs/operations.md)",
				what, c.nic, c.err))
		}
		if held == nil && c.blocked() {
			held = c
		}
	}
	if pp != nil {
		r.res.Probes = append(r.res.Probes, *pp)
	}
	var why []string
	if c, ok := ClaimConflict(claim, in.Stamp.Generation); ok {
		why = append(why, c)
	}
	if held != nil {
		why = append(why, fmt.Sprintf("the primary's address %s already answers (from %s): another node holds the primary role", held.held, held.holder))
	}
	if len(why) > 0 {
		r.giveBack(r.warn)
		return strings.Join(why, ", and "), true, errors.Join(errs...)
	}
	return "", false, errors.Join(errs...)
}

// arpCheck sets the NIC up and probes its IPv4 addresses. An error is
// recorded as the probe's evidence: the check could not be made.
func (r *runner) arpCheck(ctx context.Context, c *nicCheck, machines *Machines) {
	if len(c.ips) == 0 {
		// Nothing ARP can check (IPv6 only); still up, for the hello.
		if err := probeNet.linkUp(c.nic); err != nil {
			c.err = err
		}
		return
	}
	t := time.Now()
	p := &Probe{Name: "arp", Target: joinIPs(c.ips) + " on " + c.nic}
	c.probe = p
	err := probeNet.linkUp(c.nic)
	if err == nil {
		c.held, c.holder, err = probeNet.arp(ctx, c.nic, c.ips, r.opt.ProbeWindow)
	}
	p.MS = ms(time.Since(t))
	switch {
	case err != nil && c.holder == nil:
		c.err = err
		p.Error = err.Error()
		p.Detail = "could not be made: " + err.Error()
	case c.holder != nil:
		p.Answered, p.Holder = true, c.holder.String()
		p.Detail = c.held.String() + " answered by " + c.holder.String() + whoseMAC(machines, c.holder)
	default:
		p.Detail = "no answer within " + r.opt.ProbeWindow.String()
	}
}

// whoseMAC names the known machine a MAC belongs to, for the evidence.
func whoseMAC(m *Machines, mac net.HardwareAddr) string {
	if m == nil {
		return ""
	}
	for _, mc := range m.Machine {
		for _, n := range mc.NICs {
			if strings.EqualFold(n.MAC, mac.String()) {
				s := fmt.Sprintf(" (NIC %s of machine %s", n.Name, mc.ID)
				if mc.HomeOf != "" {
					s += ", the home of " + mc.HomeOf
				}
				return s + ")"
			}
		}
	}
	return " (not a NIC of a known machine)"
}

// helloCheck sends the one hello to the peer agent. When the peer is on
// the subnet of probed addresses, the hello has to be sent from one of them:
// it waits for those NICs' ARP verdict, takes their addresses when nobody
// holds them (or when their check could not be made: failing open, as the
// role would take them a moment later), and is not sent when someone holds
// them (the hello would announce the address and steal it from its holder).
// Otherwise it goes at once, alongside the ARP probes.
func (r *runner) helloCheck(ctx context.Context, in Input, node *pki.Node, cl *stamp.Cluster, checks []*nicCheck) (*Probe, *PeerClaim) {
	start := time.Now()
	p := &Probe{Name: "peer", Target: cl.PeerName + " at " + cl.PeerAddress}
	gate := helloGate(checks, cl.PeerAddress)
	for _, c := range gate {
		select {
		case <-c.done:
		case <-ctx.Done():
			p.MS = ms(time.Since(start))
			p.Detail = "not asked: the check's window ended before the ARP probe of " + c.nic
			return p, nil
		}
	}
	for _, c := range gate {
		if c.blocked() {
			p.MS = ms(time.Since(start))
			p.Detail = fmt.Sprintf("not asked: the hello to %s would go from %s on %s, which %s holds (sending from it would take it from its holder)",
				cl.PeerAddress, c.held, c.nic, c.holder)
			return p, nil
		}
	}
	for _, c := range gate {
		for _, a := range c.addrs {
			if err := r.take(c.nic, a); err != nil {
				r.warn(fmt.Sprintf("probe: add %s to %s: %v", a, c.nic, err))
			}
		}
	}
	if ctx.Err() != nil {
		p.MS = ms(time.Since(start))
		p.Detail = "not asked: " + ctx.Err().Error()
		return p, nil
	}
	t := time.Now()
	self := peer.NodeStatus{Name: node.Name, Role: in.Stamp.Role, ClusterID: in.Stamp.ClusterID, DiskSet: in.Stamp.DiskSet,
		Generation: in.Stamp.Generation, Hardware: in.Here.ID, Boot: "bootcheck", Time: time.Now().UTC()}
	claim, err := probeNet.hello(ctx, node, cl.PeerName, cl.PeerAddress, self, r.opt.PeerTimeout)
	p.MS = ms(time.Since(t))
	if err == nil && claim == nil {
		err = errors.New("an empty answer")
	}
	if err != nil {
		p.Detail = "no answer: " + err.Error()
		return p, nil
	}
	p.Answered, p.Peer = true, claim
	p.Detail = fmt.Sprintf("%s, generation %d", claim.Role, claim.Generation)
	if claim.SafeMode != "" {
		p.Detail += " (in safe mode)"
	}
	return p, claim
}

// helloGate lists the NIC checks whose addresses the hello to addr would be
// sent from: those with an address whose subnet holds the peer's address.
func helloGate(checks []*nicCheck, addr string) []*nicCheck {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	ip := net.ParseIP(host)
	if ip == nil {
		// A name: it resolves only once the network is up; wait for all.
		return checks
	}
	var g []*nicCheck
	for _, c := range checks {
		if slices.ContainsFunc(c.addrs, func(a string) bool {
			_, n, err := net.ParseCIDR(a)
			return err == nil && n.Contains(ip)
		}) {
			g = append(g, c)
		}
	}
	return g
}

// take adds an address to a NIC unless the run is over (the budget ran
// out: the decision is safe mode and nothing may take an address any more).
func (r *runner) take(nic, cidr string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sealed {
		return errors.New("the boot check ran out of time")
	}
	added, err := probeNet.addAddr(nic, cidr)
	if added {
		r.taken = append(r.taken, takenAddr{nic, cidr})
	}
	return err
}

// giveBack removes the addresses the check added: the decision is not
// primary after all. Failures go to warn.
func (r *runner) giveBack(warn func(string)) {
	r.mu.Lock()
	taken := r.taken
	r.taken = nil
	r.mu.Unlock()
	for _, a := range taken {
		if err := probeNet.delAddr(a.nic, a.cidr); err != nil {
			warn(fmt.Sprintf("probe: remove %s from %s: %v", a.cidr, a.nic, err))
		}
	}
}

func joinIPs(ips []net.IP) string {
	var l []string
	for _, ip := range ips {
		l = append(l, ip.String())
	}
	return strings.Join(l, " ")
}
