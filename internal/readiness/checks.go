package readiness

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Windows of the checks whose evidence is not measured every verifier
// round.
const (
	// InventoryWindow: inventories are taken every 10 minutes.
	InventoryWindow = 25 * time.Minute
	// SlowWindow: RAID, SMART, loaders and network are read hourly.
	SlowWindow = 3 * time.Hour
	// SyncGrace: a head younger than this that S has not applied yet is
	// on its way, not a fault.
	SyncGrace = 2 * time.Minute
	// DefaultClockBound is the largest clock offset allowed.
	DefaultClockBound = 2 * time.Second
)

// Default is the registry of every check, in the order an operator reads
// them: the link first (without it nothing else is known), then what the
// swap needs.
func Default() *Registry {
	r := &Registry{}
	r.Register(Check{Name: "peer", Doc: "the peer answers and its state is fresh", Run: checkPeer})
	r.Register(Check{Name: "stamps", Doc: "one primary, the generations agree, no node in safe mode", Run: checkStamps})
	r.Register(Check{Name: "sync.applied", Doc: "the secondary applied the primary's configuration head", Run: checkSyncApplied})
	r.Register(Check{Name: "sync.failed", Doc: "no failed apply on the secondary", Run: checkSyncFailed})
	r.Register(Check{Name: "sync.drift", Doc: "no tracked file edited locally on the secondary", Run: checkSyncDrift})
	r.Register(Check{Name: "verify.green", Doc: "every probe green on both nodes, within the window", Run: checkVerifyGreen})
	r.Register(Check{Name: "verify.coverage", Doc: "every selected module's probes run on both nodes", Run: checkVerifyCoverage})
	r.Register(Check{Name: "modules", Doc: "module versions and selection identical, none awaiting approval", Run: checkModules})
	r.Register(Check{Name: "packages", Doc: "packages, kernels and firmware in step (declared exceptions aside)", Window: InventoryWindow, Run: checkPackages})
	r.Register(Check{Name: "inventory.fresh", Doc: "both inventories taken within the window", Window: InventoryWindow, Run: checkInventory})
	r.Register(Check{Name: "boot.compat", Doc: "each disk set boots on the other machine", Window: InventoryWindow, Run: checkCompat})
	r.Register(Check{Name: "boot.loader", Doc: "each disk set boots without this machine's NVRAM (fallback loader, GRUB on every member)", Window: SlowWindow, Run: checkLoaders})
	r.Register(Check{Name: "boot.network", Doc: "the network adaptation covers how each node configures its network", Window: SlowWindow, Run: checkNetwork})
	r.Register(Check{Name: "raid", Doc: "RAID arrays healthy on both nodes (not degraded, not rebuilding)", Window: SlowWindow, Run: checkRAID})
	r.Register(Check{Name: "disks", Doc: "SMART health where it can be read", Window: SlowWindow, Run: checkDisks})
	r.Register(Check{Name: "backup", Doc: "the last weekly restore test of the backups good, where one ran (their freshness is the backup probe's)", Run: checkBackup})
	r.Register(Check{Name: "clock", Doc: "the two clocks within the bound", Run: checkClock})
	return r
}

func pass(reason string, ev ...Evidence) Finding {
	return Finding{State: Pass, Reason: reason, Evidence: ev}
}

func fail(reason, fix string, ev ...Evidence) Finding {
	return Finding{State: Fail, Reason: reason, Fix: fix, Evidence: ev}
}

func stale(reason, fix string, ev ...Evidence) Finding {
	return Finding{State: Stale, Reason: reason, Fix: fix, Evidence: ev}
}

func na(reason string) Finding { return Finding{State: NA, Reason: reason} }

// nodes are the two nodes, primary first, skipping the unknown.
func (c *Ctx) nodes() []*Node {
	var out []*Node
	for _, n := range []*Node{c.In.Primary, c.In.Secondary} {
		if n != nil {
			out = append(out, n)
		}
	}
	return out
}

// pair reports whether both nodes are known; if not, the finding that
// says so.
func (c *Ctx) pair() (Finding, bool) {
	switch {
	case c.In.Primary == nil && c.In.Secondary == nil:
		return stale("this node is not paired", "sentry init / sentry join"), false
	case c.In.Primary == nil:
		return stale("the primary's state is not known", "sentry status"), false
	case c.In.Secondary == nil:
		return stale("the secondary's state is not known", "sentry status"), false
	}
	return Finding{}, true
}

