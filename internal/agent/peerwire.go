package agent

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sentryha/sentry/internal/agent/link"
	"github.com/sentryha/sentry/internal/agent/parity"
	"github.com/sentryha/sentry/internal/atomicfile"
	"github.com/sentryha/sentry/internal/peer"
	"github.com/sentryha/sentry/internal/pki"
	"github.com/sentryha/sentry/internal/stamp"
	"github.com/sentryha/sentry/internal/store"
	"github.com/sentryha/sentry/synchronizer"
)

// The peer link (package link) and what the wiring gives it: the
// identity, this node's status, and the fan-out of the peer's status to
// the components.

// Pairing's results and token, as the CLI knows them.
type (
	InitResult = link.InitResult
	JoinResult = link.JoinResult
	Token      = link.Token
)

// DefaultTokenTTL is how long a join token is valid.
const DefaultTokenTTL = link.DefaultTokenTTL

// Errors of pairing.
var (
	ErrInitialized = link.ErrInitialized
	ErrBadToken    = link.ErrBadToken
)

// ParseToken decodes a join token.
func ParseToken(s string) (Token, error) { return link.ParseToken(s) }

// WithPeerProtocol makes the agent speak peer protocol v at most (a test
// of a mixed pair in one process; an older release is the real thing).
func WithPeerProtocol(v int) Option { return func(p *paths) { p.codec = peer.Speaking(v) } }

// lnk is the agent's peer link, made at first use (tests build agents by
// hand).
func (a *Agent) lnk() *link.Link {
	a.linkOnce.Do(func() {
		a.link = link.New(link.Deps{
			Conf:       a.conf,
			Log:        a.log,
			Store:      func() *store.Store { return a.store },
			Event:      a.event,
			Version:    a.version,
			Hardware:   func() (string, error) { a.mu.Lock(); defer a.mu.Unlock(); return a.hw.ID, a.hwErr },
			Identity:   a.identity,
			Commit:     a.commitIdentity,
			ClusterKey: a.clusterKey,
			SelfStatus: func() peer.NodeStatus { a.mu.Lock(); defer a.mu.Unlock(); return a.selfStatusLocked() },
			// The peer's results: those this node keeps are stored (the
			// rest dropped) before the status is recorded.
			AdmitPeerStatus: func(h *peer.NodeStatus) { a.sched.NotePeer(h) },
			OnPeerStatus:    a.onPeerStatus,
			Started:         a.peerStarted,
			Stopped:         func() { a.mu.Lock(); defer a.mu.Unlock(); a.cfgsync().Stop() },
			// Handlers of the components, mounted by the link behind its
			// checks (closures: the components are made after the link).
			Handlers: link.Handlers{
				VerifyRun: func(w http.ResponseWriter, r *http.Request) {
					a.mu.Lock()
					s := a.sched
					a.mu.Unlock()
					if s == nil { // the link answers before the schedule is made
						http.Error(w, "the agent is starting", http.StatusServiceUnavailable)
						return
					}
					s.HandleVerifyRun(w, r)
				},
				ConfigFetch:    func(w http.ResponseWriter, r *http.Request) { a.cfgsync().HandleFetch(w, r) },
				InventoryFetch: func(w http.ResponseWriter, r *http.Request) { a.parity.HandleInventoryFetch(w, r) },
				Deb:            func(w http.ResponseWriter, r *http.Request) { a.parity.HandleDeb(w, r) },
				DebNeedsFetch:  func(d peer.DebRequest) bool { return a.parity.DebNeedsFetch(parity.DebRequest(d)) },
				ReportsFetch:   func(w http.ResponseWriter, r *http.Request) { a.reports.HandlePeer(w, r) },
			},
		}, link.WithCodec(a.paths.codec))
	})
	return a.link
}

func randomID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func writeEnvelope(w http.ResponseWriter, code int, typ, from string, body any) {
	link.WriteEnvelope(w, code, typ, from, body)
}

func (a *Agent) nodeName() string { return a.conf().Node.Name }

// event stores an event and hands it to the local API's subscribers.
func (a *Agent) event(kind, node, msg string, fields map[string]string) {
	if a.store == nil {
		return
	}
	e := store.Event{Time: time.Now().UTC(), Kind: kind, Node: node, Message: msg, Fields: fields}
	if err := a.events.Record(e, a.store.AppendEvent); err != nil {
		a.log.Error("store event", "kind", kind, "err", err)
	}
}

// identity is the node's cluster identity now.
func (a *Agent) identity() link.Identity {
	a.mu.Lock()
	defer a.mu.Unlock()
	return link.Identity{Node: a.node, Cluster: a.cluster, Stamp: a.stamp}
}

