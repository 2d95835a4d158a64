package failover

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Kind is what a failover was.
type Kind string

// The kinds of a failover record.
const (
	// KindNone: the disk set did not change machines (ClassifyKind only).
	KindNone Kind = ""
	// KindFailover: the primary's disk set moved to another machine
	// without a planned plan (the primary machine failed).
	KindFailover Kind = "failover"
	// KindPlanned: a planned swap (a plan with Planned) moved it away.
	KindPlanned Kind = "planned"
	// KindFailback: it came back to its home machine after running
	// elsewhere.
	KindFailback Kind = "failback"
)

// ClassifyKind says what the boot was for the primary's disk set: planned
// tells whether a matching planned plan exists; prevMachine is the machine
// the disk set ran on before the boot ("" unknown), machine this one and
// home its home machine.
//
// With a planned plan, a move either way is a planned swap (away for the
// maintenance, or back after it). Without one, back home after running
// elsewhere is a failback, and elsewhere a failover. The same machine as
// before is no failover (KindNone); so is a boot at home with nothing known
// before it and no plan.
func ClassifyKind(planned bool, prevMachine, machine, home string) Kind {
	atHome := home != "" && machine == home
	switch {
	case prevMachine != "" && prevMachine == machine:
		return KindNone
	case planned: // either way: away for maintenance, or back after it
		return KindPlanned
	case atHome && prevMachine != "":
		return KindFailback
	case atHome:
		return KindNone
	}
	return KindFailover
}

func (k Kind) text() string {
	switch k {
	case KindPlanned:
		return "planned swap"
	case KindFailback, KindFailover:
		return string(k)
	case KindNone:
		return "no failover"
	}
	return "kind " + string(k) + "?"
}

// Stage is one stage of the boot check, timed.
type Stage struct {
	Name string  `json:"name"`
	MS   float64 `json:"ms"`
}

// Record is one failover as it happened, completed by the agent after the
// boot.
type Record struct {
	ID          string     `json:"id"`
	Kind        Kind       `json:"kind"`
	DiskSet     string     `json:"disk_set"`
	Node        string     `json:"node"`
	FromMachine string     `json:"from_machine"`
	ToMachine   string     `json:"to_machine"`
	PlanID      string     `json:"plan_id,omitempty"`
	PlannedAt   *time.Time `json:"planned_at,omitempty"`
	Forced      bool       `json:"forced,omitempty"`
	// LastPeerContact is the last contact with the peer before the
	// shutdown.
	LastPeerContact time.Time `json:"last_peer_contact,omitzero"`
	// Boot is the machine's boot (kernel or container start).
	Boot time.Time `json:"boot,omitzero"`
	// Decision is when the boot check decided; its outcome, reason and
	// stages.
	Decision        time.Time `json:"decision,omitzero"`
	DecisionOutcome string    `json:"decision_outcome,omitempty"`
	DecisionReason  string    `json:"decision_reason,omitempty"`
	Stages          []Stage   `json:"stages,omitempty"`
	// AddressUp is when the first service address was seen up.
	AddressUp time.Time `json:"address_up,omitzero"`
	Addresses []string  `json:"addresses,omitempty"`
	// Announced is when the gratuitous ARP was sent.
	Announced time.Time `json:"announced,omitzero"`
	// Services maps each probe to its first green after the boot (a zero
	// time: not green yet).
	Services     map[string]time.Time `json:"services,omitempty"`
	PeerBack     time.Time            `json:"peer_back,omitzero"`
	VerdictAfter string               `json:"verdict_after,omitempty"`
	VerdictAt    time.Time            `json:"verdict_at,omitzero"`
	Complete     bool                 `json:"complete"`
	Updated      time.Time            `json:"updated,omitzero"`
}

// Phase is one segment of the downtime.
type Phase struct {
	Name string
	From time.Time
	To   time.Time
	// Duration is To - From (0 when Missing, and when the phase's end came
	// before its start where that is allowed: the peer back before the
	// services were green).
	Duration time.Duration
	// Missing: an endpoint is not known (yet).
	Missing bool
}

