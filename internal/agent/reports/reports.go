// Package reports is the agent's weekly report: it builds a week's report
// from this node's store (internal/report), renders it for `sentry report`,
// and, when the weekly timer (sentry-report.timer) asks, keeps it and mails
// it through the alert relay. The primary mails the report; the secondary
// mails one only when it has not heard from the primary for a day, and says
// so in the subject.
package reports

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/sentryha/sentry/internal/agent/api"
	"github.com/sentryha/sentry/internal/alert"
	"github.com/sentryha/sentry/internal/config"
	"github.com/sentryha/sentry/internal/peer"
	"github.com/sentryha/sentry/internal/report"
	"github.com/sentryha/sentry/internal/store"
	"github.com/sentryha/sentry/verifier"
)

// PrimarySilence is how long the secondary waits without a word from the
// primary before it mails the report itself.
const PrimarySilence = 24 * time.Hour

// Sender sends a mail message (the alert relay's mailer).
type Sender interface {
	SendMessage(ctx context.Context, msg []byte) error
}

// node is the cluster now, from Deps.State.
func (r *Reports) node() Node {
	st := r.d.State()
	n := Node{Cluster: st.ClusterName}
	for _, v := range st.Nodes {
		if v.Self {
			n.Self, n.Role = v.Name, v.Role
		} else {
			n.Peer = v.Name
			if v.LastContact != nil {
				n.PeerContact = *v.LastContact
			}
		}
	}
	return n
}

// Node is what the component needs to know of the cluster now.
type Node struct {
	Cluster string // the cluster's name
	Self    string // this node's name
	Role    string // "primary", "secondary" or "" (not paired)
	Peer    string // the peer's name ("" when none)
	// PeerContact is the last contact with the peer (zero: never).
	PeerContact time.Time
}

// Deps are the component's inputs from the wiring.
type Deps struct {
	Conf  func() *config.Config
	Store func() *store.Store
	State func() api.State // the cluster now, as `sentry status` shows it
	Log   *slog.Logger
	Event func(kind, node, msg string, fields map[string]string)
	// Backups are this node's probes; those of kind backup with a
	// restic_repo get the weekly restore test (nil: none).
	Backups func() []verifier.Spec
	// Done closes when the agent stops (nil: a skipped restore test is
	// not tried again).
	Done <-chan struct{}
	// Peer carries the requests for the peer's kept reports (nil: none).
	Peer Peer
}

// Option adjusts the component (tests).
type Option func(*Reports)

// WithClock sets the clock.
func WithClock(now func() time.Time) Option { return func(r *Reports) { r.now = now } }

// WithSender sends the mail through s instead of the relay of [alert.mail].
func WithSender(s Sender) Option { return func(r *Reports) { r.sender = s } }

// Reports is the component.
type Reports struct {
	d      Deps
	now    func() time.Time
	sender Sender
	run    sync.Mutex // one mailing at a time

	mu       sync.Mutex
	last     *time.Time                   // when the newest kept report was made (nil: not read yet)
	restored map[string]report.RestoreRun // each repository's last good or failed restore test (nil: not read yet)
	retrying bool                         // a skipped restore test waits to be tried again
	// status is the last restore test for the node's status, read at
	// statusAt (refreshing: being read again).
	status     *peer.Restore
	statusAt   time.Time
	refreshing bool

	restoreMu  sync.Mutex // one restore test at a time
	tmpDir     string
	retryDelay time.Duration

	peerServe chan struct{} // the peer's requests served now (peerServing at most)
}

// Last is when the newest kept report was made (zero: none yet), for the
// metric sentry_last_report_timestamp_seconds. The store is read once.
func (r *Reports) Last() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last == nil {
		var t time.Time
		if list, _, err := report.List(r.d.Store().History()); err == nil && len(list) > 0 {
			for _, l := range list {
				if l.Made.After(t) {
					t = l.Made
				}
			}
		} else if err != nil {
			return t // read again at the next scrape
		}
		r.last = &t
	}
	return *r.last
}

// mailer is the relay's mailer and the mail's From and To, or why there
// is none.
func (r *Reports) mailer() (Sender, report.MailHeader, error) {
	m := r.d.Conf().Alert.Mail
	hdr := report.MailHeader{From: m.From, To: append([]string(nil), m.To...)}
	if r.sender != nil {
		return r.sender, hdr, nil
	}
	mc, ok := alert.MailConfigFromConfig(m)
	if !ok {
		return nil, hdr, nil
	}
	s, err := alert.NewMailer(mc)
	if err != nil {
		return nil, hdr, err
	}
	return s, hdr, nil
}

