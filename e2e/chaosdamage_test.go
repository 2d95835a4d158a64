package e2e

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sentryha/sentry/internal/store"
)

// TestDamageInUse (no lab): the chaos campaign's store damage aimed at a
// page in use does land in one, on a store like an agent's.
func TestDamageInUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	st, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 500; i++ {
		if _, err := st.AppendEvent(store.Event{Time: time.Now(), Kind: "chaos", Message: "an event of the fixture, long enough to fill pages"}); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	before, _ := os.ReadFile(path)
	damageInUse(t, path, rand.New(rand.NewPCG(1, 2)))
	after, _ := os.ReadFile(path)
	if bytes.Equal(before, after) || !bytes.Equal(before[:8192], after[:8192]) {
		t.Fatal("the damage changed nothing, or the meta pages")
	}
}