// phaseJSON is Phase on the wire: the duration in milliseconds.
type phaseJSON struct {
	Name       string    `json:"name"`
	From       time.Time `json:"from,omitzero"`
	To         time.Time `json:"to,omitzero"`
	DurationMS float64   `json:"duration_ms"`
	Missing    bool      `json:"missing,omitempty"`
}

// MarshalJSON writes the duration as duration_ms.
func (p Phase) MarshalJSON() ([]byte, error) {
	return json.Marshal(phaseJSON{Name: p.Name, From: p.From, To: p.To,
		DurationMS: float64(p.Duration.Microseconds()) / 1000, Missing: p.Missing})
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (p *Phase) UnmarshalJSON(b []byte) error {
	var j phaseJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*p = Phase{Name: j.Name, From: j.From, To: j.To,
		Duration: time.Duration(j.DurationMS * float64(time.Millisecond)), Missing: j.Missing}
	return nil
}

// The phases, in order.
const (
	phaseMove     = "shutdown and move"
	phaseDecide   = "boot to decision"
	phaseAddress  = "decision to address"
	phaseServices = "address to services green"
	phasePeer     = "services to peer back"
	phaseVerdict  = "peer back to verdict"
)

// servicesGreen is the last service's first green; ok is false while no
// service is green or one in Services is not green yet.
func (r *Record) servicesGreen() (last time.Time, ok bool) {
	for _, t := range r.Services {
		if t.IsZero() {
			return time.Time{}, false
		}
		if t.After(last) {
			last = t
		}
	}
	return last, !last.IsZero()
}

// Phases splits the downtime: "shutdown and move" (LastPeerContact ->
// Boot), "boot to decision" (Boot -> Decision), "decision to address"
// (Decision -> AddressUp), "address to services green" (AddressUp -> the
// last of Services), "services to peer back" (-> PeerBack), "peer back to
// verdict" (-> VerdictAt). A zero endpoint makes the phase Missing. The
// peer may be back before the services are green (a planned swap boots
// both machines): that phase is then 0.
func (r *Record) Phases() []Phase {
	green, _ := r.servicesGreen()
	mk := func(name string, from, to time.Time) Phase {
		ph := Phase{Name: name, From: from, To: to}
		if from.IsZero() || to.IsZero() {
			ph.Missing = true
			return ph
		}
		if d := to.Sub(from); d > 0 {
			ph.Duration = d
		}
		return ph
	}
	return []Phase{
		mk(phaseMove, r.LastPeerContact, r.Boot),
		mk(phaseDecide, r.Boot, r.Decision),
		mk(phaseAddress, r.Decision, r.AddressUp),
		mk(phaseServices, r.AddressUp, green),
		mk(phasePeer, green, r.PeerBack),
		mk(phaseVerdict, r.PeerBack, r.VerdictAt),
	}
}

// Downtime is from the last contact with the peer before the shutdown to
// the last service green; false while either is not known (no contact
// recorded, no service green, or a service in Services not green yet: a
// zero time). Services holds only what the agent put in it, so the
// downtime is final once Missing names no service (Text and HistoryText
// say "so far" until the record is complete); an agent that enters each
// expected probe with a zero time up front gets false until all are green.
//
// It starts at LastPeerContact, never at PlannedAt: a planned swap's plan
// is made while the primary still serves (before the last contact), and an
// unplanned failover's plan is made after the primary died (after its
// outage began), so the plan's time is never the start of the outage. The
// last contact is the primary's own (the record is on its disks): it went
// down at or soon after it, so the downtime overstates the outage by at
// most the time between two contacts.
func (r *Record) Downtime() (time.Duration, bool) {
	green, ok := r.servicesGreen()
	if !ok || r.LastPeerContact.IsZero() {
		return 0, false
	}
	return green.Sub(r.LastPeerContact), true
}

// Check returns an error naming the first inconsistency: a phase that ends
// before it starts, a service green before the address came up, the peer
// back before the boot, a verdict before the peer was back, an unknown
// kind. Announced is not a phase's endpoint and is not checked.
func (r *Record) Check() error {
	bad := func(phase, what string, at time.Time, before string, bt time.Time) error {
		return fmt.Errorf("failover record %s: phase %q: %s at %s, before %s at %s",
			r.ID, phase, what, fmtTime(at, timeMS), before, fmtTime(bt, timeMS))
	}
	switch r.Kind {
	case KindFailover, KindPlanned, KindFailback:
	default:
		return fmt.Errorf("failover record %s: unknown kind %q", r.ID, r.Kind)
	}
	// The chain of the first phases: each known point after the last
	// known one before it.
	type point struct {
		phase, what string
		at          time.Time
	}
	chain := []point{
		{"", "the last contact with the peer", r.LastPeerContact},
		{phaseMove, "the boot", r.Boot},
		{phaseDecide, "the decision", r.Decision},
		{phaseAddress, "the address up", r.AddressUp},
	}
	names := make([]string, 0, len(r.Services))
	for n := range r.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		chain = append(chain, point{phaseServices, "service " + n + " green", r.Services[n]})
	}
	var prev point
	for _, p := range chain {
		if p.at.IsZero() {
			continue
		}
		if !prev.at.IsZero() && p.at.Before(prev.at) {
			return bad(p.phase, p.what, p.at, prev.what, prev.at)
		}
		if p.phase != phaseServices {
			prev = p
		}
	}
	if !r.PeerBack.IsZero() {
		for _, p := range []point{{"", "the boot", r.Boot}, {"", "the last contact with the peer", r.LastPeerContact}} {
			if !p.at.IsZero() && r.PeerBack.Before(p.at) {
				return bad(phasePeer, "the peer back", r.PeerBack, p.what, p.at)
			}
		}
	}
	if !r.VerdictAt.IsZero() {
		for _, p := range []point{{"", "the peer back", r.PeerBack}, {"", "the boot", r.Boot}} {
			if !p.at.IsZero() && r.VerdictAt.Before(p.at) {
				return bad(phaseVerdict, "the verdict", r.VerdictAt, p.what, p.at)
			}
		}
	}
	return nil
}

