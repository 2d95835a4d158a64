package reports

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sentryha/sentry/internal/peer"
	"github.com/sentryha/sentry/internal/report"
)

// tlsPeer is the peer link of a test: HTTPS to an httptest server (the
// real link adds the peer's certificate check, tested in package link).
type tlsPeer struct{ srv *httptest.Server }

func (p tlsPeer) Post(ctx context.Context, path, contentType string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.srv.URL+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", contentType)
	return p.srv.Client().Do(req)
}

// node is one node of a pair in this process: its fixture (store, state)
// and its component; its peer endpoint is served by an httptest TLS
// server, which the other node's component calls.
type node struct {
	f   *fixture
	r   *Reports
	srv *httptest.Server
}

func newNode(t *testing.T, role string, peerContact time.Time) *node {
	t.Helper()
	f := newFixture(t, role, peerContact)
	for _, v := range f.state.Nodes {
		if v.Self {
			f.conf.Node.Name = v.Name
		}
	}
	n := &node{f: f, r: f.reports(nil)}
	n.srv = httptest.NewTLSServer(http.HandlerFunc(n.r.HandlePeer))
	t.Cleanup(n.srv.Close)
	return n
}

// pair makes a primary and a secondary, each calling the other's peer
// endpoint.
func pair(t *testing.T) (p, s *node) {
	p, s = newNode(t, "primary", now), newNode(t, "secondary", now.Add(-25*time.Hour))
	p.r.d.Peer, s.r.d.Peer = tlsPeer{s.srv}, tlsPeer{p.srv}
	return p, s
}

func localGet(t *testing.T, r *Reports, path string, v any) int {
	t.Helper()
	rec := httptest.NewRecorder()
	mux := http.NewServeMux()
	r.Routes(mux, reply)
	mux.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
		t.Fatalf("GET %s: %d %q: %v", path, rec.Code, rec.Body.String(), err)
	}
	return rec.Code
}

// TestPeerKeptReports: the primary's kept reports are listed on the
// secondary next to its own, each row naming its node, and one is shown
// there in every format, rendered by the secondary; the secondary's are
// listed on the primary the same way.
func TestPeerKeptReports(t *testing.T) {
	p, s := pair(t)
	ctx := context.Background()
	for _, w := range []string{"2026-W48", "current"} {
		if res, err := p.r.Run(ctx, w, false); err != nil || !res.Saved {
			t.Fatalf("primary keeps %s: %+v %v", w, res, err)
		}
	}
	if res, err := s.r.Run(ctx, "2026-W48", false); err != nil || !res.Saved { // the primary silent for a day
		t.Fatalf("secondary keeps 2026-W48: %+v %v", res, err)
	}

	var l List
	if code := localGet(t, s.r, "/v1/reports?peer=1", &l); code != 200 || l.PeerError != "" || l.Peer != "node-p" {
		t.Fatalf("%d %+v", code, l)
	}
	var rows []string
	for _, k := range l.Reports {
		rows = append(rows, k.Week+" "+k.Node)
		if !strings.HasPrefix(k.Headline, "READY") || k.Made.IsZero() {
			t.Errorf("row %+v", k)
		}
	}
	if got, want := strings.Join(rows, ", "), "2026-W49 node-p, 2026-W48 node-s, 2026-W48 node-p"; got != want {
		t.Errorf("rows on the secondary: %s, want %s", got, want)
	}
	if l = (List{}); localGet(t, s.r, "/v1/reports", &l) != 200 || len(l.Reports) != 1 || l.Reports[0].Node != "node-s" || l.Peer != "" {
		t.Errorf("without peer=1, this node's only: %+v", l)
	}
	if l = (List{}); localGet(t, p.r, "/v1/reports?peer=1", &l) != 200 || len(l.Reports) != 3 || l.Reports[1].Node != "node-p" || l.Reports[2].Node != "node-s" || l.PeerError != "" {
		t.Errorf("on the primary: %+v", l)
	}

	// One kept report, rendered by the secondary in each format.
	kept, _, err := report.Load(p.f.st.History(), "2026-W49")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := Render(kept, "text")
	for format, has := range map[string]string{"text": "weekly report 2026-W49", "markdown": "# ", "html": "<html", "json": `"week": "2026-W49"`} {
		var txt Text
		code := localGet(t, s.r, "/v1/report?from=peer&week=2026-W49&format="+format, &txt)
		if code != 200 || txt.Node != "node-p" || txt.Week != "2026-W49" || !strings.Contains(txt.Body, has) {
			t.Errorf("%s: %d %+v", format, code, txt)
		}
		if format == "text" && txt.Body != want {
			t.Errorf("the secondary's rendering differs from the primary's:\n%s\n---\n%s", txt.Body, want)
		}
	}
	// "last" is the last full week by this node's clock.
	if rep, name, err := s.r.PeerReport(ctx, "last"); err != nil || name != "node-p" || rep.Week != "2026-W48" {
		t.Errorf("last: %v %s %v", rep, name, err)
	}
	// A week the peer keeps none of: an error naming the peer.
	var e map[string]string
	if code := localGet(t, s.r, "/v1/report?from=peer&week=2026-W40", &e); code != 500 || e["error"] != "peer node-p keeps no report of week 2026-W40 (sentry report list)" {
		t.Errorf("none kept: %d %q", code, e)
	}
	if code := localGet(t, s.r, "/v1/report?from=elsewhere", &e); code != 500 || !strings.Contains(e["error"], "want peer") {
		t.Errorf("from elsewhere: %d %q", code, e)
	}
}