func checkPeer(c *Ctx) Finding {
	in := c.In
	ev := Evidence{What: "last contact", Value: c.age(in.PeerContact), Measured: in.PeerContact}
	if in.PeerContact.IsZero() {
		return fail("the peer has never answered", "sentry status", ev)
	}
	if !in.PeerReachable || !c.Fresh(in.PeerContact) {
		why := ""
		if in.PeerError != "" {
			why = ": " + in.PeerError
		}
		return fail(fmt.Sprintf("the peer has not answered for %s%s", Human(in.Now.Sub(in.PeerContact)), why), "sentry status", ev)
	}
	return pass("the peer answers", ev)
}

func checkStamps(c *Ctx) Finding {
	if f, ok := c.pair(); !ok {
		return f
	}
	p, s := c.In.Primary, c.In.Secondary
	ev := []Evidence{
		{Node: p.Name, What: "role, generation", Value: fmt.Sprintf("%s, %d", p.Role, p.Generation), Measured: p.StatusAt},
		{Node: s.Name, What: "role, generation", Value: fmt.Sprintf("%s, %d", s.Role, s.Generation), Measured: s.StatusAt},
	}
	for _, n := range c.nodes() {
		if n.StampError != "" {
			return fail(n.Name+"'s disk stamp cannot be read: "+n.StampError, "sentry bootcheck status", ev...)
		}
		if n.SafeMode != "" {
			return fail(n.Name+" is held in safe mode: "+n.SafeMode, "sentry bootcheck status", ev...)
		}
	}
	if p.Role != "primary" || s.Role != "secondary" {
		return fail(fmt.Sprintf("the roles are %s=%s and %s=%s, not one primary and one secondary", p.Name, dash(p.Role), s.Name, dash(s.Role)), "sentry status", ev...)
	}
	if p.Generation != s.Generation {
		return fail(fmt.Sprintf("the generations differ: %s has %d, %s has %d", p.Name, p.Generation, s.Name, s.Generation), "sentry status", ev...)
	}
	if !c.Fresh(s.StatusAt) || !c.Fresh(p.StatusAt) {
		return stale("a node's status is older than "+Human(c.Window), "sentry status", ev...)
	}
	return pass(fmt.Sprintf("%s is primary, %s secondary, generation %d", p.Name, s.Name, p.Generation), ev...)
}

func checkSyncApplied(c *Ctx) Finding {
	if f, ok := c.pair(); !ok {
		return f
	}
	p, s := c.In.Primary, c.In.Secondary
	ev := []Evidence{
		{Node: p.Name, What: "configuration head", Value: short(p.ConfigHead), Measured: p.ConfigAt},
		{Node: s.Name, What: "applied", Value: short(s.ConfigApplied), Measured: s.ConfigAt},
	}
	if !c.Fresh(p.ConfigAt) || !c.Fresh(s.ConfigAt) {
		return stale("the configuration state of a node is older than "+Human(c.Window), "sentry status", ev...)
	}
	if p.ConfigHead == "" {
		return stale(p.Name+" has no configuration head yet", "sentry sync", ev...)
	}
	if s.ConfigApplied == p.ConfigHead {
		return pass(s.Name+" applied "+short(p.ConfigHead), ev...)
	}
	if s.ConfigFailed == "" && !p.ConfigHeadAt.IsZero() && c.In.Now.Sub(p.ConfigHeadAt) < SyncGrace {
		return pass(s.Name+" is applying "+short(p.ConfigHead), ev...)
	}
	if s.ConfigFailed == p.ConfigHead {
		// One cause, one blocking check: sync.failed says why.
		return na(fmt.Sprintf("the head %s failed to apply on %s: sync.failed blocks", short(p.ConfigHead), s.Name))
	}
	return fail(fmt.Sprintf("%s applied %s, %s's head is %s", s.Name, dash(short(s.ConfigApplied)), p.Name, short(p.ConfigHead)), "sentry sync", ev...)
}

func checkSyncFailed(c *Ctx) Finding {
	s := c.In.Secondary
	if s == nil {
		f, _ := c.pair()
		return f
	}
	ev := Evidence{Node: s.Name, What: "failed commit", Value: dash(short(s.ConfigFailed)), Measured: s.ConfigAt}
	if !c.Fresh(s.ConfigAt) {
		return stale(s.Name+"'s configuration state is "+c.age(s.ConfigAt), "sentry status", ev)
	}
	if s.ConfigFailed != "" {
		why := fmt.Sprintf("%s could not apply %s: %s", s.Name, short(s.ConfigFailed), s.ConfigError)
		if s.ConfigRetry != "" {
			why += " (" + s.ConfigRetry + ")"
		}
		return fail(why, "sentry config log; sentry sync", ev)
	}
	return pass("no failed apply", ev)
}

