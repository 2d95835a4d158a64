package tui

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/sentryha/sentry/internal/agent/api"
	"github.com/sentryha/sentry/internal/agent/cfgsync"
	"github.com/sentryha/sentry/internal/agent/modset"
	"github.com/sentryha/sentry/internal/agent/parity"
	"github.com/sentryha/sentry/internal/agent/reports"
	"github.com/sentryha/sentry/internal/agent/schedule"
	"github.com/sentryha/sentry/internal/agent/swaps"
	"github.com/sentryha/sentry/internal/agentclient"
	"github.com/sentryha/sentry/internal/failover"
	"github.com/sentryha/sentry/internal/readiness"
	"github.com/sentryha/sentry/internal/report"
	"github.com/sentryha/sentry/internal/store"
	"github.com/sentryha/sentry/modules"
	"github.com/sentryha/sentry/synchronizer"
	"github.com/sentryha/sentry/synchronizer/inventory"
	"github.com/sentryha/sentry/verifier"
)

// now is the fixtures' clock.
var fixtureNow = time.Date(2026, 12, 2, 21, 0, 30, 0, time.UTC)

func clock() time.Time { return fixtureNow }

var fixtureProbes = []string{"backup-restic", "dns", "mail-imap", "web"}

// fixture is the state a fake agent serves.
type fixture struct {
	mu       sync.Mutex
	state    api.State
	ready    readiness.Result
	results  map[string][]store.StoredResult // node/probe, newest first
	events   []store.Event
	stream   chan store.Event
	requests []string // METHOD path?query, in order
	bodies   []string
	reports  reports.List // with the peer's rows (Node node-s)
	peerErr  string       // the peer does not answer: its rows are left out
	modules  modset.List
}

