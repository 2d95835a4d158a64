package tui

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/sentryha/sentry/internal/agent/parity"
	"github.com/sentryha/sentry/internal/agentclient"
	"github.com/sentryha/sentry/internal/store"
)

// fetchTimeout bounds one request to the agent.
const fetchTimeout = 15 * time.Second

// historyRuns is how many runs of one probe cover 24 hours (one every
// 30 s); recentRuns how many are fetched to catch up after an event.
const (
	historyRuns = 24 * 120
	recentRuns  = 20
	logLength   = 200
	eventsFirst = 200
)

// Keys of what the UI fetches.
const (
	keyStatus   = "status"
	keyReady    = "ready"
	keyLog      = "log"
	keyDrift    = "drift"
	keyParity   = "parity"
	keyFStatus  = "failover-status"
	keyFHistory = "failover-history"
	keyEvents   = "events"
	keyReports  = "reports"
	keyModules  = "modules"
	// with a node, a probe or a commit after ":"
	keyLatest = "latest:"
	keyHist   = "history:"
	keyRecent = "recent:"
	keyDiff   = "diff:"
	keyReport = "report:" // self/WEEK or peer/WEEK (reportRef)
)

// loadedMsg is one answer of the agent: apply puts it in the data.
type loadedMsg struct {
	key   string
	apply func(d *data)
	err   error
}

// actionMsg is the end of something the operator asked for.
type actionMsg struct {
	what  string // "rollback", "verify", "plan"
	text  string // what to say
	err   error
	apply func(d *data)
	after []string // keys to refetch
}

// agentDown reports whether err means nothing answers on the socket.
func agentDown(err error) bool {
	return errors.Is(err, agentclient.ErrNoAgent) || errors.Is(err, agentclient.ErrStreamClosed)
}

// histFetches is how many histories are fetched at once. Each is up to a
// day of one probe's results (2,880: ~1 MB of JSON, ~2.5 MB decoded until
// it is folded into a series): the Services screen asks for every probe
// on both nodes at once, and fetched all together they made the UI's
// peak resident set (issue 17: under 40 MB) twice what it keeps.
const histFetches = 2

// fetcher makes the commands that ask the agent.
type fetcher struct {
	a    Agent
	now  func() time.Time
	hist chan struct{} // a history being fetched holds one
}

// cmd is the command that fetches key.
func (f fetcher) cmd(key string) tea.Cmd {
	a := f.a
	call := func(fn func(ctx context.Context) (func(*data), error)) tea.Cmd {
		return func() tea.Msg {
			ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
			defer cancel()
			apply, err := fn(ctx)
			return loadedMsg{key: key, apply: apply, err: err}
		}
	}
	since := f.now().Add(-24 * time.Hour)
	switch {
	case key == keyStatus:
		return call(func(ctx context.Context) (func(*data), error) {
			st, err := a.Status(ctx)
			return func(d *data) { d.state = st }, err
		})
	case key == keyReady:
		return call(func(ctx context.Context) (func(*data), error) {
			r, err := a.Ready(ctx)
			return func(d *data) { d.ready = r }, err
		})
	case key == keyLog:
		return call(func(ctx context.Context) (func(*data), error) {
			l, err := a.ConfigLog(ctx, "", logLength)
			return func(d *data) { d.log = l }, err
		})
	case key == keyDrift:
		return call(func(ctx context.Context) (func(*data), error) {
			items, err := a.Drift(ctx)
			return func(d *data) { d.drift = items }, err
		})
	case key == keyParity:
		return call(func(ctx context.Context) (func(*data), error) {
			r, err := a.Parity(ctx)
			return func(d *data) { d.parity = r }, err
		})
	case key == keyFStatus:
		return call(func(ctx context.Context) (func(*data), error) {
			s, err := a.FailoverStatus(ctx)
			return func(d *data) { d.fstatus = s }, err
		})
	case key == keyFHistory:
		return call(func(ctx context.Context) (func(*data), error) {
			h, err := a.FailoverHistory(ctx)
			return func(d *data) { d.fhist = h }, err
		})
	case key == keyEvents:
		return call(func(ctx context.Context) (func(*data), error) {
			evs, err := a.Events(ctx, eventsFirst)
			return func(d *data) { d.addEvents(evs...) }, err
		})
	case key == keyReports:
		return call(func(ctx context.Context) (func(*data), error) {
			l, err := a.Reports().ListWithPeer(ctx)
			return func(d *data) { d.reports = l }, err
		})
	case key == keyModules:
		return call(func(ctx context.Context) (func(*data), error) {
			l, err := a.Modules().List(ctx)
			return func(d *data) { d.modules = l }, err
		})
	case strings.HasPrefix(key, keyReport):
		ref := strings.TrimPrefix(key, keyReport)
		from, week, _ := strings.Cut(ref, "/")
		get := a.Reports().Build
		if from == "peer" {
			get = a.Reports().FromPeer
		}
		return call(func(ctx context.Context) (func(*data), error) {
			t, err := get(ctx, week, "text")
			return func(d *data) { d.texts[ref] = t }, err
		})
	case strings.HasPrefix(key, keyLatest):
		node := strings.TrimPrefix(key, keyLatest)
		return call(func(ctx context.Context) (func(*data), error) {
			rs, err := a.Results(ctx, node, "", 0)
			return func(d *data) { d.noteLatest(rs, node, since) }, err
		})
	case strings.HasPrefix(key, keyHist), strings.HasPrefix(key, keyRecent):
		n, rest := historyRuns, strings.TrimPrefix(key, keyHist)
		if strings.HasPrefix(key, keyRecent) {
			n, rest = recentRuns, strings.TrimPrefix(key, keyRecent)
		}
		node, probe, _ := strings.Cut(rest, "/")
		hist := f.hist
		return call(func(ctx context.Context) (func(*data), error) {
			if hist != nil {
				select {
				case hist <- struct{}{}:
					defer func() { <-hist }()
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			}
			rs, err := a.Results(ctx, node, probe, n)
			return func(d *data) {
				var keep []store.StoredResult
				for _, r := range rs {
					if !r.Start.Before(since) {
						keep = append(keep, r)
					}
				}
				d.mergeHistory(histKey(node, probe), keep, since)
			}, err
		})
	case strings.HasPrefix(key, keyDiff):
		rev := strings.TrimPrefix(key, keyDiff)
		return call(func(ctx context.Context) (func(*data), error) {
			r, err := a.ConfigDiff(ctx, rev)
			return func(d *data) { d.diffs[rev] = r }, err
		})
	}
	return nil
}

// rollback asks the primary to restore rev's configuration.
func (f fetcher) rollback(rev string) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		r, err := f.a.Rollback(ctx, rev)
		if err != nil {
			return actionMsg{what: "rollback", err: err}
		}
		return actionMsg{what: "rollback", text: "rolled back: the configuration of " + short(r.Restored) + " is restored as commit " + short(r.Commit) + "; the secondary follows",
			after: []string{keyLog, keyStatus}}
	}
}

