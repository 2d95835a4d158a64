// Package failover is the manual cold failover written down: the plan of a
// disk swap (which disks go where, in what order, what the console shows
// at boot, what to check afterwards, how to leave safe mode) and the record
// of one failover as it happened (each phase of the downtime timed).
//
// It is pure logic and rendering: the agent gathers the facts (the verdict,
// the disks, the machines, the boot check's decision, the probes) and
// passes them in; nothing here reads a file or the clock. The texts follow
// docs/operations.md ("Failover runbook: swap the disks and reboot") and
// the console lines of bootcheck.
//
// Times are printed in the location they carry; the caller converts them
// (Local) for a terminal if it wants local time.
package failover

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// The verdict that lets a plan be made without --force.
const verdictReady = "READY"

// How a plan names the peer it does not know (unpaired).
const (
	noPrimary   = "the primary"
	noSecondary = "the secondary"
)

// The roles a node asks as.
const (
	rolePrimary   = "primary"
	roleSecondary = "secondary"
)

// ErrNotReady is wrapped by Build's refusals: the verdict is not READY, or
// the planned swap's final-sync barrier does not hold, and --force was not
// given.
var ErrNotReady = errors.New("not ready for a failover")

// Disk is one physical disk to move (filled from internal/disks by the
// caller).
type Disk struct {
	Name      string   `json:"name"`
	Serial    string   `json:"serial,omitempty"`
	Model     string   `json:"model,omitempty"`
	ByPath    string   `json:"by_path,omitempty"`
	ByID      string   `json:"by_id,omitempty"`
	Bay       string   `json:"bay,omitempty"`
	SizeBytes uint64   `json:"size_bytes"`
	Arrays    []string `json:"arrays,omitempty"` // "md0 (sda1)"
	// LocateLit: its bay's locate LED was lit for this plan.
	LocateLit bool `json:"locate_lit,omitempty"`
}

// PlanInput is what the agent knows when the operator asks for a plan.
type PlanInput struct {
	ID   string    // the plan's id, e.g. "plan-20261203T021500.000Z"
	At   time.Time // when it was asked
	Node string    // the node asked ("node-p")
	Role string    // "primary" or "secondary"
	Peer string    // the peer's name ("" unpaired)
	// Planned: --planned, both machines healthy, swapped to repair or
	// upgrade one, then swapped back.
	Planned bool
	// Forced: --force given.
	Forced   bool
	Verdict  string   // "READY", "NOT READY", "UNKNOWN"
	Blocking []string // the verdict's blocking reasons, one line each
	Warnings []string
	// Barrier is the final-sync barrier as measured now (planned only).
	Barrier     *Barrier
	DiskSet     string // this node's disk set id (the stamp's)
	Machine     string // the machine this disk set runs on now
	PeerMachine string // the machine the peer runs on now ("" unknown)
	HomeMachine string // this disk set's home machine
	// Disks are the disks of the node asked.
	Disks []Disk
	// DisksNote says why there are no physical disks to name; printed
	// instead of a table.
	DisksNote string
	// ConsoleLines are what the console is expected to show at boot on the
	// machine that boots the primary's disk set (nil: Build writes the
	// lines bootcheck prints, with "..." for what it cannot know).
	ConsoleLines []string
	Addresses    []string // the primary's service addresses
	Probes       []string // the verifier probes that must be green afterwards
}

// Barrier is the planned swap's final-sync barrier: the secondary applied
// the primary's configuration head, and both inventories are fresh.
type Barrier struct {
	PrimaryHead      string    `json:"primary_head,omitempty"`
	AppliedHead      string    `json:"applied_head,omitempty"`
	Applied          bool      `json:"applied"` // the secondary applied the primary's head
	InventoriesFresh bool      `json:"inventories_fresh"`
	At               time.Time `json:"at,omitzero"`
	Detail           string    `json:"detail,omitempty"` // one line why not, when not
}

// OK says the barrier holds: the secondary applied the primary's head (the
// same commit on both sides) and both inventories are fresh.
func (b Barrier) OK() bool {
	return b.Applied && b.InventoriesFresh && b.PrimaryHead == b.AppliedHead
}

// why is the barrier's failure in one line.
func (b Barrier) why() string {
	if b.Detail != "" {
		return b.Detail
	}
	switch {
	case !b.Applied || b.PrimaryHead != b.AppliedHead:
		return fmt.Sprintf("the secondary has applied %s, not the primary's head %s", short(b.AppliedHead), short(b.PrimaryHead))
	case !b.InventoriesFresh:
		return "an inventory is not fresh"
	}
	return "holds"
}

