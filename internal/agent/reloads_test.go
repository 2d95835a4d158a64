package agent

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/sentryha/sentry/verifier"
)

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
