// Package agentclient is the CLI's client of the local agent: HTTP over
// its root-only unix socket, or for a member of group sentry over its
// read-only socket (docs/design.md, the local API; docs/security.md).
package agentclient

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sentryha/sentry/internal/agent/api"
	"github.com/sentryha/sentry/internal/agent/cfgsync"
	"github.com/sentryha/sentry/internal/agent/link"
	"github.com/sentryha/sentry/internal/agent/localsock"
	"github.com/sentryha/sentry/internal/agent/machines"
	"github.com/sentryha/sentry/internal/agent/modset"
	"github.com/sentryha/sentry/internal/agent/parity"
	"github.com/sentryha/sentry/internal/agent/reports"
	"github.com/sentryha/sentry/internal/agent/schedule"
	"github.com/sentryha/sentry/internal/agent/swaps"
	"github.com/sentryha/sentry/internal/failover"
	"github.com/sentryha/sentry/internal/readiness"
	"github.com/sentryha/sentry/internal/report"
	"github.com/sentryha/sentry/internal/store"
	"github.com/sentryha/sentry/synchronizer"
)

// ErrNoAgent is returned when nothing answers on the local socket.
var ErrNoAgent = errors.New("the sentry agent is not running (systemctl start sentry-agent)")

// ErrNeedRoot is returned when the local socket is there but refuses this
// user: the local API is root's only (the socket is mode 0600, and the
// agent drops a client that is not root); and when the read-only socket
// refuses a request that is not a read (403, localsock.Refusal).
var ErrNeedRoot = errors.New("this command must run as root")

// Client talks to the local agent over its unix socket.
type Client struct {
	Socket string
	hc     *http.Client
	read   string // the read-only socket ("": none)
	sudo   string // the command line a read-only refusal names
}

// Option adjusts a client (New).
type Option func(*Client)

// ReadSocket lets a user other than root read through the agent's
// read-only socket at path: when the root-only socket refuses the
// connection (permission denied), the client connects there instead.
func ReadSocket(path string) Option { return func(c *Client) { c.read = path } }

// Sudo names the command line ("sentry config rollback") that the
// not-root error of a read-only refusal tells to run with sudo.
func Sudo(line string) Option { return func(c *Client) { c.sudo = line } }

// New returns a client for the agent at socket.
func New(socket string, opts ...Option) *Client {
	c := &Client{Socket: socket}
	for _, o := range opts {
		o(c)
	}
	read := c.read
	c.hc = &http.Client{
		Timeout: 60 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			conn, err := d.DialContext(ctx, "unix", socket)
			if err != nil && read != "" && errors.Is(err, fs.ErrPermission) {
				if rc, rerr := d.DialContext(ctx, "unix", read); rerr == nil {
					return rc, nil
				}
			}
			return conn, err
		}},
	}
	return c
}

// untimed is c without the client's timeout, for a request that may take
// minutes (a function: Client keeps to 30 methods, internal/archtest).
func untimed(c *Client) *Client {
	long := *c
	long.hc = &http.Client{Transport: c.hc.Transport}
	return &long
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body bytes.Buffer
	if in != nil {
		if err := json.NewEncoder(&body).Encode(in); err != nil {
			return err
		}
	}
	// Whether a connection was made tells "the agent closed it" from
	// "nothing listens".
	var connected atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) { connected.Store(true) }})
	req, err := http.NewRequestWithContext(ctx, method, "http://agent"+path, &body)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return connError(c, err, connected.Load())
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return answerError(c, resp)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// answerError is the error of an answer other than 200: the agent's
// message; a read-only socket's refusal is ErrNeedRoot, naming the
// command to run with sudo.
func answerError(c *Client, resp *http.Response) error {
	var ae api.Error
	if json.NewDecoder(resp.Body).Decode(&ae) != nil || ae.Error == "" {
		return fmt.Errorf("agent answered %s", resp.Status)
	}
	if resp.StatusCode == http.StatusForbidden && ae.Error == localsock.Refusal {
		msg := ae.Error
		if c.sudo != "" {
			msg = strings.Replace(msg, "sudo sentry ...", "sudo "+c.sudo, 1)
		}
		return fmt.Errorf("%w: %s", ErrNeedRoot, msg)
	}
	return errors.New(ae.Error)
}

