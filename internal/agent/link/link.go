// Package link is the agent's link with its peer: pairing (init, join
// tokens, join), the peer API server (mutual TLS, limits, refusals), the
// hello loop and what this node knows of the peer's contact, and the one
// client of the peer (peer.Client) that every component calls through.
//
// Other components' peer endpoints are handlers the wiring passes in
// (Deps.Handlers); link serves them behind its certificate check and its
// limits. A status received from the peer goes to the wiring
// (Deps.OnPeerStatus), which hands it to each component; this node's own
// status for a hello comes from the wiring too (Deps.SelfStatus).
package link

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/sentryha/sentry/internal/config"
	"github.com/sentryha/sentry/internal/logging"
	"github.com/sentryha/sentry/internal/peer"
	"github.com/sentryha/sentry/internal/pki"
	"github.com/sentryha/sentry/internal/stamp"
	"github.com/sentryha/sentry/internal/store"
)

// Identity is this node's cluster identity as the wiring holds it (nil
// fields before init or join).
type Identity struct {
	Node    *pki.Node
	Cluster *stamp.Cluster
	Stamp   *stamp.Stamp
}

// Commit is an identity to write: what init or join made, or the cluster
// state a join on the primary changes. The wiring writes it in one place
// (certificates, cluster key, cluster state, then the stamp) and takes it.
type Commit struct {
	// Fresh: init or join; refused (ErrInitialized) when the disk set
	// already belongs to a cluster.
	Fresh bool
	// Certificates to save (pki.Save) when CertPEM is set: the cluster
	// CA's (its key only on the primary that made it) and the node's.
	CACert  *x509.Certificate
	CAKey   *ecdsa.PrivateKey
	CertPEM []byte
	Key     *ecdsa.PrivateKey
	// ClusterKey, when set, is written and loaded.
	ClusterKey string
	Cluster    *stamp.Cluster // nil: unchanged
	Stamp      *stamp.Stamp   // nil: unchanged
}

// Handlers are the other components' peer endpoints.
type Handlers struct {
	VerifyRun      http.HandlerFunc // POST /v1/verify/run
	ConfigFetch    http.HandlerFunc // POST /v1/config/fetch (protocol 2's form)
	InventoryFetch http.HandlerFunc // POST /v1/inventory/fetch
	Deb            http.HandlerFunc // POST /v1/parity/deb (protocol 2's form)
	ReportsFetch   http.HandlerFunc // POST /v1/reports/fetch (nil: not served)
	// DebNeedsFetch says whether serving d makes this node run apt-get
	// download (the fetch limit applies).
	DebNeedsFetch func(d peer.DebRequest) bool
}

// Deps is what link needs of the agent.
type Deps struct {
	Conf    func() *config.Config
	Log     *slog.Logger
	Store   func() *store.Store
	Event   func(kind, node, msg string, fields map[string]string)
	Version string
	// Hardware is this machine's identity (or why there is none).
	Hardware func() (string, error)
	// Identity is the node's cluster identity; Commit writes one.
	Identity func() Identity
	Commit   func(Commit) error
	// ClusterKey is the cluster key as text ("" when none).
	ClusterKey func() string
	// SelfStatus is what this node says about itself in a hello.
	SelfStatus func() peer.NodeStatus
	// AdmitPeerStatus trims a checked status of the peer to what this
	// node keeps (its results), before anything looks at it.
	AdmitPeerStatus func(h *peer.NodeStatus)
	// OnPeerStatus hands a status of the peer, checked and admitted, to
	// the components; prev is the one before (nil: none).
	OnPeerStatus func(h, prev *peer.NodeStatus)
	// Started runs once the peer API listens (the components that need an
	// identity start there); its error stops the start.
	Started  func() error
	Stopped  func()
	Handlers Handlers
}

// Option adjusts a Link.
type Option func(*Link)

// WithCodec makes the link speak codec's protocol (a mixed pair in
// tests).
func WithCodec(c peer.Codec) Option { return func(l *Link) { l.codec = c } }

// State is what this node knows of the peer's contact.
type State struct {
	Reachable   bool
	LastContact time.Time
	LastError   string
	Peer        *peer.NodeStatus
	// ClockOffset is the peer's clock minus this node's, as the last
	// hello this node sent measured it (the peer's time against the
	// middle of the round trip), at ClockMeasured (zero: not yet). Only
	// an exchange whose round trip took at most MaxClockRTT moves it: a
	// peer slow to answer (a hello stamped, then held up) is no clock
	// offset. A hello the peer sent is used only until one of this
	// node's has come back: its travel time is not known.
	ClockOffset   time.Duration
	ClockMeasured time.Time
}

