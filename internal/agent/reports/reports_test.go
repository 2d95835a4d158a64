package reports

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sentryha/sentry/internal/agent/api"
	"github.com/sentryha/sentry/internal/config"
	"github.com/sentryha/sentry/internal/store"
)

// sent records the mails a Reports sends (the relay's side of the test).
type sent struct {
	mu   sync.Mutex
	msgs [][]byte
	err  error
}

func (s *sent) SendMessage(ctx context.Context, msg []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	s.msgs = append(s.msgs, msg)
	return nil
}

type fixture struct {
	st     *store.Store
	state  api.State
	events []string
	conf   config.Config
}

// now is Wednesday of 2026-W49.
var now = time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)

func newFixture(t *testing.T, role string, peerContact time.Time) *fixture {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	self, peer := "node-p", "node-s"
	if role == "secondary" {
		self, peer = "node-s", "node-p"
	}
	f := &fixture{st: st, conf: config.Default()}
	f.conf.Alert.Mail.From = "Sentry <sentry@office.example>"
	f.conf.Alert.Mail.To = []string{"owner@office.example"}
	pv := api.Node{Name: peer}
	if !peerContact.IsZero() {
		pv.LastContact = &peerContact
	}
	f.state = api.State{Initialized: true, ClusterName: "office", Nodes: []api.Node{{Name: self, Self: true, Role: role}, pv}}
	// A week of history before now: the verdict READY since Monday.
	for _, e := range []store.Event{
		{Time: now.AddDate(0, 0, -9), Kind: "ready-changed", Node: self, Message: "READY", Fields: map[string]string{"verdict": "READY", "key": "READY"}},
	} {
		if _, err := st.AppendEvent(e); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func (f *fixture) reports(s Sender) *Reports {
	opts := []Option{WithClock(func() time.Time { return now })}
	if s != nil {
		opts = append(opts, WithSender(s))
	}
	return New(Deps{Conf: func() *config.Config { return &f.conf }, Store: func() *store.Store { return f.st },
		State: func() api.State { return f.state }, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Event: func(kind, node, msg string, fields map[string]string) { f.events = append(f.events, kind+": "+msg) }}, opts...)
}

func TestWeek(t *testing.T) {
	r := newFixture(t, "primary", now).reports(nil)
	for in, want := range map[string]string{"": "2026-W48", "last": "2026-W48", "current": "2026-W49", "2026-W10": "2026-W10"} {
		if got, err := r.Week(in); err != nil || got != want {
			t.Errorf("Week(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := r.Week("2026-49"); err == nil || !strings.Contains(err.Error(), `week "2026-49"`) || !strings.Contains(err.Error(), "2026-W49") {
		t.Errorf("a malformed week: %v", err)
	}
	if _, err := r.Build("2027-W10"); err == nil || !strings.Contains(err.Error(), "in the future") {
		t.Errorf("a week in the future: %v", err)
	}
}

// TestPrimaryMails: the primary keeps the last week's report and mails it
// as a multipart message with the verdict in the subject.
func TestPrimaryMails(t *testing.T) {
	f := newFixture(t, "primary", now)
	s := &sent{}
	res, err := f.reports(s).Run(context.Background(), "last", true)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Saved || res.Week != "2026-W48" || len(res.MailedTo) != 1 || res.Skipped != "" || len(s.msgs) != 1 {
		t.Fatalf("result %+v, %d mails", res, len(s.msgs))
	}
	m, err := mail.ReadMessage(strings.NewReader(string(s.msgs[0])))
	if err != nil {
		t.Fatal(err)
	}
	if subj := m.Header.Get("Subject"); !strings.HasPrefix(subj, "Sentry office: READY") || subj != res.Subject {
		t.Errorf("subject %q (result says %q)", subj, res.Subject)
	}
	if ct := m.Header.Get("Content-Type"); !strings.HasPrefix(ct, "multipart/alternative") {
		t.Errorf("content type %q", ct)
	}
	if len(f.events) != 1 || !strings.Contains(f.events[0], "report: weekly report 2026-W48 mailed to owner@office.example") {
		t.Errorf("events %q", f.events)
	}
	l, _, err := reportList(f)
	if err != nil || len(l.Reports) != 1 || l.Reports[0].Week != "2026-W48" {
		t.Errorf("kept: %+v %v", l, err)
	}
	// A relay that refuses: an error, and an event that says so.
	s.err = errors.New("550 no")
	if _, err := f.reports(s).Run(context.Background(), "last", true); err == nil || !strings.Contains(err.Error(), "550 no") {
		t.Errorf("refused: %v", err)
	}
}

func reportList(f *fixture) (List, int, error) {
	rec := httptest.NewRecorder()
	mux := http.NewServeMux()
	f.reports(nil).Routes(mux, reply)
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/reports", nil))
	var l List
	return l, rec.Code, json.Unmarshal(rec.Body.Bytes(), &l)
}

func reply(w http.ResponseWriter, v any, err error) {
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
		return
	}
	json.NewEncoder(w).Encode(v)
}

// TestSecondary: the secondary skips while the primary answers, and mails
// (saying so in the subject) after a day without it.
func TestSecondary(t *testing.T) {
	f := newFixture(t, "secondary", now.Add(-time.Hour))
	s := &sent{}
	res, err := f.reports(s).Run(context.Background(), "", true)
	if err != nil || res.Saved || len(s.msgs) != 0 || !strings.Contains(res.Skipped, "the primary node-p answered 1h0m0s ago") {
		t.Fatalf("primary answering: %+v %v, %d mails", res, err, len(s.msgs))
	}
	f.state.Nodes[1].LastContact = ptr(now.Add(-25 * time.Hour))
	res, err = f.reports(s).Run(context.Background(), "", true)
	if err != nil || !res.Saved || len(s.msgs) != 1 {
		t.Fatalf("primary silent for a day: %+v %v, %d mails", res, err, len(s.msgs))
	}
	if want := "Sentry office (sent by node-s: node-p unreachable since Tue 1 Dec 09:00 UTC): "; !strings.HasPrefix(res.Subject, want) {
		t.Errorf("subject %q, want it to start %q", res.Subject, want)
	}
}

func ptr[T any](v T) *T { return &v }

// TestNoRelay: without [alert.mail] relay the report is kept and the
// answer says why it was not mailed; Render gives each format.
func TestNoRelay(t *testing.T) {
	f := newFixture(t, "primary", now)
	r := f.reports(nil)
	res, err := r.Run(context.Background(), "last", true)
	if err != nil || !res.Saved || res.Skipped != "no mail relay: [alert.mail] relay is not set" {
		t.Fatalf("%+v %v", res, err)
	}
	rep, err := r.Build("last")
	if err != nil {
		t.Fatal(err)
	}
	for format, want := range map[string]string{"text": "READY", "markdown": "# ", "html": "<html", "json": `"week": "2026-W48"`} {
		body, err := Render(rep, format)
		if err != nil || !strings.Contains(body, want) {
			t.Errorf("%s: %v, %.200q lacks %q", format, err, body, want)
		}
	}
	if _, err := Render(rep, "pdf"); err == nil || !strings.Contains(err.Error(), `format "pdf"`) {
		t.Errorf("pdf: %v", err)
	}
}

// TestLast: the time of the newest kept report, read from the store once
// and moved by each kept report.
func TestLast(t *testing.T) {
	f := newFixture(t, "primary", now)
	r := f.reports(nil)
	if l := r.Last(); !l.IsZero() {
		t.Fatalf("no report kept yet, Last %s", l)
	}
	if _, err := r.Run(context.Background(), "last", false); err != nil {
		t.Fatal(err)
	}
	if l := r.Last(); !l.Equal(now) {
		t.Errorf("after a kept report, Last %s, want %s", l, now)
	}
	// A restarted agent reads it from the store.
	if l := f.reports(nil).Last(); !l.Equal(now) {
		t.Errorf("from the store, Last %s, want %s", l, now)
	}
}