// connError tells why a request got no answer: the sockets refused this
// user, or the agent closed the connection of a user it does not serve
// (ErrNeedRoot), or nothing listens on the socket (ErrNoAgent).
func connError(c *Client, err error, connected bool) error {
	socket := c.Socket
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		if errors.Is(oe.Err, fs.ErrPermission) && c.read != "" {
			return fmt.Errorf("%w: the agent's socket %s: permission denied (the local API is root's; its read-only view, %s, is group sentry's)", ErrNeedRoot, socket, c.read)
		}
		if errors.Is(oe.Err, fs.ErrPermission) {
			return fmt.Errorf("%w: the agent's socket %s: permission denied (the local API is root's only)", ErrNeedRoot, socket)
		}
		return fmt.Errorf("%w: %s: %v", ErrNoAgent, socket, oe.Err)
	}
	// The agent accepts a connection from any user the socket lets in and
	// closes it at once unless the user is root: the request was sent and
	// no answer came (EOF, a reset, or "server closed idle connection",
	// depending on when the close is seen).
	var ne net.Error
	timeout := errors.As(err, &ne) && ne.Timeout()
	if connected && os.Geteuid() != 0 && !timeout && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: the agent at %s closed the connection (it answers root only)", ErrNeedRoot, socket)
	}
	return err
}

// api.State asks for both nodes' status.
func (c *Client) Status(ctx context.Context) (*api.State, error) {
	var s api.State
	return &s, c.do(ctx, http.MethodGet, "/v1/status", nil, &s)
}

// Init makes this disk set the primary of a new cluster.
func (c *Client) Init(ctx context.Context, name string, ttl time.Duration) (*link.InitResult, error) {
	var r link.InitResult
	return &r, c.do(ctx, http.MethodPost, "/v1/init", api.InitRequest{ClusterName: name, TokenTTLSeconds: int64(ttl / time.Second)}, &r)
}

// Token makes another join token.
func (c *Client) Token(ctx context.Context, ttl time.Duration) (*api.TokenResult, error) {
	var r api.TokenResult
	return &r, c.do(ctx, http.MethodPost, "/v1/token", api.TokenRequest{TTLSeconds: int64(ttl / time.Second)}, &r)
}

// Join pairs this disk set with the primary at addr.
func (c *Client) Join(ctx context.Context, token, addr string) (*link.JoinResult, error) {
	var r link.JoinResult
	return &r, c.do(ctx, http.MethodPost, "/v1/join", api.JoinRequest{Token: token, Primary: addr}, &r)
}

// Reload makes the agent re-read its configuration.
func (c *Client) Reload(ctx context.Context) error {
	var r map[string]bool
	return c.do(ctx, http.MethodPost, "/v1/reload", struct{}{}, &r)
}

// Events returns the newest n events.
func (c *Client) Events(ctx context.Context, n int) ([]store.Event, error) {
	var evs []store.Event
	return evs, c.do(ctx, http.MethodGet, fmt.Sprintf("/v1/events?n=%d", n), nil, &evs)
}

// Sync makes the secondary fetch and apply now (force: even a commit that
// failed before, and overwrite local edits).
func (c *Client) Sync(ctx context.Context, force bool) (*synchronizer.SyncResult, error) {
	var r synchronizer.SyncResult
	return &r, c.do(ctx, http.MethodPost, "/v1/sync", api.SyncRequest{Force: force}, &r)
}

// ConfigLog lists at most n commits of this node's configuration
// repository, newest first, from rev ("": the head).
func (c *Client) ConfigLog(ctx context.Context, rev string, n int) ([]cfgsync.LogEntry, error) {
	var r []cfgsync.LogEntry
	q := url.Values{"n": {strconv.Itoa(n)}}
	if rev != "" {
		q.Set("rev", rev)
	}
	return r, c.do(ctx, http.MethodGet, "/v1/config/log?"+q.Encode(), nil, &r)
}

// ConfigShow is the tracked file path as it was in rev; with node, as that
// node gets it (its overlay file, if it has one).
func (c *Client) ConfigShow(ctx context.Context, rev, path, node string) (*cfgsync.ShowResult, error) {
	var r cfgsync.ShowResult
	q := url.Values{"rev": {rev}, "path": {path}}
	if node != "" {
		q.Set("node", node)
	}
	return &r, c.do(ctx, http.MethodGet, "/v1/config/show?"+q.Encode(), nil, &r)
}