// Step is one step of a plan.
type Step struct {
	Title  string   `json:"title"`
	Detail []string `json:"detail,omitempty"`
}

// Plan is the checklist of one disk swap. Text and Markdown render it from
// its fields alone, so a plan read back from JSON prints the same.
type Plan struct {
	ID      string    `json:"id"`
	At      time.Time `json:"at"`
	Node    string    `json:"node"`
	Role    string    `json:"role"`
	Peer    string    `json:"peer,omitempty"`
	Planned bool      `json:"planned"`
	// Forced: --force overrode a verdict that was not READY or a barrier
	// that did not hold. --force on a READY verdict (and a holding
	// barrier) overrides nothing and leaves it false.
	Forced      bool     `json:"forced"`
	Verdict     string   `json:"verdict"`
	Blocking    []string `json:"blocking,omitempty"`
	Warnings    []string `json:"warnings,omitempty"`
	Barrier     *Barrier `json:"barrier,omitempty"`
	DiskSet     string   `json:"disk_set"`
	Machine     string   `json:"machine"`
	PeerMachine string   `json:"peer_machine,omitempty"`
	HomeMachine string   `json:"home_machine,omitempty"`
	Disks       []Disk   `json:"disks"`
	DisksNote   string   `json:"disks_note,omitempty"`
	Addresses   []string `json:"addresses,omitempty"`
	Probes      []string `json:"probes,omitempty"`
	// Overrides say what --force overrode (empty unless Forced).
	Overrides []string `json:"overrides,omitempty"`
	Steps     []Step   `json:"steps"`
	// Console is what the console of the machine that boots the primary's
	// disk set shows at boot.
	Console []string `json:"console"`
	// After is what to check afterwards.
	After []string `json:"after"`
	// SafeMode is how to leave safe mode, and when to promote instead.
	SafeMode []string `json:"safe_mode"`
}

// Build makes the plan of a swap. It refuses (an error wrapping
// ErrNotReady) when the verdict is not READY, or a planned swap's barrier
// does not hold, and in.Forced is false.
func Build(in PlanInput) (*Plan, error) {
	if in.Node == "" {
		return nil, errors.New("failover plan: the node asked has no name")
	}
	if in.Role != rolePrimary && in.Role != roleSecondary {
		return nil, fmt.Errorf("failover plan: %s has the role %q: only the primary or the secondary of a pair can plan a swap", in.Node, in.Role)
	}
	verdict := in.Verdict
	if verdict == "" {
		verdict = "UNKNOWN"
	}
	var overrides []string
	if verdict != verdictReady {
		why := "the verdict is " + verdict
		if r := firstReasons(in.Blocking, 3); r != "" {
			why += ": " + r
		}
		overrides = append(overrides, why)
	}
	if in.Planned {
		switch {
		case in.Barrier == nil:
			overrides = append(overrides, "the final-sync barrier was not measured")
		case !in.Barrier.OK():
			overrides = append(overrides, "the final-sync barrier does not hold: "+in.Barrier.why())
		}
	}
	if len(overrides) > 0 && !in.Forced {
		return nil, fmt.Errorf("%w: %s; --force makes the plan anyway, and the plan and the failover record keep the override",
			ErrNotReady, strings.Join(overrides, "; "))
	}
	p := &Plan{
		ID: in.ID, At: in.At, Node: in.Node, Role: in.Role, Peer: in.Peer,
		Planned: in.Planned, Forced: len(overrides) > 0, Verdict: verdict,
		Blocking: clone(in.Blocking), Warnings: clone(in.Warnings),
		DiskSet: in.DiskSet, Machine: in.Machine, PeerMachine: in.PeerMachine, HomeMachine: in.HomeMachine,
		Disks: cloneDisks(in.Disks), DisksNote: in.DisksNote,
		Addresses: clone(in.Addresses), Probes: clone(in.Probes),
	}
	if p.Forced {
		p.Overrides = overrides
	}
	if in.Barrier != nil {
		b := *in.Barrier
		p.Barrier = &b
	}
	c := p.cast()
	if in.Planned {
		p.Steps = c.plannedSteps(p)
	} else {
		p.Steps = c.unplannedSteps(p)
	}
	p.Console = clone(in.ConsoleLines)
	if len(p.Console) == 0 {
		p.Console = c.defaultConsole()
	}
	p.After = c.after(p)
	p.SafeMode = c.safeMode()
	return p, nil
}

