package link

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// The summary's timer: refusals within a period become one summary at its
// end, the first of a quiet time at once.
func TestJoinGuardTimer(t *testing.T) {
	g := joinGuard{every: 100 * time.Millisecond}
	var mu sync.Mutex
	var got []joinSummary
	flush := func(s joinSummary) { mu.Lock(); got = append(got, s); mu.Unlock() }
	now := time.Now()
	if s, due := g.note("192.0.2.7:4000", "join token unknown", true, now, flush); !due || s.joins != 1 {
		t.Fatalf("the first refusal: %+v %v, want it said at once", s, due)
	}
	for i := 0; i < 5; i++ {
		if _, due := g.note("192.0.2.8:4000", "too many join attempts", true, now, flush); due {
			t.Fatal("a refusal within the period said at once")
		}
	}
	g.note("192.0.2.9:4000", "no peer certificate", false, now, flush)
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0].joins != 5 || got[0].others != 1 || got[0].addrs["192.0.2.8"] != 5 {
		t.Fatalf("summaries %+v", got)
	}
}

func TestSourceLimiter(t *testing.T) {
	l := sourceLimiter{burst: 2, per: time.Minute, globalBurst: 3, globalPer: time.Minute}
	now := time.Now()
	for i, want := range []bool{true, true, false} {
		if ok, _, which := l.allow("192.0.2.1:1000", now); ok != want || (!ok && which != "from this address") {
			t.Fatalf("request %d of one source: %v %s", i, ok, which)
		}
	}
	if ok, _, _ := l.allow("192.0.2.2:1000", now); !ok {
		t.Fatal("another source refused")
	}
	if ok, wait, which := l.allow("192.0.2.3:1000", now); ok || wait <= 0 || which != "from all addresses together" {
		t.Fatalf("past the global limit: %v %v %s", ok, wait, which)
	}
	// Refilled with time.
	if ok, _, _ := l.allow("192.0.2.1:1000", now.Add(31*time.Second)); !ok {
		t.Fatal("not refilled after half a minute")
	}
}

func TestWorkLimiter(t *testing.T) {
	l := workLimiter{what: "verification runs", concurrent: 1, burst: 2, per: time.Minute}
	now := time.Now()
	release, err := l.begin(now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.begin(now); err == nil || !strings.Contains(err.Error(), "1 at a time, and one is running") {
		t.Fatalf("a second at once: %v", err)
	}
	release()
	release() // twice is once
	r2, err := l.begin(now)
	if err != nil {
		t.Fatalf("after the first: %v", err)
	}
	r2()
	_, err = l.begin(now)
	var le *limitError
	if !errors.As(err, &le) || !strings.Contains(err.Error(), "at most 2 a minute; the next in 30s") || le.retryAfter != 30*time.Second {
		t.Fatalf("the third in a minute: %v", err)
	}
	if r, err := l.begin(now.Add(30 * time.Second)); err != nil {
		t.Fatalf("after the refill: %v", err)
	} else {
		r()
	}
}
