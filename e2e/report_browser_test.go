package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"math"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/sentryha/sentry/internal/failover"
	"github.com/sentryha/sentry/internal/readiness"
	"github.com/sentryha/sentry/internal/report"
	"github.com/sentryha/sentry/internal/store"
)

// chromiumPath is Debian's chromium (make deps installs the package).
const chromiumPath = "/usr/bin/chromium"

// TestReportHTMLInBrowser is issue 16's browser acceptance: the weekly
// report's HTML, its charts as data: URLs, rendered by a real headless
// chromium at 600 and 1024 px for a READY week and a week with NOT READY
// spells, a failed restore test and a failover. At each width the page
// must not scroll sideways (scrollWidth not above clientWidth, no element
// past the right edge), every image must have decoded (naturalWidth > 0),
// and the verdict and key figures must be in the DOM's text. Full-page
// screenshots go to the test's temp folder, named in the log.
//
// It needs no lab, only chromium, which runs as root here (e2e runs
// outside the unit tests' mount namespace, where chromium cannot start).
// The page is a file; the browser is told to make no network requests of
// its own, and the test fails on any request but file: and data:.
func TestReportHTMLInBrowser(t *testing.T) {
	requireLab(t)
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("%v: install Debian's package chromium (make deps installs it)", err)
	}
	start := time.Now()

	weeks := []browserWeek{reportWeekReady(t), reportWeekTrouble(t)}
	dir := t.TempDir()
	for i := range weeks {
		w := &weeks[i]
		path := filepath.Join(dir, w.name+".html")
		if err := os.WriteFile(path, []byte(w.r.HTML(w.charts, report.DataSource)), 0o644); err != nil {
			t.Fatal(err)
		}
		w.url = (&url.URL{Scheme: "file", Path: path}).String()
	}
	t.Logf("fixture reports built in %s", time.Since(start).Round(10*time.Millisecond))

	// Everything, the browser's whole life included, is bounded.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var browserOut lockedBuffer
	allocCtx, allocCancel := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox, // root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(filepath.Join(t.TempDir(), "chromium-profile")),
		chromedp.CombinedOutput(&browserOut),
	)
	// The allocator's cancel kills the browser it started, if the graceful
	// close below did not end it, and waits for it.
	defer allocCancel()
	browserCtx, browserCancel := chromedp.NewContext(allocCtx)
	defer browserCancel()
	launched := time.Now()
	if err := chromedp.Do(browserCtx); err != nil {
		t.Fatalf("starting %s: %v\nbrowser output:\n%s", chromiumPath, err, browserOut.String())
	}
	t.Logf("chromium started in %s", time.Since(launched).Round(10*time.Millisecond))
	defer func() {
		cctx, ccancel := context.WithTimeout(browserCtx, 10*time.Second)
		defer ccancel()
		if err := chromedp.Cancel(cctx); err != nil {
			t.Logf("closing chromium: %v", err)
		}
	}()

	for _, w := range weeks {
		for _, width := range []int64{600, 1024} {
			t.Run(fmt.Sprintf("%s/%dpx", w.name, width), func(t *testing.T) {
				checkReportPage(t, browserCtx, w, width, &browserOut)
			})
		}
	}
	figure(t, "report HTML in chromium: %d pages checked in %s (fixtures and browser start included)", 2*len(weeks), time.Since(start).Round(10*time.Millisecond))
}

// browserWeek is a fixture report and what its page must show.
type browserWeek struct {
	name   string
	r      *report.Report
	charts []report.Chart
	url    string
	// texts must be in the page's text; row is a services table row
	// (service, node, rounds, pass rate) that must be in a table.
	texts []string
	row   []string
}

// pageFacts is what the page says of itself once loaded.
type pageFacts struct {
	ScrollWidth     float64     `json:"scrollWidth"`
	ClientWidth     float64     `json:"clientWidth"`
	BodyScrollWidth float64     `json:"bodyScrollWidth"`
	InnerWidth      float64     `json:"innerWidth"`
	Verdict         string      `json:"verdict"`
	Text            string      `json:"text"`
	Images          []imageFact `json:"images"`
	Outside         []string    `json:"outside"`
	Rows            [][]string  `json:"rows"`
}