// MaxClockRTT is the longest round trip a clock measurement is taken from
// (its error is at most half of it).
const MaxClockRTT = time.Second

// Link is the peer link.
type Link struct {
	d      Deps
	codec  peer.Codec
	client *peer.Client
	lim    *limits

	joinMu sync.Mutex // one init or join at a time

	mu    sync.Mutex
	state State
	// clockPrecise: a hello of this node's came back quickly enough to
	// measure the clock (State.ClockOffset); the peer's hellos no longer
	// move it.
	clockPrecise bool
	srv          *http.Server
	ln           net.Listener
	loop         context.CancelFunc
	wg           sync.WaitGroup
}

// New makes the link; it serves nothing until Start.
func New(d Deps, opts ...Option) *Link {
	l := &Link{d: d, lim: newLimits(d.Log, d.Event)}
	for _, o := range opts {
		o(l)
	}
	target := func() (peer.Target, error) {
		id := d.Identity()
		if id.Cluster == nil || id.Cluster.PeerAddress == "" || id.Node == nil {
			return peer.Target{}, ErrNoPeer
		}
		return peer.Target{Addr: id.Cluster.PeerAddress, Name: id.Cluster.PeerName, Node: id.Node}, nil
	}
	l.client = peer.NewClient(target, l.nodeName, l.codec)
	return l
}

// ErrNoPeer: there is no peer to call yet.
var ErrNoPeer = errors.New("this node has no peer yet (sentry init / sentry join)")

func (l *Link) nodeName() string { return l.d.Conf().Node.Name }

// Client is the one client of the peer.
func (l *Link) Client() *peer.Client { return l.client }

// Codec is the peer protocol this node speaks.
func (l *Link) Codec() peer.Codec { return l.codec }

// State is what this node knows of the peer's contact now.
func (l *Link) State() State {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state
}

// Peer is the peer's last status (nil: none yet).
func (l *Link) Peer() *peer.NodeStatus {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state.Peer
}

// PeerProtocol is the protocol the peer said last (0: not known).
func (l *Link) PeerProtocol() int {
	if p := l.Peer(); p != nil {
		return p.Protocol
	}
	return 0
}

// SetPeer takes h as the peer's status, as a join does (tests too).
func (l *Link) SetPeer(h *peer.NodeStatus) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.state = State{Reachable: true, LastContact: time.Now().UTC(), Peer: h}
}

// Addr is the peer API's listening address, once it listens.
func (l *Link) Addr() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ln == nil {
		return ""
	}
	return l.ln.Addr().String()
}

// Start serves the peer API with the node's certificate, runs
// Deps.Started, and starts the hello loop. Once started, it is not
// started again.
func (l *Link) Start() error {
	node := l.d.Identity().Node // before l.mu: the wiring's lock is taken first, never inside l.mu
	l.mu.Lock()
	if l.srv != nil {
		l.mu.Unlock()
		return nil
	}
	ln, err := net.Listen("tcp", l.d.Conf().Agent.Listen)
	if err != nil {
		l.mu.Unlock()
		return fmt.Errorf("peer api: %w", err)
	}
	srv := &http.Server{
		Handler:           l.Handler(),
		TLSConfig:         node.ServerTLS(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      15 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          logging.HTTPErrorLog(l.d.Log, "peer api"),
	}
	l.srv, l.ln = srv, ln
	l.mu.Unlock()
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		if err := srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			l.d.Log.Error("peer api stopped", "err", err)
		}
	}()
	if l.d.Started != nil {
		if err := l.d.Started(); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	l.mu.Lock()
	l.loop = cancel
	l.mu.Unlock()
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		// A hello every peer.interval (with jitter).
		for {
			l.HelloNow(ctx)
			iv := l.d.Conf().Peer.Interval.Duration
			jitter := time.Duration(rand.Int64N(int64(iv/10) + 1))
			select {
			case <-ctx.Done():
				return
			case <-time.After(iv + jitter):
			}
		}
	}()
	l.d.Log.Info("peer api listening", "address", ln.Addr().String(), "cluster", node.Cluster, "node", node.Name)
	return nil
}

// Stop marks the link stopped (Running), runs Deps.Stopped, ends the
// hello loop, drains the peer API within ctx and closes the client's
// connections.
func (l *Link) Stop(ctx context.Context) {
	l.mu.Lock()
	loop, srv := l.loop, l.srv
	l.loop, l.srv = nil, nil
	l.mu.Unlock()
	if l.d.Stopped != nil {
		l.d.Stopped()
	}
	if loop != nil {
		loop()
	}
	if srv != nil {
		if err := srv.Shutdown(ctx); err != nil {
			l.d.Log.Warn("peer api did not drain in time", "err", err)
		}
	}
	l.wg.Wait()
	l.client.Close()
}