// TestPeerUnreachable: the peer not answering leaves this node's kept
// reports listed, and says why the peer's are not, naming it; without a
// peer nothing is asked.
func TestPeerUnreachable(t *testing.T) {
	p, s := pair(t)
	if _, err := s.r.Run(context.Background(), "2026-W48", false); err != nil {
		t.Fatal(err)
	}
	p.srv.Close()
	var l List
	if code := localGet(t, s.r, "/v1/reports?peer=1", &l); code != 200 || len(l.Reports) != 1 || l.Reports[0].Node != "node-s" ||
		!strings.HasPrefix(l.PeerError, "the kept reports of peer node-p: ") {
		t.Fatalf("%d %+v", code, l)
	}
	if _, _, err := s.r.PeerReport(context.Background(), "2026-W48"); err == nil || !strings.Contains(err.Error(), "peer node-p") {
		t.Errorf("a report from an unreachable peer: %v", err)
	}
	s.f.state.Nodes = s.f.state.Nodes[:1] // no peer yet
	if l = (List{}); localGet(t, s.r, "/v1/reports?peer=1", &l) != 200 || len(l.Reports) != 1 || l.PeerError != "" || l.Peer != "" {
		t.Errorf("no peer: %+v", l)
	}
	if _, _, err := s.r.PeerReport(context.Background(), "2026-W48"); err != ErrNoPeer {
		t.Errorf("no peer: %v", err)
	}
}

// hostile is a peer that answers what the test says.
func hostile(t *testing.T, code int, body []byte) *Reports {
	t.Helper()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(code)
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	s := newNode(t, "secondary", now)
	s.r.d.Peer = tlsPeer{srv}
	return s.r
}

// keptDoc is an honest kept report of 2026-W48 as a map, to spoil.
func keptDoc(t *testing.T) map[string]any {
	t.Helper()
	rep, err := newFixture(t, "primary", now).reports(nil).Build("2026-W48")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(rep)
	var m map[string]any
	json.Unmarshal(b, &m)
	return m
}