type imageFact struct {
	Alt           string  `json:"alt"`
	Complete      bool    `json:"complete"`
	NaturalWidth  int     `json:"naturalWidth"`
	NaturalHeight int     `json:"naturalHeight"`
	Width         float64 `json:"width"`
	Right         float64 `json:"right"`
}

// pageFactsJS waits for the images to decode and returns pageFacts.
// Outside lists the elements whose box reaches past the viewport's edges.
const pageFactsJS = `(async () => {
  await Promise.all(Array.from(document.images, i => i.decode().catch(() => null)));
  const de = document.documentElement;
  const outside = [];
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.right > de.clientWidth + 0.5 || r.left < -0.5) {
      outside.push(el.tagName.toLowerCase() + ' ' + Math.round(r.left) + '..' + Math.round(r.right) + ' px: ' + el.textContent.trim().slice(0, 80));
    }
  }
  return {
    scrollWidth: de.scrollWidth, clientWidth: de.clientWidth,
    bodyScrollWidth: document.body.scrollWidth, innerWidth: window.innerWidth,
    verdict: (document.getElementById('verdict') || {innerText: ''}).innerText,
    text: document.body.innerText,
    images: Array.from(document.images, i => ({alt: i.alt, complete: i.complete,
      naturalWidth: i.naturalWidth, naturalHeight: i.naturalHeight,
      width: i.getBoundingClientRect().width, right: i.getBoundingClientRect().right})),
    outside: outside.slice(0, 20),
    rows: Array.from(document.querySelectorAll('tr'), tr => Array.from(tr.cells, c => c.innerText.trim())),
  };
})()`

func checkReportPage(t *testing.T, browserCtx context.Context, w browserWeek, width int64, browserOut *lockedBuffer) {
	start := time.Now()
	tabCtx, tabCancel := chromedp.NewContext(browserCtx)
	defer tabCancel()
	// Every request the page makes: only the file and its data: images.
	var mu sync.Mutex
	var requests []string
	if err := chromedp.Listen(tabCtx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok && e.Request != nil {
			mu.Lock()
			requests = append(requests, e.Request.URL)
			mu.Unlock()
		}
	}); err != nil {
		t.Fatalf("opening a tab: %v\nbrowser output:\n%s", err, browserOut.String())
	}
	actx, acancel := context.WithTimeout(tabCtx, 30*time.Second)
	defer acancel()
	if err := chromedp.Do(actx, chromedp.EmulateViewport(width, 800), chromedp.Navigate(w.url)); err != nil {
		t.Fatalf("loading %s at %d px: %v", w.url, width, err)
	}
	facts, err := chromedp.Run(actx, chromedp.Evaluate[pageFacts](pageFactsJS, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("reading the page: %v", err)
	}
	shot, err := chromedp.Run(actx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(t.TempDir(), fmt.Sprintf("report-%s-%dpx.png", w.name, width))
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("the screenshot is not a PNG: %v", err)
	}
	t.Logf("screenshot %s: %dx%d px, %d bytes", path, cfg.Width, cfg.Height, len(shot))

	// No horizontal scroll.
	if facts.InnerWidth != float64(width) {
		t.Errorf("the viewport is %v px wide, want %d", facts.InnerWidth, width)
	}
	if facts.ScrollWidth > facts.ClientWidth || facts.BodyScrollWidth > facts.ClientWidth {
		t.Errorf("the page scrolls sideways at %d px: scrollWidth %v (body %v) > clientWidth %v", width, facts.ScrollWidth, facts.BodyScrollWidth, facts.ClientWidth)
	}
	for _, o := range facts.Outside {
		t.Errorf("at %d px an element reaches outside the viewport (%v px): %s", width, facts.ClientWidth, o)
	}
	if int64(cfg.Width) > width {
		t.Errorf("the full-page screenshot is %d px wide, the viewport %d", cfg.Width, width)
	}
	// Every image decoded, as many as the charts, none past the edge.
	if len(facts.Images) != len(w.charts) {
		t.Errorf("%d images in the page, want %d (the charts)", len(facts.Images), len(w.charts))
	}
	for _, img := range facts.Images {
		if !img.Complete || img.NaturalWidth <= 0 || img.NaturalHeight <= 0 {
			t.Errorf("image %q did not load: complete %v, natural %dx%d", img.Alt, img.Complete, img.NaturalWidth, img.NaturalHeight)
		}
		if img.Width <= 0 || img.Right > facts.ClientWidth+0.5 {
			t.Errorf("image %q is drawn %v px wide, its right edge at %v px of %v", img.Alt, img.Width, img.Right, facts.ClientWidth)
		}
	}
	// The verdict and key figures in the DOM.
	if got := strings.TrimSpace(facts.Verdict); got != w.r.Headline() {
		t.Errorf("the verdict element says %q, want %q", got, w.r.Headline())
	}
	text := strings.Join(strings.Fields(facts.Text), " ")
	for _, want := range w.texts {
		if !strings.Contains(text, want) {
			t.Errorf("the page's text does not hold %q", want)
		}
	}
	if !hasRow(facts.Rows, w.row) {
		t.Errorf("no table row starts with %q; rows: %q", w.row, facts.Rows)
	}
	// Nothing but the file and its data: URLs was fetched.
	mu.Lock()
	for _, u := range requests {
		if !strings.HasPrefix(u, "file:") && !strings.HasPrefix(u, "data:") {
			t.Errorf("the page made a request to %.120s", u)
		}
	}
	mu.Unlock()
	if t.Failed() {
		t.Logf("page text at %d px:\n%s", width, facts.Text)
	}
	t.Logf("%d px: scrollWidth %v, clientWidth %v, %d images decoded, checked in %s", width, facts.ScrollWidth, facts.ClientWidth, len(facts.Images), time.Since(start).Round(10*time.Millisecond))
}

