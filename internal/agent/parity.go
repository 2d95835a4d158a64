package agent

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/sentryha/sentry/internal/agent/link"
	"github.com/sentryha/sentry/internal/peer"
	"github.com/sentryha/sentry/internal/stamp"
	"github.com/sentryha/sentry/synchronizer/inventory"
)

// Package parity (docs/parity.md): each agent keeps its inventory in
// InventoryFile under its state folder, retaken at start, every
// InventoryInterval and InventoryDebounce after each dpkg run; each fetches
// the peer's over the peer link and so has both for drift, compat and plan.
var (
	InventoryFile     = "inventory.json"
	InventoryInterval = 10 * time.Minute
	InventoryDebounce = 2 * time.Second
	// InventoryStale: an inventory older than this makes drift unknown.
	InventoryStale = 25 * time.Minute
	// DpkgDir is watched: dpkg renames a new status file into it at the
	// end of every run.
	DpkgDir = "/var/lib/dpkg"
	// InventorySysEnv names an environment variable that points the
	// inventory's /sys elsewhere. Only the lab sets it (its machines share
	// the host's /sys; each has its own PCI list).
	InventorySysEnv = "SENTRY_INVENTORY_SYS"
	// PeerInventoryTimeout bounds one fetch of the peer's inventory.
	PeerInventoryTimeout = 15 * time.Second
	// InventoryRetry is how often the peer's inventory is asked for while
	// this node has none of it.
	InventoryRetry = 30 * time.Second
	// MaxInventoryJSON bounds a gzipped inventory from the peer once
	// decompressed (30,000 packages are about 3.5 MB).
	MaxInventoryJSON = 64 << 20
)

// parityState is what this agent knows of package parity.
type parityState struct {
	mu      sync.Mutex // serializes takes
	applyMu sync.Mutex // one apply at a time

	self       *inventory.Inventory // last good own inventory
	selfErr    string               // why the newest take failed ("" when it did not)
	peer       *inventory.Inventory // the peer's, as fetched last
	peerErr    string
	modaliases []string // the peer's devices the last take read firmware for
	wanted     []string // the peer's devices, as its inventory or its request says
	driftKey   string   // the drift last recorded as an event

	profileMu      sync.Mutex // serializes writes of the hardware profiles
	profileAliases []string   // the devices of the other machines' stored profiles
	profileErr     string     // the profile errors last logged
}

// inventorySources are this node's inventory sources.
func (a *Agent) inventorySources() inventory.Sources {
	src := inventory.Host("/")
	src.Node = a.nodeName()
	src.DpkgDir = DpkgDir
	if sys := os.Getenv(InventorySysEnv); sys != "" {
		src.Sys = sys
	}
	a.mu.Lock()
	if a.hwErr == nil {
		src.MachineID = a.hw.ID
	}
	// The peer's devices, and those of the other machines' stored
	// profiles (the peer may be down): their modules' firmware is read.
	seen := map[string]bool{}
	for _, m := range append(append([]string(nil), a.parity.wanted...), a.parity.profileAliases...) {
		if !seen[m] {
			seen[m] = true
			src.Modaliases = append(src.Modaliases, m)
		}
	}
	a.mu.Unlock()
	return src
}

// runParity keeps the inventory current until ctx ends.
func (a *Agent) runParity(ctx context.Context) {
	if inv, err := inventory.Load(a.statePath(InventoryFile)); err == nil {
		a.mu.Lock()
		a.parity.self = inv
		a.mu.Unlock()
	}
	w, err := fsnotify.NewWatcher()
	var events <-chan fsnotify.Event
	var errs <-chan error
	if err == nil {
		defer w.Close()
		if err = w.Add(DpkgDir); err == nil {
			events, errs = w.Events, w.Errors
		}
	}
	if err != nil {
		a.log.Warn("inventory: not watching dpkg; retaken on schedule only", "dir", DpkgDir, "err", err)
	}
	a.parityRound(ctx, "agent start")
	tick := time.NewTicker(InventoryInterval)
	defer tick.Stop()
	// Until the peer's inventory is at hand (before pairing, the peer
	// down), it is asked for more often.
	retry := time.NewTicker(InventoryRetry)
	defer retry.Stop()
	var debounce <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-events:
			if filepath.Base(ev.Name) == "status" && ev.Op&(fsnotify.Create|fsnotify.Write|fsnotify.Rename) != 0 {
				debounce = time.After(InventoryDebounce)
			}
		case err := <-errs:
			a.log.Warn("inventory: dpkg watch", "err", err)
		case <-debounce:
			debounce = nil
			a.parityRound(ctx, "dpkg run")
		case <-tick.C:
			a.parityRound(ctx, "schedule")
		case <-retry.C:
			a.mu.Lock()
			missing := a.parity.peer == nil || a.parity.peerErr != ""
			a.mu.Unlock()
			if missing && a.fetchPeerInventory(ctx) == nil {
				a.noteDrift()
			}
		}
	}
}

