package swaps

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/sentryha/sentry/bootcheck"
	"github.com/sentryha/sentry/internal/garp"
)

// With the kernel's notices of address changes, the addresses are read
// when one comes, not polled: an address that comes up later is announced
// on its notice, and nothing is read between notices.
func TestAddressesOnChanges(t *testing.T) {
	f := newFixture(t)
	f.boot = &bootcheck.Result{Outcome: bootcheck.Primary, Hardware: "a", PreviousHardware: "a", HomeHardware: "a", DiskSet: "P"}
	var mu sync.Mutex
	reads := 0
	addrs := []garp.Address{{Interface: "eth0", MAC: "02:00:00:00:0b:01", Prefix: netip.MustParsePrefix("192.0.2.10/24")}}
	notices := make(chan struct{}, 1)
	s := f.swaps(time.Now(), time.Now())
	for _, o := range []Option{
		WithPoll(5 * time.Millisecond),
		WithAddresses(func() ([]garp.Address, error) {
			mu.Lock()
			defer mu.Unlock()
			reads++
			return append([]garp.Address(nil), addrs...), nil
		}),
		WithChanges(func(context.Context) (<-chan struct{}, error) { return notices, nil }),
	} {
		o(s)
	}
	s.Begin()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	f.waitAnnounced(t, 1)
	time.Sleep(100 * time.Millisecond) // twenty polls, were it polling
	mu.Lock()
	if reads > 2 {
		t.Errorf("the addresses were read %d times with no notice", reads)
	}
	addrs = append(addrs, garp.Address{Interface: "eth1", MAC: "02:00:00:00:0b:02", Prefix: netip.MustParsePrefix("198.51.100.7/24")})
	mu.Unlock()
	notices <- struct{}{}
	f.waitAnnounced(t, 2)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.announced[1] != "eth1 198.51.100.7" {
		t.Errorf("announced %v", f.announced)
	}
}

// When the notices end, the addresses are polled again.
func TestAddressesPolledWhenChangesEnd(t *testing.T) {
	f := newFixture(t)
	f.boot = &bootcheck.Result{Outcome: bootcheck.Primary, Hardware: "a", PreviousHardware: "a", HomeHardware: "a", DiskSet: "P"}
	var mu sync.Mutex
	var addrs []garp.Address
	notices := make(chan struct{})
	s := f.swaps(time.Now(), time.Now())
	for _, o := range []Option{
		WithPoll(5 * time.Millisecond),
		WithAddresses(func() ([]garp.Address, error) {
			mu.Lock()
			defer mu.Unlock()
			return append([]garp.Address(nil), addrs...), nil
		}),
		WithChanges(func(context.Context) (<-chan struct{}, error) { return notices, nil }),
	} {
		o(s)
	}
	s.Begin()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	time.Sleep(50 * time.Millisecond)
	close(notices)
	mu.Lock()
	addrs = []garp.Address{{Interface: "eth0", MAC: "02:00:00:00:0b:01", Prefix: netip.MustParsePrefix("192.0.2.10/24")}}
	mu.Unlock()
	f.waitAnnounced(t, 1)
}
