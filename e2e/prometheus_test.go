package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sentryha/sentry/lab"
)

// prometheusBin is Debian's Prometheus (package prometheus, which make
// deps installs); promtoolBin comes with it.
const (
	prometheusBin = "/usr/bin/prometheus"
	promtoolBin   = "/usr/bin/promtool"
	metricsPort   = "9771"
	// promListen is Prometheus' own address, inside the office namespace.
	promListen = "127.0.0.1:9090"
)

// ruleFor matches the for: of each shipped rule.
var ruleFor = regexp.MustCompile(`(?m)^(\s+for:) \S+$`)

// prometheusInOffice checks the metrics of a paired lab (both nodes on
// this release) with a real Prometheus from Debian's package, running in
// the lab's office namespace as an IT provider's would: it scrapes both
// agents' opt-in endpoints, evaluates the shipped rules, and the matching
// alert fires when nginx stops on S and resolves when it starts again. The
// rules are the shipped file with each for: cut to 10 s (5 min and more
// in the file) and an evaluation every 2 s, so the test waits seconds, not
// minutes; promtool checks the shipped file as it is.
func prometheusInOffice(t *testing.T) {
	for _, bin := range []string{prometheusBin, promtoolBin} {
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("%s: %v (Debian's package prometheus: make deps installs it)", bin, err)
		}
	}
	shipped := filepath.Join("..", "docs", "prometheus", "sentry-rules.yml")
	if out, err := exec.Command(promtoolBin, "check", "rules", shipped).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules %s: %v\n%s", shipped, err, out)
	}

	// The endpoint on both nodes: [metrics] listen, then a restart.
	targets := []string{}
	for _, ds := range lab.Sets {
		sentry(t, "lab", "exec", ds.ID, "--", "sh", "-c", `printf '\n[metrics]\nlisten = ":`+metricsPort+`"\n' >> /etc/sentry/sentry.toml && systemctl restart sentry-agent`)
		targets = append(targets, strings.Split(ds.Address, "/")[0]+":"+metricsPort)
	}
	for _, tg := range targets {
		waitUntil(t, "the metrics endpoint at "+tg+" from the office", 60*time.Second, func() bool {
			code, body, err := officeGet(tg, "/metrics")
			return err == nil && code == 200 && strings.Contains(body, "sentry_ready ")
		})
	}

	dir := t.TempDir()
	rules, err := os.ReadFile(shipped)
	if err != nil {
		t.Fatal(err)
	}
	rules = ruleFor.ReplaceAll(rules, []byte("$1 10s"))
	if err := os.WriteFile(filepath.Join(dir, "sentry-rules.yml"), rules, 0o644); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`global:
  scrape_interval: 2s
  evaluation_interval: 2s
rule_files:
  - sentry-rules.yml
scrape_configs:
  - job_name: sentry
    scrape_timeout: 2s
    static_configs:
      - targets: ['%s']
        labels:
          site: office
`, strings.Join(targets, "', '"))
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtoolBin, "check", "config", filepath.Join(dir, "prometheus.yml")).CombinedOutput(); err != nil {
		t.Fatalf("promtool check config: %v\n%s", err, out)
	}
	logf, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	office := lab.New(lab.Options{Name: labName}).NS("office")
	cmd := exec.Command("ip", "netns", "exec", office, prometheusBin,
		"--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+promListen, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Stopped by its PID (ip netns exec execs it: the same process).
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "prometheus.log"))
			t.Logf("prometheus' log:\n%s", b)
		}
	}()
	t.Logf("prometheus %s in %s (PID %d) scrapes %v", promListen, office, cmd.Process.Pid, targets)

	api := func(path string, out any) error {
		code, body, err := officeGet(promListen, path)
		if err != nil {
			return err
		}
		if code != 200 {
			return fmt.Errorf("%s: HTTP %d: %.200s", path, code, body)
		}
		return json.Unmarshal([]byte(body), out)
	}
	waitUntil(t, "prometheus scraping both agents (up == 1)", 60*time.Second, func() bool {
		var r struct {
			Data struct {
				Result []struct {
					Value []any `json:"value"`
				} `json:"result"`
			} `json:"data"`
		}
		if api(`/api/v1/query?query=up%7Bjob%3D%22sentry%22%7D%3D%3D1`, &r) != nil {
			return false
		}
		return len(r.Data.Result) == 2
	})
	type alert struct {
		Labels map[string]string `json:"labels"`
		State  string            `json:"state"`
	}
	webOnS := func() string { // the alert's state, "" when there is none
		var r struct {
			Data struct {
				Alerts []alert `json:"alerts"`
			} `json:"data"`
		}
		if err := api("/api/v1/alerts", &r); err != nil {
			t.Logf("alerts: %v", err)
			return "?"
		}
		for _, a := range r.Data.Alerts {
			l := a.Labels
			if l["alertname"] == "SentryProbeFailing" && l["node"] == "node-s" && l["probe"] == "web" && l["site"] == "office" {
				return a.State
			}
		}
		return ""
	}
	waitUntil(t, "no SentryProbeFailing alert for web on node-s before the fault", 60*time.Second, func() bool { return webOnS() == "" })
	during(t, "nginx stopped on S (prometheus alert)", func() {
		stopped := time.Now()
		sentry(t, "lab", "exec", "S", "--", "systemctl", "stop", "nginx")
		waitUntil(t, "SentryProbeFailing firing for web on node-s", 90*time.Second, func() bool { return webOnS() == "firing" })
		fired := time.Since(stopped)
		started := time.Now()
		sentry(t, "lab", "exec", "S", "--", "systemctl", "start", "nginx")
		waitUntil(t, "the alert for web on node-s resolved", 90*time.Second, func() bool { return webOnS() == "" })
		figure(t, "prometheus (scrape and rules every 2 s, for: 10 s, verifier rounds 15 s): SentryProbeFailing for web on node-s fired %s after nginx stopped, resolved %s after it started",
			fired.Round(100*time.Millisecond), time.Since(started).Round(100*time.Millisecond))
		waitUntil(t, "S green again", 90*time.Second, func() bool {
			return strings.HasPrefix(statusNodes(t, "P")["node-s"].Verify, "15/15 green")
		})
	})
}
