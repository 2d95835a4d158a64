package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
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
	src.Modaliases = append([]string(nil), a.parity.wanted...)
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
	a.takeInventory(why)
	if err := a.fetchPeerInventory(ctx); err != nil {
		a.log.Debug("inventory: peer's not fetched", "err", err)
	}
	a.noteDrift()
}

// takeInventory takes and saves this node's inventory. On failure the last
// good one stays, and the failure is logged and recorded (once per cause).
func (a *Agent) takeInventory(why string) (*inventory.Inventory, error) {
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
// /v1/inventory/fetch, peer only).
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
	// Devices new to this node: retake, so that the firmware their
	// modules need is known.
	if a.wantModaliases(req.Modaliases) {
		a.takeInventory("the peer's devices")
	}
	a.mu.Lock()
	self, selfErr := a.parity.self, a.parity.selfErr
	a.mu.Unlock()
	reply := peer.InventoryReply{Error: selfErr}
	if self != nil {
		reply.Inventory = slimInventory(self, append(self.Hardware.Modaliases(), req.Modaliases...))
	} else if selfErr == "" {
		reply.Error = "no inventory taken yet"
	}
	writeEnvelope(w, http.StatusOK, peer.TypeInventory, a.nodeName(), reply)
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
	a.mu.Lock()
	if a.cluster == nil || a.cluster.PeerAddress == "" || a.node == nil {
		a.mu.Unlock()
		return nil, errNoPeer
	}
	addr, name := a.cluster.PeerAddress, a.cluster.PeerName
	tlsCfg := a.node.ClientTLS(name)
	a.mu.Unlock()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+addr+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", contentType)
	tr := &http.Transport{TLSClientConfig: tlsCfg}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		tr.CloseIdleConnections()
		return nil, fmt.Errorf("peer %s at %s: %w", name, addr, err)
	}
	return resp, nil
}

var errNoPeer = errors.New("this node has no peer yet (sentry init / sentry join)")

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
	if a.link.Peer != nil {
		peerProto = a.link.Peer.Protocol
	}
	a.mu.Unlock()
	if need := peer.VersionOf(peer.TypeInventoryRequest); peerProto > 0 && peerProto < need {
		err := fmt.Errorf("the peer's agent speaks peer protocol %d; inventories need %d: update sentry on the peer", peerProto, need)
		a.setPeerErr(err)
		return err
	}
	body, err := peer.Encode(peer.TypeInventoryRequest, a.nodeName(), peer.InventoryRequest{Modaliases: mine})
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
	env, err := peer.Read(resp.Body)
	if err == nil && env.Type == peer.TypeError {
		eb, _ := env.Error()
		err = fmt.Errorf("peer refused: %s", eb.Message)
	}
	var rep *peer.InventoryReply
	if err == nil {
		rep, err = env.Inventory()
	}
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

// parityReport compares the inventories at hand.
func (a *Agent) parityReport() *ParityReport {
	a.mu.Lock()
	self, peerInv := a.parity.self, a.parity.peer
	r := &ParityReport{Node: a.nodeName(), Self: summary(self, a.parity.selfErr), Peer: summary(peerInv, a.parity.peerErr)}
	if a.stamp != nil {
		r.Role = a.stamp.Role
	}
	a.mu.Unlock()
	p, s := self, peerInv
	if r.Role == stamp.RoleSecondary {
		p, s = peerInv, self
	}
	r.Drift = inventory.Drift(p, s, time.Now(), InventoryStale)
	if p != nil && s != nil {
		pb := inventory.Compat(p, &s.Hardware)
		pb.Machine = "machine B (" + s.Node + "'s)"
		sa := inventory.Compat(s, &p.Hardware)
		sa.Machine = "machine A (" + p.Node + "'s)"
		r.CompatPonB, r.CompatSonA = &pb, &sa
	}
	r.Plan = inventory.Plan(p, s, r.CompatPonB, r.CompatSonA)
	return r
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
