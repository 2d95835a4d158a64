// Package ready is the agent's readiness component: it judges the pair
// (internal/readiness) on the facts the wiring gathers, after every event
// that can change the verdict (Kick) and at least every Interval, keeps
// the last verdict (in memory and in the store, so that a restarted agent
// neither forgets it nor records the same verdict as a change again),
// records each change as an event, and feeds the verdict once per verifier
// round into the alert path (hysteresis and mail, as a probe named
// "readiness"). It also reads
// this node's slowly changing local facts (RAID, disks, boot loaders,
// network coverage) on a slow timer, for this node's status and so for
// the peer's verdict.
package ready

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sentryha/sentry/internal/alert"
	"github.com/sentryha/sentry/internal/hwid"
	"github.com/sentryha/sentry/internal/peer"
	"github.com/sentryha/sentry/internal/readiness"
)

// Defaults of Options.
const (
	DefaultInterval      = 30 * time.Second
	DefaultFactsInterval = 10 * time.Minute
)

// Deps is what the wiring gives the component.
type Deps struct {
	// Gather is a snapshot of both nodes (nil: nothing to judge yet). It
	// is called without the component's lock.
	Gather func() *readiness.Input
	Event  func(kind, node, msg string, fields map[string]string)
	Log    *slog.Logger
	Node   func() string
	// PeerNICs are the other machine's NICs (the peer's status), for the
	// network coverage.
	PeerNICs func() []hwid.NIC
	// Modules are this node's modules in use, name: version (read on each
	// evaluation, without locks held).
	Modules func() map[string]string
	// Save and Load keep the last verdict (JSON) across restarts (nil:
	// not kept).
	Save func([]byte) error
	Load func() ([]byte, error)
	// Alert observes the verdict once per verifier round (nil: no alerts):
	// ok is READY; phase is the verdict otherwise, msg its reasons.
	Alert func(ok bool, phase, msg string, at time.Time)
}

// AlertName is the name the verdict's alerts carry in place of a probe's.
const AlertName = alert.ReadinessProbe

// Ready is the component.
type Ready struct {
	d    Deps
	o    Options
	reg  *readiness.Registry
	kick chan struct{}

	evalMu sync.Mutex // one evaluation at a time, so events follow the order of results

	mu      sync.Mutex
	last    *readiness.Result
	key     string
	stored  bool // last is the stored verdict, not yet judged again since the start
	savedAt time.Time
	rounds  int // verifier rounds not yet observed by the alert path

	clockFault string           // the lab's clock offset file (ClockFaultEnv)
	lastIn     *readiness.Input // what the last verdict was judged on
	facts      *peer.Facts
	modules    map[string]string
	modulesAt  time.Time
	nicsKey    string // the other machine's NICs the facts were read with
}

// New makes the component; Run runs it.
func New(d Deps, o Options) *Ready {
	if d.Log == nil {
		d.Log = slog.Default()
	}
	if d.Event == nil {
		d.Event = func(string, string, string, map[string]string) {}
	}
	if d.Node == nil {
		d.Node = func() string { return "" }
	}
	reg := o.Registry
	if reg == nil {
		reg = readiness.Default()
	}
	if o.Mdstat == "" {
		o.Mdstat = os.Getenv(MdstatEnv)
	}
	return &Ready{d: d, o: o.withDefaults(), reg: reg, kick: make(chan struct{}, 1), clockFault: os.Getenv(ClockFaultEnv)}
}

// Environment variables only the lab sets (docs/lab.md): its nodes share
// the host's /proc/mdstat and clock, so each machine gets an mdstat of its
// own and a file holding an offset to add to the peer's measured clock.
const (
	MdstatEnv     = "SENTRY_MDSTAT"
	ClockFaultEnv = "SENTRY_LAB_CLOCK_OFFSET"
)

// injectClockFault adds the lab's simulated clock offset (a Go duration in
// the file ClockFaultEnv names; absent or empty: none) where the peer's
// time is read.
func (r *Ready) injectClockFault(in *readiness.Input) {
	if r.clockFault == "" || in.ClockOffset == nil {
		return
	}
	b, err := os.ReadFile(r.clockFault)
	if err != nil || len(strings.TrimSpace(string(b))) == 0 {
		return
	}
	d, err := time.ParseDuration(strings.TrimSpace(string(b)))
	if err != nil {
		r.d.Log.Warn("lab clock offset unreadable", "file", r.clockFault, "err", err)
		return
	}
	off := *in.ClockOffset + d
	in.ClockOffset = &off
}

