package agent

import (
	"context"
	"io"

	"github.com/sentryha/sentry/internal/agent/cfgsync"
)

// cfgsync is the configuration sync (cfgsync), made on first use.
func (a *Agent) cfgsync() *cfgsync.Sync {
	a.syncerOnce.Do(func() {
		a.syncer = cfgsync.New(cfgsync.Deps{
			Conf:   a.conf,
			Log:    a.log,
			Event:  a.event,
			Policy: a.mods().PolicyUnits,
			Peer:   peerPoster{a},
			Hello:  func() { a.lnk().HelloNow(context.Background()) },
			StartAgain: func() (bool, error) {
				a.mu.Lock()
				defer a.mu.Unlock()
				// Not when the agent is stopping (the peer side is down by
				// then), in safe mode, or when another restart won.
				if !a.lnk().Running() || a.safeModeLocked() != "" || a.syncer.Running() {
					return false, nil
				}
				return true, a.startSyncLocked()
			},
			Pending:      func() []string { return a.mods().Pending() },
			Applying:     func() func([]string) { return a.mods().Applying() },
			Committed:    func(paths []string) { a.mods().Touched(paths) },
			Refuse:       a.lnk().RefusePeer,
			Reloader:     a.paths.reloader,
			ApplyRoot:    a.paths.applyRoot,
			RetryBackoff: a.paths.retryBackoff,
		})
	})
	return a.syncer
}

// peerPoster carries the secondary's fetch to the primary through the
// peer link's one client, in the form the primary reads.
type peerPoster struct{ a *Agent }

func (p peerPoster) FetchConfig(ctx context.Context, have string) (string, io.ReadCloser, error) {
	return p.a.lnk().Client().FetchConfig(ctx, have, p.a.lnk().PeerProtocol())
}

// startSyncLocked starts the primary's watcher or the secondary's sync
// loop, by the disk stamp's role. a.mu is held.
func (a *Agent) startSyncLocked() error {
	if a.stamp == nil {
		return nil
	}
	return a.cfgsync().Start(a.stamp.Role, a.secrets)
}