// commitIdentity writes an identity, the one place that does: the
// certificates, the cluster key, the cluster state (state_dir/cluster),
// then the disk stamp, and takes them. The stamp is last: a crash in between leaves no stamp,
// so the disk set still reads as new.
func (a *Agent) commitIdentity(c link.Commit) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c.Fresh && a.stamp != nil {
		return link.Initialized(a.stamp)
	}
	if c.CertPEM != nil {
		if err := pki.Save(a.statePath("pki"), c.CACert, c.CAKey, c.CertPEM, c.Key); err != nil {
			return err
		}
	}
	if c.ClusterKey != "" {
		// The cluster key (0600), then loaded.
		p := filepath.Join(a.statePath("pki"), pki.ClusterKeyFile)
		if err := atomicfile.Write(p, []byte(c.ClusterKey+"\n"), 0o600); err != nil {
			return fmt.Errorf("%w: %w", link.ErrClusterKey, err)
		}
		sec, err := synchronizer.NewSecrets(c.ClusterKey)
		if err != nil {
			return fmt.Errorf("%w: %w", link.ErrClusterKey, err)
		}
		a.secrets = sec
	}
	if c.Cluster != nil {
		if err := stamp.WriteCluster(a.statePath(stamp.ClusterFile), c.Cluster); err != nil {
			return err
		}
		a.cluster = c.Cluster
	}
	if c.Stamp != nil {
		if err := stamp.WriteStamp(a.statePath(stamp.StampFile), c.Stamp); err != nil {
			return err
		}
		a.stamp = c.Stamp
	}
	if c.CertPEM != nil {
		node, err := pki.Load(a.statePath("pki"))
		if err != nil {
			return err
		}
		a.node = node
	}
	return nil
}

// clusterKey is the cluster key as text, for the joining node.
func (a *Agent) clusterKey() string {
	b, err := os.ReadFile(filepath.Join(a.statePath("pki"), pki.ClusterKeyFile))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// peerStarted runs once the peer API listens: the machine profiles, and
// the configuration sync unless in safe mode.
func (a *Agent) peerStarted() error {
	a.machines.Update() // asks for the identity: not under a.mu
	a.mu.Lock()
	defer a.mu.Unlock()
	if why := a.safeModeLocked(); why != "" {
		a.log.Warn("safe mode: no configuration sync", "reason", why)
	} else if err := a.startSyncLocked(); err != nil {
		return fmt.Errorf("config sync: %w", err)
	}
	return nil
}

// onPeerStatus hands a checked status of the peer to the components: the
// sync, the peer's results, the machine profiles, and the stamp's
// other generation.
func (a *Agent) onPeerStatus(h, prev *peer.NodeStatus) {
	a.notePeerStatus(h)
	a.cfgsync().NotePeer(h)
	a.machines.NotePeer(h)
	defer a.verdict.Kick() // after the stamp below too
	a.mu.Lock()
	var st *stamp.Stamp
	if a.stamp != nil && h.Generation > a.stamp.OtherGeneration && h.Boot != "bootcheck" {
		s := *a.stamp
		s.OtherGeneration = h.Generation
		st = &s
	}
	a.mu.Unlock()
	if st != nil {
		if err := a.commitIdentity(link.Commit{Stamp: st}); err != nil {
			a.log.Error("stamp: other generation", "err", err)
		}
	}
}

// selfStatusLocked is what this agent tells about its node.
func (a *Agent) selfStatusLocked() peer.NodeStatus {
	s := peer.NodeStatus{Name: a.nodeName(), Hardware: a.hw.ID, HardwareNICs: a.hw.NICs, AgentVersion: a.version,
		Protocol: a.paths.codec.Version(), Address: a.conf().Agent.Listen, Time: time.Now().UTC()}
	if a.stamp != nil {
		s.Role, s.ClusterID, s.DiskSet, s.Generation = a.stamp.Role, a.stamp.ClusterID, a.stamp.DiskSet, a.stamp.Generation
		s.HomeHardware = a.stamp.HomeHardware
	}
	if own, _, ok := a.parity.Summaries(); ok {
		s.InventoryTaken = own.Taken
	}
	a.cfgsync().FillStatus(&s)
	a.machines.FillStatus(&s)
	a.sched.FillStatus(&s) // within what the peer takes (peer.NodeStatus.Validate)
	s.Facts, s.Modules, _ = a.verdict.Local()
	a.reports.FillStatus(&s)
	s.Verdict, s.Maintenance = a.verdict.Summary(), a.swaps.Maintenance()
	if n := len(s.BoundaryPending); n > peer.MaxBoundaryPending {
		s.BoundaryPending = append(s.BoundaryPending[:peer.MaxBoundaryPending-1:peer.MaxBoundaryPending-1], fmt.Sprintf("... and %d more", n-peer.MaxBoundaryPending+1))
	}
	s.Time = time.Now().UTC() // when it was made: the peer's clock measure
	return s
}