func hasRow(rows [][]string, want []string) bool {
	for _, row := range rows {
		if len(row) < len(want) {
			continue
		}
		ok := true
		for i, w := range want {
			ok = ok && row[i] == w
		}
		if ok {
			return true
		}
	}
	return false
}

// pctText is a share as the report prints it: one decimal, rounded down.
func pctText(f float64) string {
	return fmt.Sprintf("%.1f %%", math.Floor(f*1000)/10)
}

// serviceRow is the report's row of a service on a node.
func serviceRow(t *testing.T, r *report.Report, service, node string) report.ServiceRow {
	t.Helper()
	for _, row := range r.Services.Rows {
		if row.Service == service && row.Node == node {
			return row
		}
	}
	t.Fatalf("the report has no row for %s on %s: %+v", service, node, r.Services.Rows)
	return report.ServiceRow{}
}

// lockedBuffer is the browser's output, written from chromedp's goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// The fixture weeks are built as internal/report's tests build theirs,
// through the exported APIs of internal/store and internal/report: rounds
// every 5 minutes of four probes on two nodes, the events the agent
// records, the stored verdict and failover records.

// reportW48 is Monday 23 November 2026, the start of 2026-W48.
var reportW48 = time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)

type reportFixture struct {
	t   *testing.T
	st  *store.Store
	rng *rand.Rand
	// down says a node has no results at a time; fail says a round
	// fails, and in which phase.
	down func(node string, at time.Time) bool
	fail func(node, probe string, at time.Time) (bool, string)
}

var reportProbes = []struct {
	name, kind string
	ms         int
}{{"web", "http", 40}, {"mail", "mail", 900}, {"db", "postgres", 8}, {"disk-root", "disk", 2}}

func newReportFixture(t *testing.T) *reportFixture {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &reportFixture{t: t, st: st, rng: rand.New(rand.NewPCG(16, 49)),
		down: func(string, time.Time) bool { return false },
		fail: func(string, string, time.Time) (bool, string) { return false, "" }}
}

