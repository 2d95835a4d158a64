package agent

import (
	"context"
	"errors"
	"testing"
	"time"
)

// The first verifier round waits for systemd's boot jobs: it goes on when
// the state leaves "starting", or at the limit, or at once without systemd.
func TestWaitBootSettled(t *testing.T) {
	old := SystemState
	t.Cleanup(func() { SystemState = old })

	calls := 0
	SystemState = func(context.Context) (string, error) {
		calls++
		if calls < 3 {
			return "starting", nil
		}
		return "degraded", nil
	}
	if st := waitBootSettled(context.Background(), time.Minute); st != "degraded" || calls != 3 {
		t.Errorf("settled: state %q after %d calls, want degraded after 3", st, calls)
	}

	SystemState = func(context.Context) (string, error) { return "starting", nil }
	if st := waitBootSettled(context.Background(), 600*time.Millisecond); st != "starting" {
		t.Errorf("at the limit: %q", st)
	}

	calls = 0
	SystemState = func(context.Context) (string, error) { calls++; return "", errors.New("no system bus") }
	if st := waitBootSettled(context.Background(), time.Minute); st != "" || calls != 1 {
		t.Errorf("without systemd: %q after %d calls", st, calls)
	}
}
