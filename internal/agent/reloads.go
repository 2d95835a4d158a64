package agent

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/sentryha/sentry/verifier"
)

// reprobe runs again, once, each failed probe that the sync's reload of a
// unit it depends on disturbed, after waiting for those units to settle.
// The second run is the result: a reload that really broke the service
// fails it again and stays red; its value "reprobed" says why it ran
// twice. settle's error does not stop the second run.
func reprobe(ctx context.Context, specs []verifier.Spec, results []verifier.Result, logs map[string]string,
	disturbed func(verifier.Result) []string, settle func(context.Context, []string) error,
	run func(context.Context, []verifier.Spec) ([]verifier.Result, map[string]string)) ([]verifier.Result, map[string]string) {
	byName := map[string]verifier.Spec{}
	for _, s := range specs {
		byName[s.Name] = s
	}
	var again []verifier.Spec
	why := map[string]string{}
	var units []string
	for _, r := range results {
		if r.OK {
			continue
		}
		s, ok := byName[r.Name]
		if !ok {
			continue
		}
		us := disturbed(r)
		if len(us) == 0 {
			continue
		}
		again = append(again, s)
		why[r.Name] = fmt.Sprintf("the first run failed during the sync's reload of %s (%s); run again once it settled", strings.Join(us, ", "), r.Message)
		for _, u := range us {
			if !slices.Contains(units, u) {
				units = append(units, u)
			}
		}
	}
	if len(again) == 0 {
		return results, logs
	}
	settleErr := settle(ctx, units)
	second, secondLogs := run(ctx, again)
	out := slices.Clone(results)
	for _, r2 := range second {
		if r2.Values == nil {
			r2.Values = map[string]string{}
		}
		r2.Values["reprobed"] = why[r2.Name]
		if settleErr != nil {
			r2.Values["reprobed"] += " (settle: " + settleErr.Error() + ")"
		}
		for i := range out {
			if out[i].Name == r2.Name {
				out[i] = r2
			}
		}
		if logs != nil {
			logs[r2.Name] = logs[r2.Name] + "--- run again after the sync's reload ---\n" + secondLogs[r2.Name]
		}
	}
	return out, logs
}
