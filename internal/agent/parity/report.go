package parity

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/sentryha/sentry/internal/readiness"
	"github.com/sentryha/sentry/internal/stamp"
	"github.com/sentryha/sentry/synchronizer/inventory"
)

// ProfileSummary is a stored hardware profile at a glance.
type ProfileSummary struct {
	MachineID string    `json:"machine_id"`
	Node      string    `json:"node"` // whose disk set was on it when profiled
	Taken     time.Time `json:"taken"`
	File      string    `json:"file"`
}

// Report is the answer of GET /v1/parity: both inventories' state, the
// drift, both compatibility reports and the plan.
type Report struct {
	Node string `json:"node"`
	Role string `json:"role"` // primary or secondary ("" before init)
	// Self and Peer sum up the two inventories.
	Self InventorySummary `json:"self"`
	Peer InventorySummary `json:"peer"`
	// Drift compares P's inventory with S's.
	Drift inventory.DriftReport `json:"drift"`
	// CompatPonB is disk set P on S's machine, CompatSonA the reverse.
	CompatPonB *inventory.CompatReport `json:"compat_p_on_b,omitempty"`
	CompatSonA *inventory.CompatReport `json:"compat_s_on_a,omitempty"`
	Plan       inventory.ParityPlan    `json:"plan"`
	// PeerProfile is the stored hardware profile of the peer's machine
	// that compat used because the peer's inventory was not at hand.
	PeerProfile *ProfileSummary `json:"peer_profile,omitempty"`
	// ProfileError says which stored profiles could not be read.
	ProfileError string `json:"profile_error,omitempty"`
}

// InventorySummary is one node's inventory at a glance.
type InventorySummary struct {
	Node     string    `json:"node,omitempty"`
	Taken    time.Time `json:"taken,omitzero"`
	Packages int       `json:"packages"`
	Kernel   string    `json:"kernel,omitempty"`
	// Error is why the newest inventory could not be taken or fetched;
	// the one summed up here is then the last good one.
	Error string `json:"error,omitempty"`
}

func summary(inv *inventory.Inventory, errMsg string) InventorySummary {
	s := InventorySummary{Error: errMsg}
	if inv != nil {
		s.Node, s.Taken, s.Packages = inv.Node, inv.Taken, len(inv.Packages)
		if k := inv.BootKernel(); k != nil {
			s.Kernel = k.Release
		}
	}
	return s
}

// Report fetches the peer's inventory afresh (its last fetched one stands
// in when the peer does not answer) and compares.
func (p *Parity) Report(ctx context.Context) (*Report, error) {
	if err := p.fetchPeerInventory(ctx); err != nil && !errors.Is(err, ErrNoPeer) {
		p.deps.Log.Warn("inventory: the peer's not fetched; using the last one", "err", err)
	}
	return p.report(), nil
}

// currentMaxAge is how long Current answers with the same report while
// the inventories at hand stay the same.
const currentMaxAge = time.Minute

// currentReport is the report Current made last, and of what.
type currentReport struct {
	self, peer *inventory.Inventory
	errs       string
	at         time.Time
	r          *Report
}

// Current compares the inventories at hand, without fetching the peer's.
// Comparing is not cheap (every PCI device against the kernel's module
// aliases, both ways): the readiness verdict asks at each hello, so the
// report is made again only when an inventory changed or after a minute.
// The caller must not change it.
func (p *Parity) Current() *Report {
	p.mu.Lock()
	c := p.current
	same := c.r != nil && c.self == p.self && c.peer == p.peer && c.errs == p.selfErr+"\x00"+p.peerErr && time.Since(c.at) < currentMaxAge
	p.mu.Unlock()
	if same {
		return c.r
	}
	p.mu.Lock()
	self, peerInv, errs := p.self, p.peer, p.selfErr+"\x00"+p.peerErr
	p.mu.Unlock()
	r := p.report()
	p.mu.Lock()
	p.current = currentReport{self: self, peer: peerInv, errs: errs, at: time.Now(), r: r}
	p.mu.Unlock()
	return r
}

// report compares the inventories at hand. Without the peer's inventory
// (the peer down, or not fetched yet after a swap), this node's disk set
// is judged against the stored profile of the peer's machine.
func (p *Parity) report() *Report {
	id := p.deps.Self()
	p.mu.Lock()
	self, peerInv := p.self, p.peer
	r := &Report{Node: id.Node, Role: id.Role, Self: summary(self, p.selfErr), Peer: summary(peerInv, p.peerErr)}
	own := p.ownMachineIDLocked(id)
	var peerHW string
	if p.peerStatus != nil {
		peerHW = p.peerStatus.Hardware
	}
	p.mu.Unlock()
	pi, si := self, peerInv
	if r.Role == stamp.RoleSecondary {
		pi, si = peerInv, self
	}
	r.Drift = inventory.Drift(pi, si, time.Now(), InventoryStale)
	if p.deps.ModulePackages != nil {
		if need := p.deps.ModulePackages(); need != nil {
			r.Drift.Modules(pi, si, need)
		}
	}
	switch {
	case pi != nil && si != nil:
		pb := inventory.Compat(pi, &si.Hardware)
		pb.Machine = "machine B (" + si.Node + "'s)"
		sa := inventory.Compat(si, &pi.Hardware)
		sa.Machine = "machine A (" + pi.Node + "'s)"
		r.CompatPonB, r.CompatSonA = &pb, &sa
	case self != nil && peerInv == nil && r.Role != "":
		profiles, err := p.readProfiles()
		if err != nil {
			r.ProfileError = err.Error()
		}
		if prof := otherProfile(profiles, own, peerHW, id.PeerName); prof != nil {
			rep := compatOnProfile(self, prof, r.Role, r.Node, id.PeerName, p.opts.HardwareDir)
			r.PeerProfile = &ProfileSummary{MachineID: prof.MachineID, Node: prof.Node, Taken: prof.Taken,
				File: filepath.Join(p.opts.HardwareDir, inventory.ProfileName(prof.MachineID))}
			if r.Role == stamp.RoleSecondary {
				r.CompatSonA = &rep
			} else {
				r.CompatPonB = &rep
			}
		}
	}
	r.Plan = inventory.Plan(pi, si, r.CompatPonB, r.CompatSonA)
	return r
}

