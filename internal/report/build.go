package report

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/sentryha/sentry/internal/failover"
	"github.com/sentryha/sentry/internal/readiness"
	"github.com/sentryha/sentry/internal/store"
)

// Option changes how a Builder builds.
type Option func(*options)

type options struct {
	now     func() time.Time
	cluster string
	node    string
	nodes   []string
}

// WithClock sets the clock (default time.Now): the report of a week not
// over ends at its time, and a week after it is refused.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithCluster names the cluster in the report and the mail subject.
func WithCluster(name string) Option { return func(o *options) { o.cluster = name } }

// WithNode names the node whose verdicts are reported (default: the node
// of the newest "ready-changed" event).
func WithNode(name string) Option { return func(o *options) { o.node = name } }

// WithNodes names the pair's nodes, so that a node without any data this
// week is shown as such.
func WithNodes(names ...string) Option {
	return func(o *options) { o.nodes = append([]string(nil), names...) }
}

// Builder builds reports from a store.
type Builder struct {
	st *store.Store
	o  options
}

// New returns a Builder reading st.
func New(st *store.Store, opts ...Option) *Builder {
	o := options{now: time.Now, cluster: "sentry"}
	for _, f := range opts {
		f(&o)
	}
	return &Builder{st: st, o: o}
}

// CurrentWeek is the ISO week of the Builder's clock ("2026-W49").
func (b *Builder) CurrentWeek() string { return store.WeekKey(b.o.now()) }

// PreviousWeek is the last week that is over.
func (b *Builder) PreviousWeek() string { return store.WeekKey(b.o.now().AddDate(0, 0, -7)) }

// Event kinds the report reads.
const (
	evReady          = "ready-changed"
	evPeerUnreach    = "peer-unreachable"
	evPeerReach      = "peer-reachable"
	evConfigCommit   = "config-commit"
	evConfigFailed   = "config-apply-failed"
	evPeerConfFailed = "peer-config-failed"
	evConfigDrift    = "config-drift-found"
	evConfigOverwrit = "config-drift"
	evConfigRefused  = "config-refused"
	evParityApply    = "parity-apply"
	evInventory      = "inventory"
	evDrift          = "drift"
)

// eventKinds are the kinds of the events the report reads.
var eventKinds = []string{evReady, evPeerUnreach, evPeerReach, evConfigCommit, evConfigFailed, evPeerConfFailed, evConfigDrift,
	evConfigOverwrit, evConfigRefused, evParityApply, evInventory, evDrift, EventRestoreTest}

// build holds one build's inputs.
type build struct {
	o        options
	r        *Report
	events   []store.Event // all, by time
	verdict  *readiness.Result
	peer     string // the peer found unreachable all week ("" none)
	peerNote string
}

