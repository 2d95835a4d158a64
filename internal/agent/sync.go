package agent

import (
	"context"
	"io"
	"net/http"

	"github.com/sentryha/sentry/internal/agent/cfgsync"
)

// cfgsync is the configuration sync (cfgsync), made on first use.
func (a *Agent) cfgsync() *cfgsync.Sync {
	a.syncerOnce.Do(func() {
		a.syncer = cfgsync.New(cfgsync.Deps{
			Conf:   a.conf,
			Log:    a.log,
			Event:  a.event,
			Policy: a.policyUnits,
			Peer:   peerPoster{a},
			Hello:  func() { a.helloOnce(context.Background()) },
			StartAgain: func() (bool, error) {
				a.mu.Lock()
				defer a.mu.Unlock()
				// Not when the agent is stopping (the peer side is down by
				// then), in safe mode, or when another restart won.
				if a.peerLoop == nil || a.safeModeLocked() != "" || a.syncer.Running() {
					return false, nil
				}
				return true, a.startSyncLocked()
			},
			Pending:      func() []string { return a.mods().Pending() },
			Applying:     func() func([]string) { return a.mods().Applying() },
			Committed:    func(paths []string) { a.mods().Touched(paths) },
			Refuse:       a.refusePeer,
			Reloader:     a.paths.reloader,
			ApplyRoot:    a.paths.applyRoot,
			RetryBackoff: a.paths.retryBackoff,
		})
	})
	return a.syncer
}

// startSyncLocked starts the primary's watcher or the secondary's sync
// loop, by the disk stamp's role. a.mu is held.
func (a *Agent) startSyncLocked() error {
	if a.stamp == nil {
		return nil
	}
	return a.cfgsync().Start(a.stamp.Role, a.secrets)
}

func (a *Agent) stopSyncLocked() { a.cfgsync().Stop() }

// restartSyncIfPolicyChanged: see cfgsync.RestartIfPolicyChanged.
func (a *Agent) restartSyncIfPolicyChanged() { a.cfgsync().RestartIfPolicyChanged() }

// peerPoster carries the secondary's fetch to the primary, over mutual
// TLS with the cluster's certificates.
type peerPoster struct{ a *Agent }

func (p peerPoster) Post(ctx context.Context, path, contentType string, body io.Reader) (*http.Response, error) {
	a := p.a
	a.mu.Lock()
	addr, name := a.cluster.PeerAddress, a.cluster.PeerName
	tlsCfg := a.node.ClientTLS(name)
	a.mu.Unlock()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+addr+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", contentType)
	tr := &http.Transport{TLSClientConfig: tlsCfg}
	return (&http.Client{Transport: tr}).Do(req)
}
