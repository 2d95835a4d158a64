package parity

import (
	"errors"
	"time"

	"github.com/sentryha/sentry/internal/stamp"
	"github.com/sentryha/sentry/synchronizer/inventory"
)

// saveHardwareProfiles writes, on the primary, the hardware profile of this
// machine (from this node's inventory) and of the peer's (from the peer's
// inventory) into Options.HardwareDir, which the configuration sync carries
// to the secondary: so every disk set knows both machines. A profile is
// written only when the hardware in it changed (inventory.WriteProfile), so
// an inventory of unchanged hardware makes no configuration commit.
func (p *Parity) saveHardwareProfiles() {
	id := p.deps.Self()
	if id.Role != stamp.RolePrimary || id.SafeMode {
		return
	}
	p.mu.Lock()
	self, peerInv := p.self, p.peer
	var peerHW string
	if ps := p.peerStatus; ps != nil && peerInv != nil && ps.Name == peerInv.Node {
		peerHW = ps.Hardware // for an older peer's inventory, which names no machine
	}
	own := p.ownMachineIDLocked(id)
	p.mu.Unlock()
	p.profileMu.Lock()
	defer p.profileMu.Unlock()
	var selfID string
	for _, x := range []struct {
		inv      *inventory.Inventory
		fallback string
		whose    string
	}{{self, "", "this node's"}, {peerInv, peerHW, "the peer's"}} {
		if x.inv == nil {
			continue
		}
		mid := x.inv.MachineID
		if mid == "" {
			mid = x.fallback
		}
		switch {
		case mid == "":
			continue // an inventory saved by an older agent: no machine named
		case x.whose == "this node's":
			selfID = mid
		case mid == selfID || mid == own:
			// Both inventories on one machine: a test bed, or one
			// identity for two machines. Not two profiles in one file.
			p.deps.Log.Debug("hardware profile: the peer's inventory names this machine; not written", "machine", mid)
			continue
		}
		path, changed, err := inventory.WriteProfile(p.opts.HardwareDir, inventory.NewProfile(x.inv, mid))
		if err != nil {
			p.deps.Log.Error("hardware profile not written", "inventory", x.whose, "machine", mid, "err", err)
			continue
		}
		if changed {
			p.deps.Log.Info("hardware profile written to the config repo", "inventory", x.whose, "node", x.inv.Node, "machine", mid,
				"file", path, "pci_devices", len(x.inv.Hardware.PCI), "taken", x.inv.Taken.Format(time.RFC3339))
		}
	}
}

// ownMachineIDLocked is this machine's hardware identity ("" when it could
// not be read and no inventory names it). p.mu is held.
func (p *Parity) ownMachineIDLocked(id Identity) string {
	if id.MachineID != "" {
		return id.MachineID
	}
	if p.self != nil {
		return p.self.MachineID
	}
	return ""
}

// readProfiles reads the stored hardware profiles; errors are logged when
// they change, and returned joined.
func (p *Parity) readProfiles() ([]*inventory.Profile, error) {
	profiles, errs := inventory.ReadProfiles(p.opts.HardwareDir)
	err := errors.Join(errs...)
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	p.mu.Lock()
	logIt := msg != p.profileErr
	p.profileErr = msg
	p.mu.Unlock()
	if logIt && err != nil {
		p.deps.Log.Warn("hardware profiles: a file could not be read", "dir", p.opts.HardwareDir, "err", err)
	}
	return profiles, err
}

// loadProfileAliases notes the devices of the other machines' stored
// profiles, so that this node's inventory reads the firmware their modules
// need even while the peer is down.
func (p *Parity) loadProfileAliases() {
	profiles, _ := p.readProfiles()
	id := p.deps.Self()
	p.mu.Lock()
	defer p.mu.Unlock()
	own := p.ownMachineIDLocked(id)
	p.profileAliases = nil
	for _, pr := range profiles {
		if pr.MachineID != own {
			p.profileAliases = append(p.profileAliases, pr.Hardware.Modaliases()...)
		}
	}
}

// otherProfile picks, of the stored profiles of machines other than own,
// the one of the peer's machine: the machine the peer last said it is on,
// else the one the peer's disk set was on when profiled, else the newest.
func otherProfile(profiles []*inventory.Profile, own, peerHW, peerName string) *inventory.Profile {
	score := func(p *inventory.Profile) int {
		switch {
		case peerHW != "" && p.MachineID == peerHW:
			return 2
		case peerName != "" && p.Node == peerName:
			return 1
		}
		return 0
	}
	var best *inventory.Profile
	for _, p := range profiles {
		if p.MachineID == own {
			continue
		}
		if best == nil || score(p) > score(best) || score(p) == score(best) && p.Taken.After(best.Taken) {
			best = p
		}
	}
	return best
}