// Build makes the report of week ("2026-W49"). It fails for a week not so
// written, a week in the future, and a week that ends before the first
// data the store holds; with no history at all it gives a report that
// says "not enough data".
func (b *Builder) Build(week string) (*Report, error) {
	start, err := store.WeekStartOf(week)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	now := b.o.now().UTC()
	end := start.AddDate(0, 0, 7)
	if start.After(now) {
		return nil, fmt.Errorf("report: week %s is in the future (now is %s, week %s)", week, now.Format(time.RFC3339), store.WeekKey(now))
	}
	until := end
	if now.Before(end) {
		until = now
	}
	h := b.st.History()
	evs, err := h.Events(eventKinds...)
	if err != nil {
		return nil, fmt.Errorf("report %s: %w", week, err)
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].Time.Before(evs[j].Time) })
	first, have, err := h.First()
	if err != nil {
		return nil, fmt.Errorf("report %s: %w", week, err)
	}
	oldest, err := b.st.Events(0, 1) // the log's first event, of any kind
	if err != nil {
		return nil, fmt.Errorf("report %s: %w", week, err)
	}
	if len(oldest) > 0 && (!have || oldest[0].Time.Before(first)) {
		first, have = oldest[0].Time, true
	}
	if len(evs) > 0 && (!have || evs[0].Time.Before(first)) {
		first, have = evs[0].Time, true
	}
	if have && !first.Before(end) {
		return nil, fmt.Errorf("report: week %s is before the first data (%s, week %s)", week, first.UTC().Format(time.RFC3339), store.WeekKey(first))
	}
	r := &Report{Version: FormatVersion, Cluster: b.o.cluster, Week: week, From: start, To: end, Until: until, Made: now,
		Partial: until.Before(end), NoHistory: !have}
	bd := &build{o: b.o, r: r, events: evs}
	if bd.o.node == "" {
		for i := len(evs) - 1; i >= 0; i-- {
			if evs[i].Kind == evReady {
				bd.o.node = evs[i].Node
				break
			}
		}
	}
	r.Node = bd.o.node
	if err := bd.loadVerdict(b.st); err != nil {
		return nil, fmt.Errorf("report %s: %w", week, err)
	}
	bd.verdictSection()
	bd.peerSection()
	if err := bd.services(h); err != nil {
		return nil, fmt.Errorf("report %s: %w", week, err)
	}
	bd.config()
	bd.packages()
	bd.findings()
	if err := bd.failovers(b.st); err != nil {
		return nil, fmt.Errorf("report %s: %w", week, err)
	}
	bd.backups()
	if err := bd.compare(h); err != nil {
		return nil, fmt.Errorf("report %s: %w", week, err)
	}
	bd.actions()
	return r, nil
}

// inWeek: t within [From, Until).
func (bd *build) inWeek(t time.Time) bool { return !t.Before(bd.r.From) && t.Before(bd.r.Until) }

