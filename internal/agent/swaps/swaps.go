// Package swaps is the agent's failover component: it makes and keeps the
// guided plans of a disk swap (`sentry failover plan`), and after a boot
// that moved the primary's disk set to another machine it completes the
// failover record (internal/failover): the boot, the boot check's decision,
// the service addresses coming up (which it announces with gratuitous ARP,
// on every boot), each service green, the peer back and the verdict after.
// Plans and records live in the store, on the disk set that moves.
package swaps

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sentryha/sentry/bootcheck"
	"github.com/sentryha/sentry/internal/disks"
	"github.com/sentryha/sentry/internal/failover"
	"github.com/sentryha/sentry/internal/garp"
	"github.com/sentryha/sentry/internal/peer"
	"github.com/sentryha/sentry/internal/readiness"
	"github.com/sentryha/sentry/verifier"
)

// Store keeps the plans and records (internal/store).
type Store interface {
	PutFailoverDoc(kind, id string, b []byte) error
	FailoverDocs(kind string, limit int) ([][]byte, error)
}

// Deps is what the wiring gives the component.
type Deps struct {
	Log   *slog.Logger
	Event func(kind, node, msg string, fields map[string]string)
	Store Store
	// Boot is this boot's decision (nil: none).
	Boot func() *bootcheck.Result
	// Self is this node's status; Peer the peer's last (nil: never heard),
	// whether it answers now and when it last did.
	Self func() peer.NodeStatus
	Peer func() (st *peer.NodeStatus, reachable bool, last time.Time)
	// LastContact is the last contact with the peer the store held when
	// the agent started: before this boot's shutdown.
	LastContact time.Time
	// Results are the newest result of each of this node's probes;
	// Expected the probes the modules ask for.
	Results  func() []verifier.Result
	Expected func() []string
	// Verdict is the readiness verdict judged now.
	Verdict func() readiness.Result
}

// Option adjusts the component (tests).
type Option func(*Swaps)

// WithAddresses replaces the reading of this node's addresses, which are
// then polled (the kernel's notices of a change are not theirs).
func WithAddresses(f func() ([]garp.Address, error)) Option {
	return func(s *Swaps) { s.addresses, s.changes = f, nil }
}

// WithAnnounce replaces the gratuitous ARP sender.
func WithAnnounce(f func(ctx context.Context, ifname string, ip netip.Addr) error) Option {
	return func(s *Swaps) { s.announce = f }
}

// WithChanges replaces the kernel's notices of address changes (after
// WithAddresses, which turns them off).
func WithChanges(f func(context.Context) (<-chan struct{}, error)) Option {
	return func(s *Swaps) { s.changes = f }
}

// WithBootTime replaces the reading of this machine's boot time.
func WithBootTime(f func() (time.Time, error)) Option { return func(s *Swaps) { s.bootTime = f } }

// WithDisks replaces the reading of this node's disks.
func WithDisks(f func() (*disks.Set, error)) Option { return func(s *Swaps) { s.disks = f } }

// WithLocator lights the bays' locate LEDs (default: ledctl when installed).
func WithLocator(l disks.Locator) Option { return func(s *Swaps) { s.locator = l } }

// WithPoll sets how often the record is brought up to date (default 1 s).
func WithPoll(d time.Duration) Option { return func(s *Swaps) { s.poll = d } }

// Timings of the record and of the announcements.
const (
	// InventoryFresh is the age under which both inventories pass the
	// planned swap's final-sync barrier.
	InventoryFresh = 25 * time.Minute
	// VerdictWait is how long after the peer is back the record waits for
	// READY before it completes with the verdict it has.
	VerdictWait = 10 * time.Minute
	// PlanWindow: a plan made this long before the boot at most is the
	// boot's plan.
	PlanWindow = 24 * time.Hour
	// MaintenanceWindow is how long a planned plan holds the alerts at
	// most (its swap's record completing ends it sooner).
	MaintenanceWindow = time.Hour
	announceCount     = 3
	announceGap       = time.Second
)

