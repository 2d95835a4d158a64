package agent

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/sentryha/sentry/internal/pki"
	"github.com/sentryha/sentry/synchronizer"
	"github.com/sentryha/sentry/verifier"
)

// verifyState is the agent's view of its own node's probes.
type verifyState struct {
	last    map[string]verifier.Result // by probe name, the newest run
	fails   map[string]int             // consecutive failures
	red     map[string]bool            // reported red (after FailAfter failures)
	round   time.Time
	roundMS int64
}

// FailAfter is how many failures in a row turn a probe red (1: the first;
// more is hysteresis against a single lost packet); one success turns it green.
var FailAfter = 1

// canaryPassword is derived from the cluster key (the same on both nodes).
func (a *Agent) canaryPassword() (string, bool) {
	a.mu.Lock()
	sec := a.secrets
	a.mu.Unlock()
	if sec == nil {
		// A node paired before the agent knew the key: read it again.
		b, err := os.ReadFile(filepath.Join(a.statePath("pki"), pki.ClusterKeyFile))
		if err != nil {
			return "", false
		}
		return deriveCanary(string(b))
	}
	return sec.MAC([]byte("sentry canary password"))[:32], true
}

// runVerifier runs this node's probe set every verifier.interval (with
// jitter), once the node is paired and `sentry verifier setup` has made the
// canaries (the canary page tells).
func (a *Agent) runVerifier(ctx context.Context) {
	for {
		a.mu.Lock()
		iv, jit, to := a.cfg.Verifier.Interval.Duration, a.cfg.Verifier.Jitter.Duration, a.cfg.Verifier.Timeout.Duration
		a.mu.Unlock()
		wait := iv
		if jit > 0 {
			wait += time.Duration(rand.Int64N(int64(jit)))
		}
		a.mu.Lock()
		safeMode := a.safeModeLocked() != ""
		a.mu.Unlock()
		if pw, ok := a.canaryPassword(); ok && !safeMode {
			if _, err := os.Stat(verifier.CanaryPage); err == nil {
				a.verifyRound(ctx, pw, to)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

func (a *Agent) verifyRound(ctx context.Context, pw string, timeout time.Duration) {
	start := time.Now()
	var results []verifier.Result
	for _, spec := range verifier.DefaultProbes(pw, timeout) {
		results = append(results, verifier.Run(ctx, spec, nil))
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	v := &a.verify
	if v.last == nil {
		v.last, v.fails, v.red = map[string]verifier.Result{}, map[string]int{}, map[string]bool{}
	}
	v.round, v.roundMS = start, time.Since(start).Milliseconds()
	for _, r := range results {
		v.last[r.Name] = r
		if r.OK {
			v.fails[r.Name] = 0
			if v.red[r.Name] {
				v.red[r.Name] = false
				a.log.Info("probe green again", "probe", r.Name)
				a.event("probe-green", a.nodeName(), fmt.Sprintf("%s on %s works again", r.Name, a.nodeName()), map[string]string{"probe": r.Name})
			}
			continue
		}
		v.fails[r.Name]++
		if v.fails[r.Name] == FailAfter && !v.red[r.Name] {
			v.red[r.Name] = true
			a.log.Error("probe red", "probe", r.Name, "failures", v.fails[r.Name], "err", r.Message)
			a.event("probe-red", a.nodeName(), fmt.Sprintf("%s on %s fails: %s", r.Name, a.nodeName(), r.Message), map[string]string{"probe": r.Name})
		}
	}
}

// verifySummaryLocked says, for hello and status, how this node's probes
// stand: "15/15 green" or the red ones with their messages.
func (a *Agent) verifySummaryLocked() (summary string, red []string) {
	v := &a.verify
	if len(v.last) == 0 {
		return "", nil
	}
	names := make([]string, 0, len(v.last))
	for n := range v.last {
		names = append(names, n)
	}
	sort.Strings(names)
	green := 0
	for _, n := range names {
		if v.red[n] {
			red = append(red, n+": "+v.last[n].Message)
		} else {
			green++
		}
	}
	return fmt.Sprintf("%d/%d green, round %d ms at %s", green, len(names), v.roundMS, v.round.UTC().Format(time.RFC3339)), red
}

// VerifyResults are the newest results of this node's probes.
func (a *Agent) VerifyResults() []verifier.Result {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []verifier.Result
	for _, r := range a.verify.last {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func deriveCanary(key string) (string, bool) {
	s, err := synchronizer.NewSecrets(strings.TrimSpace(key))
	if err != nil {
		return "", false
	}
	return s.MAC([]byte("sentry canary password"))[:32], true
}