// eventsOf are the events of the given kinds within [From, Until).
func (bd *build) eventsOf(kinds ...string) []store.Event {
	var out []store.Event
	for _, e := range bd.events {
		if bd.inWeek(e.Time) && (len(kinds) == 0 || contains(kinds, e.Kind)) {
			out = append(out, e)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// loadVerdict reads the stored verdict: kept when judged within the week
// or the day after (an older week's is gone: the store keeps only the
// last).
func (bd *build) loadVerdict(st *store.Store) error {
	b, err := st.Verdict()
	if err != nil || b == nil {
		return err
	}
	var res readiness.Result
	if err := json.Unmarshal(b, &res); err != nil {
		bd.r.Notes = append(bd.r.Notes, fmt.Sprintf("the stored verdict cannot be read (%v): skipped", err))
		return nil
	}
	// Judged within the week, or (the report of the week just over) on
	// the day after it: the verdict now.
	if !res.At.Before(bd.r.From) && !res.At.After(bd.r.To.Add(24*time.Hour)) && !res.At.After(bd.r.Made) {
		bd.verdict = &res
	}
	return nil
}

// ---------------------------------------------------------------- verdict

// verdictOf is the verdict and cause an event records.
func verdictOf(e store.Event) (verdict, cause string) {
	verdict = e.Fields["verdict"]
	cause = strings.TrimPrefix(e.Message, verdict)
	cause = strings.TrimSpace(strings.TrimPrefix(cause, ":"))
	return verdict, cause
}

// timeline is the verdict's segments over [from, until) from the
// ready-changed events of node ("" any).
func timeline(evs []store.Event, node string, from, until time.Time) []Segment {
	cur := Segment{From: from}
	var out []Segment
	for _, e := range evs {
		if e.Kind != evReady || (node != "" && e.Node != node) {
			continue
		}
		if !e.Time.After(from) {
			cur.Verdict, cur.Cause = verdictOf(e)
			continue
		}
		if !e.Time.Before(until) {
			break
		}
		v, c := verdictOf(e)
		if v == cur.Verdict && c == cur.Cause {
			continue
		}
		cur.To = e.Time
		if cur.To.After(cur.From) {
			out = append(out, cur)
		}
		cur = Segment{From: e.Time, Verdict: v, Cause: c}
	}
	cur.To = until
	if cur.To.After(cur.From) {
		out = append(out, cur)
	}
	return out
}

// readyShare is the share of the known time spent READY.
func readyShare(segs []Segment) (share float64, covered time.Duration) {
	var ready time.Duration
	for _, s := range segs {
		if s.Verdict == "" {
			continue
		}
		d := s.To.Sub(s.From)
		covered += d
		if s.Verdict == string(readiness.Ready) {
			ready += d
		}
	}
	if covered == 0 {
		return 0, 0
	}
	return float64(ready) / float64(covered), covered
}

func (bd *build) verdictSection() {
	r := bd.r
	v := &r.Verdict
	v.Segments = timeline(bd.events, bd.o.node, r.From, r.Until)
	v.SpanS = int64(r.Until.Sub(r.From).Seconds())
	share, covered := readyShare(v.Segments)
	v.Known = covered > 0
	v.ReadyShare, v.CoveredS = share, int64(covered.Seconds())
	v.Spells = []Spell{}
	var sp *Spell
	for _, s := range v.Segments {
		bad := s.Verdict != "" && s.Verdict != string(readiness.Ready)
		if !bad {
			sp = nil
			continue
		}
		if sp == nil {
			v.Spells = append(v.Spells, Spell{From: s.From, Verdict: s.Verdict})
			sp = &v.Spells[len(v.Spells)-1]
		}
		sp.To = s.To
		sp.DurationS = int64(sp.To.Sub(sp.From).Seconds())
		if s.Verdict == string(readiness.NotReady) {
			sp.Verdict = s.Verdict
		}
		cause := s.Cause
		if cause == "" {
			cause = "no reason recorded"
		}
		if !contains(sp.Causes, cause) {
			sp.Causes = append(sp.Causes, cause)
		}
		sp.Ongoing = r.Partial && !s.To.Before(r.Until)
	}
	if len(v.Segments) > 0 {
		if last := v.Segments[len(v.Segments)-1]; last.Verdict != "" {
			v.Now = last.Verdict
			v.NowAt = last.From
			if last.Cause != "" {
				v.NowReasons = []string{last.Cause}
			}
		}
	}
	if bd.verdict != nil {
		v.Now, v.NowAt, v.NowReasons = string(bd.verdict.Verdict), bd.verdict.At, bd.verdict.Reasons()
	}
}

// ---------------------------------------------------------------- peer

// peerSection finds a node unreachable all week, from the peer events.
func (bd *build) peerSection() {
	r := bd.r
	type state struct {
		down  bool
		since time.Time
		downT time.Duration
	}
	peers := map[string]*state{}
	var names []string
	for _, e := range bd.events {
		if e.Kind != evPeerUnreach && e.Kind != evPeerReach {
			continue
		}
		if !e.Time.Before(r.Until) {
			break
		}
		st := peers[e.Node]
		if st == nil {
			st = &state{}
			peers[e.Node] = st
			names = append(names, e.Node)
		}
		down := e.Kind == evPeerUnreach
		at := e.Time
		if at.Before(r.From) {
			at = r.From
		}
		if st.down && !down {
			st.downT += at.Sub(st.since)
		}
		if down && !st.down {
			st.since = e.Time
		}
		st.down = down
	}
	sort.Strings(names)
	for _, n := range names {
		st := peers[n]
		if !st.down {
			if st.downT > 0 {
				r.Notes = append(r.Notes, fmt.Sprintf("peer %s was unreachable for %s this week", n, human(st.downT)))
			}
			continue
		}
		from := st.since
		if from.Before(r.From) {
			from = r.From
		}
		st.downT += r.Until.Sub(from)
		if !st.since.After(r.From) {
			bd.peer = n
			bd.peerNote = fmt.Sprintf("peer %s unreachable all week (since %s)", n, ft(st.since))
			r.Notes = append(r.Notes, bd.peerNote)
			continue
		}
		r.Notes = append(r.Notes, fmt.Sprintf("peer %s unreachable for %s this week, still at %s", n, human(st.downT), ft(r.Until)))
	}
}

// ---------------------------------------------------------------- services

func (bd *build) services(h *store.History) error {
	r := bd.r
	weekly, err := h.Weekly(r.Week)
	if err != nil {
		return err
	}
	hourly, err := h.Hourly(r.From, r.To)
	if err != nil {
		return err
	}
	hours := int(r.To.Sub(r.From) / time.Hour)
	r.Services.Hours = hours
	type key struct{ node, probe string }
	rows := map[key]*ServiceRow{}
	nodes, probes := map[string]bool{}, map[string]bool{}
	for _, n := range bd.o.nodes {
		nodes[n] = true
	}
	if bd.peer != "" {
		nodes[bd.peer] = true
	}
	for _, ru := range weekly {
		nodes[ru.Node], probes[ru.Probe] = true, true
		row := &ServiceRow{Service: ru.Probe, Node: ru.Node, Kind: ru.Kind, Rounds: ru.Count, Failures: ru.Failures, MaxMS: ru.MaxMS}
		if ru.Count > 0 {
			row.PassRate = float64(ru.Count-ru.Failures) / float64(ru.Count)
			row.P50MS, _ = ru.Percentile(50)
			row.P95MS, _ = ru.Percentile(95)
		}
		for ph, n := range ru.FailedPhases {
			if ph == "" {
				ph = "(no phase named)"
			}
			row.FailedPhases = append(row.FailedPhases, PhaseCount{Phase: ph, Failures: n})
		}
		sort.Slice(row.FailedPhases, func(i, j int) bool {
			a, b := row.FailedPhases[i], row.FailedPhases[j]
			if a.Failures != b.Failures {
				return a.Failures > b.Failures
			}
			return a.Phase < b.Phase
		})
		if ru.Damaged {
			r.Notes = append(r.Notes, fmt.Sprintf("the week's rollup of %s on %s was damaged and restarted: its counts are short", ru.Probe, ru.Node))
		}
		rows[key{ru.Node, ru.Probe}] = row
	}
	// What the hours hold: the chart and the disks' free space.
	trends := map[key]*DiskTrend{}
	for _, ru := range hourly {
		row := rows[key{ru.Node, ru.Probe}]
		if row != nil && ru.Count > 0 {
			if row.Hourly == "" {
				row.Hourly = strings.Repeat(string(HourNoData), hours)
			}
			if i := int(ru.Start.Sub(r.From) / time.Hour); i >= 0 && i < hours {
				c := byte(HourSomeFailed)
				switch {
				case ru.Failures == 0:
					c = HourAllPassed
				case ru.Failures >= ru.Count:
					c = HourAllFailed
				}
				row.Hourly = row.Hourly[:i] + string(c) + row.Hourly[i+1:]
			}
		}
		if v, ok := ru.Values["free_percent"]; ok {
			k := key{ru.Node, ru.Probe}
			tr := trends[k]
			if tr == nil {
				tr = &DiskTrend{Service: ru.Probe, Node: ru.Node, First: v.Last, Min: v.Min}
				trends[k] = tr
			}
			tr.Last = v.Last
			if v.Min < tr.Min {
				tr.Min = v.Min
			}
			tr.Points = append(tr.Points, Point{At: v.LastAt, Value: v.Last})
			day := ru.Start.Format(time.DateOnly)
			if n := len(tr.Days); n > 0 && tr.Days[n-1].Day == day {
				if v.Min < tr.Days[n-1].Min {
					tr.Days[n-1].Min = v.Min
				}
			} else {
				tr.Days = append(tr.Days, DayValue{Day: day, Min: v.Min})
			}
		}
	}
	for n := range nodes {
		for p := range probes {
			if rows[key{n, p}] != nil {
				continue
			}
			why := "no rounds this week"
			if n == bd.peer {
				why = bd.peerNote
			}
			rows[key{n, p}] = &ServiceRow{Service: p, Node: n, NoData: why}
		}
	}
	r.Services.Rows = []ServiceRow{}
	for _, row := range rows {
		r.Services.Rows = append(r.Services.Rows, *row)
	}
	sort.Slice(r.Services.Rows, func(i, j int) bool {
		a, b := r.Services.Rows[i], r.Services.Rows[j]
		if a.Service != b.Service {
			return a.Service < b.Service
		}
		return a.Node < b.Node
	})
	r.Disks.Trend = []DiskTrend{}
	for _, tr := range trends {
		r.Disks.Trend = append(r.Disks.Trend, *tr)
	}
	sort.Slice(r.Disks.Trend, func(i, j int) bool {
		a, b := r.Disks.Trend[i], r.Disks.Trend[j]
		return a.Service+"\x00"+a.Node < b.Service+"\x00"+b.Node
	})
	return nil
}

// ---------------------------------------------------------------- config, packages

func configItem(e store.Event) ConfigItem {
	it := ConfigItem{At: e.Time, Node: e.Node, Commit: short(e.Fields["commit"]), Text: e.Message}
	if p := e.Fields["paths"]; p != "" {
		it.Paths = strings.Fields(p)
	} else if p := e.Fields["path"]; p != "" {
		it.Paths = []string{p}
	}
	return it
}

func short(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return c
}

func (bd *build) config() {
	c := &bd.r.Config
	c.Commits, c.FailedApplies, c.Drift = []ConfigItem{}, []ConfigItem{}, []ConfigItem{}
	for _, e := range bd.eventsOf(evConfigCommit, evConfigFailed, evPeerConfFailed, evConfigDrift, evConfigOverwrit, evConfigRefused) {
		it := configItem(e)
		switch e.Kind {
		case evConfigCommit:
			c.Commits = append(c.Commits, it)
		case evConfigFailed, evPeerConfFailed:
			c.FailedApplies = append(c.FailedApplies, it)
		case evConfigDrift, evConfigOverwrit:
			c.Drift = append(c.Drift, it)
		case evConfigRefused:
			c.Refused = append(c.Refused, it)
		}
	}
}

var bootKernelRE = regexp.MustCompile(`boot kernel (\S+?),`)

func (bd *build) packages() {
	p := &bd.r.Packages
	p.Changes, p.Kernels = []EventItem{}, []EventItem{}
	kernel := map[string]string{}
	for _, e := range bd.events {
		if !e.Time.Before(bd.r.Until) {
			break
		}
		switch e.Kind {
		case evInventory:
			m := bootKernelRE.FindStringSubmatch(e.Message)
			if m == nil {
				continue
			}
			if old, ok := kernel[e.Node]; ok && old != m[1] && bd.inWeek(e.Time) {
				p.Kernels = append(p.Kernels, EventItem{At: e.Time, Node: e.Node, Text: fmt.Sprintf("boot kernel %s -> %s", old, m[1]), OK: true})
			}
			kernel[e.Node] = m[1]
		case evDrift:
			p.DriftNow, p.DriftText = e.Fields["state"], e.Message
		case evParityApply:
			if bd.inWeek(e.Time) {
				p.Changes = append(p.Changes, EventItem{At: e.Time, Node: e.Node, Text: e.Message, OK: e.Fields["error"] == ""})
			}
		}
	}
}

// ---------------------------------------------------------------- findings

func view(f readiness.Finding) FindingView {
	v := FindingView{Check: f.Check, State: string(f.State), Reason: f.Reason, Fix: f.Fix}
	for _, ev := range f.Evidence {
		s := ev.What + " = " + ev.Value
		if ev.Node != "" {
			s = ev.Node + ": " + s
		}
		v.Evidence = append(v.Evidence, s)
	}
	return v
}

func (bd *build) findings() {
	sections := []struct {
		sec    *FindingSection
		checks []string
	}{
		{&bd.r.Compat, []string{"boot.compat", "boot.loader", "boot.network"}},
		{&bd.r.Modules, []string{"modules"}},
		{&bd.r.Disks.RAID, []string{"raid", "disks"}},
	}
	for _, s := range sections {
		s.sec.Findings = []FindingView{}
		if bd.verdict == nil {
			s.sec.Missing = "no verdict judged this week is stored (the agent keeps the last one only; a week's stored report keeps it)"
			continue
		}
		s.sec.At = bd.verdict.At
		for _, f := range bd.verdict.Findings {
			if contains(s.checks, f.Check) {
				s.sec.Findings = append(s.sec.Findings, view(f))
			}
		}
		if len(s.sec.Findings) == 0 {
			s.sec.Missing = "the verdict holds no such check"
		}
	}
}

// ---------------------------------------------------------------- failovers

func (bd *build) failovers(st *store.Store) error {
	docs, err := st.FailoverDocs("record", 0)
	if err != nil {
		return err
	}
	f := &bd.r.Failovers
	f.Items = []FailoverItem{}
	for i, d := range docs {
		var rec failover.Record
		if err := json.Unmarshal(d, &rec); err != nil {
			bd.r.Notes = append(bd.r.Notes, fmt.Sprintf("failover record %d of %d (newest first) cannot be read (%v): skipped", i+1, len(docs), err))
			continue
		}
		at := rec.Decision
		for _, t := range []time.Time{rec.Boot, rec.Updated} {
			if at.IsZero() {
				at = t
			}
		}
		if !bd.inWeek(at) {
			continue
		}
		it := FailoverItem{ID: rec.ID, Kind: string(rec.Kind), At: at, Node: rec.Node, From: rec.FromMachine, To: rec.ToMachine,
			Complete: rec.Complete, Verdict: rec.VerdictAfter, Downtime: "not known yet"}
		if d, ok := rec.Downtime(); ok {
			it.DowntimeS = d.Seconds()
			it.Downtime = human(d)
		}
		f.Items = append(f.Items, it)
	}
	sort.Slice(f.Items, func(i, j int) bool { return f.Items[i].At.Before(f.Items[j].At) })
	return nil
}

// ---------------------------------------------------------------- backups

func (bd *build) backups() {
	b := &bd.r.Backups
	b.Runs = []RestoreRun{}
	var last *RestoreRun
	for _, e := range bd.events {
		if e.Kind != EventRestoreTest || !e.Time.Before(bd.r.Until) {
			continue
		}
		run, err := RestoreOf(e)
		if err != nil {
			bd.r.Notes = append(bd.r.Notes, fmt.Sprintf("restore test %v: skipped", err))
			continue
		}
		if bd.inWeek(e.Time) {
			b.Runs = append(b.Runs, run)
		}
		if run.Outcome() != "skipped" {
			last = &run
		}
	}
	b.Failing = last != nil && last.Outcome() == "FAILED"
}

// ---------------------------------------------------------------- week over week

func (bd *build) compare(h *store.History) error {
	r := bd.r
	prevStart := r.From.AddDate(0, 0, -7)
	c := &r.Compare
	c.Previous = store.WeekKey(prevStart)
	prev, err := h.Weekly(c.Previous)
	if err != nil {
		return err
	}
	for _, ru := range prev {
		c.PrevRounds += ru.Count
		c.PrevFailures += ru.Failures
	}
	for _, row := range r.Services.Rows {
		c.Rounds += row.Rounds
		c.Failures += row.Failures
	}
	if r.Verdict.Known {
		s := r.Verdict.ReadyShare
		c.ReadyShare = &s
	}
	if share, covered := readyShare(timeline(bd.events, bd.o.node, prevStart, r.From)); covered > 0 {
		c.PrevReadyShare = &share
	} else if old, ok, err := Load(h, c.Previous); err == nil && ok && old.Verdict.Known {
		// The events of that week are gone: its stored report says.
		share := old.Verdict.ReadyShare
		c.PrevReadyShare = &share
	} else if err != nil {
		r.Notes = append(r.Notes, err.Error()+": skipped")
	}
	score := 0
	if c.ReadyShare != nil && c.PrevReadyShare != nil {
		c.Known = true
		switch d := *c.ReadyShare - *c.PrevReadyShare; {
		case d > 0.0005:
			score++
			c.Why = append(c.Why, fmt.Sprintf("READY %s of the time, was %s", pct(*c.ReadyShare), pct(*c.PrevReadyShare)))
		case d < -0.0005:
			score--
			c.Why = append(c.Why, fmt.Sprintf("READY %s of the time, was %s", pct(*c.ReadyShare), pct(*c.PrevReadyShare)))
		}
	}
	if c.Rounds > 0 && c.PrevRounds > 0 {
		c.Known = true
		now, was := float64(c.Failures)/float64(c.Rounds), float64(c.PrevFailures)/float64(c.PrevRounds)
		switch {
		case now < was*0.8 || (was > 0 && now == 0):
			score++
			c.Why = append(c.Why, fmt.Sprintf("%d failed rounds of %d, was %d of %d", c.Failures, c.Rounds, c.PrevFailures, c.PrevRounds))
		case now > was*1.25 && c.Failures > c.PrevFailures:
			score--
			c.Why = append(c.Why, fmt.Sprintf("%d failed rounds of %d, was %d of %d", c.Failures, c.Rounds, c.PrevFailures, c.PrevRounds))
		}
	}
	if !c.Known {
		return nil
	}
	switch {
	case score > 0:
		c.Trend = "better"
	case score < 0:
		c.Trend = "worse"
	default:
		c.Trend = "the same"
	}
	return nil
}

// ---------------------------------------------------------------- actions

func (bd *build) actions() {
	r := bd.r
	r.Actions = []Action{}
	add := func(what, why, cmd string) {
		for _, a := range r.Actions {
			if a.Command == cmd && cmd != "sentry ready" { // one cause, said once
				return
			}
		}
		r.Actions = append(r.Actions, Action{Rank: len(r.Actions) + 1, What: what, Why: why, Command: cmd})
	}
	if bd.verdict != nil {
		for _, f := range bd.verdict.Findings {
			if f.Blocking() {
				cmd := f.Fix
				if cmd == "" {
					cmd = "sentry ready"
				}
				add("clear "+f.Check, f.Reason, cmd)
			}
		}
	} else if v := r.Verdict.Now; v != "" && v != string(readiness.Ready) {
		add("find why the pair is "+v, strings.Join(r.Verdict.NowReasons, "; "), "sentry ready")
	}
	if bd.peer != "" {
		add("bring "+bd.peer+" back", bd.peerNote+": nothing was verified there", "sentry status")
	}
	if r.Backups.Failing {
		why := "the last restore test failed"
		cmd := "sentry ready"
		for i := len(r.Backups.Runs) - 1; i >= 0; i-- {
			if run := r.Backups.Runs[i]; run.Outcome() == "FAILED" {
				why = fmt.Sprintf("the restore test of %s at %s failed: %s", run.Repo, run.At.UTC().Format("2006-01-02 15:04 MST"), run.Why())
				if run.Command != "" {
					cmd = run.Command
				}
				break
			}
		}
		add("repair the backup and test it again", why+"; the pair is NOT READY until a test is good", cmd)
	}
	if n := len(r.Config.FailedApplies); n > 0 {
		add("fix the failed configuration apply", fmt.Sprintf("%d failed this week, last: %s", n, r.Config.FailedApplies[n-1].Text), "sentry sync")
	}
	if n := len(r.Config.Drift); n > 0 {
		add("look at the secondary's local edits", fmt.Sprintf("%d tracked path(s) edited on the secondary", n), "sentry config drift")
	}
	if r.Packages.DriftNow == "drifted" {
		add("bring the packages in step", r.Packages.DriftText, "sentry parity plan")
	}
	for _, it := range r.Failovers.Items {
		if !it.Complete {
			add("complete failover "+it.ID, "its record is not complete", "sentry failover status")
		}
	}
	var weak []ServiceRow
	for _, row := range r.Services.Rows {
		if row.Rounds > 0 && row.PassRate < 0.99 {
			weak = append(weak, row)
		}
	}
	sort.SliceStable(weak, func(i, j int) bool { return weak[i].PassRate < weak[j].PassRate })
	for i, row := range weak {
		if i == 5 {
			break
		}
		why := fmt.Sprintf("%s of %d rounds passed", pct(row.PassRate), row.Rounds)
		if len(row.FailedPhases) > 0 {
			why += fmt.Sprintf("; most failures in phase %s (%d)", row.FailedPhases[0].Phase, row.FailedPhases[0].Failures)
		}
		add(fmt.Sprintf("look at %s on %s", row.Service, row.Node), why, fmt.Sprintf("sentry verify --node %s --service %s", row.Node, row.Service))
	}
}