func answer(t *testing.T, a map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPeerHostileAnswers: an answer too large, of a week that is not
// one, with control characters in what a terminal prints, or with what
// the charts would draw out of bounds, is refused whole, with an error
// naming the peer and what is wrong.
func TestPeerHostileAnswers(t *testing.T) {
	row := func(week, headline string) map[string]any {
		return map[string]any{"week": week, "headline": headline, "made": now}
	}
	list := func(rows ...map[string]any) map[string]any { return map[string]any{"node": "node-p", "reports": rows} }
	one := func(spoil func(m map[string]any)) []byte {
		m := keptDoc(t)
		if spoil != nil {
			spoil(m)
		}
		return answer(t, map[string]any{"node": "node-p", "week": "2026-W48", "report": m})
	}
	section := func(m map[string]any, k string) map[string]any { return m[k].(map[string]any) }
	refusal := func(code int, msg string) []byte {
		b, err := peer.Encode(peer.TypeError, "node-p", peer.ErrorBody{Message: msg})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	big := append(answer(t, list(row("2026-W48", "READY"))), bytes.Repeat([]byte(" "), MaxPeerAnswer)...)

	for _, c := range []struct {
		name string
		week string // "" the list
		code int
		body []byte
		want string
	}{
		{"too big", "", 200, big, "malformed answer: larger than 1048576 bytes"},
		{"bad week", "", 200, answer(t, list(row("2026-W54", "READY"))), `malformed answer: week "2026-W54" is not an ISO week`},
		{"not a week", "", 200, answer(t, list(row("../../etc", "READY"))), `malformed answer: week "../../etc" is not an ISO week`},
		{"week written otherwise", "", 200, answer(t, list(row("2026-W1", "READY"))), `week "2026-W1" is not an ISO week`},
		{"escape in a headline", "", 200, answer(t, list(row("2026-W48", "READY\x1b[2J\x1b]0;owned\a"))), `the headline of 2026-W48: a text with the control character U+001B: "READY\x1b[2J\x1b]0;owned\a"`},
		{"bidi override", "", 200, answer(t, list(row("2026-W48", "READY \u202e"))), "control character U+202E"},
		{"a line break in a headline", "", 200, answer(t, list(row("2026-W48", "READY\nNOT READY"))), "control character U+000A"},
		{"long headline", "", 200, answer(t, list(row("2026-W48", strings.Repeat("x", MaxPeerLine+1)))), "a text of 1025 bytes (at most 1024)"},
		{"twice", "", 200, answer(t, list(row("2026-W48", "READY"), row("2026-W48", "READY"))), "week 2026-W48 listed twice"},
		{"another node", "", 200, answer(t, map[string]any{"node": "node-x\x1b", "reports": []any{}}), `it says it is node "node-x\x1b"`},
		{"trailing data", "", 200, append(answer(t, list()), []byte(`{"node":"node-p"}`)...), "data after the answer"},
		{"not JSON", "", 200, []byte("<html>"), "malformed answer: invalid character"},
		{"a report for the list", "", 200, one(nil), "a report where the list was asked for"},
		{"refusal with an escape", "", 500, refusal(500, "no\x1b[31m"), "a refusal not printed: a text with the control character U+001B"},
		{"refusal", "", 429, refusal(429, "served 2 at a time: try again"), "peer refused: served 2 at a time: try again"},
		{"an older peer", "", 404, refusal(404, "no such peer endpoint /v1/reports/fetch"), "its sentry serves no kept reports (an older version): update sentry on node-p"},
		{"not a message", "", 502, []byte("bad gateway"), "it answered 502 Bad Gateway"},

		{"another week", "2026-W48", 200, answer(t, map[string]any{"node": "node-p", "week": "2026-W47", "report": keptDoc(t)}), `the report of week "2026-W47" where 2026-W48 was asked for`},
		{"the document of another week", "2026-W48", 200, one(func(m map[string]any) { m["week"] = "2026-W47" }), `it says it is the report of week "2026-W47"`},
		{"a newer format", "2026-W48", 200, one(func(m map[string]any) { m["version"] = 99 }), "has format 99; this sentry reads format 1 or older"},
		{"escape in a service", "2026-W48", 200, one(func(m map[string]any) {
			section(m, "services")["rows"] = []any{map[string]any{"service": "web\x1b[1A", "node": "node-p"}}
		}), `report 2026-W48: report.services.rows[0].service: a text with the control character U+001B`},
		{"escape in a note", "2026-W48", 200, one(func(m map[string]any) { m["notes"] = []any{"ok\r\x1b[2Kfine"} }), "report.notes[0]: a text with the control character U+000D"},
		{"a long text", "2026-W48", 200, one(func(m map[string]any) { m["notes"] = []any{strings.Repeat("x", MaxPeerText+1)} }), "report.notes[0]: a text of 65537 bytes (at most 65536)"},
		{"hours", "2026-W48", 200, one(func(m map[string]any) { section(m, "services")["hours"] = 1 << 40 }), "report 2026-W48: 1099511627776 hours in a week"},
		{"a week of another length", "2026-W48", 200, one(func(m map[string]any) { m["to"] = "2027-01-01T00:00:00Z" }), "not over its week"},
		{"a disk reading far off", "2026-W48", 200, one(func(m map[string]any) {
			section(m, "disks")["free_space"] = []any{map[string]any{"service": "disk", "node": "node-p",
				"points": []any{map[string]any{"at": "2026-11-24T10:00:00Z", "value": 1e15}}}}
		}), "a disk reading of disk (1e+15 %)"},
		{"a span out of the week", "2026-W48", 200, one(func(m map[string]any) {
			section(m, "verdict")["segments"] = []any{map[string]any{"from": "2026-11-23T00:00:00Z", "to": "2030-01-01T00:00:00Z", "verdict": "READY"}}
		}), "a verdict span from 2026-11-23T00:00:00Z to 2030-01-01T00:00:00Z out of its week or of order"},
		{"the list for a report", "2026-W48", 200, answer(t, list(row("2026-W48", "READY"))), "a list where the report of 2026-W48 was asked for"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := hostile(t, c.code, c.body)
			var err error
			if c.week == "" {
				_, _, _, _, err = r.PeerList(context.Background())
				var l List
				if localGet(t, r, "/v1/reports?peer=1", &l); l.PeerError == "" || l.Reports == nil {
					t.Errorf("the list with a hostile peer: %+v", l)
				}
			} else {
				_, _, err = r.PeerReport(context.Background(), c.week)
			}
			if err == nil || !strings.HasPrefix(err.Error(), "the kept reports of peer node-p: ") || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v\nwant one naming the peer and %q", err, c.want)
			}
			if err != nil && strings.ContainsRune(err.Error(), 0x1b) {
				t.Errorf("the error carries the escape: %q", err)
			}
		})
	}
	// The honest document passes the same checks.
	if _, _, err := hostile(t, 200, one(nil)).PeerReport(context.Background(), "2026-W48"); err != nil {
		t.Errorf("an honest report refused: %v", err)
	}
}