func checkSyncDrift(c *Ctx) Finding {
	s := c.In.Secondary
	if s == nil {
		f, _ := c.pair()
		return f
	}
	ev := Evidence{Node: s.Name, What: "locally edited tracked paths", Value: fmt.Sprint(s.ConfigDrift), Measured: s.ConfigAt}
	if !c.Fresh(s.ConfigAt) {
		return stale(s.Name+"'s configuration state is "+c.age(s.ConfigAt), "sentry status", ev)
	}
	if s.ConfigDrift > 0 {
		return fail(fmt.Sprintf("%d tracked path(s) edited locally on %s", s.ConfigDrift, s.Name), "sentry config drift", ev)
	}
	return pass("no local drift on "+s.Name, ev)
}

func checkVerifyGreen(c *Ctx) Finding {
	if f, ok := c.pair(); !ok {
		return f
	}
	var red, old, ev []string
	var evid []Evidence
	for _, n := range c.nodes() {
		if len(n.Probes) == 0 {
			old = append(old, n.Name+": no results")
			continue
		}
		disturbed := set(n.ReloadDisturbed)
		for _, p := range n.Probes {
			if !c.Fresh(p.At) {
				old = append(old, fmt.Sprintf("%s on %s %s", p.Name, n.Name, c.age(p.At)))
				continue
			}
			if !p.OK && !disturbed[p.Name] {
				red = append(red, fmt.Sprintf("%s on %s: %s", p.Name, n.Name, p.Message))
				evid = append(evid, Evidence{Node: n.Name, What: p.Name, Value: "failed: " + p.Message, Measured: p.At})
			}
			if !p.OK && disturbed[p.Name] {
				ev = append(ev, p.Name+" on "+n.Name)
			}
		}
	}
	if len(red) > 0 {
		return fail(strings.Join(red, "; "), "sentry verify --last", evid...)
	}
	if len(old) > 0 {
		return stale("results too old: "+strings.Join(old, "; "), "sentry verify --last", evid...)
	}
	if len(ev) > 0 {
		return pass("green but for a reload the sync made: "+strings.Join(ev, ", "), evid...)
	}
	return pass("every probe green on both nodes", evid...)
}

func checkVerifyCoverage(c *Ctx) Finding {
	if f, ok := c.pair(); !ok {
		return f
	}
	var missing, none []string
	for _, n := range c.nodes() {
		if len(n.Probes) == 0 && len(union(c.In.Primary.Expected, c.In.Secondary.Expected)) > 0 {
			// No result at all (an agent just started, a node just
			// booted): nothing says what its schedule runs yet.
			none = append(none, n.Name)
			continue
		}
		have := map[string]bool{}
		for _, p := range n.Probes {
			have[p.Name] = true
		}
		for _, want := range union(c.In.Primary.Expected, c.In.Secondary.Expected) {
			if !have[want] {
				missing = append(missing, want+" on "+n.Name)
			}
		}
	}
	if len(missing) > 0 {
		return fail("probes that no schedule runs: "+strings.Join(missing, ", "), "sentry modules list; sentry verify", Evidence{What: "missing", Value: strings.Join(missing, ", ")})
	}
	if len(none) > 0 {
		// verify.green blocks on the missing results and says so.
		return na("no probe results from " + strings.Join(none, ", ") + " to judge by yet (an agent just started, or has not run a round)")
	}
	return pass("every selected module's probes run on both nodes")
}