// ConfigDiff is what rev ("": the head) changed.
func (c *Client) ConfigDiff(ctx context.Context, rev string) (*cfgsync.DiffResult, error) {
	var r cfgsync.DiffResult
	return &r, c.do(ctx, http.MethodGet, "/v1/config/diff?"+url.Values{"rev": {rev}}.Encode(), nil, &r)
}

// ConfigNodeDiffs is what differs by design between the nodes in rev:
// their overlay files.
func (c *Client) ConfigNodeDiffs(ctx context.Context, rev string) (*cfgsync.NodeDiffsResult, error) {
	var r cfgsync.NodeDiffsResult
	return &r, c.do(ctx, http.MethodGet, "/v1/config/diff?"+url.Values{"rev": {rev}, "nodes": {"true"}}.Encode(), nil, &r)
}

// Rollback restores the configuration of rev on the primary, as a new commit.
func (c *Client) Rollback(ctx context.Context, rev string) (*cfgsync.RollbackResult, error) {
	var r cfgsync.RollbackResult
	return &r, c.do(ctx, http.MethodPost, "/v1/config/rollback", api.RollbackRequest{Rev: rev}, &r)
}

// Drift lists the secondary's local edits under the tracked paths.
func (c *Client) Drift(ctx context.Context) ([]synchronizer.DriftItem, error) {
	var items []synchronizer.DriftItem
	return items, c.do(ctx, http.MethodGet, "/v1/config/drift", nil, &items)
}

// ApproveModules widens this secondary's boundary to what the selected
// modules (the primary's) ask for now.
func (c *Client) ApproveModules(ctx context.Context) (*modset.ApproveResult, error) {
	var res modset.ApproveResult
	err := c.do(ctx, http.MethodPost, "/v1/modules/approve", struct{}{}, &res)
	return &res, err
}

// Promote makes this secondary disk set the primary (next boot).
func (c *Client) Promote(ctx context.Context) (*machines.PromoteResult, error) {
	var res machines.PromoteResult
	err := c.do(ctx, http.MethodPost, "/v1/promote", struct{}{}, &res)
	return &res, err
}

// Adopt accepts this (unknown) machine in place of machine replaces.
func (c *Client) Adopt(ctx context.Context, replaces string, force bool) (*machines.AdoptResult, error) {
	var res machines.AdoptResult
	err := c.do(ctx, http.MethodPost, "/v1/bootcheck/adopt", api.AdoptRequest{Replaces: replaces, Force: force}, &res)
	return &res, err
}

// Results are the stored results of node's probes: the newest of each, or
// with probe set the last n runs of that probe.
func (c *Client) Results(ctx context.Context, node, probe string, n int) ([]store.StoredResult, error) {
	var res []store.StoredResult
	q := url.Values{"node": {node}, "probe": {probe}, "n": {strconv.Itoa(n)}}
	return res, c.do(ctx, http.MethodGet, "/v1/verify/results?"+q.Encode(), nil, &res)
}

// Debug is the last scheduled run of one probe with its own log.
func (c *Client) Debug(ctx context.Context, probe string) (*schedule.ProbeDebug, error) {
	var d schedule.ProbeDebug
	return &d, c.do(ctx, http.MethodGet, "/v1/verify/debug?"+url.Values{"probe": {probe}}.Encode(), nil, &d)
}

// Reports is the weekly report's part of the local API.
func (c *Client) Reports() ReportsClient { return ReportsClient{c} }

// ReportsClient asks the agent for weekly reports.
type ReportsClient struct{ c *Client }

// Build is a week's report ("" or "last", "current", or "2026-W49")
// rendered as format (text, markdown, html or json), built now.
func (r ReportsClient) Build(ctx context.Context, week, format string) (*reports.Text, error) {
	var t reports.Text
	q := url.Values{"week": {week}, "format": {format}}
	return &t, r.c.do(ctx, http.MethodGet, "/v1/report?"+q.Encode(), nil, &t)
}

// List lists the kept weekly reports, newest first.
func (r ReportsClient) List(ctx context.Context) (*reports.List, error) {
	var l reports.List
	return &l, r.c.do(ctx, http.MethodGet, "/v1/reports", nil, &l)
}