// firstReasons joins the first n reasons and says how many more there are.
func firstReasons(rs []string, n int) string {
	if len(rs) <= n {
		return strings.Join(rs, "; ")
	}
	return fmt.Sprintf("%s (and %d more)", strings.Join(rs[:n], "; "), len(rs)-n)
}

// cast names who is who in a swap, whichever node asked.
type cast struct {
	thisIsP      bool
	pNode, sNode string // the nodes' names
	pFrom, sFrom string // "machine X" (or a description) where each runs now
	pID, sID     string // the bare machine ids ("" unknown)
	target       string // where the primary's disk set boots: sFrom
	// pHome: the primary's disk set's home machine, when known (the node
	// asked is the primary).
	pHome string
	// targetID is the bare machine id the primary boots on ("" unknown).
	targetID string
	// back: a planned swap that takes this node's disk set to its home:
	// the swap back.
	back bool
}

func (p *Plan) cast() cast {
	c := cast{thisIsP: p.Role == rolePrimary}
	peer := p.Peer
	if c.thisIsP {
		c.pNode, c.sNode = p.Node, or(peer, noSecondary)
		c.pID, c.sID = p.Machine, p.PeerMachine
		c.pHome, c.targetID = p.HomeMachine, p.PeerMachine
	} else {
		c.pNode, c.sNode = or(peer, noPrimary), p.Node
		c.pID, c.sID = p.PeerMachine, p.Machine
		c.targetID = p.Machine
	}
	c.pFrom, c.sFrom = machine(c.pID, c.pNode), machine(c.sID, c.sNode)
	c.target = c.sFrom
	c.back = p.Planned && p.HomeMachine != "" && p.PeerMachine == p.HomeMachine && p.Machine != p.HomeMachine
	return c
}

// machine names a machine for a step: "machine X", or the node's when the
// id is not known.
func machine(id, node string) string {
	if id == "" {
		return node + "'s machine"
	}
	return "machine " + id
}

// pAt and sAt name a node with its machine and an aside: "node-p
// (this node, machine a)"; "node-p" alone when neither is known.
func (c cast) pAt(aside string) string { return nodeAt(c.pNode, c.pID, aside) }
func (c cast) sAt(aside string) string { return nodeAt(c.sNode, c.sID, aside) }

func nodeAt(node, id, aside string) string {
	var in []string
	if aside != "" {
		in = append(in, aside)
	}
	if id != "" {
		in = append(in, "machine "+id)
	}
	if len(in) == 0 {
		return node
	}
	return node + " (" + strings.Join(in, ", ") + ")"
}

// secondary names the secondary for `sentry promote`: "the secondary
// node-s".
func (c cast) secondary() string {
	if c.sNode == noSecondary {
		return c.sNode
	}
	return noSecondary + " " + c.sNode
}

// goesHome: the primary's disk set boots on its home machine (as far as
// this node knows).
func (c cast) goesHome() bool { return c.pHome != "" && c.targetID == c.pHome }

// disksDetail says which disks the table lists, and the LEDs.
func (c cast) disksDetail(p *Plan, what string) []string {
	set := fmt.Sprintf("disk set %s (%s, %s)", or(p.DiskSet, "?"), p.Node, what)
	if len(p.Disks) == 0 {
		note := p.DisksNote
		if note == "" {
			note = "this node named no disks"
		}
		return []string{fmt.Sprintf("No disk list for %s: %s.", set, strings.TrimSuffix(note, "."))}
	}
	s := fmt.Sprintf("Disks lists the %s of %s: serial, bay, by-path.", count(len(p.Disks), "disk"), set)
	if lit := countLit(p.Disks); lit > 0 {
		s += fmt.Sprintf(" The locate LEDs of their bays are lit (%d of %d).", lit, len(p.Disks))
	}
	return []string{s}
}

func countLit(ds []Disk) int {
	n := 0
	for _, d := range ds {
		if d.LocateLit {
			n++
		}
	}
	return n
}

