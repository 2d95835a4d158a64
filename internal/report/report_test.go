package report

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"image/png"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sentryha/sentry/internal/store"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it); got:\n%s", path, got)
	}
}

var goldenCases = []struct {
	name  string
	week  string
	build func(testing.TB) (*fixture, *Builder)
}{
	{"ready", "2026-W48", fixtureReady},
	{"notready", "2026-W48", fixtureNotReady},
	{"restore-failed", "2026-W49", fixtureRestoreFailed},
	{"failover", "2026-W48", fixtureFailover},
}

// TestGolden compares the text and Markdown reports of the fixture weeks
// with the golden files, and checks the facts each case is about, so
// that -update cannot bless a wrong report unseen.
func TestGolden(t *testing.T) {
	for _, c := range goldenCases {
		t.Run(c.name, func(t *testing.T) {
			_, b := c.build(t)
			r, err := b.Build(c.week)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, c.name+".txt", r.Text())
			golden(t, c.name+".md", r.Markdown())
			goldenFacts[c.name](t, r)
		})
	}
}

var goldenFacts = map[string]func(*testing.T, *Report){
	"ready": func(t *testing.T, r *Report) {
		if r.Verdict.ReadyShare != 1 || len(r.Verdict.Spells) != 0 || r.Verdict.Now != "READY" {
			t.Errorf("verdict: %+v", r.Verdict)
		}
		if got := r.Subject(""); got != "Sentry office: READY (100.0 % of week 48)" {
			t.Errorf("subject %q", got)
		}
		if len(r.Actions) != 0 {
			t.Errorf("actions: %+v", r.Actions)
		}
		if len(r.Services.Rows) != 8 || r.Services.Rows[0].Rounds != 2016 {
			t.Errorf("rows: %d, first %+v", len(r.Services.Rows), r.Services.Rows[0])
		}
		if len(r.Packages.Kernels) != 2 || len(r.Config.Commits) != 1 || len(r.Backups.Runs) != 1 {
			t.Errorf("kernels %v commits %v restores %v", r.Packages.Kernels, r.Config.Commits, r.Backups.Runs)
		}
	},
	"notready": func(t *testing.T, r *Report) {
		if len(r.Verdict.Spells) != 4 {
			t.Fatalf("spells: %+v", r.Verdict.Spells)
		}
		if s := r.Verdict.Spells[0]; s.DurationS != 3*3600 || s.Verdict != "NOT READY" || !strings.Contains(s.Causes[0], "web on beta") {
			t.Errorf("first spell: %+v", s)
		}
		if s := r.Verdict.Spells[2]; s.Verdict != "UNKNOWN" || s.DurationS != 40*60 {
			t.Errorf("peer spell: %+v", s)
		}
		if r.Actions[0].Command != "sentry parity plan" {
			t.Errorf("first action: %+v", r.Actions[0])
		}
		for _, row := range r.Services.Rows {
			if row.Service == "web" && row.Node == "beta" && (row.Failures != 36 || row.FailedPhases[0].Phase != "connect") {
				t.Errorf("web on beta: %+v", row)
			}
		}
		if r.Compare.Trend != "worse" {
			t.Errorf("week over week: %+v", r.Compare)
		}
	},
	"restore-failed": func(t *testing.T, r *Report) {
		if !r.Partial || !r.Backups.Failing || len(r.Backups.Runs) != 2 || r.Backups.Runs[0].Outcome() != "skipped" {
			t.Errorf("backups: %+v partial %v", r.Backups, r.Partial)
		}
		if last := r.Verdict.Spells[len(r.Verdict.Spells)-1]; !last.Ongoing {
			t.Errorf("the restore spell is not ongoing: %+v", last)
		}
		if !strings.Contains(r.Subject(""), "NOT READY") || !strings.Contains(r.Subject(""), "so far") {
			t.Errorf("subject %q", r.Subject(""))
		}
	},
	"failover": func(t *testing.T, r *Report) {
		if len(r.Failovers.Items) != 2 || r.Failovers.Items[0].Kind != "failover" || r.Failovers.Items[1].Kind != "planned" {
			t.Fatalf("failovers: %+v", r.Failovers.Items)
		}
		if d := r.Failovers.Items[0].DowntimeS; d != 400 {
			t.Errorf("downtime %v s, want 400", d)
		}
	},
}

