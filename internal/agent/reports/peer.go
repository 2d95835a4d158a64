package reports

// The peer's kept reports (issue 16: reports kept for a year on the node
// that made them, readable from either node). Each node keeps the reports
// it made; the peer endpoint POST /v1/reports/fetch (peer only: the link
// mounts HandlePeer behind its mutual TLS) answers the list of this node's
// kept reports, or one of them by week as the document kept. The asking
// node checks the answer (sizes, weeks, texts) and renders a report itself,
// with its own renderer, as it renders its own.
//
// The request and the answer are bare JSON, not peer messages: a new
// message type would need a new peer protocol version, and what crosses
// here is read by nothing but this component. A refusal is a peer error
// message, as every peer endpoint's; an agent without this endpoint
// answers 404 "no such peer endpoint", which the asker reads as "update
// sentry on the peer".

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sentryha/sentry/internal/peer"
	"github.com/sentryha/sentry/internal/report"
	"github.com/sentryha/sentry/internal/store"
)

const (
	// PeerPath is the peer endpoint of the kept reports.
	PeerPath = "/v1/reports/fetch"
	// PeerTimeout bounds one request to the peer.
	PeerTimeout = 15 * time.Second
	// MaxPeerAnswer bounds the peer's answer: one peer message.
	MaxPeerAnswer = peer.MaxMessageSize
	// MaxPeerRequest bounds a request.
	MaxPeerRequest = 1 << 10
	// MaxPeerRows bounds the kept reports listed, the newest sent (the
	// store keeps 54 weeks unless told to keep more; ten years of weeks).
	MaxPeerRows = 530
	// MaxPeerSkipped bounds the damaged kept reports named.
	MaxPeerSkipped = 64
	// MaxPeerLine bounds a one-line text of the answer: a headline, a
	// damaged report named, a refusal.
	MaxPeerLine = 1024
	// MaxPeerText bounds any one text of a kept report.
	MaxPeerText = 64 << 10
	// MaxPeerChartRows bounds the rows of a kept report that its charts
	// draw: service rows, disk probes (64 probes on each of two nodes are
	// 128), and MaxPeerChartItems their spans and points.
	MaxPeerChartRows  = 512
	MaxPeerChartItems = 8192
	// peerServing is how many of the peer's requests are served at once.
	peerServing = 2
)

// ErrNoPeer: this node has no peer to ask.
var ErrNoPeer = errors.New("this node has no peer (sentry init / sentry join): no peer's kept reports to read")

// Peer is the peer link as the component uses it: a POST to the peer's
// API over mutual TLS (the link's one client; an error names the peer and
// its address).
type Peer interface {
	Post(ctx context.Context, path, contentType string, body io.Reader) (*http.Response, error)
}

// PeerRequest is the body of POST /v1/reports/fetch.
type PeerRequest struct {
	// Week is the kept report asked for ("2026-W49"); "" asks for the
	// list.
	Week string `json:"week,omitempty"`
}

// PeerAnswer is its answer: the list of the kept reports, or the kept
// report of Week (Report empty: none kept).
type PeerAnswer struct {
	Node string `json:"node"` // the answering node
	// The list, newest first: at most MaxPeerRows, and how many older
	// ones were left out.
	Reports []report.Listed `json:"reports,omitempty"`
	Skipped []string        `json:"skipped,omitempty"`
	More    int             `json:"more,omitempty"`
	// One report: its week, and the document kept.
	Week   string          `json:"week,omitempty"`
	Report json.RawMessage `json:"report,omitempty"`
}