// Swaps is the component.
type Swaps struct {
	d         Deps
	addresses func() ([]garp.Address, error)
	announce  func(ctx context.Context, ifname string, ip netip.Addr) error
	bootTime  func() (time.Time, error)
	disks     func() (*disks.Set, error)
	locator   disks.Locator
	poll      time.Duration
	// changes tells when the addresses changed (nil, or failing: they are
	// polled, every 200 ms in the first minutes, then every poll).
	changes func(context.Context) (<-chan struct{}, error)

	mu        sync.Mutex
	rec       *failover.Record // this boot's record (nil: this boot moved no primary)
	saved     []byte
	announced map[string]bool // interface/prefix announced in this run
	firstUp   time.Time       // the first address seen up in this run
	sentAt    time.Time
	maint     *peer.Maintenance // the planned swap under way (nil: none)
}

// New makes the component; Begin reads the boot, Run follows it.
func New(d Deps, opts ...Option) *Swaps {
	if d.Log == nil {
		d.Log = slog.Default()
	}
	if d.Event == nil {
		d.Event = func(string, string, string, map[string]string) {}
	}
	s := &Swaps{d: d, addresses: garp.Addresses, changes: garp.Changes, bootTime: BootTime, poll: time.Second,
		disks:     ownDisks,
		announced: map[string]bool{},
		announce: func(ctx context.Context, ifname string, ip netip.Addr) error {
			return garp.Announce(ctx, ifname, ip, announceCount, announceGap)
		}}
	for _, o := range opts {
		o(s)
	}
	if s.locator == nil {
		if l := (disks.Ledctl{}); l.Available() {
			s.locator = l
		}
	}
	return s
}

// Begin starts this boot's record when the boot moved the primary's disk
// set to another machine (or takes up the stored one, after a restart of
// the agent), and takes up a planned swap under way. Call it once, before
// Run.
func (s *Swaps) Begin() {
	s.begin()
	s.refreshMaintenance(time.Now().UTC())
}

func (s *Swaps) begin() {
	res := s.d.Boot()
	if res == nil || res.Outcome != bootcheck.Primary {
		return
	}
	// Where the disk set ran before: the previous boot's decision, else
	// (the first boot since pairing is the swap) its home when this boot
	// is a failover.
	prev := res.PreviousHardware
	if prev == "" && res.Failover {
		prev = res.HomeHardware
	}
	if prev == "" || prev == res.Hardware {
		return
	}
	id := "failover-" + res.Time.UTC().Format("20060102T150405Z")
	if old := s.find(id); old != nil {
		s.mu.Lock()
		s.rec = old
		s.mu.Unlock()
		return
	}
	boot, err := s.bootTime()
	if err != nil {
		s.d.Log.Warn("failover record: boot time unknown; the boot check's start stands for it", "err", err)
		boot = res.Time
	}
	plan := s.planFor(boot)
	rec := &failover.Record{ID: id, DiskSet: res.DiskSet, Node: s.d.Self().Name,
		FromMachine: prev, ToMachine: res.Hardware,
		LastPeerContact: s.d.LastContact, Boot: boot,
		Decision: res.Time.Add(time.Duration(res.TookMS * float64(time.Millisecond))), DecisionOutcome: res.Outcome, DecisionReason: res.Reason,
		Services: map[string]time.Time{}}
	for _, st := range res.Stages {
		rec.Stages = append(rec.Stages, failover.Stage{Name: st.Name, MS: st.MS})
	}
	if plan != nil {
		at := plan.At
		rec.PlanID, rec.PlannedAt, rec.Forced = plan.ID, &at, plan.Forced
	}
	rec.Kind = failover.ClassifyKind(plan != nil && plan.Planned, prev, res.Hardware, res.HomeHardware)
	s.mu.Lock()
	s.rec = rec
	s.mu.Unlock()
	s.d.Log.Info("failover record started", "id", id, "kind", rec.Kind, "from", rec.FromMachine, "to", rec.ToMachine)
	s.save()
}

// ownDisks are this node's disks, or in a container (the lab's nspawn
// nodes, where /sys/block is the host's) a note that there are none to
// name, rather than the host's disks.
func ownDisks() (*disks.Set, error) {
	if b, err := os.ReadFile("/run/systemd/container"); err == nil {
		return &disks.Set{Note: fmt.Sprintf("this node runs in a container (%s): its disk set is not on disks of its own; "+
			"in the lab the disk sets are overlay directories, and sentry-lab swap moves them", strings.TrimSpace(string(b)))}, nil
	}
	return disks.Find(disks.Options{})
}