// load takes the stored verdict as the last one, unless one was judged
// already: the first judgement after a restart is a change only if it
// differs from it.
func (r *Ready) load() {
	if r.d.Load == nil {
		return
	}
	r.mu.Lock()
	judged := r.last != nil
	r.mu.Unlock()
	if judged {
		return
	}
	b, err := r.d.Load()
	if err != nil || len(b) == 0 {
		if err != nil {
			r.d.Log.Warn("readiness: stored verdict", "err", err)
		}
		return
	}
	var res readiness.Result
	if err := json.Unmarshal(b, &res); err != nil {
		r.d.Log.Warn("readiness: stored verdict unreadable; judging afresh", "err", err)
		return
	}
	r.mu.Lock()
	if r.last == nil {
		r.last, r.key, r.stored = &res, res.Key(), true
	}
	r.mu.Unlock()
}

// Rounded tells the component that a verifier round ended: the next
// evaluation (at once) is observed by the alert path. Nil-safe.
func (r *Ready) Rounded() {
	if r == nil {
		return
	}
	r.mu.Lock()
	r.rounds++
	r.mu.Unlock()
	r.Kick()
}

// Freshness is the window of the evidence measured every verifier round:
// two intervals, the jitter and a round's timeout, and at least
// readiness.DefaultFreshness (which the default schedule gives), so that a
// slower schedule does not make every probe stale.
func Freshness(interval, jitter, timeout time.Duration) time.Duration {
	return max(readiness.DefaultFreshness, 2*interval+jitter+timeout)
}

// Kick asks for an evaluation soon (non-blocking; nil-safe).
func (r *Ready) Kick() {
	if r == nil {
		return
	}
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Run takes the stored verdict as the last one, reads the local facts at once and then every FactsInterval, and
// judges after each Kick and at least every Interval, until ctx ends.
func (r *Ready) Run(ctx context.Context) {
	r.load()
	r.RefreshFacts()
	tick := time.NewTicker(r.o.Interval)
	defer tick.Stop()
	slow := time.NewTicker(r.o.FactsInterval)
	defer slow.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-slow.C:
			r.RefreshFacts()
			r.Evaluate()
		case <-tick.C:
			r.Evaluate()
		case <-r.kick:
			if r.nicsChanged() { // the network coverage depends on them
				r.RefreshFacts()
			}
			r.Evaluate()
		}
	}
}

// Evaluate judges now on what Gather gives, keeps the result and records
// a change of verdict or cause as a "ready-changed" event.
func (r *Ready) Evaluate() readiness.Result {
	r.evalMu.Lock()
	defer r.evalMu.Unlock()
	if r.d.Modules != nil {
		m := r.d.Modules()
		r.mu.Lock()
		r.modules, r.modulesAt = m, time.Now().UTC()
		r.mu.Unlock()
	}
	r.refreshRAID()
	var in *readiness.Input
	if r.d.Gather != nil {
		in = r.d.Gather()
	}
	if in == nil {
		in = &readiness.Input{Self: r.d.Node()}
	}
	r.injectClockFault(in)
	res := r.reg.Evaluate(in)
	key := res.Key()
	r.mu.Lock()
	r.lastIn = in
	changed := key != r.key
	r.last, r.key, r.stored = &res, key, false
	save := r.d.Save != nil && (changed || time.Since(r.savedAt) >= time.Minute)
	if save {
		r.savedAt = time.Now()
	}
	rounds := r.rounds
	r.rounds = 0
	r.mu.Unlock()
	if changed {
		msg := Message(res)
		r.d.Log.Info("readiness changed", "verdict", string(res.Verdict), "reasons", strings.Join(res.Reasons(), "; "))
		r.d.Event("ready-changed", r.d.Node(), msg, map[string]string{"verdict": string(res.Verdict), "key": key})
	}
	if save {
		b, err := json.Marshal(res)
		if err == nil {
			err = r.d.Save(b)
		}
		if err != nil {
			r.d.Log.Error("readiness: store the verdict", "err", err)
		}
	}
	if rounds > 0 && r.d.Alert != nil {
		ok := res.Verdict == readiness.Ready
		msg := ""
		if !ok {
			msg = strings.TrimPrefix(Message(res), string(res.Verdict)+": ")
			if msg == string(res.Verdict) {
				msg = "no blocking reason recorded"
			}
		}
		r.d.Alert(ok, string(res.Verdict), msg, res.At)
	}
	return res
}

