// Package readiness answers Sentry's one question: if the primary machine
// died now, would its disks come up on the other machine with every service
// working? It turns a snapshot of facts about both nodes (Input) into one
// verdict: READY, NOT READY or UNKNOWN, with the reasons first.
//
// Every check is registered in one place (checks.go), has a name, a default
// severity and its own unit test. A check never guesses: evidence older than
// its freshness window makes it UNKNOWN, never green, and a check whose
// subject does not exist on this pair (no RAID arrays, no backups configured)
// is "not applicable", which blocks nothing.
//
// The package holds no state and does no I/O: the agent gathers the facts,
// Evaluate judges them. So the same facts always give the same verdict, and
// a week of stored facts can be judged again.
package readiness

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Verdict is the answer.
type Verdict string

// The three verdicts.
const (
	Ready    Verdict = "READY"
	NotReady Verdict = "NOT READY"
	Unknown  Verdict = "UNKNOWN"
)

// State is one check's outcome.
type State string

// The outcomes of a check.
const (
	Pass State = "pass"
	Fail State = "fail"
	// Stale: the evidence is missing or older than the check's window.
	Stale State = "unknown"
	// NA: the check's subject does not exist here (no arrays, no backup).
	NA State = "n/a"
)

// Severity says whether a failing check blocks the verdict.
type Severity string

// Severities.
const (
	Block Severity = "block"
	Warn  Severity = "warn"
)

// Evidence is one measured fact a finding rests on.
type Evidence struct {
	Node     string    `json:"node,omitempty"`
	What     string    `json:"what"`
	Value    string    `json:"value"`
	Measured time.Time `json:"measured,omitempty"`
	// Age is Now minus Measured, filled by Evaluate.
	Age time.Duration `json:"age_ns,omitempty"`
}

// Finding is the outcome of one check.
type Finding struct {
	Check    string     `json:"check"`
	State    State      `json:"state"`
	Severity Severity   `json:"severity"`
	Reason   string     `json:"reason"`
	Evidence []Evidence `json:"evidence,omitempty"`
	// Fix is the command that explains or fixes it.
	Fix string `json:"fix,omitempty"`
	// Blocks: the finding keeps the pair from READY. A blocking check that
	// fails blocks; one that is unknown blocks only while no check fails
	// (with the peer gone, what it said last goes stale: the cause is
	// the peer, and the stale checks are listed after it, not as reasons).
	Blocks bool `json:"blocks"`
}

// Blocking reports whether the finding keeps the pair from READY.
func (f Finding) Blocking() bool { return f.Blocks }

// Result is a verdict with every finding: blocking ones first, then
// warnings, then the checks that passed or do not apply.
type Result struct {
	Verdict  Verdict   `json:"verdict"`
	At       time.Time `json:"at"`
	Findings []Finding `json:"findings"`
	// Peer is the peer's own verdict as it last told it (the agent sets
	// it; nil when never heard): with the peer gone, its last word and
	// how old that is.
	Peer *PeerVerdict `json:"peer,omitempty"`
}

// PeerVerdict is the verdict the peer judged, as it said it in its hello.
type PeerVerdict struct {
	Node    string    `json:"node"`
	Verdict Verdict   `json:"verdict"`
	At      time.Time `json:"at"`             // when the peer judged it
	Heard   time.Time `json:"heard,omitzero"` // when this node heard it
	Reasons []string  `json:"reasons,omitempty"`
}

// Reasons are the blocking findings' reasons, in order.
func (r Result) Reasons() []string {
	var out []string
	for _, f := range r.Findings {
		if f.Blocking() {
			out = append(out, f.Check+": "+f.Reason)
		}
	}
	return out
}

// Key identifies the verdict and its blocking checks, so that a caller
// can tell a change of verdict or cause from the same state judged again.
func (r Result) Key() string {
	var b strings.Builder
	b.WriteString(string(r.Verdict))
	for _, f := range r.Findings {
		if f.Blocking() {
			b.WriteString("|" + f.Check + "=" + string(f.State))
		}
	}
	return b.String()
}

