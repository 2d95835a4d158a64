package link

import (
	"fmt"
	"log/slog"
	"math"
	"net"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sentryha/sentry/internal/peer"
)

// Limits on what the peer and the network can make this agent do (issue
// 20, findings 4 and 10). Every request that costs work is bounded before
// the work starts, and a request refused for a limit costs a counter, not
// a disk write:
//
//   - unauthenticated requests: joins (POST /v1/join) through a token
//     bucket per source address and one for all, past which a join is
//     answered 429; other requests without the peer's certificate through
//     buckets of their own, past which their refusal is not logged.
//     Refused joins are counted in memory and recorded as one event at
//     most every joinSummaryEvery: the first at once, the rest summed up.
//   - verification runs the peer asks for: one at a time, and
//     VerifyRunsPerMinute.
//   - .deb files the peer asks for: one at a time; those this node must
//     fetch with apt-get download, DebFetchesPerHour.
//   - the peer's generation: within peer.GenerationWindow of the newest
//     known; a refused value is said once (log and event) per value.
//   - the peer's probes: peer.MaxProbes distinct names kept of the peer
//     (the wiring admits them: Deps.AdmitPeerStatus).
const (
	// JoinBurst joins from one address at once, refilled at that many a
	// minute (and as many logged refusals of other requests without the
	// peer's certificate). A join is one request; an operator's retries and
	// typos stay far below.
	JoinBurst = 10
	// joinGlobalBurst a minute from all addresses together, past which
	// every join is refused (429).
	joinGlobalBurst = 60
	// joinSources bounds the addresses tracked; past it, a new address is
	// refused until an idle one is forgotten.
	joinSources = 4096
	// joinSummaryEvery: at most one join-refused event this often.
	joinSummaryEvery = time.Minute
	// joinSummaryAddrs: the addresses a summary names (the busiest).
	joinSummaryAddrs = 8

	// VerifyRunsPerMinute verification runs the peer may ask for, one at a
	// time (`sentry verify --node` on the peer: one per command).
	VerifyRunsPerMinute = 6
	// DebFetchesPerHour packages the peer may make this node fetch with
	// apt-get download (each up to MaxDebSize). A parity apply on S gets
	// every file of its plan before it installs any, so a plan needing
	// more fetches than this within an hour stops at the refusal, which
	// names this limit; files in the primary's apt cache or a local
	// repository do not count.
	DebFetchesPerHour = 240
)

// limits is what the peer, or anyone on the peer port, may cost this
// agent: joins, verification runs, package fetches; and the peer
// generations already refused and said. It owns its state.
type limits struct {
	log   *slog.Logger
	event func(kind, node, msg string, fields map[string]string)

	join   joinGuard
	verify workLimiter
	deb    debLimiter

	mu      sync.Mutex
	genSaid map[uint64]bool // peer generations refused and said
}

func newLimits(log *slog.Logger, event func(kind, node, msg string, fields map[string]string)) *limits {
	return &limits{log: log, event: event,
		join: joinGuard{every: joinSummaryEvery,
			joins: sourceLimiter{burst: JoinBurst, per: time.Minute, globalBurst: joinGlobalBurst, globalPer: time.Minute},
			anon:  sourceLimiter{burst: JoinBurst, per: time.Minute, globalBurst: joinGlobalBurst, globalPer: time.Minute}},
		verify: workLimiter{what: "verification runs", concurrent: 1, burst: VerifyRunsPerMinute, per: time.Minute},
		deb:    debLimiter{fetch: workLimiter{what: "package fetches", concurrent: 1, burst: DebFetchesPerHour, per: time.Hour}},
	}
}

// ---------------------------------------------------------------- buckets

// bucket is a token bucket: burst tokens, refilled at burst per per. The
// zero bucket is full at its first use.
type bucket struct {
	tokens float64
	last   time.Time
}

// take takes one token at now; when there is none, it says how long until
// there is.
func (b *bucket) take(now time.Time, burst float64, per time.Duration) (bool, time.Duration) {
	b.refill(now, burst, per)
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	if burst <= 0 || per <= 0 {
		return false, per
	}
	wait := time.Duration((1 - b.tokens) * float64(per) / burst)
	return false, wait
}

func (b *bucket) refill(now time.Time, burst float64, per time.Duration) {
	if b.last.IsZero() {
		b.tokens, b.last = burst, now
		return
	}
	if now.After(b.last) && per > 0 {
		b.tokens = math.Min(burst, b.tokens+float64(now.Sub(b.last))*burst/float64(per))
		b.last = now
	}
}

// full says whether the bucket would be full at now (an idle source).
func (b *bucket) full(now time.Time, burst float64, per time.Duration) bool {
	c := *b
	c.refill(now, burst, per)
	return c.tokens >= burst
}