// readyFixture is a pair in step: READY.
func readyFixture(now time.Time) *fixture {
	contact := now.Add(-12 * time.Second)
	f := &fixture{results: map[string][]store.StoredResult{}, stream: make(chan store.Event, 16)}
	f.state = api.State{Initialized: true, ClusterID: "c1", ClusterName: "office", Nodes: []api.Node{
		{Name: "node-p", Self: true, Role: "primary", Hardware: "dmi:uuid=aaaa-1111", DiskSet: "d1f00dbeef42", Generation: 7, AgentVersion: "0.4.0",
			Reachable: true, ConfigHead: "4f1c2a9b7d3e5f60718293a4", Verify: "4/4 green", Boot: "primary"},
		{Name: "node-s", Role: "secondary", Hardware: "dmi:uuid=bbbb-2222", DiskSet: "d2cafe001122", Generation: 6, AgentVersion: "0.4.0",
			Address: "10.0.0.2:7443", Reachable: true, LastContact: &contact, ConfigHead: "4f1c2a9b7d3e5f60718293a4", ConfigApplied: "4f1c2a9b7d3e5f60718293a4",
			ConfigDrift: 1, Verify: "4/4 green", Boot: "secondary"},
	}}
	f.state.Summarize()
	f.state.Parity = &api.Parity{Self: api.Inventory{Node: "node-p", Taken: now.Add(-time.Hour), Packages: 612, Kernel: "6.12.9-amd64"},
		Peer: api.Inventory{Node: "node-s", Taken: now.Add(-time.Hour), Packages: 611, Kernel: "6.12.9-amd64"}}
	f.ready = readiness.Result{Verdict: readiness.Ready, At: now.Add(-20 * time.Second), Findings: []readiness.Finding{
		{Check: "verifier", State: readiness.Pass, Severity: readiness.Block, Reason: "every probe green on both nodes"},
		{Check: "config-drift", State: readiness.Fail, Severity: readiness.Warn, Reason: "node-s: 1 tracked path edited locally", Fix: "sentry config drift (on node-s)"},
	}, Peer: &readiness.PeerVerdict{Node: "node-s", Verdict: readiness.Ready, At: now.Add(-25 * time.Second)}}
	for _, n := range []string{"node-p", "node-s"} {
		for pi, p := range fixtureProbes {
			var rs []store.StoredResult
			// One run every 5 minutes: the day's shape with a tenth of
			// the results, to keep the tests quick under -race.
			for i := range 24 * 12 {
				start := now.Add(-time.Duration(i)*5*time.Minute - 10*time.Second)
				lat := int64(8 + (i*7+pi*13)%40 + pi*5)
				if (i/12)%6 == 3 {
					lat *= 3
				}
				ok := !(p == "mail-imap" && i >= 60 && i < 62)
				rs = append(rs, result(n, p, start, lat, ok, ""))
			}
			f.results[n+"/"+p] = rs
		}
	}
	f.reports = reports.List{Peer: "node-s", Reports: []reports.Kept{
		{Listed: report.Listed{Week: "2026-W48", Headline: "READY (100.0 % of week 48)", Made: time.Date(2026, 11, 30, 0, 10, 0, 0, time.UTC)}, Node: "node-p"},
		{Listed: report.Listed{Week: "2026-W47", Headline: "NOT READY (97.9 % of week 47)", Made: time.Date(2026, 11, 23, 0, 10, 0, 0, time.UTC)}, Node: "node-p"},
		{Listed: report.Listed{Week: "2026-W46", Headline: "READY (100.0 % of week 46)", Made: time.Date(2026, 11, 16, 0, 10, 0, 0, time.UTC), Partial: true}, Node: "node-p"},
		{Listed: report.Listed{Week: "2026-W45", Headline: "UNKNOWN (61.3 % of week 45)", Made: time.Date(2026, 11, 9, 0, 12, 0, 0, time.UTC)}, Node: "node-s"},
	}}
	f.modules = fixtureModules()
	for i, e := range []struct{ kind, node, msg string }{
		{"join", "node-s", "node node-s joined from 10.0.0.2:41234 as the secondary"},
		{"config-commit", "node-p", "configuration commit 4f1c2a9b7d3e: 2 path(s) changed"},
		{"config-applied", "node-s", "configuration 4f1c2a9b7d3e applied: 2 path(s), reloaded nginx.service"},
		{"probe-red", "node-p", "mail-imap on node-p fails: dial tcp 127.0.0.1:993: connection refused"},
		{"probe-green", "node-p", "mail-imap on node-p works again"},
		{"config-drift-found", "node-s", "/etc/nginx/sites-enabled/office differs from the primary's configuration (content)"},
		{"modules-approved", "node-s", "approved on this secondary: /usr/sbin/nginx"},
		{"ready-changed", "node-p", "verdict READY"},
	} {
		f.events = append(f.events, store.Event{Seq: uint64(i + 1), Time: now.Add(-time.Duration(8-i) * 7 * time.Minute), Kind: e.kind, Node: e.node, Message: e.msg})
	}
	return f
}

// fixtureModules are the modules of the primary node-p: web-nginx moved
// to an installed version, file-samba rolled back and pinned, apache
// disabled.
func fixtureModules() modset.List {
	av := func(v, origin string) modules.Available {
		src := "builtin/" + v + ".toml"
		if origin == modules.OriginInstalled {
			src = "/var/lib/sentry/modules/" + v + ".toml"
		}
		return modules.Available{Version: v, Origin: origin, Source: src}
	}
	mod := func(name, kind, sel, origin string, pinned, disabled bool, history []string, avail ...modules.Available) modset.Module {
		for i := range avail {
			avail[i].Source = strings.Replace(avail[i].Source, avail[i].Version, name+"/"+avail[i].Version, 1)
			if avail[i].Origin == modules.OriginBuiltin {
				avail[i].Source = "builtin/" + name + ".toml"
			}
		}
		src := ""
		for _, a := range avail {
			if a.Version == sel && a.Origin == origin {
				src = a.Source
			}
		}
		return modset.Module{Status: modules.Status{Name: name, Kind: kind, Selected: sel, Origin: origin, Source: src, Pinned: pinned, Disabled: disabled,
			History: append([]string{}, history...), Available: avail}}
	}
	return modset.List{Node: "node-p", Modules: []modset.Module{
		mod("db-postgresql", "db", "1.0.0", "builtin", false, false, nil, av("1.0.0", "builtin")),
		mod("file-samba", "file", "1.0.0", "builtin", true, false, nil, av("1.0.0", "builtin"), av("1.1.0", "installed")),
		mod("mail-postfix-dovecot", "mail", "1.0.0", "builtin", false, false, nil, av("1.0.0", "builtin")),
		mod("system-base", "system", "1.0.0", "builtin", false, false, nil, av("1.0.0", "builtin")),
		mod("web-apache2", "web", "", "", false, true, nil, av("1.0.0", "builtin")),
		mod("web-nginx", "web", "1.1.0", "installed", false, false, []string{"1.0.0"}, av("1.0.0", "builtin"), av("1.1.0", "installed"), av("1.2.0", "installed")),
	}}
}