// ListWithPeer lists this node's kept weekly reports and the peer's, newest
// first, each row naming its node; the peer not answering is said in
// PeerError, not an error.
func (r ReportsClient) ListWithPeer(ctx context.Context) (*reports.List, error) {
	var l reports.List
	return &l, r.c.do(ctx, http.MethodGet, "/v1/reports?peer=1", nil, &l)
}

// FromPeer is the peer's kept report of week ("" or "last", "current",
// or "2026-W49"), fetched over the peer link and rendered here as format.
func (r ReportsClient) FromPeer(ctx context.Context, week, format string) (*reports.Text, error) {
	var t reports.Text
	q := url.Values{"week": {week}, "format": {format}, "from": {"peer"}}
	return &t, r.c.do(ctx, http.MethodGet, "/v1/report?"+q.Encode(), nil, &t)
}

// Run is the weekly timer's run: the week's report kept and, with mail,
// mailed (by the primary, or by the secondary after a day without the
// primary).
func (r ReportsClient) Run(ctx context.Context, week string, mail bool) (*reports.RunResult, error) {
	var res reports.RunResult
	return &res, r.c.do(ctx, http.MethodPost, "/v1/report/run", reports.Request{Week: week, Mail: mail}, &res)
}

// RestoreTest tests this node's restic repositories now (a slice of the
// data read back, a sample of files restored and compared): minutes for
// a big repository, so no client timeout.
func (r ReportsClient) RestoreTest(ctx context.Context) ([]report.RestoreRun, error) {
	var runs []report.RestoreRun
	long := untimed(r.c)
	return runs, long.do(ctx, http.MethodPost, "/v1/report/restore-test", struct{}{}, &runs)
}

// Ready is the readiness verdict: READY, NOT READY or UNKNOWN, with
// every check's finding, blocking ones first.
func (c *Client) Ready(ctx context.Context) (*readiness.Result, error) {
	var r readiness.Result
	return &r, c.do(ctx, http.MethodGet, "/v1/ready", nil, &r)
}

// Parity compares this node's inventory with the peer's: drift, both
// compatibility reports and the plan.
func (c *Client) Parity(ctx context.Context) (*parity.Report, error) {
	var r parity.Report
	return &r, c.do(ctx, http.MethodGet, "/v1/parity", nil, &r)
}

// ParityApply carries out this node's part of the parity plan; with
// req.Yes false it is a dry run (the wire field "yes" means "apply", not
// "skip a confirmation": the CLI sets it from --dry-run). Installing can
// take minutes: no client timeout.
func (c *Client) ParityApply(ctx context.Context, req parity.ApplyRequest) (*parity.ApplyResult, error) {
	var r parity.ApplyResult
	long := untimed(c)
	return &r, long.do(ctx, http.MethodPost, "/v1/parity/apply", req, &r)
}

// VerifyNode runs node's probes now (this node's, or the peer's through
// its agent) and returns the results.
func (c *Client) VerifyNode(ctx context.Context, node, service string) ([]store.StoredResult, error) {
	var res []store.StoredResult
	return res, c.do(ctx, http.MethodPost, "/v1/verify/run", schedule.NodeRunRequest{Node: node, Service: service}, &res)
}

// VerifyNow runs this node's probes now, with the schedule's settings (its
// deadline, its modules, the canary password), and stores the results as
// a scheduled round's. A timeout other than 0 and the schedule's makes the
// run ad hoc: not stored. A run lasts up to one probe deadline, and after
// the sync's reloads longer: no client timeout.
func (c *Client) VerifyNow(ctx context.Context, service string, timeout time.Duration) (*schedule.Run, error) {
	var r schedule.Run
	long := untimed(c)
	return &r, long.do(ctx, http.MethodPost, "/v1/verify/now", schedule.RunRequest{Service: service, TimeoutMS: timeout.Milliseconds()}, &r)
}

// ErrStreamClosed is the end of an event stream the agent closed (it is
// stopping).
var ErrStreamClosed = errors.New("the agent closed the event stream")