// roundUp is d in whole seconds, at least one, for a Retry-After.
func roundUp(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

// ---------------------------------------------------------------- work

// workLimiter bounds a kind of work: concurrent at a time, burst per per.
type workLimiter struct {
	what       string // "verification runs"
	concurrent int
	burst      float64
	per        time.Duration

	mu     sync.Mutex
	active int
	b      bucket
}

// limitError is a refusal for a limit: the answer is 429 with its words.
type limitError struct {
	msg        string
	retryAfter time.Duration
}

func (e *limitError) Error() string { return e.msg }

// begin starts one piece of work at now, or says why not. A refusal while
// one is running spends no token.
func (l *workLimiter) begin(now time.Time) (release func(), err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.active >= l.concurrent {
		return nil, &limitError{msg: fmt.Sprintf("the peer's %s are %d at a time, and %s running: try again when it is done", l.what, l.concurrent, runningWord(l.active)), retryAfter: 5 * time.Second}
	}
	if ok, wait := l.b.take(now, l.burst, l.per); !ok {
		return nil, &limitError{msg: fmt.Sprintf("the peer asked for too many %s: at most %g %s; the next in %ds", l.what, l.burst, perWord(l.per), roundUp(wait)), retryAfter: wait}
	}
	l.active++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			l.active--
			l.mu.Unlock()
		})
	}, nil
}

func runningWord(n int) string {
	if n == 1 {
		return "one is"
	}
	return fmt.Sprintf("%d are", n)
}

func perWord(d time.Duration) string {
	switch d {
	case time.Minute:
		return "a minute"
	case time.Hour:
		return "an hour"
	}
	return "per " + d.String()
}

// debLimiter: one .deb request of the peer served at a time; of those
// this node must fetch (apt-get download), fetch's budget.
type debLimiter struct {
	serve sync.Mutex
	fetch workLimiter
}

// ---------------------------------------------------------------- joins

// sourceLimiter is a token bucket per source address, and one for all
// sources together.
type sourceLimiter struct {
	burst, globalBurst float64
	per, globalPer     time.Duration

	mu      sync.Mutex
	perAddr map[string]*bucket
	global  bucket
}

// sourceOf is the address a request came from, without the port.
func sourceOf(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return remote
	}
	return host
}

// allow takes a token for one request from remote at now; a refusal says
// how long until the next would pass, and which limit refused it.
func (l *sourceLimiter) allow(remote string, now time.Time) (ok bool, wait time.Duration, which string) {
	src := sourceOf(remote)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.perAddr == nil {
		l.perAddr = map[string]*bucket{}
	}
	b, known := l.perAddr[src]
	if !known {
		if len(l.perAddr) >= joinSources {
			for k, v := range l.perAddr {
				if v.full(now, l.burst, l.per) {
					delete(l.perAddr, k)
				}
			}
		}
		if len(l.perAddr) >= joinSources {
			return false, l.per / time.Duration(max(1, int(l.burst))), "from too many addresses"
		}
		b = &bucket{}
		l.perAddr[src] = b
	}
	if ok, wait := b.take(now, l.burst, l.per); !ok {
		return false, wait, "from this address"
	}
	if ok, wait := l.global.take(now, l.globalBurst, l.globalPer); !ok {
		return false, wait, "from all addresses together"
	}
	return true, 0, ""
}

// joinGuard limits joins by source address, limits the log lines of other
// requests without the peer's certificate the same way (apart: a node
// whose certificate is refused, saying hello every few seconds, must not
// keep the operator's next join from its address), and sums up the
// refusals of both.
type joinGuard struct {
	joins sourceLimiter // POST /v1/join
	anon  sourceLimiter // log lines of other requests without the peer's certificate
	every time.Duration // one summary at most this often

	serve sync.Mutex // one join past the limits handled at a time

	mu sync.Mutex
	// Refusals since the last summary.
	refusedJoins int            // refused joins (the event counts these)
	others       int            // refused requests without the peer's certificate, not logged each
	addrs        map[string]int // by source address
	reasons      map[string]int
	first        string // the first refused join, for a summary of one
	since        time.Time
	said         time.Time // the last summary
	timer        *time.Timer
}

// joinSummary is what a summary says.
type joinSummary struct {
	joins, others int
	addrs         map[string]int
	reasons       map[string]int
	first         string
	since         time.Time
}

// note counts one refusal (join: a refused join; else a request without
// the peer's certificate) and says, when a summary is due now, what it
// holds; otherwise a timer sums up at the end of the period (through
// flush).
func (g *joinGuard) note(remote, reason string, join bool, now time.Time, flush func(joinSummary)) (joinSummary, bool) {
	src := sourceOf(remote)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.addrs == nil {
		g.addrs, g.reasons = map[string]int{}, map[string]int{}
	}
	if g.refusedJoins+g.others == 0 {
		g.since = now
	}
	if join {
		if g.refusedJoins == 0 {
			g.first = "refused a join from " + remote + ": " + reason
		}
		g.refusedJoins++
	} else {
		g.others++
	}
	if _, ok := g.addrs[src]; ok || len(g.addrs) < joinSources {
		g.addrs[src]++
	}
	if _, ok := g.reasons[reason]; ok || len(g.reasons) < 64 {
		g.reasons[reason]++
	}
	if g.timer != nil {
		return joinSummary{}, false
	}
	if due := g.said.Add(g.every); !now.Before(due) {
		return g.takeLocked(now), true
	} else {
		g.timer = time.AfterFunc(due.Sub(now), func() {
			g.mu.Lock()
			g.timer = nil
			s := g.takeLocked(time.Now())
			g.mu.Unlock()
			if s.joins+s.others > 0 {
				flush(s)
			}
		})
	}
	return joinSummary{}, false
}