// reportBody is a weekly report as `sentry report` prints it (text).
func reportBody(week, headline, node string) string {
	title := "Sentry office: weekly report " + week + " (Mon 23 Nov to Sun 29 Nov 2026)"
	return title + "\n" + strings.Repeat("=", len(title)) + `

` + headline + `

Made Mon 2026-11-30 00:10 UTC from the verdicts of ` + node + `.

Verdict
-------

Now: READY (judged Mon 2026-11-30 00:09 UTC).

Over the week: READY 97.9 % of the time with a known verdict (7d of 7d
known); 1 spell(s) not READY.

  From (UTC)        To                Duration  Verdict    Cause
  ----------------  ----------------  --------  ---------  -----
  Wed 25 Nov 09:05  Wed 25 Nov 12:35    3h 30m  NOT READY  verify.green: web
                                                           on node-s: connect:
                                                           connection refused

Recommended actions
-------------------

 1. look at web on node-s: 98.2 % of 2008 rounds passed; most failures in
    phase connect (36)
    $ sentry verify --node node-s --service web

Services
--------

  Service    Node    Rounds   Passed     p50    p95     Max  Failed phases
  ---------  ------  ------  -------  ------  -----  ------  -------------
  dns        node-p    2016  100.0 %    2 ms   4 ms   11 ms  -
  dns        node-s    2008  100.0 %    2 ms   4 ms   12 ms  -
  mail-imap  node-p    2016   99.9 %   31 ms  52 ms  140 ms  request 2
  mail-imap  node-s    2008  100.0 %   30 ms  50 ms  133 ms  -
  web        node-p    2016  100.0 %   39 ms  51 ms  204 ms  -
  web        node-s    2008   98.2 %   39 ms  50 ms  192 ms  connect 36

Configuration
-------------

Commits: 1.

  - Tue 2026-11-24 02:00 UTC node-p: 4f1c2a9b7d3e: /etc/nginx/sites-enabled/office

Failovers and drills
--------------------

None this week.

Notes
-----

  - peer node-s was unreachable for 40m this week
`
}

// notReadyFixture: web fails on the secondary, the pair is NOT READY, and
// the secondary failed to apply the newest commit.
func notReadyFixture(now time.Time) *fixture {
	f := readyFixture(now)
	s := &f.state.Nodes[1]
	s.Verify, s.VerifyRed = "3/4 green", []string{"web"}
	s.ConfigApplied, s.ConfigFailed = "9a8b7c6d5e4f3a2b1c0d", "4f1c2a9b7d3e5f60718293a4"
	s.ConfigError = "nginx -t: unknown directive \"lisen\" in /etc/nginx/sites-enabled/office:3"
	f.state.Summarize()
	f.state.Parity = readyFixture(now).state.Parity
	f.modules.Warnings = []string{`/var/lib/sentry/modules/file-samba/1.1.0.toml:14:1: probes[0].timeout "90s" is longer than a round (60s): capped`}
	for i := range 2 {
		r := &f.results["node-s/web"][i]
		r.OK, r.Message, r.FailedPhase = false, "GET https://office.example/: connection refused", "connect"
		r.Phases = []store.PhaseTiming{{Name: "resolve", MS: 1, OK: true}, {Name: "connect", MS: 3, OK: false, Error: "dial tcp 10.0.0.2:443: connect: connection refused"}}
	}
	f.ready = readiness.Result{Verdict: readiness.NotReady, At: now.Add(-5 * time.Second), Findings: []readiness.Finding{
		{Check: "verifier", State: readiness.Fail, Severity: readiness.Block, Blocks: true, Reason: "web on node-s fails: GET https://office.example/: connection refused (2 runs)", Fix: "sentry verify web --node node-s"},
		{Check: "config-sync", State: readiness.Fail, Severity: readiness.Block, Blocks: true, Reason: "node-s failed to apply 4f1c2a9b7d3e: nginx -t: unknown directive \"lisen\"", Fix: "sentry config log"},
		{Check: "config-drift", State: readiness.Fail, Severity: readiness.Warn, Reason: "node-s: 1 tracked path edited locally"},
	}, Peer: &readiness.PeerVerdict{Node: "node-s", Verdict: readiness.NotReady, At: now.Add(-9 * time.Second), Reasons: []string{"verifier: web on node-s fails"}}}
	return f
}