// Summary is the last verdict in brief, for the hello (nil: none yet).
func (r *Ready) Summary() *peer.Verdict {
	res, ok := r.Result()
	if !ok {
		return nil
	}
	reasons := res.Reasons()
	if len(reasons) > peer.MaxVerdictReasons {
		reasons = reasons[:peer.MaxVerdictReasons]
	}
	for i, x := range reasons {
		if len(x) > 1024 {
			reasons[i] = x[:1021] + "..."
		}
	}
	return &peer.Verdict{Verdict: string(res.Verdict), At: res.At, Reasons: reasons}
}

// refreshRAID reads the md arrays again at each evaluation (cheap), so
// that a degraded array shows within a round rather than at the next slow
// read of the facts.
func (r *Ready) refreshRAID() {
	raid, rerr := readRAID(r.o)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.facts != nil {
		f := *r.facts
		f.RAID, f.RAIDError = raid, rerr
		r.facts = &f
	}
}

// Message is a verdict in one line: "READY", or the verdict with its first
// blocking reason ("NOT READY: sync.failed: node-s could not apply ...")
// and how many more there are.
func Message(res readiness.Result) string {
	reasons := res.Reasons()
	if len(reasons) == 0 {
		return string(res.Verdict)
	}
	msg := string(res.Verdict) + ": " + reasons[0]
	if len(msg) > 1024 {
		msg = msg[:1021] + "..."
	}
	if n := len(reasons) - 1; n > 0 {
		msg += " (and " + strconv.Itoa(n) + " more)"
	}
	return msg
}

// Result is the last verdict (false: none yet); after a restart, until
// the first judgement, the stored one (Judged says which).
func (r *Ready) Result() (readiness.Result, bool) {
	if r == nil {
		return readiness.Result{}, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last == nil {
		return readiness.Result{}, false
	}
	return *r.last, true
}

// Last is the last verdict judged by this run of the agent with the facts
// it was judged on (false: none yet), for the metrics. The input is not
// written after the judgement: read it, never change it.
func (r *Ready) Last() (*readiness.Input, readiness.Result, bool) {
	if r == nil {
		return nil, readiness.Result{}, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.lastIn == nil || r.last == nil || r.stored {
		return nil, readiness.Result{}, false
	}
	return r.lastIn, *r.last, true
}

// Judged says whether the last verdict was judged by this run of the
// agent (false: it is the stored one, or there is none).
func (r *Ready) Judged() bool {
	if r == nil {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last != nil && !r.stored
}

// Local is this node's local facts and modules as last read, for its
// status (nil facts: not read yet). It takes only the component's lock.
func (r *Ready) Local() (facts *peer.Facts, modules map[string]string, modulesAt time.Time) {
	if r == nil {
		return nil, nil, time.Time{}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.facts, r.modules, r.modulesAt
}

// peerNICs are the other machine's NICs and a key of them.
func (r *Ready) peerNICs() ([]hwid.NIC, string) {
	if r.d.PeerNICs == nil {
		return nil, ""
	}
	nics := r.d.PeerNICs()
	var b strings.Builder
	for _, n := range nics {
		b.WriteString(n.Name + "=" + n.MAC + ";")
	}
	return nics, b.String()
}

// nicsChanged says whether the other machine's NICs differ from those the
// facts were read with.
func (r *Ready) nicsChanged() bool {
	_, key := r.peerNICs()
	r.mu.Lock()
	defer r.mu.Unlock()
	return key != r.nicsKey
}

// RefreshFacts reads the local facts now (disk and /proc reads, without
// the lock) and keeps them.
func (r *Ready) RefreshFacts() {
	nics, key := r.peerNICs()
	f := readFacts(r.o, nics, time.Now().UTC())
	for what, e := range map[string]string{"raid": f.RAIDError, "loader": f.LoaderErr, "network": f.NetErr} {
		if e != "" {
			r.d.Log.Warn("readiness: local facts", "what", what, "err", e)
		}
	}
	r.mu.Lock()
	r.facts, r.nicsKey = f, key
	r.mu.Unlock()
}