// Check is one registered check.
type Check struct {
	Name string
	// Doc says in one line what it checks.
	Doc      string
	Severity Severity
	// Window: evidence older than this is stale (0: the Input's Freshness).
	Window time.Duration
	Run    func(c *Ctx) Finding
}

// Ctx is what a check runs with.
type Ctx struct {
	In     *Input
	Window time.Duration
}

// Fresh reports whether t is set and within the check's window.
func (c *Ctx) Fresh(t time.Time) bool {
	return !t.IsZero() && c.In.Now.Sub(t) <= c.Window
}

// age prints how old t is, for reasons.
func (c *Ctx) age(t time.Time) string {
	if t.IsZero() {
		return "never measured"
	}
	return "measured " + Human(c.In.Now.Sub(t)) + " ago"
}

// Human prints a duration the way an operator reads it: 40s, 12m, 3h, 2d.
func Human(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// Registry is an ordered set of checks, each name once.
type Registry struct {
	checks []Check
	names  map[string]bool
}

// Register adds c; a second check of the same name is a programming error.
func (r *Registry) Register(c Check) {
	if r.names == nil {
		r.names = map[string]bool{}
	}
	if c.Name == "" || c.Run == nil {
		panic("readiness: a check needs a name and a function")
	}
	if r.names[c.Name] {
		panic("readiness: check " + c.Name + " registered twice")
	}
	if c.Severity == "" {
		c.Severity = Block
	}
	r.names[c.Name] = true
	r.checks = append(r.checks, c)
}

// Checks lists the registered checks in registration order.
func (r *Registry) Checks() []Check { return append([]Check(nil), r.checks...) }

// Evaluate runs every check of r on in.
func (r *Registry) Evaluate(in *Input) Result {
	if in.Now.IsZero() {
		in.Now = time.Now()
	}
	fresh := in.Freshness
	if fresh <= 0 {
		fresh = DefaultFreshness
	}
	res := Result{At: in.Now, Peer: in.PeerVerdict}
	for _, c := range r.checks {
		w := c.Window
		if w <= 0 {
			w = fresh
		}
		f := run(c, &Ctx{In: in, Window: w})
		res.Findings = append(res.Findings, f)
	}
	failing := false
	for _, f := range res.Findings {
		failing = failing || (f.Severity == Block && f.State == Fail)
	}
	for i := range res.Findings {
		f := &res.Findings[i]
		f.Blocks = f.Severity == Block && (f.State == Fail || (f.State == Stale && !failing))
	}
	rank := func(f Finding) int {
		switch {
		case f.Blocking() && f.State == Fail:
			return 0
		case f.Blocking():
			return 1
		case f.State == Fail:
			return 2
		case f.State == Stale:
			return 3
		case f.State == Pass:
			return 4
		}
		return 5
	}
	sort.SliceStable(res.Findings, func(i, j int) bool { return rank(res.Findings[i]) < rank(res.Findings[j]) })
	res.Verdict = Ready
	for _, f := range res.Findings {
		if f.Blocking() && f.State == Fail {
			res.Verdict = NotReady
			break
		}
		if f.Blocking() {
			res.Verdict = Unknown
		}
	}
	return res
}

// run runs one check, fills what the check left out and keeps a panic in
// one check from taking the verdict down: it becomes that check's UNKNOWN.
func run(c Check, ctx *Ctx) (f Finding) {
	defer func() {
		if p := recover(); p != nil {
			f = Finding{State: Stale, Reason: fmt.Sprintf("the check failed: %v", p)}
		}
		f.Check = c.Name
		if f.Severity == "" {
			f.Severity = c.Severity
		}
		for i := range f.Evidence {
			if !f.Evidence[i].Measured.IsZero() {
				f.Evidence[i].Age = ctx.In.Now.Sub(f.Evidence[i].Measured)
			}
		}
	}()
	return c.Run(ctx)
}

// DefaultFreshness is how old evidence may be when a check sets no window
// of its own: two verifier rounds of the default interval and a margin.
const DefaultFreshness = 3 * time.Minute