// parityRound takes this node's inventory, fetches the peer's, and records
// what changed in the drift.
func (a *Agent) parityRound(ctx context.Context, why string) {
	a.loadProfileAliases()
	a.takeInventory(why)
	if err := a.fetchPeerInventory(ctx); err != nil {
		a.log.Debug("inventory: peer's not fetched", "err", err)
	}
	a.noteDrift()
}

// takeInventory takes and saves this node's inventory, then the hardware
// profiles (on the primary). On failure the last good one stays, and the
// failure is logged and recorded (once per cause).
func (a *Agent) takeInventory(why string) (*inventory.Inventory, error) {
	inv, err := a.retakeInventory(why)
	if err == nil {
		a.saveHardwareProfiles()
	}
	return inv, err
}

func (a *Agent) retakeInventory(why string) (*inventory.Inventory, error) {
	a.parity.mu.Lock()
	defer a.parity.mu.Unlock()
	src := a.inventorySources()
	start := time.Now()
	inv, err := inventory.Update(a.statePath(InventoryFile), src)
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		if a.parity.selfErr != err.Error() {
			last := "none"
			if a.parity.self != nil {
				last = "the one taken " + a.parity.self.Taken.Format(time.RFC3339)
			}
			a.event("inventory", a.nodeName(), fmt.Sprintf("inventory not taken (%s): %v; the last good inventory stays (%s)", why, err, last),
				map[string]string{"error": err.Error(), "reason": why})
		}
		a.parity.selfErr = err.Error()
		a.log.Error("inventory not taken: the last good one stays", "reason", why, "err", err)
		return nil, err
	}
	prev, prevErr := a.parity.self, a.parity.selfErr
	a.parity.self, a.parity.selfErr = inv, ""
	a.parity.modaliases = src.Modaliases
	if prev == nil || prevErr != "" || packageKey(prev) != packageKey(inv) {
		kernel := "none"
		if k := inv.BootKernel(); k != nil {
			kernel = k.Release
		}
		a.event("inventory", a.nodeName(), fmt.Sprintf("inventory taken (%s): %d packages, boot kernel %s, %d PCI devices", why, len(inv.Packages), kernel, len(inv.Hardware.PCI)),
			map[string]string{"reason": why, "packages": fmt.Sprint(len(inv.Packages)), "ms": fmt.Sprint(time.Since(start).Milliseconds())})
	}
	a.log.Info("inventory taken", "reason", why, "packages", len(inv.Packages), "ms", time.Since(start).Milliseconds())
	return inv, nil
}

// packageKey sums up the installed packages, to tell a change.
func packageKey(inv *inventory.Inventory) string {
	var b strings.Builder
	for _, p := range inv.Packages {
		fmt.Fprintf(&b, "%s=%s %s;", p.Key(), p.Version, p.Status)
	}
	for _, k := range inv.Kernels {
		fmt.Fprintf(&b, "k=%s/%d;", k.Release, len(k.Aliases))
	}
	return b.String()
}

