package cfgsync

import (
	"context"
	"slices"
	"testing"
	"time"
)

func TestReloadLogDisturbed(t *testing.T) {
	var l ReloadLog
	t0 := time.Now()
	l.Note([]string{"dovecot.service"}, t0, t0.Add(300*time.Millisecond))
	l.Note(nil, t0, t0) // nothing reloaded: nothing noted
	for _, tc := range []struct {
		name       string
		start, end time.Duration
		deps       []string
		want       []string
	}{
		{"ran across the reload", -time.Second, time.Second, nil, []string{"dovecot.service"}},
		{"started within the grace after it", 2 * time.Second, 3 * time.Second, []string{"dovecot.service", "postfix.service"}, []string{"dovecot.service"}},
		{"started after the grace", ReloadGrace + time.Second, ReloadGrace + 2*time.Second, nil, nil},
		{"ended before the reload", -3 * time.Second, -time.Second, nil, nil},
		{"depends on other units", -time.Second, time.Second, []string{"nginx.service"}, nil},
	} {
		got := l.Disturbed(t0.Add(tc.start), t0.Add(tc.end), tc.deps)
		if !slices.Equal(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// A sync under way disturbs every probe that fails meanwhile (its units
// are not known yet); waitIdle returns when it ends.
func TestReloadLogSyncUnderWay(t *testing.T) {
	var l ReloadLog
	end := l.Begin()
	now := time.Now()
	if got := l.Disturbed(now, now.Add(time.Second), []string{"dovecot.service"}); !slices.Equal(got, []string{"dovecot.service"}) {
		t.Errorf("under way, with deps: %v", got)
	}
	if got := l.Disturbed(now, now.Add(time.Second), nil); !slices.Equal(got, []string{SyncUnderWay}) {
		t.Errorf("under way, no deps: %v", got)
	}
	ctx := context.Background()
	if err := l.WaitIdle(ctx, 50*time.Millisecond); err == nil {
		t.Error("waitIdle returned while the sync is under way")
	}
	go func() { time.Sleep(50 * time.Millisecond); end([]string{"postfix.service"}) }()
	if err := l.WaitIdle(ctx, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := l.Disturbed(now, now.Add(time.Second), []string{"dovecot.service"}); len(got) != 0 {
		t.Errorf("ended, reloaded postfix only: dovecot's probe disturbed by %v", got)
	}
	l.Begin()(nil) // a sync that reloaded nothing leaves no mark
	if got := l.Disturbed(now, time.Now().Add(time.Second), []string{"dovecot.service"}); len(got) != 0 {
		t.Errorf("a sync that reloaded nothing: %v", got)
	}
	if err := l.WaitIdle(ctx, time.Millisecond); err != nil {
		t.Errorf("idle: %v", err)
	}
}