// Subscribe follows the events the agent records, as it records them,
// beginning after the event with sequence number since (0: the oldest
// stored). When the agent drops the stream because this reader fell
// behind, Subscribe reconnects after the last event it gave, so none is
// missed. The sequence ends with an error: ctx's, ErrStreamClosed when the
// agent stops, or the connection's; or when the loop stops.
func (c *Client) Subscribe(ctx context.Context, since uint64) iter.Seq2[store.Event, error] {
	return func(yield func(store.Event, error) bool) {
		long := &http.Client{Transport: c.hc.Transport}
		for {
			err := readStream(ctx, c, long, &since, yield)
			if errors.Is(err, errStopped) {
				return
			}
			if errors.Is(err, errOverflow) {
				continue
			}
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			yield(store.Event{}, err)
			return
		}
	}
}

var (
	errStopped  = errors.New("the caller stopped")
	errOverflow = errors.New("the agent dropped the stream: this reader fell behind")
)

// readStream reads one connection's events after *since, advancing it (a
// function, not a method: Client keeps to 30 methods, internal/archtest).
func readStream(ctx context.Context, c *Client, hc *http.Client, since *uint64, yield func(store.Event, error) bool) error {
	var connected atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) { connected.Store(true) }})
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://agent/v1/events/stream", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Last-Event-ID", strconv.FormatUint(*since, 10))
	resp, err := hc.Do(req)
	if err != nil {
		return connError(c, err, connected.Load())
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return answerError(c, resp)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var kind string
	var data []byte
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if kind == "" && data == nil {
				continue
			}
			k, d := kind, data
			kind, data = "", nil
			switch k {
			case "overflow":
				return errOverflow
			case "error":
				var ae api.Error
				if json.Unmarshal(d, &ae) == nil && ae.Error != "" {
					return errors.New(ae.Error)
				}
				return fmt.Errorf("event stream: %s", d)
			}
			var e store.Event
			if err := json.Unmarshal(d, &e); err != nil {
				return fmt.Errorf("event stream: %w", err)
			}
			if e.Seq <= *since {
				continue
			}
			*since = e.Seq
			if !yield(e, nil) {
				return errStopped
			}
		case strings.HasPrefix(line, ":"):
			// A comment: the stream's greeting or keepalive.
		case strings.HasPrefix(line, "event:"):
			kind = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " ")...)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return ErrStreamClosed
}

// FailoverPlan makes and records the plan of a disk swap (planned: the
// final-sync barrier is measured; force: made even when not READY, and
// the record says so).
func (c *Client) FailoverPlan(ctx context.Context, planned, force bool) (*failover.Plan, error) {
	var p failover.Plan
	in := map[string]bool{"planned": planned, "force": force}
	return &p, c.do(ctx, http.MethodPost, "/v1/failover/plan", in, &p)
}

// FailoverStatus is this boot's failover record (or the newest stored),
// with what it still waits for.
func (c *Client) FailoverStatus(ctx context.Context) (*swaps.Status, error) {
	var s swaps.Status
	return &s, c.do(ctx, http.MethodGet, "/v1/failover/status", nil, &s)
}

// FailoverHistory is every stored failover record, newest first.
func (c *Client) FailoverHistory(ctx context.Context) ([]failover.Record, error) {
	var h []failover.Record
	return h, c.do(ctx, http.MethodGet, "/v1/failover/history", nil, &h)
}

// Modules is the modules' part of the local API.
func (c *Client) Modules() ModulesClient { return ModulesClient{c} }

// ModulesClient asks the agent about the service modules.
type ModulesClient struct{ c *Client }

// List is every module as `sentry modules list --json` shows it (name,
// kind, versions available, selected, pinned, origin, history) and, on
// the secondary, what waits for approval.
func (m ModulesClient) List(ctx context.Context) (*modset.List, error) {
	var l modset.List
	return &l, m.c.do(ctx, http.MethodGet, "/v1/modules", nil, &l)
}

// Use selects version of module name, as `sentry modules use
// NAME@VERSION` does; the secondary follows.
func (m ModulesClient) Use(ctx context.Context, name, version string) (*modset.Changed, error) {
	var r modset.Changed
	return &r, m.c.do(ctx, http.MethodPost, "/v1/modules/use", modset.UseRequest{Name: name, Version: version}, &r)
}

// Rollback selects the version of module name used before and pins it, as
// `sentry modules rollback NAME` does; the secondary follows.
func (m ModulesClient) Rollback(ctx context.Context, name string) (*modset.Changed, error) {
	var r modset.Changed
	return &r, m.c.do(ctx, http.MethodPost, "/v1/modules/rollback", modset.RollbackRequest{Name: name}, &r)
}