// HandlePeer answers the peer's request for this node's kept reports
// (POST /v1/reports/fetch, behind the link's check of the peer's
// certificate). Two requests are served at once; more are refused (429).
func (r *Reports) HandlePeer(w http.ResponseWriter, q *http.Request) {
	if r == nil {
		peer.Write(w, http.StatusServiceUnavailable, peer.TypeError, "", peer.ErrorBody{Message: "the weekly reports are not running yet: try again"})
		return
	}
	self := r.d.Conf().Node.Name
	select {
	case r.peerServe <- struct{}{}:
		defer func() { <-r.peerServe }()
	default:
		w.Header().Set("Retry-After", "1")
		r.refusePeer(w, q, self, http.StatusTooManyRequests, fmt.Errorf("requests for kept reports are served %d at a time: try again", peerServing))
		return
	}
	var req PeerRequest
	b, err := io.ReadAll(http.MaxBytesReader(w, q.Body, MaxPeerRequest))
	if err == nil {
		err = json.Unmarshal(b, &req) // fields a newer asker adds are ignored
	}
	if err == nil && req.Week != "" && !validWeek(req.Week) {
		err = fmt.Errorf("week %.20q is not an ISO week such as 2026-W49", req.Week)
	}
	if err != nil {
		r.refusePeer(w, q, self, http.StatusBadRequest, fmt.Errorf("kept reports request: %w", err))
		return
	}
	ans, err := r.peerAnswer(self, req.Week)
	var out []byte
	if err == nil {
		out, err = json.Marshal(ans)
	}
	if err == nil && len(out) > MaxPeerAnswer {
		err = fmt.Errorf("the kept report %s of %s (%d bytes) does not fit in a peer answer of %d bytes", req.Week, self, len(out), MaxPeerAnswer)
	}
	if err != nil {
		r.refusePeer(w, q, self, http.StatusInternalServerError, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(out)
}

// peerAnswer is this node's answer: the list (week ""), or the kept
// report of week.
func (r *Reports) peerAnswer(self, week string) (*PeerAnswer, error) {
	h := r.d.Store().History()
	ans := &PeerAnswer{Node: self, Week: week}
	if week != "" {
		b, err := h.Report(week)
		if err != nil || b == nil {
			return ans, err
		}
		if _, err := report.Decode(week, b); err != nil {
			return nil, fmt.Errorf("%s: %w", self, err)
		}
		ans.Report = b
		return ans, nil
	}
	list, skipped, err := report.List(h)
	if err != nil {
		return nil, err
	}
	if len(list) > MaxPeerRows {
		list, ans.More = list[:MaxPeerRows], len(list)-MaxPeerRows
	}
	ans.Reports = list
	for i, s := range skipped {
		if i == MaxPeerSkipped {
			ans.Skipped = append(ans.Skipped[:MaxPeerSkipped-1], fmt.Sprintf("... and %d more damaged kept reports", len(skipped)-MaxPeerSkipped+1))
			break
		}
		ans.Skipped = append(ans.Skipped, clip(s, MaxPeerLine))
	}
	return ans, nil
}

// refusePeer answers the peer's request with an error message, and logs
// it.
func (r *Reports) refusePeer(w http.ResponseWriter, q *http.Request, self string, code int, err error) {
	r.d.Log.Warn("refused peer request", "peer", q.RemoteAddr, "path", q.URL.Path, "reason", err.Error())
	peer.Write(w, code, peer.TypeError, self, peer.ErrorBody{Message: clip(err.Error(), MaxPeerLine)})
}

// askPeer sends req to the peer and reads its answer, checked. The peer
// named in an error is the one this node's cluster state names (the link
// checks its certificate).
func (r *Reports) askPeer(ctx context.Context, req PeerRequest) (*PeerAnswer, string, error) {
	name := r.node().Peer
	if name == "" || r.d.Peer == nil {
		return nil, "", ErrNoPeer
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, name, err
	}
	ctx, cancel := context.WithTimeout(ctx, PeerTimeout)
	defer cancel()
	resp, err := r.d.Peer.Post(ctx, PeerPath, "application/json", bytes.NewReader(body))
	if err != nil {
		return nil, name, fmt.Errorf("the kept reports of peer %s: %w", name, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxPeerAnswer+1))
	if err != nil {
		return nil, name, fmt.Errorf("the kept reports of peer %s: reading the answer: %w", name, err)
	}
	ans, err := readPeerAnswer(resp.StatusCode, b, name, req.Week)
	if err != nil {
		return nil, name, fmt.Errorf("the kept reports of peer %s: %w", name, err)
	}
	return ans, name, nil
}

// errMalformed marks an answer this node refuses.
var errMalformed = errors.New("malformed answer")

// readPeerAnswer reads the answer (status code, body) of peer name to a
// request for week ("" the list), and checks it: a refusal is an error
// with the peer's words (when printable); an answer too large, not of the
// form asked, with a week that is not one, or with a text that is too long
// or holds control characters is refused whole.
func readPeerAnswer(code int, b []byte, name, week string) (*PeerAnswer, error) {
	if len(b) > MaxPeerAnswer {
		return nil, fmt.Errorf("%w: larger than %d bytes", errMalformed, MaxPeerAnswer)
	}
	if code != http.StatusOK {
		env, err := peer.Decode(b)
		if err != nil || env.Type != peer.TypeError {
			return nil, fmt.Errorf("it answered %d %s", code, http.StatusText(code))
		}
		eb, err := env.Error()
		if err != nil {
			return nil, fmt.Errorf("it answered %d %s", code, http.StatusText(code))
		}
		if err := checkText(eb.Message, MaxPeerLine, false); err != nil {
			return nil, fmt.Errorf("it answered %d %s, with a refusal not printed: %v", code, http.StatusText(code), err)
		}
		if code == http.StatusNotFound && strings.HasPrefix(eb.Message, "no such peer endpoint") {
			return nil, fmt.Errorf("its sentry serves no kept reports (an older version): update sentry on %s", name)
		}
		return nil, fmt.Errorf("%w: %s", peer.ErrRefused, eb.Message)
	}
	var ans PeerAnswer
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&ans); err != nil {
		return nil, fmt.Errorf("%w: %v", errMalformed, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the answer", errMalformed)
	}
	if ans.Node != name {
		return nil, fmt.Errorf("%w: it says it is node %s", errMalformed, quote(ans.Node, 70))
	}
	var err error
	if week == "" {
		err = checkList(&ans)
	} else {
		err = checkOne(&ans, week)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errMalformed, err)
	}
	return &ans, nil
}

// checkList checks a list answer.
func checkList(a *PeerAnswer) error {
	switch {
	case a.Week != "" || len(a.Report) > 0:
		return errors.New("a report where the list was asked for")
	case len(a.Reports) > MaxPeerRows:
		return fmt.Errorf("%d kept reports listed (at most %d)", len(a.Reports), MaxPeerRows)
	case len(a.Skipped) > MaxPeerSkipped:
		return fmt.Errorf("%d damaged kept reports named (at most %d)", len(a.Skipped), MaxPeerSkipped)
	case a.More < 0 || a.More > 1<<20:
		return fmt.Errorf("%d more kept reports", a.More)
	}
	seen := map[string]bool{}
	for _, l := range a.Reports {
		if !validWeek(l.Week) {
			return fmt.Errorf("week %s is not an ISO week such as 2026-W49", quote(l.Week, 20))
		}
		if seen[l.Week] {
			return fmt.Errorf("week %s listed twice", l.Week)
		}
		seen[l.Week] = true
		if err := checkText(l.Headline, MaxPeerLine, false); err != nil {
			return fmt.Errorf("the headline of %s: %w", l.Week, err)
		}
	}
	for _, s := range a.Skipped {
		if err := checkText(s, MaxPeerLine, false); err != nil {
			return fmt.Errorf("a damaged kept report named: %w", err)
		}
	}
	return nil
}

// checkOne checks the answer for the kept report of week: the document a
// report of week of a format this sentry reads, every text in it bounded
// and printable, and what its charts draw within the week and its sizes.
func checkOne(a *PeerAnswer, week string) error {
	if len(a.Reports) > 0 || len(a.Skipped) > 0 || a.More != 0 {
		return fmt.Errorf("a list where the report of %s was asked for", week)
	}
	if a.Week != week {
		return fmt.Errorf("the report of week %s where %s was asked for", quote(a.Week, 20), week)
	}
	if len(a.Report) == 0 || string(a.Report) == "null" {
		a.Report = nil
		return nil
	}
	var doc any
	if err := json.Unmarshal(a.Report, &doc); err != nil {
		return fmt.Errorf("report %s: %v", week, err)
	}
	if err := walkTexts(doc, "report"); err != nil {
		return fmt.Errorf("report %s: %w", week, err)
	}
	rep, err := report.Decode(week, a.Report)
	if err != nil {
		return err
	}
	return checkDrawn(rep)
}

// walkTexts checks every text of a JSON document (keys too), naming where
// a bad one is.
func walkTexts(v any, at string) error {
	switch v := v.(type) {
	case string:
		if err := checkText(v, MaxPeerText, true); err != nil {
			return fmt.Errorf("%s: %w", at, err)
		}
	case []any:
		for i, e := range v {
			if err := walkTexts(e, at+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if err := checkText(k, 64, false); err != nil {
				return fmt.Errorf("%s: a key: %w", at, err)
			}
			if err := walkTexts(v[k], at+"."+k); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkDrawn bounds what the charts draw (Report.Charts): the week is the
// week of its key, every span and point within it and in time order,
// percentages within 0 to 100, and the rows and points counted.
func checkDrawn(rep *report.Report) error {
	from, err := store.WeekStartOf(rep.Week)
	if err != nil {
		return err
	}
	to := from.AddDate(0, 0, 7)
	within := func(t time.Time) bool { return !t.Before(from) && !t.After(to) }
	switch {
	case !rep.From.Equal(from) || !rep.To.Equal(to):
		return fmt.Errorf("report %s runs from %s to %s, not over its week", rep.Week, rep.From.Format(time.RFC3339), rep.To.Format(time.RFC3339))
	case !within(rep.Until):
		return fmt.Errorf("report %s: its data ends at %s, outside its week", rep.Week, rep.Until.Format(time.RFC3339))
	case rep.Services.Hours < 0 || rep.Services.Hours > 7*24:
		return fmt.Errorf("report %s: %d hours in a week", rep.Week, rep.Services.Hours)
	case len(rep.Services.Rows) > MaxPeerChartRows || len(rep.Disks.Trend) > MaxPeerChartRows:
		return fmt.Errorf("report %s: %d service rows and %d disk probes (at most %d each)", rep.Week, len(rep.Services.Rows), len(rep.Disks.Trend), MaxPeerChartRows)
	case len(rep.Verdict.Segments) > MaxPeerChartItems:
		return fmt.Errorf("report %s: %d verdict spans (at most %d)", rep.Week, len(rep.Verdict.Segments), MaxPeerChartItems)
	}
	last := from
	for _, s := range rep.Verdict.Segments {
		if s.From.Before(last) || s.To.Before(s.From) || !within(s.To) {
			return fmt.Errorf("report %s: a verdict span from %s to %s out of its week or of order", rep.Week, s.From.Format(time.RFC3339), s.To.Format(time.RFC3339))
		}
		last = s.To
	}
	points := 0
	for _, d := range rep.Disks.Trend {
		points += len(d.Points)
		if points > MaxPeerChartItems {
			return fmt.Errorf("report %s: more than %d disk readings", rep.Week, MaxPeerChartItems)
		}
		prev := from
		for _, p := range d.Points {
			if p.At.Before(prev) || !within(p.At) || p.Value < 0 || p.Value > 100 {
				return fmt.Errorf("report %s: a disk reading of %s (%g %%) at %s out of its week, of order or of 0 to 100 %%", rep.Week, d.Service, p.Value, p.At.Format(time.RFC3339))
			}
			prev = p.At
		}
	}
	return nil
}

// checkText says what is wrong with a text from the peer that a terminal
// may print: longer than max bytes, not UTF-8, or holding a control
// character (line breaks and tabs only when multiline) or a bidirectional
// override.
func checkText(s string, max int, multiline bool) error {
	if len(s) > max {
		return fmt.Errorf("a text of %d bytes (at most %d)", len(s), max)
	}
	if !utf8.ValidString(s) {
		return errors.New("a text that is not UTF-8")
	}
	for _, c := range s {
		if multiline && (c == '\n' || c == '\t') {
			continue
		}
		if unicode.IsControl(c) || unicode.Is(unicode.Bidi_Control, c) {
			return fmt.Errorf("a text with the control character %U: %s", c, quote(s, 40))
		}
	}
	return nil
}

// validWeek says whether w is an ISO week written as the store writes
// it.
func validWeek(w string) bool {
	start, err := store.WeekStartOf(w)
	return err == nil && store.WeekKey(start) == w
}

// quote is s quoted (escaped: safe to print), cut to about n bytes.
func quote(s string, n int) string { return strconv.QuoteToASCII(clip(s, n)) }

// clip cuts s to at most n bytes, at a character's start.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// PeerList is the peer's kept reports, checked: the rows (newest first),
// the damaged ones it names, and how many older ones it left out.
func (r *Reports) PeerList(ctx context.Context) (name string, rows []report.Listed, skipped []string, more int, err error) {
	ans, name, err := r.askPeer(ctx, PeerRequest{})
	if err != nil {
		return name, nil, nil, 0, err
	}
	return name, ans.Reports, ans.Skipped, ans.More, nil
}

// PeerReport is the peer's kept report of week (as Week takes it),
// checked; an error when the peer keeps none.
func (r *Reports) PeerReport(ctx context.Context, week string) (*report.Report, string, error) {
	w, err := r.Week(week)
	if err != nil {
		return nil, "", err
	}
	ans, name, err := r.askPeer(ctx, PeerRequest{Week: w})
	if err != nil {
		return nil, name, err
	}
	if ans.Report == nil {
		return nil, name, fmt.Errorf("peer %s keeps no report of week %s (sentry report list)", name, w)
	}
	rep, err := report.Decode(w, ans.Report)
	return rep, name, err
}

// listBoth is the local API's list: this node's kept reports and, with
// withPeer, the peer's; the peer unreachable or its answer refused is
// said in PeerError, not an error.
func (r *Reports) listBoth(ctx context.Context, withPeer bool) (List, error) {
	n := r.node()
	self := n.Self
	if self == "" {
		self = r.d.Conf().Node.Name
	}
	own, skipped, err := report.List(r.d.Store().History())
	if err != nil {
		return List{}, err
	}
	l := List{Reports: []Kept{}, Skipped: skipped}
	for _, k := range own {
		l.Reports = append(l.Reports, Kept{Listed: k, Node: self})
	}
	if !withPeer || n.Peer == "" {
		return l, nil
	}
	name, rows, pskipped, more, err := r.PeerList(ctx)
	l.Peer = name
	if err != nil {
		l.PeerError = err.Error()
		return l, nil
	}
	for _, k := range rows {
		l.Reports = append(l.Reports, Kept{Listed: k, Node: name})
	}
	for _, s := range pskipped {
		l.Skipped = append(l.Skipped, "on "+name+": "+s)
	}
	l.PeerMore = more
	sort.SliceStable(l.Reports, func(i, j int) bool { return l.Reports[i].Week > l.Reports[j].Week })
	return l, nil
}