// Running says whether the link is started and not stopped.
func (l *Link) Running() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.loop != nil
}

// HelloNow says hello to the peer now, outside the loop's rhythm (a
// change the peer should know of at once).
func (l *Link) HelloNow(ctx context.Context) {
	id := l.d.Identity()
	if id.Cluster == nil || id.Cluster.PeerAddress == "" {
		return
	}
	addr, name := id.Cluster.PeerAddress, id.Cluster.PeerName
	hctx, cancel := context.WithTimeout(ctx, l.d.Conf().Peer.Timeout.Duration)
	self := l.d.SelfStatus()
	sent := time.Now()
	h, err := l.client.Hello(hctx, self)
	rtt := time.Since(sent)
	cancel()
	if errors.Is(err, peer.ErrEncode) {
		l.d.Log.Error("hello", "err", err)
		return
	}
	if err != nil {
		l.mu.Lock()
		say := l.state.Reachable || l.state.LastError == ""
		l.state.Reachable, l.state.LastError = false, err.Error()
		l.mu.Unlock()
		if say {
			l.d.Event("peer-unreachable", name, fmt.Sprintf("peer %s at %s does not answer: %v", name, addr, err), map[string]string{"peer": addr})
			l.d.Log.Warn("peer unreachable", "node", name, "peer", addr, "err", err)
		}
		return
	}
	why := ""
	if h.Name != name {
		why = fmt.Sprintf("peer answered as %q", h.Name)
	} else if err := l.CheckPeerGeneration(h); err != nil {
		why = err.Error()
	}
	if why != "" {
		l.mu.Lock()
		l.state.Reachable, l.state.LastError = false, why
		l.mu.Unlock()
		return
	}
	l.recordContact(h, addr, rtt)
}

// recordContact notes a successful exchange with the peer, whose status
// was checked (peer.NodeStatus.Validate, CheckPeerGeneration), admitted
// (Deps.AdmitPeerStatus), and then handed to the components. rtt is the
// round trip of a hello this node sent (negative: the peer sent it).
func (l *Link) recordContact(h *peer.NodeStatus, addr string, rtt time.Duration) {
	now := time.Now().UTC()
	if l.d.AdmitPeerStatus != nil {
		l.d.AdmitPeerStatus(h)
	}
	l.mu.Lock()
	was := l.state.Reachable
	prev := l.state.Peer
	off, at := l.state.ClockOffset, l.state.ClockMeasured
	switch {
	case h.Time.IsZero():
	case rtt >= 0 && rtt <= MaxClockRTT:
		off, at, l.clockPrecise = h.Time.Sub(now.Add(-rtt/2)), now, true
	case rtt < 0 && !l.clockPrecise:
		// Until this node's own hello has come back: the peer's, whose
		// travel time makes the peer look behind by that much.
		off, at = h.Time.Sub(now), now
	}
	l.state = State{Reachable: true, LastContact: now, Peer: h, ClockOffset: off, ClockMeasured: at}
	l.mu.Unlock()
	if !was {
		l.d.Event("peer-reachable", h.Name, "peer "+h.Name+" answers", map[string]string{"peer": addr})
		l.d.Log.Info("peer reachable", "node", h.Name, "peer", addr)
	}
	if l.d.OnPeerStatus != nil {
		l.d.OnPeerStatus(h, prev)
	}
	l.noteVersion(h, prev)
	if err := putPeer(l.d.Store(), h, addr, now); err != nil {
		l.d.Log.Error("store peer", "err", err)
	}
}

// noteVersion records a peer-version event when the peer runs another
// version of sentry than at the last contact (prev, or the stored record
// of the peer after this agent restarted): an upgrade of the peer, one
// node at a time, is in both nodes' events with both versions.
func (l *Link) noteVersion(h, prev *peer.NodeStatus) {
	before := ""
	if prev != nil {
		before = prev.AgentVersion
	} else if st := l.d.Store(); st != nil {
		if rec, ok, err := st.Peer(h.Name); err == nil && ok {
			var old struct {
				AgentVersion string `json:"agent_version"`
			}
			if json.Unmarshal(rec.Status, &old) == nil {
				before = old.AgentVersion
			}
		}
	}
	if before == "" || before == h.AgentVersion {
		return
	}
	l.d.Event("peer-version", h.Name, fmt.Sprintf("peer %s now runs sentry %s (it ran %s)", h.Name, h.AgentVersion, before),
		map[string]string{"version": h.AgentVersion, "previous_version": before})
}