// rounds stores the rounds of [from, to), a day per transaction.
func (f *reportFixture) rounds(from, to time.Time) {
	f.t.Helper()
	var batch []store.StoredResult
	flush := func() {
		if err := f.st.PutResults(batch...); err != nil {
			f.t.Fatal(err)
		}
		batch = batch[:0]
	}
	const step = 5 * time.Minute
	for at := from; at.Before(to); at = at.Add(step) {
		for ni, node := range []string{"alpha", "beta"} {
			if f.down(node, at) {
				continue
			}
			for _, p := range reportProbes {
				failed, phase := f.fail(node, p.name, at)
				d := int64(float64(p.ms) * (0.7 + 0.6*f.rng.Float64()))
				if f.rng.IntN(100) == 0 {
					d *= 4
				}
				r := store.StoredResult{Node: node, Probe: p.name, Kind: p.kind, Start: at, DurationMS: d, OK: !failed, FailedPhase: phase}
				if failed {
					r.Message = phase + ": failed"
				}
				if p.kind == "disk" {
					days := at.Sub(from).Hours() / 24
					r.Values = map[string]string{"free_percent": fmt.Sprintf("%.1f", 62-float64(ni)*20-days*1.5)}
				}
				batch = append(batch, r)
			}
		}
		if at.Add(step).Truncate(24*time.Hour) != at.Truncate(24*time.Hour) {
			flush()
		}
	}
	flush()
}

func (f *reportFixture) event(at time.Time, kind, node, msg string, fields map[string]string) {
	f.t.Helper()
	if _, err := f.st.AppendEvent(store.Event{Time: at, Kind: kind, Node: node, Message: msg, Fields: fields}); err != nil {
		f.t.Fatal(err)
	}
}

// ready records a change of alpha's verdict.
func (f *reportFixture) ready(at time.Time, verdict, cause string) {
	f.t.Helper()
	msg := verdict
	if cause != "" {
		msg += ": " + cause
	}
	f.event(at, "ready-changed", "alpha", msg, map[string]string{"verdict": verdict, "key": verdict})
}

func (f *reportFixture) restore(run report.RestoreRun) {
	f.t.Helper()
	e, err := run.Event()
	if err != nil {
		f.t.Fatal(err)
	}
	f.event(e.Time, e.Kind, e.Node, e.Message, e.Fields)
}

func (f *reportFixture) verdict(res readiness.Result) {
	f.t.Helper()
	b, err := json.Marshal(res)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := f.st.PutVerdict(b); err != nil {
		f.t.Fatal(err)
	}
}

func (f *reportFixture) failover(rec failover.Record) {
	f.t.Helper()
	b, err := json.Marshal(rec)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := f.st.PutFailoverDoc("record", rec.ID, b); err != nil {
		f.t.Fatal(err)
	}
}

// build makes the report of 2026-W48 on Monday after it, and its charts.
func (f *reportFixture) build(name string) browserWeek {
	f.t.Helper()
	now := reportW48.AddDate(0, 0, 7).Add(10 * time.Minute)
	r, err := report.New(f.st, report.WithCluster("office"), report.WithNodes("alpha", "beta"),
		report.WithClock(func() time.Time { return now })).Build("2026-W48")
	if err != nil {
		f.t.Fatal(err)
	}
	charts, err := r.Charts()
	if err != nil {
		f.t.Fatal(err)
	}
	return browserWeek{name: name, r: r, charts: charts}
}