// unplannedSteps: the primary machine failed; its disks go into the
// secondary's machine.
func (c cast) unplannedSteps(p *Plan) []Step {
	var st []Step
	watch := Step{Title: "Power " + c.target + " on and watch its console",
		Detail: []string{"The boot check prints the lines under Console (within its 15 s budget). A SAFE MODE line instead: stop, and see Safe mode."}}
	if c.goesHome() {
		watch.Detail = append(watch.Detail, fmt.Sprintf("%s is the home of %s's disks: no FAILOVER line, and the record is a failback.", capital(c.target), c.pNode))
	}
	check := Step{Title: "Log in on " + c.target + " and check",
		Detail: []string{"`sentry status`, `sentry failover status`, `sentry ready`: see Afterwards."}}
	if c.thisIsP {
		st = append(st,
			Step{Title: "Shut both machines down",
				Detail: []string{fmt.Sprintf("`systemctl poweroff` on %s, and on %s if it still runs.", c.sAt(""), c.pAt(""))}},
			Step{Title: fmt.Sprintf("Take %s's disks out of %s", c.pNode, c.pFrom),
				Detail: c.disksDetail(p, "the primary")},
			Step{Title: fmt.Sprintf("Take %s's disks out of %s and put them aside", c.sNode, c.sFrom),
				Detail: []string{fmt.Sprintf("Keep them: they go into %s once it is repaired (last step).", c.pFrom)}},
			Step{Title: fmt.Sprintf("Put %s's disks into %s, in the same bays", c.pNode, c.target),
				Detail: []string{fmt.Sprintf("Each disk into the bay it had in %s (the Bay column).", c.pFrom)}},
		)
	} else {
		move := Step{Title: fmt.Sprintf("Move %s's disks from %s into %s, in the same bays", c.pNode, c.pFrom, c.target),
			Detail: []string{
				fmt.Sprintf("This node names only its own disks; %s's are the disk set in %s (a `sentry failover plan` made on %s lists them).", c.pNode, c.pFrom, c.pNode),
				fmt.Sprintf("If they are lost or unreadable, move nothing: `sentry promote` on %s instead (see Safe mode).", c.sNode),
			}}
		st = append(st,
			Step{Title: "Shut both machines down",
				Detail: []string{fmt.Sprintf("`systemctl poweroff` on %s; %s may already be off.", c.sAt("this node"), c.pAt(""))}},
			Step{Title: fmt.Sprintf("Take %s's disks out of %s and put them aside", c.sNode, c.sFrom),
				Detail: append(c.disksDetail(p, "the secondary"),
					fmt.Sprintf("Keep them: they go into %s once it is repaired (last step).", c.pFrom))},
			move,
		)
	}
	st = append(st, watch, check,
		Step{Title: fmt.Sprintf("When %s is repaired, put %s's disks into it and boot it", c.pFrom, c.sNode),
			Detail: []string{"It comes up as the secondary on whichever machine it finds, and syncs again. To go back: `sentry failover plan --planned`, then swap the same way."}})
	return st
}

// plannedSteps: both machines healthy; both disk sets change machines.
func (c cast) plannedSteps(p *Plan) []Step {
	var bar []string
	if b := p.Barrier; b != nil {
		bar = append(bar, fmt.Sprintf("Measured %s: %s has applied %s, the primary's head is %s; inventories fresh: %s.",
			fmtTime(b.At, timeSec), c.sNode, short(b.AppliedHead), short(b.PrimaryHead), yesNo(b.InventoriesFresh)))
		if b.OK() {
			bar = append(bar, "The barrier holds.")
		} else {
			bar = append(bar, "NOT MET, overridden with --force: "+b.why()+".")
		}
	} else {
		bar = append(bar, "NOT MEASURED, overridden with --force.")
	}
	bar = append(bar, fmt.Sprintf("Change nothing on %s from here on; if time passed, `sentry failover plan --planned` again measures it again.", c.pNode))
	what, other := "the primary", c.sFrom
	if !c.thisIsP {
		what, other = "the secondary", c.pFrom
	}
	swap := append(c.disksDetail(p, what),
		fmt.Sprintf("Each disk into the same bay in the other machine; the other disk set is the disks in %s.", other))
	boot := []string{
		fmt.Sprintf("%s (%s's disks): the lines under Console.", capital(c.target), c.pNode),
		fmt.Sprintf("%s (%s's disks): `sentry bootcheck: SECONDARY: ...`.", capital(c.pFrom), c.sNode),
		"A SAFE MODE line on either: stop, and see Safe mode.",
	}
	if c.back || c.goesHome() {
		boot = append(boot, "This is the swap back: the primary's disk set is at home again (no FAILOVER line), and the record is a planned swap.")
	}
	st := []Step{
		{Title: "Check the final-sync barrier just before the shutdown", Detail: bar},
		{Title: "Shut both machines down",
			Detail: []string{fmt.Sprintf("`systemctl poweroff` on %s first, then on %s: the secondary has then seen all the primary did.", c.pAt(""), c.sAt(""))}},
		{Title: fmt.Sprintf("Swap the disk sets: %s's into %s, %s's into %s", c.pNode, c.target, c.sNode, c.pFrom), Detail: swap},
		{Title: "Power both machines on and watch the consoles", Detail: boot},
		{Title: "Log in on " + c.target + " and check",
			Detail: []string{"`sentry status`, `sentry failover status`, `sentry ready`: see Afterwards."}},
	}
	if c.back || c.goesHome() {
		return st
	}
	return append(st,
		Step{Title: fmt.Sprintf("Repair or upgrade %s", c.pFrom),
			Detail: []string{fmt.Sprintf("`systemctl poweroff` on %s (now in %s); %s serves from %s meanwhile. Boot it again when done: it syncs again.", c.sNode, c.pFrom, c.pNode, c.target)}},
		Step{Title: "To swap back: `sentry failover plan --planned` again, then the same steps",
			Detail: []string{fmt.Sprintf("%s's disks then return to %s.", c.pNode, c.pFrom)}},
	)
}