// Missing names what the record still waits for, in the order it comes:
// "boot", "decision", "address up", "service NAME green" (each expected
// probe, then any other in Services not green yet), "peer back", "verdict"
// (none yet) or "verdict READY" (one that is not READY yet). The record is
// complete when none is missing.
func (r *Record) Missing(expectedProbes []string) []string {
	var out []string
	if r.Boot.IsZero() {
		out = append(out, "boot")
	}
	if r.Decision.IsZero() {
		out = append(out, "decision")
	}
	if r.AddressUp.IsZero() {
		out = append(out, "address up")
	}
	seen := map[string]bool{}
	for _, p := range expectedProbes {
		if seen[p] {
			continue
		}
		seen[p] = true
		if r.Services[p].IsZero() {
			out = append(out, "service "+p+" green")
		}
	}
	var rest []string
	for n, t := range r.Services {
		if !seen[n] && t.IsZero() {
			rest = append(rest, "service "+n+" green")
		}
	}
	sort.Strings(rest)
	out = append(out, rest...)
	if r.PeerBack.IsZero() {
		out = append(out, "peer back")
	}
	switch {
	case r.VerdictAfter == "":
		out = append(out, "verdict")
	case r.VerdictAfter != verdictReady:
		out = append(out, "verdict READY (now "+r.VerdictAfter+")")
	}
	return out
}

// machines is "from -> to".
func (r *Record) machines() string {
	return fmt.Sprintf("%s -> %s", or(r.FromMachine, "?"), or(r.ToMachine, "?"))
}