// reportFindings is a READY verdict's findings.
func reportFindings(at time.Time) []readiness.Finding {
	ev := func(node, what, value string) readiness.Evidence {
		return readiness.Evidence{Node: node, What: what, Value: value, Measured: at}
	}
	return []readiness.Finding{
		{Check: "boot.compat", State: readiness.Pass, Severity: readiness.Block, Reason: "each disk set boots on the other machine",
			Evidence: []readiness.Evidence{ev("alpha", "disks of alpha on beta's hardware", "0000:00:1f.2 ahci: driver in alpha's initramfs; 0000:03:00.0 igb: driver present"),
				ev("beta", "disks of beta on alpha's hardware", "0000:00:17.0 ahci: driver in beta's initramfs; 0000:02:00.0 e1000e: driver present")}},
		{Check: "boot.loader", State: readiness.Pass, Severity: readiness.Block, Reason: "fallback loader on every member"},
		{Check: "modules", State: readiness.Pass, Severity: readiness.Block, Reason: "module versions and selection identical",
			Evidence: []readiness.Evidence{ev("", "modules", "postfix@1.4.0 dovecot@2.1.0 postgres@1.0.3 web@1.2.0")}},
		{Check: "raid", State: readiness.Pass, Severity: readiness.Block, Reason: "md0, md1 clean on both nodes",
			Evidence: []readiness.Evidence{ev("alpha", "md0", "clean [UU]"), ev("beta", "md0", "clean [UU]")}},
		{Check: "disks", State: readiness.Pass, Severity: readiness.Warn, Reason: "SMART healthy on 4 disks"},
	}
}

const reportRepo = "sftp:backup@nas:/srv/restic/office"

// commonWeek writes what both weeks have: the rounds of 2026-W47 and W48,
// a configuration commit and its apply, a kernel update, the inventories
// and the package drift state.
func (f *reportFixture) commonWeek() {
	start, prev, end := reportW48, reportW48.AddDate(0, 0, -7), reportW48.AddDate(0, 0, 7)
	f.ready(prev.Add(-time.Hour), "READY", "")
	f.event(prev.Add(2*time.Hour), "inventory", "alpha", "inventory taken (boot): 612 packages, boot kernel 6.12.57+deb13-amd64, 14 PCI devices", map[string]string{"packages": "612"})
	f.event(prev.Add(2*time.Hour), "inventory", "beta", "inventory taken (boot): 612 packages, boot kernel 6.12.57+deb13-amd64, 12 PCI devices", map[string]string{"packages": "612"})
	f.rounds(prev, end)
	f.event(start.Add(26*time.Hour), "config-commit", "alpha", "configuration commit 3f2a9c1b7d4e: 2 path(s) changed",
		map[string]string{"commit": "3f2a9c1b7d4e5f60718293a4b5c6d7e8f9012345", "paths": "/etc/postfix/main.cf /etc/dovecot/conf.d/10-ssl.conf"})
	f.event(start.Add(26*time.Hour+time.Minute), "config-applied", "beta", "configuration 3f2a9c1b7d4e applied: 2 path(s), reloaded postfix.service dovecot.service", map[string]string{"commit": "3f2a9c1b7d4e5f60718293a4b5c6d7e8f9012345"})
	f.event(start.Add(50*time.Hour), "parity-apply", "beta", "install linux-image-6.12.58+deb13-amd64 done (Debian archive, signed)", map[string]string{"action": "install"})
	f.event(start.Add(51*time.Hour), "inventory", "alpha", "inventory taken (package change): 613 packages, boot kernel 6.12.58+deb13-amd64, 14 PCI devices", nil)
	f.event(start.Add(51*time.Hour), "inventory", "beta", "inventory taken (package change): 613 packages, boot kernel 6.12.58+deb13-amd64, 12 PCI devices", nil)
	f.event(start.Add(51*time.Hour+time.Minute), "drift", "alpha", "packages in step with the peer", map[string]string{"state": "in-step"})
}