// New returns the component.
func New(d Deps, opts ...Option) *Reports {
	if d.Log == nil {
		d.Log = slog.Default()
	}
	if d.Event == nil {
		d.Event = func(string, string, string, map[string]string) {}
	}
	r := &Reports{d: d, now: time.Now, retryDelay: RetryDelay, peerServe: make(chan struct{}, peerServing)}
	for _, o := range opts {
		o(r)
	}
	return r
}

// Week resolves "last" (the last full week; the default), "current" (the
// week so far) or an ISO week ("2026-W49").
func (r *Reports) Week(w string) (string, error) {
	now := r.now()
	switch w {
	case "", "last":
		return store.WeekKey(now.AddDate(0, 0, -7)), nil
	case "current":
		return store.WeekKey(now), nil
	}
	if _, err := store.WeekStartOf(w); err != nil {
		return "", fmt.Errorf("week %q: %w (an ISO week such as %s, or last, or current)", w, err, store.WeekKey(now))
	}
	return w, nil
}

// Build builds the report of week (as Week takes it).
func (r *Reports) Build(week string) (*report.Report, error) {
	w, err := r.Week(week)
	if err != nil {
		return nil, err
	}
	n := r.node()
	opts := []report.Option{report.WithClock(r.now), report.WithCluster(n.Cluster), report.WithNode(n.Self)}
	if n.Peer != "" {
		opts = append(opts, report.WithNodes(n.Self, n.Peer))
	}
	return report.New(r.d.Store(), opts...).Build(w)
}

// Render is a report rendered for `sentry report`.
func Render(rep *report.Report, format string) (string, error) {
	switch format {
	case "", "text":
		return rep.Text(), nil
	case "markdown":
		return rep.Markdown(), nil
	case "html":
		charts, err := rep.Charts()
		if err != nil {
			return "", err
		}
		// A file to open in a browser: the charts inline as data: URLs.
		return rep.HTML(charts, report.DataSource), nil
	case "json":
		b, err := rep.JSON()
		return string(b), err
	}
	return "", fmt.Errorf("format %q: want text, markdown, html or json", format)
}

// Run is the weekly timer's run: build the week's report, keep it, and
// mail it (the primary; the secondary only after a day without the
// primary). The answer says what was done, and why not.
func (r *Reports) Run(ctx context.Context, week string, mail bool) (RunResult, error) {
	r.run.Lock()
	defer r.run.Unlock()
	w, err := r.Week(week)
	if err != nil {
		return RunResult{}, err
	}
	n := r.node()
	res := RunResult{Week: w, Role: n.Role}
	note := ""
	switch {
	case n.Role == "primary":
	case n.Role == "secondary" && n.PeerContact.IsZero():
		note = "sent by " + n.Self + ": " + n.Peer + " never heard from"
	case n.Role == "secondary" && r.now().Sub(n.PeerContact) >= PrimarySilence:
		note = fmt.Sprintf("sent by %s: %s unreachable since %s", n.Self, n.Peer, n.PeerContact.UTC().Format("Mon 2 Jan 15:04 UTC"))
	case n.Role == "secondary":
		res.Skipped = fmt.Sprintf("this is the secondary and the primary %s answered %s ago: the primary mails the report", n.Peer, r.now().Sub(n.PeerContact).Round(time.Minute))
		rep, err := r.Build(w)
		if err == nil {
			res.Headline = rep.Headline()
		}
		return res, err
	default:
		return res, errors.New("this disk set belongs to no cluster: no report to make")
	}
	if mail { // the weekly run: test the backups first, so the report tells
		res.Restore = r.RestoreTest(ctx)
	}
	rep, err := r.Build(w)
	if err != nil {
		return res, err
	}
	res.Headline = rep.Headline()
	if err := report.Save(r.d.Store().History(), rep); err != nil {
		return res, err
	}
	res.Saved = true
	r.mu.Lock()
	made := rep.Made
	r.last = &made
	r.mu.Unlock()
	if !mail {
		return res, nil
	}
	sender, hdr, err := r.mailer()
	if err != nil {
		return res, fmt.Errorf("report %s: %w", rep.Week, err)
	}
	if sender == nil {
		res.Skipped = "no mail relay: [alert.mail] relay is not set"
		return res, nil
	}
	hdr.Date, hdr.Note = r.now(), note
	msg, err := rep.Mail(hdr)
	if err != nil {
		return res, err
	}
	res.Subject = rep.Subject(note)
	if err := sender.SendMessage(ctx, msg); err != nil {
		r.d.Event("report", n.Self, fmt.Sprintf("weekly report %s not mailed: %v", rep.Week, err), map[string]string{"week": rep.Week})
		return res, fmt.Errorf("report %s: %w", rep.Week, err)
	}
	res.MailedTo, res.Bytes = hdr.To, len(msg)
	r.d.Event("report", n.Self, fmt.Sprintf("weekly report %s mailed to %s: %s", rep.Week, strings.Join(hdr.To, ", "), res.Subject),
		map[string]string{"week": rep.Week, "headline": rep.Headline()})
	return res, nil
}