func checkModules(c *Ctx) Finding {
	if f, ok := c.pair(); !ok {
		return f
	}
	p, s := c.In.Primary, c.In.Secondary
	ev := []Evidence{
		{Node: p.Name, What: "modules", Value: modList(p.Modules), Measured: p.ModulesAt},
		{Node: s.Name, What: "modules", Value: modList(s.Modules), Measured: s.ModulesAt},
	}
	if len(s.BoundaryPending) > 0 {
		return fail(s.Name+" awaits approval of "+strings.Join(s.BoundaryPending, ", "), "sentry modules approve (on "+s.Name+")", ev...)
	}
	if !c.Fresh(p.ModulesAt) || !c.Fresh(s.ModulesAt) {
		return stale("a node's modules are "+c.age(older(p.ModulesAt, s.ModulesAt)), "sentry modules list", ev...)
	}
	var diff []string
	for _, name := range keys(p.Modules, s.Modules) {
		if p.Modules[name] != s.Modules[name] {
			diff = append(diff, fmt.Sprintf("%s %s on %s, %s on %s", name, dash(p.Modules[name]), p.Name, dash(s.Modules[name]), s.Name))
		}
	}
	if len(diff) > 0 {
		return fail("modules differ: "+strings.Join(diff, "; "), "sentry modules list", ev...)
	}
	return pass("the same modules and versions on both nodes", ev...)
}

func checkPackages(c *Ctx) Finding {
	pk := c.In.Packages
	ev := Evidence{What: "inventory compared", Value: c.age(pk.At), Measured: pk.At}
	if pk.Err != "" {
		return stale("the packages cannot be compared: "+pk.Err, "sentry drift", ev)
	}
	if !c.Fresh(pk.At) {
		return stale("the package comparison is "+c.age(pk.At), "sentry drift", ev)
	}
	var bad []string
	evs := []Evidence{ev}
	allowed, onlyS := 0, 0
	for _, d := range pk.Diffs {
		what := strings.TrimSpace(d.Kind + " " + d.Name)
		if d.Allowed {
			allowed++
			evs = append(evs, Evidence{What: what + " (declared allowed)", Value: fmt.Sprintf("%s / %s: %s", dash(d.Primary), dash(d.Secondary), d.Reason), Measured: pk.At})
			continue
		}
		if d.Primary == "" {
			onlyS++
		}
		bad = append(bad, fmt.Sprintf("%s (%s / %s)", what, dash(d.Primary), dash(d.Secondary)))
	}
	also := ""
	if allowed > 0 {
		also = fmt.Sprintf(" (and %d declared allowed)", allowed)
	}
	if len(bad) > 0 {
		// The parity apply brings S to P's packages; what is only on S it
		// leaves alone (docs/parity.md), so it is not the fix for that.
		fix := "sentry parity apply"
		const onS = "install it on the primary, remove it from the secondary, or declare it allowed in parity-allow.toml (sentry parity apply leaves what is only on the secondary alone)"
		switch {
		case onlyS == len(bad):
			fix = onS
		case onlyS > 0:
			fix = "sentry parity apply; for what is only on the secondary: " + onS
		}
		return fail(fmt.Sprintf("%d difference(s): %s%s", len(bad), strings.Join(bad, "; "), also), fix, evs...)
	}
	if allowed > 0 {
		return pass(fmt.Sprintf("in step (%d difference(s) declared allowed)", allowed), evs...)
	}
	return pass("packages, kernels and firmware in step", ev)
}

func checkInventory(c *Ctx) Finding {
	if f, ok := c.pair(); !ok {
		return f
	}
	var ev []Evidence
	var bad []string
	for _, n := range c.nodes() {
		ev = append(ev, Evidence{Node: n.Name, What: "inventory", Value: c.age(n.InventoryAt), Measured: n.InventoryAt})
		switch {
		case n.InventoryErr != "":
			bad = append(bad, n.Name+": "+n.InventoryErr)
		case !c.Fresh(n.InventoryAt):
			bad = append(bad, n.Name+"'s "+c.age(n.InventoryAt))
		}
	}
	if len(bad) > 0 {
		return fail("inventory not fresh: "+strings.Join(bad, "; "), "sentry parity", ev...)
	}
	return pass("both inventories fresh", ev...)
}

func checkCompat(c *Ctx) Finding {
	if len(c.In.Compat) == 0 {
		return stale("no cross-boot comparison yet", "sentry compat")
	}
	var no, unknown []string
	var ev []Evidence
	for _, x := range c.In.Compat {
		what := fmt.Sprintf("%s's disk set on %s", x.DiskSet, x.Machine)
		ev = append(ev, Evidence{Node: x.DiskSet, What: what, Value: x.Boots, Measured: x.At})
		switch {
		case !c.Fresh(x.At):
			unknown = append(unknown, what+" "+c.age(x.At))
		case x.Boots == "no":
			no = append(no, what+": "+strings.Join(x.Because, "; "))
		case x.Boots != "yes":
			unknown = append(unknown, what+": "+strings.Join(x.Because, "; "))
		}
	}
	if len(no) > 0 {
		return fail(strings.Join(no, "; "), "sentry compat", ev...)
	}
	if len(c.In.Compat) < 2 {
		unknown = append(unknown, "only one direction compared")
	}
	if len(unknown) > 0 {
		return stale(strings.Join(unknown, "; "), "sentry compat", ev...)
	}
	return pass("each disk set boots on the other machine", ev...)
}

