package parity

import (
	"testing"

	"github.com/sentryha/sentry/internal/stamp"
)

// TestCurrentIsKeptWhileTheInventoriesAre: the readiness verdict asks at
// each hello; the comparison is made again only when an inventory changed.
func TestCurrentIsKeptWhileTheInventoriesAre(t *testing.T) {
	pInv, sInv := fixturePair(t)
	a, _ := parityAgent(t, "node-p", stamp.RolePrimary, "node-s", machineA, pInv, sInv)
	r1 := a.Current()
	if r1.CompatPonB == nil || r1.CompatSonA == nil || r1.Self.Taken.IsZero() {
		t.Fatalf("report: %+v", r1)
	}
	if r2 := a.Current(); r2 != r1 {
		t.Error("the same inventories were compared again")
	}
	s2 := *sInv
	s2.Taken = sInv.Taken.Add(1)
	a.mu.Lock()
	a.peer = &s2
	a.mu.Unlock()
	if r3 := a.Current(); r3 == r1 || !r3.Peer.Taken.Equal(s2.Taken) {
		t.Errorf("a new inventory of the peer was not compared: %+v", r3.Peer)
	}
}
