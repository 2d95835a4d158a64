package metrics

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

const (
	rulesFile     = "../../docs/prometheus/sentry-rules.yml"
	rulesTestFile = "../../docs/prometheus/sentry-rules.test.yml"
	monitoringDoc = "../../docs/monitoring.md"
)

// The alert rules in docs/prometheus pass promtool's check and their unit
// tests. Without promtool the test is skipped, saying so: the rules are
// then not checked at all.
func TestPrometheusRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not installed, so docs/prometheus/sentry-rules.yml is NOT checked: install it (Debian: apt-get install prometheus) to run `promtool check rules` and `promtool test rules`")
	}
	for _, args := range [][]string{
		{"check", "rules", rulesFile},
		{"test", "rules", rulesTestFile},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		out, err := exec.CommandContext(ctx, promtool, args...).CombinedOutput()
		cancel()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		} else {
			t.Logf("promtool %s:\n%s", strings.Join(args, " "), out)
		}
	}
}

// exportedNames are the names of the sentry_* metrics the collector can
// export.
func exportedNames(t *testing.T) map[string]bool {
	t.Helper()
	c := NewCollector(fixed, "v").(*collector)
	names := map[string]bool{}
	re := regexp.MustCompile(`fqName: "([^"]+)"`)
	for _, d := range c.d.all() {
		m := re.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("no name in %s", d)
		}
		names[m[1]] = true
	}
	return names
}

// Every sentry_* name the rules and the guide use is one the collector
// exports: a renamed metric cannot leave an alert that never fires. And
// the guide's metric table lists every metric.
func TestDocsNameExportedMetrics(t *testing.T) {
	names := exportedNames(t)
	word := regexp.MustCompile(`\bsentry_[a-z_]+\b`)
	for _, f := range []string{rulesFile, rulesTestFile, monitoringDoc} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range word.FindAllString(string(b), -1) {
			if !names[w] && !strings.HasSuffix(w, "_") {
				t.Errorf("%s names %s, which the collector does not export", f, w)
			}
		}
	}
	b, err := os.ReadFile(monitoringDoc)
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	for n := range names {
		if !strings.Contains(string(b), "`"+n+"`") {
			missing = append(missing, n)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("docs/monitoring.md does not list %v", missing)
	}
}

// Describe and the collected metrics agree on the names (a pedantic
// registry checks each metric against the descriptions too).
func TestDescribeMatchesCollect(t *testing.T) {
	names := exportedNames(t)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(fixed, "v"))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if !names[mf.GetName()] {
			t.Errorf("%s collected but not described", mf.GetName())
		}
	}
}