// reportWeekReady is 2026-W48 READY all week, its restore test good.
func reportWeekReady(t *testing.T) browserWeek {
	f := newReportFixture(t)
	f.commonWeek()
	f.restore(report.RestoreRun{At: reportW48.Add(3*24*time.Hour + 3*time.Hour), Node: "alpha", Repo: reportRepo, Snapshot: "4f1c2b9e",
		Subset: "3/52", CheckedPacks: 61, CheckedBytes: 14_200_000, FilesRestored: 20, FilesCompared: 20, DurationS: 312})
	now := reportW48.AddDate(0, 0, 7)
	f.verdict(readiness.Result{Verdict: readiness.Ready, At: now, Findings: reportFindings(now.Add(-time.Hour))})
	w := f.build("ready")
	r := w.r
	if r.Verdict.Now != "READY" || r.Verdict.ReadyShare != 1 || len(r.Verdict.Spells) != 0 {
		t.Fatalf("the READY week's verdict: %+v", r.Verdict)
	}
	web := serviceRow(t, r, "web", "alpha")
	w.texts = []string{"READY (100.0 % of week 48)", "READY " + pctText(r.Verdict.ReadyShare), "good", "3f2a9c1b7d4e"}
	w.row = []string{"web", "alpha", fmt.Sprint(web.Rounds), pctText(web.PassRate)}
	return w
}