func result(node, probe string, start time.Time, lat int64, ok bool, msg string) store.StoredResult {
	r := store.StoredResult{Node: node, Probe: probe, Kind: "http", Start: start, DurationMS: lat + 2, OK: ok, Message: msg,
		Phases: []store.PhaseTiming{{Name: "resolve", MS: 1, OK: true}, {Name: "connect", MS: lat / 2, OK: true}, {Name: "request", MS: lat - lat/2, OK: ok}},
		Values: map[string]string{"latency_ms": strconv.FormatInt(lat, 10), "status": "200"}}
	if !ok {
		r.Message, r.FailedPhase, r.Values["status"] = "IMAP LOGIN: connection reset by peer", "request", "-"
		r.Phases[2].Error = "read: connection reset by peer"
	}
	return r
}

func (f *fixture) log() []cfgsync.LogEntry {
	return []cfgsync.LogEntry{
		{Commit: "4f1c2a9b7d3e5f60718293a4", Time: fixtureNow.Add(-30 * time.Minute), Author: "sentry", Subject: "nginx: office site on 443"},
		{Commit: "9a8b7c6d5e4f3a2b1c0d", Time: fixtureNow.Add(-26 * time.Hour), Author: "sentry", Subject: "postfix: relay through the ISP"},
		{Commit: "77aa66bb55cc44dd33ee", Time: fixtureNow.Add(-72 * time.Hour), Author: "sentry", Subject: "initial configuration"},
	}
}

func (f *fixture) parity() parity.Report {
	return parity.Report{Node: "node-p", Role: "primary",
		Drift: inventory.DriftReport{State: "drifted", InStep: 611,
			P:     inventory.Side{Node: "node-p", Taken: fixtureNow.Add(-time.Hour), State: "fresh"},
			S:     inventory.Side{Node: "node-s", Taken: fixtureNow.Add(-time.Hour), State: "fresh"},
			Items: []inventory.DriftItem{{Kind: "version", Name: "nginx", P: "1.26.3-3", S: "1.26.3-2", State: "drift", Module: "web-nginx"}, {Kind: "only-on-p", Name: "htop", P: "3.3.0-5", State: "drift"}, {Kind: "boot-kernel", Name: "linux", P: "6.12.9-amd64", S: "6.12.9-amd64", State: "ok"}}},
		CompatPonB: &inventory.CompatReport{DiskSet: "node-p", Machine: "node-s", Kernel: "6.12.9-amd64", Boots: "yes", Because: []string{"every required device has its driver in the initramfs"},
			Devices: []inventory.DeviceEvidence{{Slot: "0000:00:17.0", Kind: "storage", ID: "8086:a352", Driver: "ahci", Required: true, Initramfs: "yes", Verdict: "ok"}, {Slot: "0000:01:00.0", Kind: "network", ID: "8086:1533", Driver: "igb", Required: true, Initramfs: "yes", Verdict: "ok"}}},
		CompatSonA: &inventory.CompatReport{DiskSet: "node-s", Machine: "node-p", Kernel: "6.12.9-amd64", Boots: "no", Because: []string{"0000:02:00.0 (network, 10ec:8125) needs r8169, not in the initramfs"},
			Devices: []inventory.DeviceEvidence{{Slot: "0000:00:17.0", Kind: "storage", ID: "8086:a352", Driver: "ahci", Required: true, Initramfs: "yes", Verdict: "ok"}, {Slot: "0000:02:00.0", Kind: "network", ID: "10ec:8125", Driver: "r8169", Required: true, Initramfs: "no", Verdict: "fail", Cause: "not-in-initramfs"}}},
		Plan: inventory.ParityPlan{InstallOnS: []inventory.Install{{Name: "nginx", Arch: "amd64", Version: "1.26.3-3", Current: "1.26.3-2"}, {Name: "htop", Arch: "amd64", Version: "3.3.0-5"}},
			DiskSetFixes: []inventory.DiskSetFix{{DiskSet: "S", Action: "add-to-initramfs", Module: "r8169", Device: "0000:02:00.0 10ec:8125", Reason: "the network controller of P's machine"}}},
	}
}