// handleInventoryFetch serves the peer this node's last good inventory,
// its module aliases cut to the two machines' devices (POST
// /v1/inventory/fetch, peer only): gzipped when the asker says it reads
// that, else plain as every protocol-2 agent reads it.
func (a *Agent) handleInventoryFetch(w http.ResponseWriter, r *http.Request) {
	env, err := peer.Read(http.MaxBytesReader(w, r.Body, peer.MaxMessageSize))
	if err != nil {
		a.refusePeer(w, r, http.StatusBadRequest, err)
		return
	}
	req, err := env.InventoryRequest()
	if err != nil {
		a.refusePeer(w, r, http.StatusBadRequest, err)
		return
	}
	var ask inventoryAsk
	if err := json.Unmarshal(env.Body, &ask); err != nil {
		a.refusePeer(w, r, http.StatusBadRequest, err)
		return
	}
	// Devices new to this node: retake, so that the firmware their
	// modules need is known.
	if a.wantModaliases(req.Modaliases) {
		a.takeInventory("the peer's devices")
	}
	a.mu.Lock()
	self, selfErr := a.parity.self, a.parity.selfErr
	a.mu.Unlock()
	var slim *inventory.Inventory
	if self != nil {
		slim = slimInventory(self, append(self.Hardware.Modaliases(), req.Modaliases...))
	} else if selfErr == "" {
		selfErr = "no inventory taken yet"
	}
	b, err := encodeInventoryAnswer(a.nodeName(), slim, selfErr, ask.Gzip)
	if err != nil {
		a.refusePeer(w, r, http.StatusInternalServerError, err)
		return
	}
	if self != nil {
		a.log.Debug("inventory sent to the peer", "packages", len(self.Packages), "bytes", len(b), "gzip", ask.Gzip)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}

// inventoryAsk is the body of an inventory request: peer.InventoryRequest
// and a field that agents without it ignore (a protocol-2 agent ignores
// fields it does not know, so it needs no new protocol version).
type inventoryAsk struct {
	peer.InventoryRequest
	// Gzip: the asker reads the inventory gzipped, in InventoryGzip.
	Gzip bool `json:"accept_gzip,omitempty"`
}

// inventoryAnswer is the body of an inventory message: peer.InventoryReply
// and, for an asker that accepts it, the inventory's JSON gzipped in place
// of Inventory. 30,000 packages are about 3.5 MB of JSON, over the peer
// message limit (1 MiB); gzipped, with base64 around it, 0.5 to 0.7 MB.
type inventoryAnswer struct {
	peer.InventoryReply
	InventoryGzip []byte `json:"inventory_gzip,omitempty"`
}

// encodeInventoryAnswer is the inventory message from node from: inv
// gzipped when gz, else plain. An inventory that does not fit in one
// message is replaced by an error the asker shows, rather than a message
// it must refuse.
func encodeInventoryAnswer(from string, inv *inventory.Inventory, invErr string, gz bool) ([]byte, error) {
	ans := inventoryAnswer{InventoryReply: peer.InventoryReply{Error: invErr}}
	if inv != nil {
		if gz {
			var buf bytes.Buffer
			zw := gzip.NewWriter(&buf)
			if err := json.NewEncoder(zw).Encode(inv); err != nil {
				return nil, err
			}
			if err := zw.Close(); err != nil {
				return nil, err
			}
			ans.InventoryGzip = buf.Bytes()
		} else {
			ans.Inventory = inv
		}
	}
	b, err := peer.Encode(peer.TypeInventory, from, ans)
	if inv == nil || !errors.Is(err, peer.ErrTooLarge) {
		return b, err
	}
	msg := fmt.Sprintf("the inventory of %s (%d packages) does not fit in a peer message of %d bytes", from, len(inv.Packages), peer.MaxMessageSize)
	if gz {
		msg += fmt.Sprintf(", even gzipped (%d bytes)", len(ans.InventoryGzip))
	} else {
		msg += " unless gzipped: update sentry on the asking node, so that it asks for it gzipped"
	}
	if invErr != "" {
		msg += "; and the newest take failed: " + invErr
	}
	return peer.Encode(peer.TypeInventory, from, peer.InventoryReply{Error: msg})
}

// readInventoryAnswer reads the peer's answer to an inventory request:
// plain, as every protocol-2 agent sends it, or gzipped. A gzipped
// inventory gets the checks the peer package gives a plain one.
func readInventoryAnswer(r io.Reader) (*peer.InventoryReply, error) {
	env, err := peer.Read(r)
	if err != nil {
		return nil, err
	}
	if env.Type == peer.TypeError {
		eb, _ := env.Error()
		return nil, fmt.Errorf("peer refused: %s", eb.Message)
	}
	rep, err := env.Inventory()
	if err != nil {
		return nil, err
	}
	var ans struct {
		InventoryGzip []byte `json:"inventory_gzip"` // inventoryAnswer's, alone
	}
	if err := json.Unmarshal(env.Body, &ans); err != nil {
		return nil, fmt.Errorf("%w: inventory body: %v", peer.ErrMalformed, err)
	}
	if len(ans.InventoryGzip) == 0 {
		return rep, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(ans.InventoryGzip))
	if err != nil {
		return nil, fmt.Errorf("%w: gzipped inventory: %v", peer.ErrMalformed, err)
	}
	data, err := io.ReadAll(io.LimitReader(zr, int64(MaxInventoryJSON)+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: gzipped inventory: %v", peer.ErrMalformed, err)
	case len(data) > MaxInventoryJSON:
		return nil, fmt.Errorf("%w: gzipped inventory larger than %d bytes once decompressed", peer.ErrMalformed, MaxInventoryJSON)
	}
	body := append(append([]byte(`{"inventory":`), bytes.TrimSpace(data)...), '}')
	full, err := (&peer.Envelope{Type: peer.TypeInventory, Body: body}).Inventory()
	if err != nil {
		return nil, err
	}
	rep.Inventory = full.Inventory
	return rep, nil
}

// slimInventory is inv for the wire: of each kernel only the aliases that
// match one of modaliases, the modules they name with their dependencies,
// and the firmware those modules name.
func slimInventory(inv *inventory.Inventory, modaliases []string) *inventory.Inventory {
	out := *inv
	out.Kernels = make([]inventory.Kernel, len(inv.Kernels))
	fwKeep := map[string]bool{}
	for i, k := range inv.Kernels {
		sk := k
		sk.Aliases = nil
		want := map[string]bool{}
		for _, al := range k.Aliases {
			for _, m := range modaliases {
				if inventory.Glob(al.Pattern, m) {
					sk.Aliases = append(sk.Aliases, al)
					want[al.Module] = true
					break
				}
			}
		}
		// Dependencies, to any depth.
		for changed := true; changed; {
			changed = false
			for _, m := range k.Modules {
				if want[m.Name] {
					for _, d := range m.Deps {
						if !want[d] {
							want[d], changed = true, true
						}
					}
				}
			}
		}
		sk.Modules = nil
		for _, m := range k.Modules {
			if want[m.Name] {
				sk.Modules = append(sk.Modules, m)
				for _, f := range m.Firmware {
					fwKeep[f], fwKeep[f+".xz"], fwKeep[f+".zst"] = true, true, true
				}
			}
		}
		out.Kernels[i] = sk
	}
	out.Firmware = nil
	for _, f := range inv.Firmware {
		if fwKeep[f] {
			out.Firmware = append(out.Firmware, f)
		}
	}
	out.FirmwarePackages = nil
	for f, p := range inv.FirmwarePackages {
		if fwKeep[f] {
			if out.FirmwarePackages == nil {
				out.FirmwarePackages = map[string]string{}
			}
			out.FirmwarePackages[f] = p
		}
	}
	return &out
}

// peerPost sends a request to the peer's API and returns the response.
func (a *Agent) peerPost(ctx context.Context, path, contentType string, body []byte) (*http.Response, error) {
	return a.peerClient().Post(ctx, path, contentType, bytes.NewReader(body))
}

var errNoPeer = link.ErrNoPeer

// fetchPeerInventory fetches the peer's inventory. When the peer's devices
// are new to this node, its own inventory is retaken (once) so that it
// knows the firmware their modules need.
func (a *Agent) fetchPeerInventory(ctx context.Context) error {
	a.mu.Lock()
	var mine []string
	if a.parity.self != nil {
		mine = a.parity.self.Hardware.Modaliases()
	}
	// An older agent (protocol 1) has no inventory messages: say so rather
	// than send it what it must refuse.
	var peerProto int
	if a.lnk().Peer() != nil {
		peerProto = a.lnk().Peer().Protocol
	}
	a.mu.Unlock()
	if need := peer.VersionOf(peer.TypeInventoryRequest); peerProto > 0 && peerProto < need {
		err := fmt.Errorf("the peer's agent speaks peer protocol %d; inventories need %d: update sentry on the peer", peerProto, need)
		a.setPeerErr(err)
		return err
	}
	body, err := peer.Encode(peer.TypeInventoryRequest, a.nodeName(), inventoryAsk{InventoryRequest: peer.InventoryRequest{Modaliases: mine}, Gzip: true})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, PeerInventoryTimeout)
	defer cancel()
	resp, err := a.peerPost(ctx, "/v1/inventory/fetch", "application/json", body)
	if err != nil {
		a.setPeerErr(err)
		return err
	}
	defer resp.Body.Close()
	rep, err := readInventoryAnswer(resp.Body)
	if err != nil {
		a.setPeerErr(err)
		return err
	}
	a.mu.Lock()
	a.parity.peerErr = ""
	if rep.Error != "" {
		a.parity.peerErr = "the peer's newest inventory failed: " + rep.Error
	}
	if rep.Inventory != nil {
		a.parity.peer = rep.Inventory
	}
	a.mu.Unlock()
	if rep.Inventory != nil && a.wantModaliases(rep.Inventory.Hardware.Modaliases()) {
		a.takeInventory("the peer's devices")
	}
	if rep.Inventory != nil {
		a.saveHardwareProfiles()
	}
	return nil
}

// wantModaliases notes the peer's devices; true when the last inventory
// did not read firmware for one of them.
func (a *Agent) wantModaliases(ms []string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.parity.wanted = append([]string(nil), ms...)
	have := map[string]bool{}
	for _, m := range a.parity.modaliases {
		have[m] = true
	}
	for _, m := range ms {
		if !have[m] {
			return true
		}
	}
	return false
}

func (a *Agent) setPeerErr(err error) {
	a.mu.Lock()
	a.parity.peerErr = err.Error()
	a.mu.Unlock()
}

// saveHardwareProfiles writes, on the primary, the hardware profile of this
// machine (from this node's inventory) and of the peer's (from the peer's
// inventory) into a.hardwareDir(), which the configuration sync carries to the
// secondary: so every disk set knows both machines. A profile is written
// only when the hardware in it changed (inventory.WriteProfile), so an
// inventory of unchanged hardware makes no configuration commit.
func (a *Agent) saveHardwareProfiles() {
	a.mu.Lock()
	if a.stamp == nil || a.stamp.Role != stamp.RolePrimary || a.safeModeLocked() != "" {
		a.mu.Unlock()
		return
	}
	self, peerInv := a.parity.self, a.parity.peer
	var peerHW string
	if p := a.lnk().Peer(); p != nil && peerInv != nil && p.Name == peerInv.Node {
		peerHW = p.Hardware // for an older peer's inventory, which names no machine
	}
	own := a.ownMachineIDLocked()
	a.mu.Unlock()
	a.parity.profileMu.Lock()
	defer a.parity.profileMu.Unlock()
	var selfID string
	for _, x := range []struct {
		inv      *inventory.Inventory
		fallback string
		whose    string
	}{{self, "", "this node's"}, {peerInv, peerHW, "the peer's"}} {
		if x.inv == nil {
			continue
		}
		id := x.inv.MachineID
		if id == "" {
			id = x.fallback
		}
		switch {
		case id == "":
			continue // an inventory saved by an older agent: no machine named
		case x.whose == "this node's":
			selfID = id
		case id == selfID || id == own:
			// Both inventories on one machine: a test bed, or one
			// identity for two machines. Not two profiles in one file.
			a.log.Debug("hardware profile: the peer's inventory names this machine; not written", "machine", id)
			continue
		}
		path, changed, err := inventory.WriteProfile(a.hardwareDir(), inventory.NewProfile(x.inv, id))
		if err != nil {
			a.log.Error("hardware profile not written", "inventory", x.whose, "machine", id, "err", err)
			continue
		}
		if changed {
			a.log.Info("hardware profile written to the config repo", "inventory", x.whose, "node", x.inv.Node, "machine", id,
				"file", path, "pci_devices", len(x.inv.Hardware.PCI), "taken", x.inv.Taken.Format(time.RFC3339))
		}
	}
}

// ownMachineIDLocked is this machine's hardware identity ("" when it could
// not be read and no inventory names it). a.mu is held.
func (a *Agent) ownMachineIDLocked() string {
	if a.hwErr == nil && a.hw.ID != "" {
		return a.hw.ID
	}
	if a.parity.self != nil {
		return a.parity.self.MachineID
	}
	return ""
}

// readProfiles reads the stored hardware profiles; errors are logged when
// they change, and returned joined.
func (a *Agent) readProfiles() ([]*inventory.Profile, error) {
	profiles, errs := inventory.ReadProfiles(a.hardwareDir())
	err := errors.Join(errs...)
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	a.mu.Lock()
	logIt := msg != a.parity.profileErr
	a.parity.profileErr = msg
	a.mu.Unlock()
	if logIt && err != nil {
		a.log.Warn("hardware profiles: a file could not be read", "dir", a.hardwareDir(), "err", err)
	}
	return profiles, err
}

// loadProfileAliases notes the devices of the other machines' stored
// profiles, so that this node's inventory reads the firmware their modules
// need even while the peer is down.
func (a *Agent) loadProfileAliases() {
	profiles, _ := a.readProfiles()
	a.mu.Lock()
	defer a.mu.Unlock()
	own := a.ownMachineIDLocked()
	a.parity.profileAliases = nil
	for _, p := range profiles {
		if p.MachineID != own {
			a.parity.profileAliases = append(a.parity.profileAliases, p.Hardware.Modaliases()...)
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

// ProfileSummary is a stored hardware profile at a glance.
type ProfileSummary struct {
	MachineID string    `json:"machine_id"`
	Node      string    `json:"node"` // whose disk set was on it when profiled
	Taken     time.Time `json:"taken"`
	File      string    `json:"file"`
}

// ParityReport is the answer of GET /v1/parity: both inventories' state,
// the drift, both compatibility reports and the plan.
type ParityReport struct {
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

// Parity fetches the peer's inventory afresh (its last fetched one stands
// in when the peer does not answer) and compares.
func (a *Agent) Parity(ctx context.Context) (*ParityReport, error) {
	if err := a.fetchPeerInventory(ctx); err != nil && !errors.Is(err, errNoPeer) {
		a.log.Warn("inventory: the peer's not fetched; using the last one", "err", err)
	}
	return a.parityReport(), nil
}

// parityReport compares the inventories at hand. Without the peer's
// inventory (the peer down, or not fetched yet after a swap), this node's
// disk set is judged against the stored profile of the peer's machine.
func (a *Agent) parityReport() *ParityReport {
	a.mu.Lock()
	self, peerInv := a.parity.self, a.parity.peer
	r := &ParityReport{Node: a.nodeName(), Self: summary(self, a.parity.selfErr), Peer: summary(peerInv, a.parity.peerErr)}
	if a.stamp != nil {
		r.Role = a.stamp.Role
	}
	own := a.ownMachineIDLocked()
	var peerHW, peerName string
	if a.lnk().Peer() != nil {
		peerHW = a.lnk().Peer().Hardware
	}
	if a.cluster != nil {
		peerName = a.cluster.PeerName
	}
	a.mu.Unlock()
	p, s := self, peerInv
	if r.Role == stamp.RoleSecondary {
		p, s = peerInv, self
	}
	r.Drift = inventory.Drift(p, s, time.Now(), InventoryStale)
	if set := a.moduleSet(); set != nil {
		need := map[string][]string{}
		for _, m := range set.Modules() {
			need[m.Name] = m.Packages
		}
		r.Drift.Modules(p, s, need)
	}
	switch {
	case p != nil && s != nil:
		pb := inventory.Compat(p, &s.Hardware)
		pb.Machine = "machine B (" + s.Node + "'s)"
		sa := inventory.Compat(s, &p.Hardware)
		sa.Machine = "machine A (" + p.Node + "'s)"
		r.CompatPonB, r.CompatSonA = &pb, &sa
	case self != nil && peerInv == nil && r.Role != "":
		profiles, err := a.readProfiles()
		if err != nil {
			r.ProfileError = err.Error()
		}
		if prof := otherProfile(profiles, own, peerHW, peerName); prof != nil {
			rep := compatOnProfile(self, prof, r.Role, r.Node, peerName, a.hardwareDir())
			r.PeerProfile = &ProfileSummary{MachineID: prof.MachineID, Node: prof.Node, Taken: prof.Taken,
				File: filepath.Join(a.hardwareDir(), inventory.ProfileName(prof.MachineID))}
			if r.Role == stamp.RoleSecondary {
				r.CompatSonA = &rep
			} else {
				r.CompatPonB = &rep
			}
		}
	}
	r.Plan = inventory.Plan(p, s, r.CompatPonB, r.CompatSonA)
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
func (a *Agent) noteDrift() {
	r := a.parityReport()
	if r.Role == "" || r.Peer.Taken.IsZero() {
		return // nothing to compare yet: not news
	}
	var items []string
	for _, it := range r.Drift.Drifted() {
		items = append(items, it.Kind+" "+it.Name)
	}
	sort.Strings(items)
	key := r.Drift.State + ": " + strings.Join(items, ", ")
	a.mu.Lock()
	defer a.mu.Unlock()
	if key == a.parity.driftKey {
		return
	}
	a.parity.driftKey = key
	msg := "packages in step with the peer"
	switch r.Drift.State {
	case inventory.StateUnknown:
		msg = "package drift unknown: " + driftUnknownWhy(r)
	case "drifted":
		msg = fmt.Sprintf("packages drifted: %d difference(s): %s", len(items), strings.Join(items, ", "))
	}
	a.event("drift", a.nodeName(), msg, map[string]string{"state": r.Drift.State})
	a.log.Info("package drift", "state", r.Drift.State, "items", len(items))
}

func driftUnknownWhy(r *ParityReport) string {
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
