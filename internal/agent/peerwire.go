package agent

import (
	"github.com/sentryha/sentry/internal/peer"
)

// WithPeerProtocol makes the agent speak peer protocol v at most (a test
// of a mixed pair in one process; an older release is the real thing).
func WithPeerProtocol(v int) Option { return func(p *paths) { p.codec = peer.Speaking(v) } }

// peerClient is the agent's one client of its peer (made at first use; its
// connections are closed when the peer link stops).
func (a *Agent) peerClient() *peer.Client {
	a.peerCliOnce.Do(func() {
		a.peerCli = peer.NewClient(a.peerTarget, a.nodeName, a.paths.codec)
	})
	return a.peerCli
}

// peerTarget is the peer to call, from the cluster state: errNoPeer
// before a join.
func (a *Agent) peerTarget() (peer.Target, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cluster == nil || a.cluster.PeerAddress == "" || a.node == nil {
		return peer.Target{}, errNoPeer
	}
	return peer.Target{Addr: a.cluster.PeerAddress, Name: a.cluster.PeerName, Node: a.node}, nil
}

// peerProtocol is the protocol the peer said in its last status (0: not
// known yet).
func (a *Agent) peerProtocol() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.link.Peer == nil {
		return 0
	}
	return a.link.Peer.Protocol
}