func (f *fixture) failover() (swaps.Status, []failover.Record) {
	planned := fixtureNow.Add(-40 * 24 * time.Hour)
	rec := failover.Record{ID: "fo-20261023-1", Kind: failover.KindPlanned, DiskSet: "d1f00dbeef42", Node: "node-p", FromMachine: "dmi:uuid=aaaa-1111", ToMachine: "dmi:uuid=bbbb-2222",
		PlanID: "plan-20261023", PlannedAt: &planned, Boot: planned.Add(20 * time.Minute), Complete: true, VerdictAfter: "READY"}
	st := swaps.Status{Record: &rec, Phases: []failover.Phase{
		{Name: "shutdown to boot", Duration: 4*time.Minute + 12*time.Second}, {Name: "boot to decision", Duration: 9 * time.Second},
		{Name: "decision to address up", Duration: 1200 * time.Millisecond}, {Name: "address up to services green", Duration: 41 * time.Second}}, Downtime: 303200}
	back := rec
	back.ID, back.Kind, back.Boot = "fo-20261023-2", failover.KindFailback, planned.Add(2*time.Hour)
	return st, []failover.Record{back, rec}
}

// serve runs the fake agent on a unix socket in dir, until the test ends
// or stop is called.
func (f *fixture) serve(t testing.TB, sock string) (stop func()) {
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	reply := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(v)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) { f.mu.Lock(); defer f.mu.Unlock(); reply(w, f.state) })
	mux.HandleFunc("GET /v1/ready", func(w http.ResponseWriter, r *http.Request) { f.mu.Lock(); defer f.mu.Unlock(); reply(w, f.ready) })
	mux.HandleFunc("GET /v1/verify/results", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		q := r.URL.Query()
		node, probe := q.Get("node"), q.Get("probe")
		out := []store.StoredResult{}
		if probe == "" {
			for _, p := range fixtureProbes {
				if rs := f.results[node+"/"+p]; len(rs) > 0 {
					out = append(out, rs[0])
				}
			}
		} else {
			n, _ := strconv.Atoi(q.Get("n"))
			rs := f.results[node+"/"+probe]
			out = append(out, rs[:min(n, len(rs))]...)
		}
		reply(w, out)
	})
	mux.HandleFunc("POST /v1/verify/now", func(w http.ResponseWriter, r *http.Request) {
		var req schedule.RunRequest
		json.NewDecoder(r.Body).Decode(&req)
		f.note("verify " + req.Service)
		reply(w, schedule.Run{Results: []verifier.Result{{Name: req.Service, OK: true}}})
	})
	mux.HandleFunc("GET /v1/events", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		evs := f.events[max(len(f.events)-n, 0):]
		reply(w, evs)
	})
	mux.HandleFunc("GET /v1/events/stream", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, ": hello\n\n")
		w.(http.Flusher).Flush()
		for {
			select {
			case <-r.Context().Done():
				return
			case e, ok := <-f.stream:
				if !ok {
					return
				}
				b, _ := json.Marshal(e)
				fmt.Fprintf(w, "id: %d\nevent: event\ndata: %s\n\n", e.Seq, b)
				w.(http.Flusher).Flush()
			}
		}
	})
	mux.HandleFunc("GET /v1/config/log", func(w http.ResponseWriter, r *http.Request) { reply(w, f.log()) })
	mux.HandleFunc("GET /v1/config/diff", func(w http.ResponseWriter, r *http.Request) {
		rev := r.URL.Query().Get("rev")
		reply(w, cfgsync.DiffResult{Commit: rev, Message: "nginx: office site on 443\n\nListen on 443 only.", Files: []cfgsync.DiffFile{{From: "etc/nginx/sites-enabled/office", To: "etc/nginx/sites-enabled/office"}},
			Patch: "--- a/etc/nginx/sites-enabled/office\n+++ b/etc/nginx/sites-enabled/office\n@@ -1,3 +1,3 @@\n server {\n-    listen 80;\n+    listen 443 ssl;\n }\n"})
	})
	mux.HandleFunc("GET /v1/config/drift", func(w http.ResponseWriter, r *http.Request) {
		reply(w, []synchronizer.DriftItem{})
	})
	mux.HandleFunc("POST /v1/config/rollback", func(w http.ResponseWriter, r *http.Request) {
		var req api.RollbackRequest
		json.NewDecoder(r.Body).Decode(&req)
		f.note("rollback " + req.Rev)
		reply(w, cfgsync.RollbackResult{Restored: req.Rev, Commit: "5e5e5e5e5e5e5e5e"})
	})
	mux.HandleFunc("GET /v1/parity", func(w http.ResponseWriter, r *http.Request) { reply(w, f.parity()) })
	mux.HandleFunc("POST /v1/parity/apply", func(w http.ResponseWriter, r *http.Request) {
		var req parity.ApplyRequest
		json.NewDecoder(r.Body).Decode(&req)
		f.note(fmt.Sprintf("parity apply yes=%v", req.Yes))
		reply(w, parity.ApplyResult{Node: "node-p", DiskSet: "P", Actions: []parity.ApplyAction{
			{Action: "install", Target: "firmware-misc-nonfree:all=20230210-5"},
			{Action: "add-to-initramfs", Target: "e1000e", Error: "update-initramfs: exit status 1"}}})
	})
	mux.HandleFunc("GET /v1/failover/status", func(w http.ResponseWriter, r *http.Request) { st, _ := f.failover(); reply(w, st) })
	mux.HandleFunc("GET /v1/failover/history", func(w http.ResponseWriter, r *http.Request) { _, h := f.failover(); reply(w, h) })
	mux.HandleFunc("POST /v1/failover/plan", func(w http.ResponseWriter, r *http.Request) {
		f.note("plan")
		reply(w, failover.Plan{ID: "plan-20261202", At: fixtureNow, Node: "node-p", Role: "primary", Planned: true, Verdict: "READY",
			Steps: []failover.Step{{Title: "Shut down node-p", Detail: []string{"systemctl poweroff"}}, {Title: "Move the disks of node-p into node-s's machine"}}, After: []string{"sentry failover status"}})
	})
	mux.HandleFunc("GET /v1/reports", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		l := f.reports
		l.Reports = nil
		for _, k := range f.reports.Reports {
			if k.Node == "node-p" || (r.URL.Query().Get("peer") == "1" && f.peerErr == "") {
				l.Reports = append(l.Reports, k)
			}
		}
		if f.peerErr != "" {
			l.PeerError = f.peerErr
		}
		reply(w, l)
	})
	mux.HandleFunc("GET /v1/report", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		week, from := q.Get("week"), q.Get("from")
		f.note("report " + from + " " + week + " " + q.Get("format"))
		f.mu.Lock()
		defer f.mu.Unlock()
		if from == "peer" && f.peerErr != "" {
			w.WriteHeader(http.StatusInternalServerError)
			reply(w, api.Error{Error: f.peerErr})
			return
		}
		t := reports.Text{Week: week, Headline: "READY (so far: 3d 21h of week 49)"}
		if week == "current" {
			t.Week = "2026-W49"
		}
		for _, k := range f.reports.Reports {
			if k.Week == week && (k.Node == "node-s") == (from == "peer") {
				t.Headline = k.Headline
			}
		}
		if from == "peer" {
			t.Node = "node-s"
		}
		t.Body = reportBody(t.Week, t.Headline, "node-p")
		reply(w, t)
	})
	mux.HandleFunc("GET /v1/modules", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		reply(w, f.modules)
	})
	mux.HandleFunc("POST /v1/modules/use", func(w http.ResponseWriter, r *http.Request) {
		var req modset.UseRequest
		json.NewDecoder(r.Body).Decode(&req)
		f.note("modules use " + req.Name + " " + req.Version)
		f.mu.Lock()
		defer f.mu.Unlock()
		for i := range f.modules.Modules {
			m := &f.modules.Modules[i].Status
			if m.Name == req.Name {
				if m.Selected != "" {
					m.History = append(m.History, m.Selected)
				}
				m.Selected, m.Disabled = req.Version, false
				for _, a := range m.Available {
					if a.Version == req.Version {
						m.Origin, m.Source = a.Origin, a.Source
					}
				}
				reply(w, modset.Changed{Status: *m})
				return
			}
		}
		w.WriteHeader(http.StatusInternalServerError)
		reply(w, api.Error{Error: "module state: no module " + req.Name})
	})
	mux.HandleFunc("POST /v1/modules/rollback", func(w http.ResponseWriter, r *http.Request) {
		var req modset.RollbackRequest
		json.NewDecoder(r.Body).Decode(&req)
		f.note("modules rollback " + req.Name)
		f.mu.Lock()
		defer f.mu.Unlock()
		for i := range f.modules.Modules {
			m := &f.modules.Modules[i].Status
			if m.Name == req.Name && len(m.History) > 0 {
				m.Selected, m.Pinned = m.History[len(m.History)-1], true
				m.History = m.History[:len(m.History)-1]
				for _, a := range m.Available {
					if a.Version == m.Selected {
						m.Origin, m.Source = a.Origin, a.Source
					}
				}
				reply(w, modset.Changed{Status: *m})
				return
			}
		}
		w.WriteHeader(http.StatusInternalServerError)
		reply(w, api.Error{Error: "module state: module " + req.Name + " has no previous version to roll back to"})
	})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.requests = append(f.requests, r.Method+" "+r.URL.Path+"?"+r.URL.RawQuery)
		f.mu.Unlock()
		mux.ServeHTTP(w, r)
	})}
	go srv.Serve(ln)
	var once sync.Once
	stop = func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			srv.Shutdown(ctx)
			srv.Close()
		})
	}
	t.Cleanup(stop)
	return stop
}