// reportWeekTrouble is 2026-W48 with NOT READY spells: web failing on
// beta for three hours, a failed configuration apply, an unplanned
// failover on Friday (alpha's machine died, its disks booted on beta's
// machine), the restore test failed on Saturday (two files differ from
// the snapshot: NOT READY until the next good run) and package drift at
// the end of the week.
func reportWeekTrouble(t *testing.T) browserWeek {
	f := newReportFixture(t)
	w48 := reportW48
	webDown := w48.Add(2*24*time.Hour + 9*time.Hour)
	died := w48.Add(4*24*time.Hour + 13*time.Hour + 7*time.Minute)
	back := died.Add(6*time.Minute + 40*time.Second)
	f.fail = func(node, probe string, at time.Time) (bool, string) {
		if node == "beta" && probe == "web" && !at.Before(webDown) && at.Before(webDown.Add(3*time.Hour)) {
			return true, "connect"
		}
		if probe == "mail" && at.Minute() == 0 && at.Hour()%6 == 0 && at.After(w48) {
			return true, "imap-fetch"
		}
		return false, ""
	}
	f.down = func(node string, at time.Time) bool {
		return node == "alpha" && !at.Before(died) && at.Before(back)
	}
	f.commonWeek()
	// Web down on beta.
	f.ready(webDown.Add(5*time.Minute), "NOT READY", "verify.green: web on beta: connect: connection refused (and 1 more)")
	f.ready(webDown.Add(3*time.Hour+5*time.Minute), "READY", "")
	// A configuration that failed to apply on beta.
	cfgFail := w48.Add(3*24*time.Hour + 11*time.Hour)
	f.event(cfgFail, "config-apply-failed", "beta", "configuration 9d8e7f6a5b4c failed to apply; rolled back to 3f2a9c1b7d4e: postfix check: main.cf line 12: bad parameter; it waits for a newer commit or sync --force",
		map[string]string{"commit": "9d8e7f6a5b4c3d2e1f00112233445566778899aa"})
	f.ready(cfgFail.Add(30*time.Second), "NOT READY", "sync.failed: beta failed to apply configuration 9d8e7f6a5b4c")
	f.event(cfgFail.Add(95*time.Minute), "config-commit", "alpha", "configuration commit 0a1b2c3d4e5f: 1 path(s) changed",
		map[string]string{"commit": "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567", "paths": "/etc/postfix/main.cf"})
	f.ready(cfgFail.Add(100*time.Minute), "READY", "")
	// The failover: alpha's machine died on Friday.
	f.event(died.Add(30*time.Second), "peer-unreachable", "alpha", "peer alpha at 10.0.0.1:7443 does not answer: i/o timeout", nil)
	f.ready(died.Add(time.Minute), "NOT READY", "peer: alpha does not answer; stamps: no primary running")
	f.event(back, "failover", "alpha", "failover: disk set office-a booted on machine m-beta (was m-alpha)", nil)
	f.event(back.Add(time.Minute), "peer-reachable", "alpha", "peer alpha answers", nil)
	f.ready(back.Add(20*time.Minute), "READY", "")
	f.failover(failover.Record{ID: "20261127T130700Z-failover", Kind: failover.KindFailover, DiskSet: "office-a", Node: "alpha", FromMachine: "m-alpha", ToMachine: "m-beta",
		LastPeerContact: died, Boot: died.Add(3 * time.Minute), Decision: died.Add(4 * time.Minute), AddressUp: died.Add(4*time.Minute + 10*time.Second),
		Services: map[string]time.Time{"web": back.Add(-20 * time.Second), "mail": back}, PeerBack: back.Add(2 * time.Minute),
		VerdictAfter: "READY", VerdictAt: back.Add(20 * time.Minute), Complete: true})
	// The restore test failed on Saturday night, NOT READY from then on.
	restoreAt := w48.Add(5*24*time.Hour + 3*time.Hour)
	f.restore(report.RestoreRun{At: restoreAt, Node: "alpha", Repo: reportRepo, Snapshot: "b4c5d6e7", Subset: "3/52", CheckedPacks: 60, CheckedBytes: 13_100_000,
		FilesRestored: 20, FilesCompared: 20, Mismatches: []string{"/srv/mail/office/cur/1733212345.M1P2.alpha", "/var/lib/postgresql/17/main/base/16384/2619"},
		Command: "restic -r " + reportRepo + " check --read-data-subset=3/52"})
	f.ready(restoreAt.Add(time.Minute), "NOT READY", "backup: the restore test of "+reportRepo+" failed: 2 of 20 files differ from snapshot b4c5d6e7")
	// Package drift at the end.
	drift := w48.Add(6*24*time.Hour + 20*time.Hour)
	f.event(drift, "drift", "alpha", "packages drifted: 1 difference(s): openssl 3.5.1-1 on alpha, 3.5.0-3 on beta", map[string]string{"state": "drifted"})
	f.ready(drift.Add(time.Minute), "NOT READY", "packages: openssl differs: 3.5.1-1 on alpha, 3.5.0-3 on beta")
	now := w48.AddDate(0, 0, 7)
	f.verdict(readiness.Result{Verdict: readiness.NotReady, At: now, Findings: append([]readiness.Finding{
		{Check: "packages", State: readiness.Fail, Severity: readiness.Block, Blocks: true, Reason: "openssl differs: 3.5.1-1 on alpha, 3.5.0-3 on beta", Fix: "sentry parity plan"},
		{Check: "backup", State: readiness.Fail, Severity: readiness.Block, Blocks: true, Reason: "the last restore test failed: 2 of 20 files differ from snapshot b4c5d6e7",
			Fix: "restic -r " + reportRepo + " check --read-data-subset=3/52"},
	}, reportFindings(now.Add(-time.Hour))...)})
	w := f.build("trouble")
	r := w.r
	if r.Verdict.Now != "NOT READY" || r.Verdict.ReadyShare >= 1 || len(r.Verdict.Spells) != 4 || !r.Verdict.Spells[3].To.Equal(r.Until) {
		t.Fatalf("the NOT READY week's verdict: %+v", r.Verdict)
	}
	if !r.Backups.Failing || len(r.Failovers.Items) != 1 || r.Failovers.Items[0].Kind != "failover" {
		t.Fatalf("the NOT READY week: backups %+v, failovers %+v", r.Backups, r.Failovers)
	}
	web := serviceRow(t, r, "web", "beta")
	if web.Failures == 0 || web.PassRate >= 1 {
		t.Fatalf("web on beta did not fail: %+v", web)
	}
	w.texts = []string{r.Headline(), "NOT READY (" + pctText(r.Verdict.ReadyShare) + " of week 48)", "READY " + pctText(r.Verdict.ReadyShare),
		"web on beta: connect: connection refused", "sentry parity plan", "m-alpha -> m-beta", "FAILED", "b4c5d6e7"}
	w.row = []string{"web", "beta", fmt.Sprint(web.Rounds), pctText(web.PassRate)}
	return w
}