// defaultConsole is what bootcheck prints when the primary's disk set
// boots on the target machine (console in bootcheck/run.go), with "..."
// for the decision's reason and time.
func (c cast) defaultConsole() []string {
	if c.goesHome() {
		return []string{"sentry bootcheck: PRIMARY: the primary disk set on its home machine (... ms)"}
	}
	return []string{
		"sentry bootcheck: PRIMARY: the primary disk set on ... (... ms)",
		fmt.Sprintf("sentry bootcheck: FAILOVER: the primary disk set runs on machine %s (home %s)", or(c.targetID, "..."), or(c.pHome, "...")),
	}
}

// after is what to check once the primary's disk set runs again.
func (c cast) after(p *Plan) []string {
	status := "`sentry status`: FAILOVER, and the verifier green within a round (about 20 s in the lab)"
	if c.goesHome() {
		status = "`sentry status`: PRIMARY on its home machine, and the verifier green within a round (about 20 s in the lab)"
	}
	ready := fmt.Sprintf("`sentry ready`: READY once %s runs again and has synced; until then the peer check fails", c.sNode)
	if !p.Planned {
		ready = fmt.Sprintf("`sentry ready`: NOT READY (the peer) while %s's disks are aside; READY once they run again and have synced", c.sNode)
	}
	out := []string{
		fmt.Sprintf("`sentry failover status` on %s, until it says complete: each phase of the downtime, each service green, the peer back, the verdict", c.pNode),
		status,
		ready,
		"`sentry bootcheck explain`: the evidence (stamp, machine, NIC mapping, probes, each stage's time, drivers for this machine's devices)",
		"`sentry events --kind bootcheck,failover,bootcheck-warning`: the decision, the failover event, and each warning the boot went on despite",
	}
	if len(p.Probes) > 0 {
		out = append(out, "green: "+strings.Join(p.Probes, ", "))
	}
	return out
}

// safeMode is how to leave safe mode, and when to promote instead.
func (c cast) safeMode() []string {
	return []string{
		"A `sentry bootcheck: SAFE MODE: <reason>` line: the role's services are held and no role address comes up; ssh and the agent run. Stop, log in on the console (no address comes up in safe mode) and read `sentry bootcheck explain`.",
		"\"this machine (...) is not one of this cluster's machines\": `sentry bootcheck adopt` (asks; `--yes`). When it refuses because the other node still ran on the machine it would replace, name the one this machine takes the place of with `--replaces` (adopt lists them).",
		"\"the primary's address ... already answers\" or \"the peer ... holds the primary role at generation N\": another primary runs. Do not force; with a newer generation these disks are stale: re-install them as the new secondary (`sentry join`).",
		"\"the boot check did not finish within 15s\": `sentry bootcheck explain` (the stages' times), `journalctl -b -u sentry-bootcheck`; reboot once the cause is fixed.",
		fmt.Sprintf("`sentry promote` on %s (asks; `--yes`), then `systemctl reboot`: only when %s's disks are lost or unreadable. Never while they may still boot: that makes two primaries; the generations decide, and the older is held in safe mode.", c.secondary(), c.pNode),
	}
}

// count is "1 disk", "2 disks".
func count(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func capital(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// short is a commit's first 12 characters ("nothing" when empty).
func short(c string) string {
	switch {
	case c == "":
		return "nothing"
	case len(c) > 12:
		return c[:12]
	}
	return c
}

func clone(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return append([]string(nil), s...)
}

func cloneDisks(ds []Disk) []Disk {
	out := make([]Disk, len(ds))
	for i, d := range ds {
		d.Arrays = clone(d.Arrays)
		out[i] = d
	}
	return out
}