// takeLocked hands over the counts and starts a new period.
func (g *joinGuard) takeLocked(now time.Time) joinSummary {
	s := joinSummary{joins: g.refusedJoins, others: g.others, addrs: g.addrs, reasons: g.reasons, first: g.first, since: g.since}
	g.refusedJoins, g.others, g.addrs, g.reasons, g.first = 0, 0, nil, nil, ""
	g.said = now
	return s
}

// flushNow sums up at once what was counted (tests; the timer does it
// otherwise).
func (g *joinGuard) flushNow() (joinSummary, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.timer != nil {
		g.timer.Stop()
		g.timer = nil
	}
	if g.refusedJoins+g.others == 0 {
		return joinSummary{}, false
	}
	return g.takeLocked(time.Now()), true
}

// topCounts is m's keys with their counts, the n largest first.
func topCounts(m map[string]int, n int) (list string, more int) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	if len(keys) > n {
		more = len(keys) - n
		keys = keys[:n]
	}
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s (%d)", k, m[k])
	}
	return strings.Join(parts, ", "), more
}

// recordJoinSummary logs a summary and, when it holds refused joins,
// records it as one join-refused event. It takes no agent lock.
func (l *limits) recordJoinSummary(s joinSummary) {
	addrs, more := topCounts(s.addrs, joinSummaryAddrs)
	if more > 0 {
		addrs += fmt.Sprintf(" and %d more addresses", more)
	}
	reasons, _ := topCounts(s.reasons, 8)
	l.log.Warn("refused unauthenticated requests", "joins", s.joins, "without_certificate", s.others,
		"from", addrs, "reasons", reasons, "since", s.since.UTC().Format(time.RFC3339))
	if s.joins == 0 {
		return
	}
	msg := s.first
	if s.joins+s.others > 1 {
		msg = fmt.Sprintf("%d joins refused from %s since %s: %s", s.joins, addrs, s.since.UTC().Format(time.RFC3339), reasons)
	}
	l.event("join-refused", "", msg, map[string]string{"joins": fmt.Sprint(s.joins), "addresses": addrs, "reasons": reasons})
}

// noteUnauthenticated counts a refused unauthenticated request and records
// a summary when one is due.
func (l *limits) noteUnauthenticated(remote, reason string, join bool) {
	if s, due := l.join.note(remote, reason, join, time.Now(), l.recordJoinSummary); due {
		l.recordJoinSummary(s)
	}
}

// ---------------------------------------------------------------- generations

// sayGenerationOnce says whether a refusal of gen is news: true the first
// time a value is refused (the set is bounded; a flood of values is said
// again after it is cleared).
func (l *limits) sayGenerationOnce(gen uint64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.genSaid[gen] {
		return false
	}
	if l.genSaid == nil || len(l.genSaid) >= 64 {
		l.genSaid = map[uint64]bool{}
	}
	l.genSaid[gen] = true
	return true
}

// CheckPeerGeneration checks the generation in the peer's status against
// the newest this node knows (its stamp: its own and the peer's last
// seen). A refusal is logged and recorded once per value.
func (l *Link) CheckPeerGeneration(h *peer.NodeStatus) error {
	var known uint64
	if st := l.d.Identity().Stamp; st != nil {
		known = max(st.Generation, st.OtherGeneration)
	}
	err := peer.CheckGeneration(h.Generation, known)
	if err == nil {
		return nil
	}
	err = fmt.Errorf("%s says %w; not believed or stored (if this disk set is the stale one, re-install it as the secondary)", h.Name, err)
	if l.lim.sayGenerationOnce(h.Generation) {
		l.d.Log.Warn("refused the peer's generation", "node", h.Name, "generation", h.Generation, "known", known, "err", err)
		l.d.Event("peer-generation-refused", h.Name, err.Error(),
			map[string]string{"generation": fmt.Sprint(h.Generation), "known": fmt.Sprint(known)})
	}
	return err
}

// FlushRefusals sums up at once the refused unauthenticated requests
// counted so far (the timer does it at the end of each period).
func (l *Link) FlushRefusals() {
	if s, ok := l.lim.join.flushNow(); ok {
		l.lim.recordJoinSummary(s)
	}
}

// HoldDebs makes the peer's package requests wait as if one were being
// served, until release: they are refused, not queued.
func (l *Link) HoldDebs() (release func()) {
	l.lim.deb.serve.Lock()
	return l.lim.deb.serve.Unlock
}