// compatOnProfile judges this node's disk set (self) on the machine of a
// stored profile. The machine is A when the primary's disk set was on it
// when profiled, B when the secondary's was.
func compatOnProfile(self *inventory.Inventory, prof *inventory.Profile, role, node, peerName, dir string) inventory.CompatReport {
	primary, secondary := node, peerName
	if role == stamp.RoleSecondary {
		primary, secondary = peerName, node
	}
	letter := "B" // the peer's machine, as the live report names it
	switch {
	case prof.Node == primary:
		letter = "A"
	case prof.Node == secondary:
		letter = "B"
	case role == stamp.RoleSecondary:
		letter = "A"
	}
	rep := inventory.Compat(self, &prof.Hardware)
	rep.Machine = fmt.Sprintf("machine %s (%s's, stored profile)", letter, prof.Node)
	rep.MachineFrom = fmt.Sprintf("machine %s's profile from the config repo (%s), taken %s: the peer's inventory is not at hand",
		letter, filepath.Join(dir, inventory.ProfileName(prof.MachineID)), prof.Taken.Format(time.RFC3339))
	return rep
}

// noteDrift records the drift as an event when it changed.
func (p *Parity) noteDrift() {
	r := p.report()
	if r.Role == "" || r.Peer.Taken.IsZero() {
		return // nothing to compare yet: not news
	}
	var items []string
	for _, it := range r.Drift.Drifted() {
		items = append(items, it.Kind+" "+it.Name)
	}
	sort.Strings(items)
	key := r.Drift.State + ": " + strings.Join(items, ", ")
	// The events in the order of the keys: driftMu, not p.mu, is held
	// while one is recorded.
	p.driftMu.Lock()
	defer p.driftMu.Unlock()
	p.mu.Lock()
	same := key == p.driftKey
	p.driftKey = key
	p.mu.Unlock()
	if same {
		return
	}
	msg := "packages in step with the peer"
	switch r.Drift.State {
	case inventory.StateUnknown:
		msg = "package drift unknown: " + driftUnknownWhy(r)
	case "drifted":
		msg = fmt.Sprintf("packages drifted: %d difference(s): %s", len(items), strings.Join(items, ", "))
	}
	p.deps.Event("drift", r.Node, msg, map[string]string{"state": r.Drift.State})
	p.deps.Log.Info("package drift", "state", r.Drift.State, "items", len(items))
}

func driftUnknownWhy(r *Report) string {
	switch {
	case r.Self.Taken.IsZero():
		return "no inventory of this node (" + dashIf(r.Self.Error) + ")"
	case r.Peer.Taken.IsZero():
		return "no inventory of the peer (" + dashIf(r.Peer.Error) + ")"
	}
	return fmt.Sprintf("an inventory is older than %s (P %s, S %s)", InventoryStale, r.Drift.P.Age, r.Drift.S.Age)
}

func dashIf(s string) string {
	if s == "" {
		return "not fetched yet"
	}
	return s
}

// Summaries sum up both inventories at a glance (ok false before the
// first inventory was taken or fetched, or failed).
func (p *Parity) Summaries() (self, peer InventorySummary, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ok = p.self != nil || p.peer != nil || p.selfErr != "" || p.peerErr != ""
	return summary(p.self, p.selfErr), summary(p.peer, p.peerErr), ok
}

// ReadinessFacts puts the report into the readiness verdict's input: the
// inventories' ages (own: this node, other: the peer), the drift and the
// compat reports.
func (rep *Report) ReadinessFacts(in *readiness.Input, own, other *readiness.Node) {
	own.InventoryAt, own.InventoryErr = rep.Self.Taken, rep.Self.Error
	if other != nil {
		other.InventoryAt, other.InventoryErr = rep.Peer.Taken, rep.Peer.Error
	}
	in.Packages.At = rep.Self.Taken
	if rep.Peer.Taken.Before(rep.Self.Taken) {
		in.Packages.At = rep.Peer.Taken
	}
	if rep.Drift.State == inventory.StateUnknown {
		in.Packages.Err = "an inventory is missing or older than " + InventoryStale.String()
	}
	for _, it := range rep.Drift.Drifted() {
		kind := "package"
		if strings.Contains(it.Kind, "kernel") || it.Kind == "apt-source" {
			kind = it.Kind
		}
		in.Packages.Diffs = append(in.Packages.Diffs, readiness.PackageDiff{Kind: kind, Name: it.Name, Primary: it.P, Secondary: it.S})
	}
	for _, c := range []*inventory.CompatReport{rep.CompatPonB, rep.CompatSonA} {
		if c != nil {
			in.Compat = append(in.Compat, readiness.CompatFacts{DiskSet: c.DiskSet, Machine: c.Machine, Boots: c.Boots, Because: c.Because, At: in.Packages.At})
		}
	}
}
