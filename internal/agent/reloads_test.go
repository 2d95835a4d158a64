package agent

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sentryha/sentry/verifier"
)

func TestReloadLogDisturbed(t *testing.T) {
	var l reloadLog
	t0 := time.Now()
	l.note([]string{"dovecot.service"}, t0, t0.Add(300*time.Millisecond))
	l.note(nil, t0, t0) // nothing reloaded: nothing noted
	for _, tc := range []struct {
		name       string
		start, end time.Duration
		deps       []string
		want       []string
	}{
		{"ran across the reload", -time.Second, time.Second, nil, []string{"dovecot.service"}},
		{"started within the grace after it", 2 * time.Second, 3 * time.Second, []string{"dovecot.service", "postfix.service"}, []string{"dovecot.service"}},
		{"started after the grace", reloadGrace + time.Second, reloadGrace + 2*time.Second, nil, nil},
		{"ended before the reload", -3 * time.Second, -time.Second, nil, nil},
		{"depends on other units", -time.Second, time.Second, []string{"nginx.service"}, nil},
	} {
		got := l.disturbed(t0.Add(tc.start), t0.Add(tc.end), tc.deps)
		if !slices.Equal(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// A red during the sync's reload is run again once the unit settled: a
// transient failure turns green, a reload that broke the service stays red;
// a red no reload explains is not run again.
func TestReprobeAfterReload(t *testing.T) {
	specs := []verifier.Spec{{Name: "mail", Kind: "mail"}, {Name: "web", Kind: "http"}, {Name: "db", Kind: "postgres"}}
	first := []verifier.Result{
		{Name: "mail", OK: false, Message: "imap login: unexpected EOF"},
		{Name: "web", OK: false, Message: "connection refused"},
		{Name: "db", OK: true},
	}
	disturbed := func(r verifier.Result) []string {
		if r.Name == "mail" {
			return []string{"dovecot.service"}
		}
		return nil
	}
	for _, tc := range []struct {
		name     string
		secondOK bool
	}{{"transient", true}, {"really broken", false}} {
		t.Run(tc.name, func(t *testing.T) {
			var settled []string
			var ran []string
			run := func(_ context.Context, s []verifier.Spec) ([]verifier.Result, map[string]string) {
				var out []verifier.Result
				for _, x := range s {
					ran = append(ran, x.Name)
					out = append(out, verifier.Result{Name: x.Name, OK: tc.secondOK, Message: "second run"})
				}
				return out, map[string]string{"mail": "log of the second run\n"}
			}
			settle := func(_ context.Context, units []string) error {
				settled = units
				return errors.New("no system bus")
			}
			logs := map[string]string{"mail": "log of the first run\n"}
			out, logs := reprobe(context.Background(), specs, first, logs, disturbed, settle, run)
			if !slices.Equal(ran, []string{"mail"}) || !slices.Equal(settled, []string{"dovecot.service"}) {
				t.Fatalf("ran %v after settling %v; want mail after dovecot.service", ran, settled)
			}
			if out[0].OK != tc.secondOK || out[0].Message != "second run" {
				t.Errorf("mail: %+v", out[0])
			}
			if why := out[0].Values["reprobed"]; !strings.Contains(why, "reload of dovecot.service") || !strings.Contains(why, "unexpected EOF") || !strings.Contains(why, "no system bus") {
				t.Errorf("reprobed value: %q", why)
			}
			if out[1].OK || out[1].Message != "connection refused" || !out[2].OK {
				t.Errorf("the other probes changed: %+v", out[1:])
			}
			if !strings.Contains(logs["mail"], "first run") || !strings.Contains(logs["mail"], "second run") {
				t.Errorf("log: %q", logs["mail"])
			}
			if first[0].Message != "imap login: unexpected EOF" {
				t.Errorf("the caller's results were changed")
			}
		})
	}
}

// A sync under way disturbs every probe that fails meanwhile (its units
// are not known yet); waitIdle returns when it ends.
func TestReloadLogSyncUnderWay(t *testing.T) {
	var l reloadLog
	end := l.begin()
	now := time.Now()
	if got := l.disturbed(now, now.Add(time.Second), []string{"dovecot.service"}); !slices.Equal(got, []string{"dovecot.service"}) {
		t.Errorf("under way, with deps: %v", got)
	}
	if got := l.disturbed(now, now.Add(time.Second), nil); !slices.Equal(got, []string{syncUnderWay}) {
		t.Errorf("under way, no deps: %v", got)
	}
	ctx := context.Background()
	if err := l.waitIdle(ctx, 50*time.Millisecond); err == nil {
		t.Error("waitIdle returned while the sync is under way")
	}
	go func() { time.Sleep(50 * time.Millisecond); end([]string{"postfix.service"}) }()
	if err := l.waitIdle(ctx, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := l.disturbed(now, now.Add(time.Second), []string{"dovecot.service"}); len(got) != 0 {
		t.Errorf("ended, reloaded postfix only: dovecot's probe disturbed by %v", got)
	}
	l.begin()(nil) // a sync that reloaded nothing leaves no mark
	if got := l.disturbed(now, time.Now().Add(time.Second), []string{"dovecot.service"}); len(got) != 0 {
		t.Errorf("a sync that reloaded nothing: %v", got)
	}
	if err := l.waitIdle(ctx, time.Millisecond); err != nil {
		t.Errorf("idle: %v", err)
	}
}