func checkLoaders(c *Ctx) Finding {
	if f, ok := c.pair(); !ok {
		return f
	}
	var bad, old, notApplicable []string
	var ev []Evidence
	for _, n := range c.nodes() {
		l := n.Loaders
		if l == nil || !c.Fresh(l.At) {
			old = append(old, n.Name)
			continue
		}
		switch l.Mode {
		case "uefi":
			digests := map[string]bool{}
			if len(l.ESPs) == 0 {
				bad = append(bad, n.Name+": UEFI boot but no EFI system partition found")
			}
			for _, e := range l.ESPs {
				ev = append(ev, Evidence{Node: n.Name, What: e.Device, Value: yesNo(e.Fallback, "fallback loader", "no EFI/BOOT/BOOTX64.EFI"), Measured: l.At})
				if !e.Fallback {
					bad = append(bad, n.Name+": "+e.Device+" has no EFI/BOOT/BOOTX64.EFI (the other machine's firmware has no boot entry for this disk set)")
				}
				digests[e.Digest] = true
			}
			if len(digests) > 1 {
				bad = append(bad, n.Name+": the EFI system partitions of the RAID members differ")
			}
		case "bios":
			for _, d := range sortedKeys(l.GRUBDisks) {
				ev = append(ev, Evidence{Node: n.Name, What: d, Value: yesNo(l.GRUBDisks[d], "GRUB installed", "no GRUB"), Measured: l.At})
				if !l.GRUBDisks[d] {
					bad = append(bad, n.Name+": GRUB is not on "+d)
				}
			}
		default:
			notApplicable = append(notApplicable, n.Name)
		}
	}
	switch {
	case len(bad) > 0:
		return fail(strings.Join(bad, "; "), "sentry ready --json (boot.loader); grub-install / efibootmgr", ev...)
	case len(old) > 0:
		return stale("boot loaders not read recently on "+strings.Join(old, ", "), "sentry status", ev...)
	case len(notApplicable) == len(c.nodes()):
		return na("the disk sets have no boot loader of their own (containers)")
	}
	return pass("every disk set boots without the machine's boot entries", ev...)
}

func checkNetwork(c *Ctx) Finding {
	if f, ok := c.pair(); !ok {
		return f
	}
	var bad, old []string
	var ev []Evidence
	for _, n := range c.nodes() {
		nf := n.Network
		if nf == nil || !c.Fresh(nf.At) {
			old = append(old, n.Name)
			continue
		}
		ev = append(ev, Evidence{Node: n.Name, What: "network configured by", Value: dash(nf.Method), Measured: nf.At})
		if !nf.Covered {
			bad = append(bad, fmt.Sprintf("%s: %s is not covered by the boot check's adaptation: %s", n.Name, dash(nf.Method), nf.Detail))
		}
	}
	switch {
	case len(bad) > 0:
		return fail(strings.Join(bad, "; "), "docs/operations.md (network adaptation)", ev...)
	case len(old) > 0:
		return stale("network configuration not read recently on "+strings.Join(old, ", "), "sentry status", ev...)
	}
	return pass("the network adaptation covers both nodes", ev...)
}

func checkRAID(c *Ctx) Finding {
	if f, ok := c.pair(); !ok {
		return f
	}
	var bad, old []string
	var ev []Evidence
	arrays := 0
	for _, n := range c.nodes() {
		r := n.RAID
		if r == nil || !c.Fresh(r.At) {
			old = append(old, n.Name)
			continue
		}
		for _, a := range r.Arrays {
			arrays++
			state := fmt.Sprintf("%s [%d/%d]", a.Level, a.Up, a.Members)
			switch {
			case len(a.Failed) > 0 || a.Up < a.Members:
				state += " degraded"
				if len(a.Failed) > 0 {
					state += ", failed: " + strings.Join(a.Failed, ", ")
				}
				bad = append(bad, n.Name+" "+a.Name+" "+state)
			case a.Action == "recover" || a.Action == "resync" || a.Action == "reshape":
				state += " " + a.Action + " " + a.Progress
				bad = append(bad, n.Name+" "+a.Name+" "+state)
			case a.Action != "":
				state += " " + a.Action + " " + a.Progress + " (scheduled, not a fault)"
			}
			ev = append(ev, Evidence{Node: n.Name, What: a.Name, Value: state, Measured: r.At})
		}
	}
	switch {
	case len(bad) > 0:
		return fail(strings.Join(bad, "; "), "cat /proc/mdstat; mdadm --detail", ev...)
	case len(old) > 0:
		return stale("RAID state not read recently on "+strings.Join(old, ", "), "cat /proc/mdstat", ev...)
	case arrays == 0:
		return na("no md arrays on either node")
	}
	return pass("every array healthy", ev...)
}