// planFor is the newest stored plan made within PlanWindow before boot.
func (s *Swaps) planFor(boot time.Time) *failover.Plan {
	docs, err := s.d.Store.FailoverDocs("plan", 20)
	if err != nil {
		s.d.Log.Warn("failover plans", "err", err)
		return nil
	}
	for _, b := range docs {
		var p failover.Plan
		if json.Unmarshal(b, &p) == nil && p.At.Before(boot) && boot.Sub(p.At) <= PlanWindow {
			return &p
		}
	}
	return nil
}

// find is the stored record id (nil: none).
func (s *Swaps) find(id string) *failover.Record {
	for _, r := range s.History(0) {
		if r.ID == id {
			r := r
			return &r
		}
	}
	return nil
}

// History is the stored records, newest first (limit below 1: all).
func (s *Swaps) History(limit int) []failover.Record {
	docs, err := s.d.Store.FailoverDocs("record", limit)
	if err != nil {
		s.d.Log.Warn("failover records", "err", err)
		return nil
	}
	var out []failover.Record
	for _, b := range docs {
		var r failover.Record
		if err := json.Unmarshal(b, &r); err != nil {
			s.d.Log.Warn("failover record unreadable", "err", err)
			continue
		}
		out = append(out, r)
	}
	return out
}

// Run announces the addresses as they come up (after a boot the boot check
// decided, out of safe mode: the role's addresses) and brings the record
// up to date, until ctx ends. The addresses are read when the kernel says
// they changed; without its notices, polled.
func (s *Swaps) Run(ctx context.Context) {
	t := time.NewTicker(s.poll)
	defer t.Stop()
	fast := time.NewTicker(200 * time.Millisecond) // the addresses, in the first minutes
	defer fast.Stop()
	start := time.Now()
	res := s.d.Boot()
	announce := res != nil && res.Outcome != bootcheck.SafeMode
	var changed <-chan struct{}
	if announce && s.changes != nil {
		ch, err := s.changes(ctx)
		if err != nil {
			s.d.Log.Warn("address changes: polling the addresses instead", "err", err)
		} else {
			changed = ch
			fast.Stop()
		}
	}
	for {
		if announce {
			s.watchAddresses(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-fast.C:
			if time.Since(start) > 2*time.Minute {
				fast.Stop()
			}
			continue
		case _, ok := <-changed:
			if !ok { // the notices ended: poll
				changed = nil
				t.Reset(s.poll)
			}
			continue
		case <-t.C:
			s.update(time.Now().UTC())
			if !s.pending() && (changed != nil || !announce) {
				t.Stop() // nothing left to poll for
			}
		}
	}
}

// pending: this boot's record is still to be completed.
func (s *Swaps) pending() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rec != nil && !s.rec.Complete
}

// watchAddresses announces each address seen up for the first time in
// this run.
func (s *Swaps) watchAddresses(ctx context.Context) {
	addrs, err := s.addresses()
	if err != nil {
		s.d.Log.Warn("addresses", "err", err)
		return
	}
	now := time.Now().UTC()
	for _, a := range addrs {
		key := a.Interface + "/" + a.Prefix.String()
		// When it came up: the kernel's stamp (the agent may start after
		// the network), else now.
		up := a.Since
		if up.IsZero() || up.After(now) {
			up = now
		}
		s.mu.Lock()
		seen := s.announced[key]
		s.announced[key] = true
		if !seen && (s.firstUp.IsZero() || up.Before(s.firstUp)) {
			s.firstUp = up
		}
		s.mu.Unlock()
		if seen {
			continue
		}
		go func(a garp.Address) {
			sent := time.Now().UTC()
			if err := s.announce(ctx, a.Interface, a.Prefix.Addr()); err != nil {
				s.d.Log.Warn("gratuitous ARP", "interface", a.Interface, "address", a.Prefix.String(), "err", err)
				return
			}
			s.mu.Lock()
			if s.sentAt.IsZero() {
				s.sentAt = sent
			}
			s.mu.Unlock()
			s.d.Log.Info("address announced", "interface", a.Interface, "address", a.Prefix.String(), "mac", a.MAC)
		}(a)
	}
}