// verifyNow runs this node's probes whose name starts with service.
func (f fetcher) verifyNow(node, service string) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		run, err := f.a.VerifyNow(ctx, service, 0)
		if err != nil {
			return actionMsg{what: "verify", err: err}
		}
		ok, bad := 0, 0
		for _, r := range run.Results {
			if r.OK {
				ok++
			} else {
				bad++
			}
		}
		text := "ran " + service + " on " + node + ": " + plural(ok, "passed") + ", " + plural(bad, "failed")
		return actionMsg{what: "verify", text: text, after: []string{keyLatest + node, keyRecent + node + "/" + service, keyStatus, keyReady}}
	}
}

// plan makes and records the plan of a planned disk swap.
func (f fetcher) plan() tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		p, err := f.a.FailoverPlan(ctx, true, false)
		if err != nil {
			return actionMsg{what: "plan", err: err}
		}
		return actionMsg{what: "plan", text: "plan " + p.ID + " made and recorded: the steps are below", apply: func(d *data) { d.plan = p }}
	}
}

// useModule selects version of module name.
func (f fetcher) useModule(name, version string) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		r, err := f.a.Modules().Use(ctx, name, version)
		if err != nil {
			return actionMsg{what: "use", err: err}
		}
		return actionMsg{what: "use", text: modChanged(r.Status, r.Warnings), apply: func(d *data) { d.setModule(r.Status) }, after: []string{keyModules, keyStatus}}
	}
}

// rollbackModule selects the version of module name used before, and
// pins it.
func (f fetcher) rollbackModule(name string) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		r, err := f.a.Modules().Rollback(ctx, name)
		if err != nil {
			return actionMsg{what: "rollback of " + name, err: err}
		}
		return actionMsg{what: "rollback of " + name, text: "rolled back: " + modChanged(r.Status, r.Warnings), apply: func(d *data) { d.setModule(r.Status) }, after: []string{keyModules, keyStatus}}
	}
}

// parityApply carries out this node's part of the parity plan (minutes:
// packages are fetched and installed).
func (f fetcher) parityApply(node string) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
		defer cancel()
		r, err := f.a.ParityApply(ctx, parity.ApplyRequest{Yes: true})
		if err != nil {
			return actionMsg{what: "parity apply", err: err}
		}
		failed := 0
		for _, a := range r.Actions {
			if a.Error != "" {
				failed++
			}
		}
		text := fmt.Sprintf("parity apply on %s: %s, %s", node, plural(len(r.Actions)-failed, "action(s) done"), plural(failed, "failed"))
		if r.Error != "" {
			text += ": " + r.Error
		}
		return actionMsg{what: "parity apply", text: text, after: []string{keyParity, keyStatus, keyReady}}
	}
}