// TestHandlePeerRefuses: the endpoint refuses a request it cannot read
// or too large, and more than two at once; its refusals are peer error
// messages.
func TestHandlePeerRefuses(t *testing.T) {
	p, _ := pair(t)
	post := func(body string) (int, string) {
		rec := httptest.NewRecorder()
		p.r.HandlePeer(rec, httptest.NewRequest("POST", PeerPath, strings.NewReader(body)))
		env, err := peer.Decode(rec.Body.Bytes())
		if err != nil {
			return rec.Code, "not a message: " + rec.Body.String()
		}
		if env.Type != peer.TypeError {
			return rec.Code, env.Type
		}
		eb, _ := env.Error()
		return rec.Code, eb.Message
	}
	for body, want := range map[string]string{
		`{"week":"2026-W99"}`: `kept reports request: week "2026-W99" is not an ISO week such as 2026-W49`,
		`{"week":"../x"}`:     `kept reports request: week "../x" is not an ISO week`,
		`[1`:                  "kept reports request: unexpected end of JSON input",
		`{"week":"` + strings.Repeat("x", 2000) + `"}`: "kept reports request: http: request body too large",
	} {
		if code, msg := post(body); code != 400 || msg != want && !strings.HasPrefix(msg, want) {
			t.Errorf("%.40s: %d %q, want 400 %q", body, code, msg, want)
		}
	}
	// Two served at once: a third is refused, and says when to try again.
	p.r.peerServe <- struct{}{}
	p.r.peerServe <- struct{}{}
	if code, msg := post(`{}`); code != 429 || !strings.Contains(msg, "served 2 at a time") {
		t.Errorf("busy: %d %q", code, msg)
	}
	<-p.r.peerServe
	<-p.r.peerServe
	// A week kept in no store: an answer without a report.
	rec := httptest.NewRecorder()
	p.r.HandlePeer(rec, httptest.NewRequest("POST", PeerPath, strings.NewReader(`{"week":"2026-W40"}`)))
	if rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != `{"node":"node-p","week":"2026-W40"}` {
		t.Errorf("none kept: %d %s", rec.Code, rec.Body)
	}
	// A damaged kept report is refused with its week, not sent.
	if err := p.f.st.History().PutReport("2026-W41", []byte(`{"version":1,"week":"2026-W40"}`)); err != nil {
		t.Fatal(err)
	}
	if code, msg := post(`{"week":"2026-W41"}`); code != 500 || !strings.Contains(msg, "node-p: stored report 2026-W41 is damaged") {
		t.Errorf("damaged: %d %q", code, msg)
	}
}