// update fills in what happened since the last update, saves a change, and
// completes the record.
func (s *Swaps) update(now time.Time) {
	s.mu.Lock()
	rec := s.rec
	if rec == nil || rec.Complete {
		s.mu.Unlock()
		return
	}
	if rec.AddressUp.IsZero() && !s.firstUp.IsZero() {
		// The boot check may take the address for its hello before it
		// decides (and networkd keeps it): for the role it is up from the
		// decision at the earliest.
		rec.AddressUp = s.firstUp
		if rec.AddressUp.Before(rec.Decision) {
			rec.AddressUp = rec.Decision
		}
		for k := range s.announced {
			rec.Addresses = append(rec.Addresses, k)
		}
		sort.Strings(rec.Addresses)
	}
	if rec.Announced.IsZero() && !s.sentAt.IsZero() {
		rec.Announced = s.sentAt
	}
	s.mu.Unlock()
	// The rest is read without the lock: only Run's goroutine writes rec
	// below, and readers take copies under the lock.
	var green = map[string]time.Time{}
	for _, r := range s.d.Results() {
		if end := r.Started.Add(r.Duration).UTC(); r.OK && end.After(rec.Boot) {
			green[r.Name] = end
		}
	}
	_, reachable, last := s.d.Peer()
	var verdict *readiness.Result
	if !rec.PeerBack.IsZero() || (reachable && last.After(rec.Boot)) {
		v := s.d.Verdict()
		verdict = &v
	}
	expected := s.d.Expected()

	s.mu.Lock()
	for name, at := range green {
		if _, ok := rec.Services[name]; !ok {
			if rec.Services == nil {
				rec.Services = map[string]time.Time{}
			}
			rec.Services[name] = at
		}
	}
	if rec.PeerBack.IsZero() && reachable && last.After(rec.Boot) {
		rec.PeerBack = last.UTC()
	}
	if verdict != nil && rec.VerdictAfter != string(readiness.Ready) {
		rec.VerdictAfter, rec.VerdictAt = string(verdict.Verdict), verdict.At.UTC()
	}
	missing := rec.Missing(expected)
	waited := !rec.PeerBack.IsZero() && now.Sub(rec.PeerBack) > VerdictWait
	if len(missing) == 0 || (waited && onlyVerdictMissing(missing, rec)) {
		rec.Complete = true
	}
	rec.Updated = now
	done := rec.Complete
	s.mu.Unlock()
	if s.save() && done {
		s.refreshMaintenance(now)
		d, _ := rec.Downtime()
		msg := fmt.Sprintf("failover record %s complete: %s of disk set %s from machine %s to %s, downtime %s, verdict after: %s",
			rec.ID, rec.Kind, rec.DiskSet, rec.FromMachine, rec.ToMachine, d.Round(100*time.Millisecond), rec.VerdictAfter)
		s.d.Log.Info(msg)
		s.d.Event("failover-complete", rec.Node, msg, map[string]string{"id": rec.ID, "kind": string(rec.Kind), "downtime_ms": fmt.Sprint(d.Milliseconds())})
	}
}

// onlyVerdictMissing: what is missing is READY alone (the record waited
// VerdictWait for it and keeps the verdict it has).
func onlyVerdictMissing(missing []string, rec *failover.Record) bool {
	return len(missing) == 1 && rec.VerdictAfter != "" && !rec.PeerBack.IsZero() && missing[0] != "peer back"
}

// save stores the record when it changed; it says whether it did.
func (s *Swaps) save() bool {
	s.mu.Lock()
	if s.rec == nil {
		s.mu.Unlock()
		return false
	}
	cp := *s.rec
	cp.Updated = time.Time{} // not a change by itself
	b, err := json.Marshal(cp)
	if err != nil || string(b) == string(s.saved) {
		s.mu.Unlock()
		return false
	}
	s.saved = b
	cp.Updated = s.rec.Updated
	s.mu.Unlock()
	full, _ := json.Marshal(cp)
	if err := s.d.Store.PutFailoverDoc("record", cp.ID, full); err != nil {
		s.d.Log.Error("failover record", "id", cp.ID, "err", err)
		return false
	}
	return true
}

// Current is this boot's record (nil: this boot moved no primary disk set).
func (s *Swaps) Current() *failover.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rec == nil {
		return nil
	}
	cp := *s.rec
	cp.Services = map[string]time.Time{}
	for k, v := range s.rec.Services {
		cp.Services[k] = v
	}
	return &cp
}