// TestNoHistory: an empty store gives "not enough data", never zeros.
func TestNoHistory(t *testing.T) {
	f := newFixture(t)
	b := New(f.st, WithCluster("office"), clockAt(time.Date(2026, 12, 3, 5, 0, 0, 0, time.UTC)))
	r, err := b.Build(b.CurrentWeek())
	if err != nil {
		t.Fatal(err)
	}
	if !r.NoHistory || r.Verdict.Known {
		t.Errorf("NoHistory %v, Known %v", r.NoHistory, r.Verdict.Known)
	}
	for name, s := range map[string]string{"text": r.Text(), "markdown": r.Markdown(), "subject": r.Subject("")} {
		if !strings.Contains(s, NoData) {
			t.Errorf("%s does not say %q:\n%s", name, NoData, s)
		}
		if regexp.MustCompile(`\b0(\.0)? ?%|\b0 ms\b`).MatchString(s) {
			t.Errorf("%s shows a zero figure:\n%s", name, s)
		}
	}
	if got := r.Subject(""); got != "Sentry office: not enough data (week 49 so far: not enough data)" {
		t.Errorf("subject %q", got)
	}
	charts, err := r.Charts()
	if err != nil || len(charts) != 0 {
		t.Errorf("charts with no data: %d, %v", len(charts), err)
	}
	if _, err := r.Mail(MailHeader{From: "sentry@office.example", To: []string{"owner@office.example"}}); err != nil {
		t.Error(err)
	}
}

func TestBadWeeks(t *testing.T) {
	_, b := fixtureReady(t)
	cases := map[string]string{
		"2026-W50": "week 2026-W50 is in the future (now is 2026-11-30T00:10:00Z, week 2026-W49)",
		"2026-W40": "week 2026-W40 is before the first data (2026-11-15T23:00:00Z, week 2026-W46)",
		"2026-49":  `week "2026-49" is not written as 2026-W49`,
		"2025-W53": `week "2025-W53" does not exist (2025 has 52 ISO weeks)`,
	}
	for week, want := range cases {
		_, err := b.Build(week)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Build(%s) = %v, want an error saying %q", week, err, want)
		}
	}
	// The first week with data is fine, if short of it.
	if _, err := b.Build("2026-W47"); err != nil {
		t.Errorf("Build(2026-W47): %v", err)
	}
}

// TestPeerUnreachableAllWeek: beta gone since the week before; its rows
// say so, an action asks to bring it back.
func TestPeerUnreachableAllWeek(t *testing.T) {
	f := newFixture(t)
	now := w49.Add(10 * time.Minute)
	gone := w48.Add(-2 * 24 * time.Hour)
	f.down = func(node string, at time.Time) bool { return node == "beta" && !at.Before(gone) }
	f.ready(w48.AddDate(0, 0, -7), "READY", "")
	f.rounds(w48.AddDate(0, 0, -7), w49)
	f.event(gone.Add(time.Minute), "peer-unreachable", "beta", "peer beta at 10.0.0.2:7443 does not answer: no route to host", nil)
	f.ready(gone.Add(2*time.Minute), "UNKNOWN", "peer: beta does not answer")
	r, err := New(f.st, WithCluster("office"), clockAt(now)).Build("2026-W48")
	if err != nil {
		t.Fatal(err)
	}
	var betaRows int
	for _, row := range r.Services.Rows {
		if row.Node == "beta" {
			betaRows++
			if row.Rounds != 0 || !strings.Contains(row.NoData, "peer beta unreachable all week") {
				t.Errorf("beta row: %+v", row)
			}
		}
	}
	if betaRows != len(fixtureProbes) {
		t.Errorf("%d rows for beta, want %d", betaRows, len(fixtureProbes))
	}
	if len(r.Actions) == 0 || r.Actions[0].Command != "sentry ready" || r.Actions[1].What != "bring beta back" {
		t.Errorf("actions: %+v", r.Actions)
	}
	if r.Verdict.Now != "UNKNOWN" || r.Verdict.ReadyShare != 0 || !r.Verdict.Known {
		t.Errorf("verdict: %+v", r.Verdict)
	}
	text := r.Text()
	for _, want := range []string{"peer beta unreachable all week (since Sat 2026-11-21", "UNKNOWN (0.0 % of week 48)"} {
		if !strings.Contains(text, want) {
			t.Errorf("text does not say %q:\n%s", want, text)
		}
	}
}