func checkDisks(c *Ctx) Finding {
	if f, ok := c.pair(); !ok {
		return f
	}
	var bad []string
	var ev []Evidence
	read := 0
	for _, n := range c.nodes() {
		if !c.Fresh(n.DisksAt) {
			continue
		}
		for _, d := range n.Disks {
			if d.Passed == nil {
				continue
			}
			read++
			ev = append(ev, Evidence{Node: n.Name, What: d.Device + " " + d.Serial, Value: yesNo(*d.Passed, "PASSED", "FAILED"), Measured: n.DisksAt})
			if !*d.Passed {
				bad = append(bad, fmt.Sprintf("%s %s (serial %s): SMART says FAILED %s", n.Name, d.Device, dash(d.Serial), d.Detail))
			}
		}
	}
	if len(bad) > 0 {
		return fail(strings.Join(bad, "; "), "smartctl -a DEVICE", ev...)
	}
	if read == 0 {
		return na("no SMART data can be read on either node")
	}
	return pass("every disk's SMART health passed", ev...)
}

func checkBackup(c *Ctx) Finding {
	var bad []string
	var ev []Evidence
	for _, n := range c.nodes() {
		b := n.Backup
		if b == nil {
			continue
		}
		outcome := "good"
		if b.RestoreErr != "" {
			outcome = "FAILED"
			bad = append(bad, fmt.Sprintf("%s: the restore test of %s at %s failed: %s", n.Name, b.Repo, b.At.UTC().Format("2006-01-02 15:04 MST"), b.RestoreErr))
		}
		ev = append(ev, Evidence{Node: n.Name, What: "restore test of " + b.Repo, Value: outcome + ", snapshot " + b.Snapshot, Measured: b.At})
	}
	switch {
	case len(ev) == 0:
		return na("no restore test made (no restic repository in a backup probe, or its first weekly test has not run)")
	case len(bad) > 0:
		return fail(strings.Join(bad, "; "), "sentry report restore-test", ev...)
	}
	return pass("the last restore test good", ev...)
}

func checkClock(c *Ctx) Finding {
	in := c.In
	if in.ClockOffset == nil {
		return stale("the peer's clock was not measured", "sentry status")
	}
	bound := in.ClockBound
	if bound <= 0 {
		bound = DefaultClockBound
	}
	off := *in.ClockOffset
	ev := Evidence{What: "peer clock minus this one", Value: off.Round(time.Millisecond).String(), Measured: in.PeerContact}
	if !c.Fresh(in.PeerContact) {
		return stale("the clock offset was "+c.age(in.PeerContact), "sentry status", ev)
	}
	if off > bound || off < -bound {
		return fail(fmt.Sprintf("the clocks differ by %s (at most %s)", off.Round(time.Millisecond), bound), "timedatectl; systemctl status systemd-timesyncd", ev)
	}
	return pass("the clocks agree within "+bound.String(), ev)
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool, yes, no string) string {
	if b {
		return yes
	}
	return no
}

func set(l []string) map[string]bool {
	m := map[string]bool{}
	for _, s := range l {
		m[s] = true
	}
	return m
}

func union(a, b []string) []string {
	m := set(a)
	for _, s := range b {
		m[s] = true
	}
	return sortedKeys(m)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func keys(a, b map[string]string) []string {
	m := map[string]bool{}
	for k := range a {
		m[k] = true
	}
	for k := range b {
		m[k] = true
	}
	return sortedKeys(m)
}

func modList(m map[string]string) string {
	var out []string
	for _, k := range sortedKeys(m) {
		out = append(out, k+" "+m[k])
	}
	return strings.Join(out, ", ")
}

func older(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