// Plan builds, records and returns the plan of a swap; with planned, the
// final-sync barrier is measured now. It lights the locate LEDs of the
// disks to move where it can.
func (s *Swaps) Plan(ctx context.Context, planned, force bool) (*failover.Plan, error) {
	self := s.d.Self()
	p, _, _ := s.d.Peer()
	v := s.d.Verdict()
	now := time.Now().UTC()
	in := failover.PlanInput{ID: "plan-" + now.Format("20060102T150405.000Z"), At: now, Node: self.Name, Role: self.Role,
		Planned: planned, Forced: force, Verdict: string(v.Verdict), Blocking: v.Reasons(),
		DiskSet: self.DiskSet, Machine: self.Hardware, HomeMachine: self.HomeHardware, Probes: s.d.Expected()}
	for _, f := range v.Findings {
		if !f.Blocking() && (f.State == readiness.Fail || f.State == readiness.Stale) {
			in.Warnings = append(in.Warnings, f.Check+": "+f.Reason)
		}
	}
	if p != nil {
		in.Peer, in.PeerMachine = p.Name, p.Hardware
	}
	if planned {
		in.Barrier = barrier(self, p, now)
	}
	if addrs, err := s.addresses(); err == nil && self.Role == "primary" { // the addresses that move
		for _, a := range addrs {
			in.Addresses = append(in.Addresses, a.Prefix.String()+" on "+a.Interface)
		}
	}
	set, err := s.disks()
	switch {
	case err != nil:
		in.DisksNote = "the disks could not be read: " + err.Error()
	case len(set.Disks) == 0:
		in.DisksNote = set.Note
	}
	if set != nil {
		for _, d := range set.Disks {
			fd := failover.Disk{Name: d.Name, Serial: d.Serial, Model: d.Model, ByPath: d.ByPath, ByID: d.ByID, Bay: d.Bay, SizeBytes: uint64(max(d.SizeBytes, 0)), Arrays: d.Arrays}
			if s.locator != nil {
				if err := s.locator.Locate(ctx, d.Name, true); err != nil {
					s.d.Log.Warn("locate LED", "disk", d.Name, "err", err)
				} else {
					fd.LocateLit = true
				}
			}
			in.Disks = append(in.Disks, fd)
		}
	}
	plan, err := failover.Build(in)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(plan)
	if err != nil {
		return nil, err
	}
	if err := s.d.Store.PutFailoverDoc("plan", plan.ID, b); err != nil {
		return nil, err
	}
	kind := "unplanned"
	if planned {
		kind = "planned"
	}
	msg := fmt.Sprintf("failover plan %s (%s) made on %s: verdict %s", plan.ID, kind, self.Name, plan.Verdict)
	if force && plan.Verdict != string(readiness.Ready) {
		msg += ", forced"
	}
	s.d.Event("failover-plan", self.Name, msg, map[string]string{"id": plan.ID, "planned": fmt.Sprint(planned), "forced": fmt.Sprint(force)})
	s.refreshMaintenance(now)
	return plan, nil
}

// refreshMaintenance finds the planned swap under way: the newest plan, if
// it is planned, younger than MaintenanceWindow, and no complete record
// names it.
func (s *Swaps) refreshMaintenance(now time.Time) {
	var m *peer.Maintenance
	if docs, err := s.d.Store.FailoverDocs("plan", 1); err == nil && len(docs) == 1 {
		var p failover.Plan
		if json.Unmarshal(docs[0], &p) == nil && p.Planned && now.Sub(p.At) < MaintenanceWindow {
			m = &peer.Maintenance{Plan: p.ID, Since: p.At, Until: p.At.Add(MaintenanceWindow)}
			for _, r := range s.History(5) {
				if r.PlanID == p.ID && r.Complete {
					m = nil
				}
			}
		}
	}
	s.mu.Lock()
	s.maint = m
	s.mu.Unlock()
}

// Maintenance is the planned swap under way that this node announces (nil:
// none). It takes only the component's lock.
func (s *Swaps) Maintenance() *peer.Maintenance {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.maint == nil || !time.Now().Before(s.maint.Until) {
		return nil
	}
	m := *s.maint
	return &m
}