func TestStoredReports(t *testing.T) {
	f, b := fixtureReady(t)
	h := f.st.History()
	for _, w := range []string{"2026-W47", "2026-W48"} {
		r, err := b.Build(w)
		if err != nil {
			t.Fatal(err)
		}
		if err := Save(h, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.PutReport("2026-W46", []byte(`{"version":1,"week":"2026-W46","verdict":`)); err != nil {
		t.Fatal(err)
	}
	if err := h.PutReport("2026-W45", []byte(`{"version":1,"week":"2026-W44"}`)); err != nil {
		t.Fatal(err)
	}
	list, skipped, err := List(h)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Week != "2026-W48" || list[0].Headline != "READY (100.0 % of week 48)" {
		t.Errorf("list: %+v", list)
	}
	if len(skipped) != 2 || !strings.Contains(skipped[0], "stored report 2026-W46 is damaged") || !strings.Contains(skipped[1], `stored report 2026-W45 is damaged: it says it is the report of week "2026-W44"`) {
		t.Errorf("skipped: %q", skipped)
	}
	if _, _, err := Load(h, "2026-W46"); err == nil || !strings.Contains(err.Error(), "2026-W46") {
		t.Errorf("Load of a damaged report: %v", err)
	}
	r, ok, err := Load(h, "2026-W48")
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	// A stored report renders as it was made, charts included.
	again, _ := b.Build("2026-W48")
	if r.Text() != again.Text() {
		t.Error("the stored report renders differently from the one built")
	}
	c1, _ := r.Charts()
	c2, _ := again.Charts()
	if len(c1) != len(c2) || !bytes.Equal(c1[1].PNG, c2[1].PNG) {
		t.Error("the stored report's charts differ")
	}
	if _, ok, err := Load(h, "2026-W30"); ok || err != nil {
		t.Errorf("Load of a week not stored: %v %v", ok, err)
	}
}

func TestJSONRoundTrip(t *testing.T) {
	_, b := fixtureNotReady(t)
	r, err := b.Build("2026-W48")
	if err != nil {
		t.Fatal(err)
	}
	js, err := r.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	if back.Markdown() != r.Markdown() {
		t.Error("the JSON document does not render the same report")
	}
}

// TestHTML: at most 640 px wide, every chart with alt text and size, the
// verdict and key figures in the page.
func TestHTML(t *testing.T) {
	_, b := fixtureNotReady(t)
	r, err := b.Build("2026-W48")
	if err != nil {
		t.Fatal(err)
	}
	charts, err := r.Charts()
	if err != nil {
		t.Fatal(err)
	}
	if len(charts) != 3 {
		t.Fatalf("%d charts, want 3", len(charts))
	}
	page := r.HTML(charts, DataSource)
	if !strings.Contains(page, "max-width:640px") {
		t.Error("the page is not held to 640 px")
	}
	for _, m := range regexp.MustCompile(`width[=:]"?(\d+)`).FindAllStringSubmatch(page, -1) {
		var w int
		fmt.Sscan(m[1], &w)
		if w > 640 {
			t.Errorf("an element %d px wide", w)
		}
	}
	imgs := regexp.MustCompile(`<img [^>]*>`).FindAllString(page, -1)
	if len(imgs) != 3 {
		t.Errorf("%d images", len(imgs))
	}
	for _, img := range imgs {
		if !regexp.MustCompile(`alt="[^"]{20,}"`).MatchString(img) {
			t.Errorf("image without a useful alt text: %.200s", img)
		}
	}
	for _, want := range []string{"NOT READY (", "web", "beta", "3h", "sentry parity plan"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page does not hold %q", want)
		}
	}
	if dir := t.TempDir(); true {
		path := filepath.Join(dir, "report.html")
		if err := os.WriteFile(path, []byte(page), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("page written to %s", path)
	}
}

// TestMail parses the built mail with mime/multipart: the structure, the
// subject, and every CID image present, decoding as PNG.
func TestMail(t *testing.T) {
	_, b := fixtureRestoreFailed(t)
	r, err := b.Build("2026-W49")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := r.Mail(MailHeader{From: "Sentry <sentry@office.example>", To: []string{"owner@office.example"}, Note: "sent by beta: alpha unreachable for a day"})
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range bytes.Split(raw, []byte("\r\n")) {
		if len(l) > 998 {
			t.Errorf("line %d is %d bytes long", i, len(l))
		}
		if bytes.Contains(l, []byte("\n")) {
			t.Errorf("line %d ends in a bare LF", i)
			break
		}
	}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "Sentry office (sent by beta: alpha unreachable for a day): NOT READY ("; !strings.HasPrefix(subject, want) || !strings.Contains(subject, "of week 49 so far)") {
		t.Errorf("subject %q", subject)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("top: %s %v", mt, err)
	}
	alt := multipart.NewReader(msg.Body, params["boundary"])
	text := part(t, alt, "text/plain")
	if !strings.Contains(text, "Backups tested") {
		t.Error("the text part is not the report")
	}
	relPart, err := alt.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	mt, params, _ = mime.ParseMediaType(relPart.Header.Get("Content-Type"))
	if mt != "multipart/related" || params["type"] != "text/html" {
		t.Fatalf("second part: %s %v", mt, params)
	}
	rel := multipart.NewReader(relPart, params["boundary"])
	page := part(t, rel, "text/html")
	images := map[string][]byte{}
	for {
		p, err := rel.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if ct := p.Header.Get("Content-Type"); !strings.HasPrefix(ct, "image/png") {
			t.Errorf("related part %s", ct)
		}
		if p.Header.Get("Content-Transfer-Encoding") != "base64" || !strings.HasPrefix(p.Header.Get("Content-Disposition"), "inline") {
			t.Errorf("image headers %v", p.Header)
		}
		body, err := io.ReadAll(p) // multipart.Reader decodes quoted-printable only
		if err != nil {
			t.Fatal(err)
		}
		images[strings.Trim(p.Header.Get("Content-ID"), "<>")] = body
	}
	if _, err := alt.NextPart(); err != io.EOF {
		t.Errorf("a third alternative: %v", err)
	}
	cids := regexp.MustCompile(`src="cid:([^"]+)"`).FindAllStringSubmatch(page, -1)
	if len(cids) != 3 {
		t.Errorf("%d cid images in the HTML, want 3", len(cids))
	}
	for _, m := range cids {
		b64, ok := images[m[1]]
		if !ok {
			t.Errorf("cid:%s has no part", m[1])
			continue
		}
		data := make([]byte, len(b64))
		n, err := decodeBase64(b64, data)
		if err != nil {
			t.Errorf("cid:%s: %v", m[1], err)
			continue
		}
		img, err := png.Decode(bytes.NewReader(data[:n]))
		if err != nil {
			t.Errorf("cid:%s is not a PNG: %v", m[1], err)
			continue
		}
		if w := img.Bounds().Dx(); w == 0 || w > 640 {
			t.Errorf("cid:%s is %d px wide", m[1], w)
		}
	}
	if len(images) != len(cids) {
		t.Errorf("%d images for %d references", len(images), len(cids))
	}
	if _, err := r.Mail(MailHeader{From: "not an address", To: []string{"a@b"}}); err == nil {
		t.Error("a bad From was accepted")
	}
	if _, err := r.Mail(MailHeader{From: "a@b", To: []string{"c@d"}, Note: "x\r\nBcc: evil@example"}); err == nil {
		t.Error("a note with a line break was accepted")
	}
}

// part reads the next part, which must be of mt and quoted-printable.
func part(t *testing.T, r *multipart.Reader, mt string) string {
	t.Helper()
	p, err := r.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	got, params, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
	if got != mt || params["charset"] != "utf-8" {
		t.Fatalf("part %s %v, want %s; charset=utf-8", got, params, mt)
	}
	// multipart.Reader decodes quoted-printable itself and then drops
	// the header: reading raw would double-decode.
	b, err := io.ReadAll(p)
	if err != nil {
		t.Fatal(err)
	}
	if p.Header.Get("Content-Transfer-Encoding") == "quoted-printable" {
		b, err = io.ReadAll(quotedprintable.NewReader(bytes.NewReader(b)))
		if err != nil {
			t.Fatal(err)
		}
	}
	return string(b)
}

// BenchmarkReport: a week of rounds every 30 s of 15 probes on 2 nodes,
// reported in every format, its charts drawn and its mail built.
func BenchmarkReport(b *testing.B) {
	f := newFixture(b)
	f.step = 30 * time.Second
	f.probes = nil
	for i := 0; i < 15; i++ {
		p := fixtureProbes[i%len(fixtureProbes)]
		f.probes = append(f.probes, probeSpec{name: fmt.Sprintf("%s-%02d", p.name, i), kind: p.kind, ms: p.ms})
	}
	f.fail = func(node, probe string, at time.Time) (bool, string) { return f.rng.IntN(500) == 0, "connect" }
	f.commonWeek(w48, w49)
	for d := 0; d < 7; d++ { // a NOT READY spell a day
		at := w48.AddDate(0, 0, d).Add(9 * time.Hour)
		f.ready(at, "NOT READY", "verify.green: web-00 on beta failing")
		f.ready(at.Add(12*time.Minute), "READY", "")
	}
	if _, err := f.st.Prune(w49, store.Retention{MaxResults: 1000}); err != nil {
		b.Fatal(err)
	}
	bl := New(f.st, WithCluster("office"), clockAt(w49.Add(10*time.Minute)))
	var size int
	for b.Loop() {
		r, err := bl.Build("2026-W48")
		if err != nil {
			b.Fatal(err)
		}
		if len(r.Services.Rows) != 30 || r.Services.Rows[0].Rounds != 20160 {
			b.Fatalf("%d rows, %d rounds", len(r.Services.Rows), r.Services.Rows[0].Rounds)
		}
		_ = r.Text()
		_ = r.Markdown()
		if _, err := r.JSON(); err != nil {
			b.Fatal(err)
		}
		m, err := r.Mail(MailHeader{From: "sentry@office.example", To: []string{"owner@office.example"}})
		if err != nil {
			b.Fatal(err)
		}
		size = len(m)
	}
	b.ReportMetric(float64(size), "mail-bytes")
}

// decodeBase64 decodes a base64 body in lines.
func decodeBase64(b64, dst []byte) (int, error) {
	clean := strings.NewReplacer("\r", "", "\n", "").Replace(string(b64))
	return base64.StdEncoding.Decode(dst, []byte(clean))
}

// TestCompareWithStoredReport: with the events of the week before gone,
// its stored report gives its share of READY.
func TestCompareWithStoredReport(t *testing.T) {
	f := newFixture(t)
	f.ready(w48, "READY", "")
	f.rounds(w48, w49)
	h := f.st.History()
	old := &Report{Version: FormatVersion, Week: "2026-W47", Verdict: VerdictSection{Known: true, ReadyShare: 0.9}}
	if err := Save(h, old); err != nil {
		t.Fatal(err)
	}
	r, err := New(f.st, WithCluster("office"), clockAt(w49.Add(time.Hour))).Build("2026-W48")
	if err != nil {
		t.Fatal(err)
	}
	c := r.Compare
	if !c.Known || c.PrevReadyShare == nil || *c.PrevReadyShare != 0.9 || c.Trend != "better" {
		t.Errorf("compare: %+v", c)
	}
	// A damaged stored report of the week before is named, skipped.
	if err := h.PutReport("2026-W47", []byte("{")); err != nil {
		t.Fatal(err)
	}
	r, err = New(f.st, WithCluster("office"), clockAt(w49.Add(time.Hour))).Build("2026-W48")
	if err != nil {
		t.Fatal(err)
	}
	if r.Compare.Known || len(r.Notes) != 1 || !strings.Contains(r.Notes[0], "stored report 2026-W47 is damaged") {
		t.Errorf("compare %+v, notes %q", r.Compare, r.Notes)
	}
}