func (f *fixture) note(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bodies = append(f.bodies, s)
}

// took returns the requests made since the last call.
func (f *fixture) took() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.requests
	f.requests = nil
	return r
}

// socket is a path for the fake agent's socket (short: a unix socket's
// path has at most 107 bytes).
func socket(t testing.TB) string { return filepath.Join(t.TempDir(), "a.sock") }

// settle runs cmd and every command its messages lead to, one at a
// time, as the program would (those that block are not made by Update:
// Follow sends from outside).
func settle(m *Model, cmd tea.Cmd) {
	queue := []tea.Cmd{cmd}
	for len(queue) > 0 {
		c := queue[0]
		queue = queue[1:]
		if c == nil {
			continue
		}
		switch msg := c().(type) {
		case tea.BatchMsg:
			queue = append(queue, msg...)
		case nil:
		default:
			if _, quit := msg.(tea.QuitMsg); quit {
				continue
			}
			_, next := m.Update(msg)
			queue = append(queue, next)
		}
	}
}

// press sends keys to m and settles what they start.
func press(m *Model, keys ...string) {
	for _, k := range keys {
		// As bubbletea gives them: Text is what a key types, none for
		// the keys that type nothing.
		var msg tea.KeyPressMsg
		switch k {
		case "enter":
			msg = tea.KeyPressMsg{Code: tea.KeyEnter}
		case "esc":
			msg = tea.KeyPressMsg{Code: tea.KeyEscape}
		case "tab":
			msg = tea.KeyPressMsg{Code: tea.KeyTab}
		case "down":
			msg = tea.KeyPressMsg{Code: tea.KeyDown}
		case "up":
			msg = tea.KeyPressMsg{Code: tea.KeyUp}
		case "backspace":
			msg = tea.KeyPressMsg{Code: tea.KeyBackspace}
		default:
			msg = tea.KeyPressMsg{Code: []rune(k)[0], Text: k}
		}
		_, cmd := m.Update(msg)
		settle(m, cmd)
	}
}

// open is a model of the agent at sock, sized w x h, settled.
func open(sock string, w, h int, opts ...Option) *Model {
	m := New(agentclient.New(sock), append([]Option{WithClock(clock), WithColor(false)}, opts...)...)
	m.Update(tea.WindowSizeMsg{Width: w, Height: h})
	settle(m, m.Init())
	return m
}

// hasAll reports which of want are not in s.
func missing(s string, want ...string) []string {
	var out []string
	for _, w := range want {
		if !strings.Contains(s, w) {
			out = append(out, w)
		}
	}
	return out
}