// Quiet says why alerts are held now: a planned swap under way, announced
// by this node or by the peer (its last status) ("": none).
func (s *Swaps) Quiet(peerName string, peerM *peer.Maintenance) string {
	if s == nil {
		return ""
	}
	if m := s.Maintenance(); m != nil {
		return fmt.Sprintf("planned swap %s under way (until %s, or its record completes)", m.Plan, m.Until.Format(time.TimeOnly))
	}
	if peerM != nil && time.Now().Before(peerM.Until) {
		return fmt.Sprintf("planned swap %s announced by %s (until %s)", peerM.Plan, peerName, peerM.Until.Format(time.TimeOnly))
	}
	return ""
}

// barrier is the planned swap's final-sync barrier: the secondary applied
// the primary's head, and both inventories are fresh.
func barrier(self peer.NodeStatus, p *peer.NodeStatus, now time.Time) *failover.Barrier {
	b := &failover.Barrier{At: now}
	if p == nil {
		b.Detail = "the peer was never heard: nothing to compare"
		return b
	}
	pri, sec := self, *p
	if self.Role == "secondary" {
		pri, sec = *p, self
	}
	b.PrimaryHead, b.AppliedHead = pri.ConfigHead, sec.ConfigApplied
	b.Applied = pri.ConfigHead != "" && pri.ConfigHead == sec.ConfigApplied
	fresh := func(t time.Time) bool { return !t.IsZero() && now.Sub(t) < InventoryFresh }
	b.InventoriesFresh = fresh(self.InventoryTaken) && fresh(p.InventoryTaken)
	switch {
	case !b.Applied:
		b.Detail = fmt.Sprintf("%s has applied %s, not %s's head %s: wait for the sync (sentry sync), or look at sentry status", sec.Name, short(sec.ConfigApplied), pri.Name, short(pri.ConfigHead))
	case !b.InventoriesFresh:
		b.Detail = fmt.Sprintf("an inventory is older than %s (%s: %s, %s: %s): sentry parity inventory on both", InventoryFresh, self.Name, age(self.InventoryTaken, now), p.Name, age(p.InventoryTaken, now))
	}
	return b
}

func short(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	if c == "" {
		return "nothing"
	}
	return c
}

func age(t, now time.Time) string {
	if t.IsZero() {
		return "never taken"
	}
	return readiness.Human(now.Sub(t)) + " old"
}

// Routes serves the local API's failover endpoints.
func (s *Swaps) Routes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/failover/plan", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Planned bool `json:"planned"`
			Force   bool `json:"force"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "failover plan: bad request: " + err.Error()})
			return
		}
		plan, err := s.Plan(r.Context(), req.Planned, req.Force)
		if err != nil {
			code := http.StatusInternalServerError
			if errors.Is(err, failover.ErrNotReady) {
				code = http.StatusConflict
			}
			writeJSON(w, code, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, plan)
	})
	mux.HandleFunc("GET /v1/failover/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Status())
	})
	mux.HandleFunc("GET /v1/failover/history", func(w http.ResponseWriter, r *http.Request) {
		h := s.History(0)
		if h == nil {
			h = []failover.Record{}
		}
		writeJSON(w, http.StatusOK, h)
	})
}

// Status is `sentry failover status`: this boot's record, or the newest
// stored one, with what it still waits for.
type Status struct {
	Record   *failover.Record `json:"record,omitempty"`
	ThisBoot bool             `json:"this_boot"`
	Missing  []string         `json:"missing,omitempty"`
	Phases   []failover.Phase `json:"phases,omitempty"`
	Downtime float64          `json:"downtime_ms,omitempty"`
	Check    string           `json:"check,omitempty"` // an inconsistency of the record
}

// Status is this boot's record or the newest stored.
func (s *Swaps) Status() Status {
	var st Status
	if r := s.Current(); r != nil {
		st.Record, st.ThisBoot = r, true
	} else if h := s.History(1); len(h) > 0 {
		st.Record = &h[0]
	}
	if st.Record == nil {
		return st
	}
	if !st.Record.Complete {
		st.Missing = st.Record.Missing(s.d.Expected())
	}
	st.Phases = st.Record.Phases()
	if d, ok := st.Record.Downtime(); ok {
		st.Downtime = float64(d.Microseconds()) / 1000
	}
	if err := st.Record.Check(); err != nil {
		st.Check = err.Error()
	}
	return st
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