// Text renders the record for `sentry failover status`.
func (r *Record) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: disk set %s (%s), machine %s\n", strings.ToUpper(r.Kind.text()), r.ID, or(r.DiskSet, "?"), or(r.Node, "?"), r.machines())
	switch {
	case r.PlanID == "":
		b.WriteString("plan:       none\n")
	default:
		fmt.Fprintf(&b, "plan:       %s", r.PlanID)
		if r.PlannedAt != nil {
			fmt.Fprintf(&b, ", made %s", fmtTime(*r.PlannedAt, timeSec))
		}
		if r.Forced {
			b.WriteString(" (FORCED: made with --force)")
		}
		b.WriteString("\n")
	}
	if r.DecisionOutcome != "" || r.DecisionReason != "" {
		fmt.Fprintf(&b, "decision:   %s: %s\n", strings.ToUpper(or(r.DecisionOutcome, "?")), or(r.DecisionReason, "?"))
	}
	if len(r.Stages) > 0 {
		var s []string
		for _, st := range r.Stages {
			s = append(s, fmt.Sprintf("%s %.0f ms", st.Name, st.MS))
		}
		fmt.Fprintf(&b, "stages:     %s\n", strings.Join(s, ", "))
	}

	b.WriteString("phases:\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, ph := range r.Phases() {
		d := fmtDur(ph.Duration)
		if ph.Missing {
			d = "waiting"
		} else if ph.To.Before(ph.From) {
			d += " (the peer was back first)"
		}
		fmt.Fprintf(tw, "  %s\t%s\t->\t%s\t%s\n", ph.Name, fmtTime(ph.From, timeMS), fmtTime(ph.To, timeMS), d)
	}
	tw.Flush()

	if !r.AddressUp.IsZero() || len(r.Addresses) > 0 {
		fmt.Fprintf(&b, "addresses:  %s: up %s, announced %s\n", or(strings.Join(r.Addresses, ", "), "?"),
			fmtTime(r.AddressUp, timeMS), fmtTime(r.Announced, timeMS))
	}
	if len(r.Services) > 0 {
		b.WriteString("services:\n")
		names := make([]string, 0, len(r.Services))
		for n := range r.Services {
			names = append(names, n)
		}
		sort.Strings(names)
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		for _, n := range names {
			t := r.Services[n]
			switch {
			case t.IsZero():
				fmt.Fprintf(tw, "  %s\tnot green yet\t\n", n)
			case r.Boot.IsZero():
				fmt.Fprintf(tw, "  %s\tgreen %s\t\n", n, fmtTime(t, timeMS))
			default:
				fmt.Fprintf(tw, "  %s\tgreen %s\t(%s after the boot)\n", n, fmtTime(t, timeMS), fmtDur(t.Sub(r.Boot)))
			}
		}
		tw.Flush()
	}
	fmt.Fprintf(&b, "peer back:  %s\n", fmtTime(r.PeerBack, timeMS))
	if r.VerdictAfter != "" {
		fmt.Fprintf(&b, "verdict:    %s at %s\n", r.VerdictAfter, fmtTime(r.VerdictAt, timeMS))
	} else {
		b.WriteString("verdict:    -\n")
	}
	if d, ok := r.Downtime(); ok {
		so := ""
		if !r.Complete {
			so = " so far"
		}
		fmt.Fprintf(&b, "downtime:   %s%s (the last contact with the peer to the last service green)\n", fmtDur(d), so)
	} else {
		b.WriteString("downtime:   not known yet\n")
	}
	if r.Complete {
		b.WriteString("complete\n")
	} else {
		b.WriteString("not complete yet\n")
	}
	return b.String()
}

// HistoryText renders records one line each, newest first (by boot, then
// id): id, kind, disk set, from -> to, downtime, complete or incomplete.
func HistoryText(rs []Record) string {
	sorted := append([]Record(nil), rs...)
	sort.SliceStable(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		if !a.Boot.Equal(b.Boot) {
			return a.Boot.After(b.Boot)
		}
		return a.ID > b.ID
	})
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for i := range sorted {
		r := &sorted[i]
		down := "downtime ?"
		if d, ok := r.Downtime(); ok {
			down = "downtime " + fmtDur(d)
			if !r.Complete {
				down += " so far"
			}
		}
		state := "incomplete"
		if r.Complete {
			state = "complete"
		}
		if r.Forced {
			state += ", forced"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Kind.text(), or(r.DiskSet, "?"), r.machines(), down, state)
	}
	tw.Flush()
	return b.String()
}
