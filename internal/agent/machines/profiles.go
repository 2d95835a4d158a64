package machines

import (
	"errors"
	"os"
	"slices"
	"time"

	"github.com/sentryha/sentry/bootcheck"
	"github.com/sentryha/sentry/internal/hwid"
	"github.com/sentryha/sentry/internal/peer"
	"github.com/sentryha/sentry/internal/stamp"
)

// Update keeps the machine profiles in the config repo (the primary writes
// them; the sync brings them to the secondary): this machine's, the peer's
// as it last said, and the primary's addresses. Call it without the
// agent's lock (it asks Deps.Self).
func (m *Machines) Update() {
	m.updateMu.Lock()
	defer m.updateMu.Unlock()
	id := m.d.Self()
	hw, hwErr := m.d.Hardware()
	m.mu.Lock()
	safe, p := m.safeModeLocked(), m.peer
	m.mu.Unlock()
	if id.Stamp == nil || id.Stamp.Role != stamp.RolePrimary || safe != "" || hwErr != nil {
		return
	}
	file := m.opt.machinesFile
	ms, err := bootcheck.ReadMachines(file)
	if err != nil && !errors.Is(err, bootcheck.ErrNoProfiles) {
		m.d.Log.Warn("machine profiles", "err", err)
		return
	}
	changed := false
	now := time.Now().UTC()
	self := bootcheck.Machine{ID: hw.ID, Source: hw.Source, NICs: hw.NICs, Seen: now}
	if old, ok := ms.Find(hw.ID); ok {
		self.HomeOf = old.HomeOf
	}
	// A machine adopted on this disk set stands in for the one it replaced.
	if ad, err := bootcheck.ReadMachines(m.statePath(bootcheck.AdoptedName)); err == nil {
		if x, ok := ad.Find(hw.ID); ok && x.Replaces != "" {
			self.Replaces, self.Adopted = x.Replaces, x.Adopted
			if x.HomeOf != "" {
				self.HomeOf = x.HomeOf
			}
		}
	} else if !errors.Is(err, bootcheck.ErrNoProfiles) && !errors.Is(err, os.ErrNotExist) {
		m.d.Log.Warn("adopted machines", "err", err)
	}
	if hw.ID == id.Stamp.HomeHardware {
		self.HomeOf = id.Node
		// The primary's addresses are those its installed network gives
		// its home NICs.
		if files, err := bootcheck.RoleNetworks(m.opt.networkDir, hw.NICs); err == nil {
			var addrs []string
			for _, f := range files {
				addrs = append(addrs, f.Addresses()...)
			}
			if len(addrs) > 0 && !slices.Equal(addrs, ms.PrimaryAddresses) {
				ms.PrimaryAddresses, changed = addrs, true
			}
		}
	}
	changed = ms.Put(self) || changed
	if pm, ok := m.peerMachine(ms, p, hw, id.Node, now); ok {
		changed = ms.Put(pm) || changed
	}
	if !changed {
		return
	}
	if err := bootcheck.WriteMachines(file, ms); err != nil {
		m.d.Log.Error("machine profiles", "err", err)
		return
	}
	m.d.Log.Info("machine profiles updated", "file", file, "machines", len(ms.Machine))
}

// peerMachine is the profile of the peer's machine as the peer last said
// (p), when its word may be taken. The peer speaks for its own machine
// only: never for this node's machine (hw, whose NICs this node reads
// itself), nor for a machine whose home is this node (this node wrote that
// entry when it ran there; the peer may run there after a swap, and its
// word about the machine then is no better than this node's). An entry's
// adoption is kept.
func (m *Machines) peerMachine(ms *bootcheck.Machines, p *peer.NodeStatus, hw hwid.Identity, node string, now time.Time) (bootcheck.Machine, bool) {
	if p == nil || p.Hardware == "" || len(p.HardwareNICs) == 0 {
		return bootcheck.Machine{}, false
	}
	if p.Hardware == hw.ID {
		m.d.Log.Debug("machine profiles: the peer says it runs on this node's machine; not taken", "node", p.Name, "machine", p.Hardware)
		return bootcheck.Machine{}, false
	}
	pm := bootcheck.Machine{ID: p.Hardware, NICs: p.HardwareNICs, Source: "peer", Seen: now}
	if old, ok := ms.Find(p.Hardware); ok {
		if old.HomeOf == node {
			m.d.Log.Debug("machine profiles: the peer runs on this node's home machine; its entry stays this node's", "node", p.Name, "machine", p.Hardware)
			return bootcheck.Machine{}, false
		}
		pm.Source, pm.HomeOf, pm.Replaces, pm.Adopted = old.Source, old.HomeOf, old.Replaces, old.Adopted
	}
	if p.HomeHardware == p.Hardware {
		pm.HomeOf = p.Name
	}
	return pm, true
}