// The local API's bodies.
type (
	// Request is the body of POST /v1/report/run.
	Request struct {
		Week string `json:"week,omitempty"` // as Week takes it
		Mail bool   `json:"mail,omitempty"`
	}
	// RunResult is its answer: what was kept and mailed, or why not.
	RunResult struct {
		Week     string   `json:"week"`
		Headline string   `json:"headline"`
		Role     string   `json:"role"`
		Saved    bool     `json:"saved"`
		Subject  string   `json:"subject,omitempty"`
		MailedTo []string `json:"mailed_to,omitempty"`
		Bytes    int      `json:"bytes,omitempty"`
		Skipped  string   `json:"skipped,omitempty"`
		// Restore is the restore tests made before the report (--mail).
		Restore []report.RestoreRun `json:"restore,omitempty"`
	}
	// Text is the answer of GET /v1/report?week=W&format=F: the report
	// built now from this node's store or, with from=peer, the peer's
	// kept report of week W (Node: the peer), rendered here.
	Text struct {
		Week     string `json:"week"`
		Headline string `json:"headline"`
		Body     string `json:"body"`
		Node     string `json:"node,omitempty"`
	}
	// List is the answer of GET /v1/reports: the kept reports, newest
	// first, and the damaged ones named; with peer=1 the peer's too
	// (Peer), or why they are not listed (PeerError), and how many older
	// ones the peer left out (PeerMore).
	List struct {
		Reports   []Kept   `json:"reports"`
		Skipped   []string `json:"skipped,omitempty"`
		Peer      string   `json:"peer,omitempty"`
		PeerError string   `json:"peer_error,omitempty"`
		PeerMore  int      `json:"peer_more,omitempty"`
	}
	// Kept is one kept report, and the node that keeps it.
	Kept struct {
		report.Listed
		Node string `json:"node"`
	}
)

// Routes serves the local API's report requests.
func (r *Reports) Routes(mux *http.ServeMux, reply func(http.ResponseWriter, any, error)) {
	mux.HandleFunc("GET /v1/report", func(w http.ResponseWriter, q *http.Request) {
		var rep *report.Report
		var node string
		var err error
		switch from := q.URL.Query().Get("from"); from {
		case "":
			rep, err = r.Build(q.URL.Query().Get("week"))
		case "peer":
			rep, node, err = r.PeerReport(q.Context(), q.URL.Query().Get("week"))
		default:
			err = fmt.Errorf("from %.20q: want peer, or nothing", from)
		}
		if err != nil {
			reply(w, nil, err)
			return
		}
		body, err := Render(rep, q.URL.Query().Get("format"))
		reply(w, Text{Week: rep.Week, Headline: rep.Headline(), Body: body, Node: node}, err)
	})
	mux.HandleFunc("GET /v1/reports", func(w http.ResponseWriter, q *http.Request) {
		l, err := r.listBoth(q.Context(), q.URL.Query().Get("peer") == "1")
		reply(w, l, err)
	})
	mux.HandleFunc("POST /v1/report/restore-test", func(w http.ResponseWriter, q *http.Request) {
		if err := api.Decode(w, q, &struct{}{}); err != nil {
			reply(w, nil, err)
			return
		}
		reply(w, r.RestoreTest(q.Context()), nil)
	})
	mux.HandleFunc("POST /v1/report/run", func(w http.ResponseWriter, q *http.Request) {
		var req Request
		if err := api.Decode(w, q, &req); err != nil {
			reply(w, nil, err)
			return
		}
		res, err := r.Run(q.Context(), req.Week, req.Mail)
		reply(w, res, err)
	})
}
