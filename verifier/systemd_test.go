package verifier

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
)

// The systemd probes of one round share one connection: made once, for
// the first that asks, given to all, and closed when the round ends; a
// failed dial is every waiting probe's error; a probe whose own deadline
// passes while the dial hangs returns with its deadline.
func TestRoundBusShared(t *testing.T) {
	var dials atomic.Int32
	var conns []*dbus.Conn
	var mu sync.Mutex
	dial := func(ctx context.Context) (*dbus.Conn, error) {
		dials.Add(1)
		a, b := net.Pipe()
		t.Cleanup(func() { b.Close() })
		c, err := dbus.NewConn(a, dbus.WithContext(ctx))
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
		return c, err
	}
	ctx, end := withSharedDial(context.Background(), dial)
	var wg sync.WaitGroup
	got := make([]*dbus.Conn, 8)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, release, err := roundBus(ctx)
			if err != nil {
				t.Error(err)
				return
			}
			defer release()
			got[i] = c
		}()
	}
	wg.Wait()
	if n := dials.Load(); n != 1 {
		t.Fatalf("%d dials for one round, want 1", n)
	}
	for i, c := range got {
		if c != conns[0] || !c.Connected() {
			t.Fatalf("probe %d: connection %p (connected %v), want the round's %p", i, c, c != nil && c.Connected(), conns[0])
		}
	}
	end()
	deadline := time.Now().Add(5 * time.Second)
	for conns[0].Connected() {
		if time.Now().After(deadline) {
			t.Fatal("the round's connection is still open after the round ended")
		}
		time.Sleep(10 * time.Millisecond)
	}

	boom := errors.New("no bus")
	ctx, end = withSharedDial(context.Background(), func(context.Context) (*dbus.Conn, error) { return nil, boom })
	defer end()
	for range 2 {
		if _, _, err := roundBus(ctx); !errors.Is(err, boom) {
			t.Errorf("a failed dial: %v, want %v", err, boom)
		}
	}

	hang := make(chan struct{})
	ctx, end = withSharedDial(context.Background(), func(ctx context.Context) (*dbus.Conn, error) {
		<-hang
		return nil, ctx.Err()
	})
	pctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, _, err := roundBus(pctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a hanging dial: %v, want the probe's deadline", err)
	}
	close(hang)
	end()
}
