package agent

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestMetricsEndpoint: with [metrics] listen set, a paired primary serves
// its verdict, the checks, both nodes' probes and the peer link to a
// scrape.
func TestMetricsEndpoint(t *testing.T) {
	ctx := context.Background()
	addr := freePort(t)
	p := startNodeConf(t, "node-p", "[metrics]\nlisten = \""+addr+"\"\n")
	s := startNode(t, "node-s")
	res, err := p.c.Init(ctx, "office", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.c.Join(ctx, res.Token, p.listen); err != nil {
		t.Fatal(err)
	}
	var body string
	waitLong(t, "a scrape with the verdict and the peer up", func() bool {
		p.a.verdict.Kick()
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return strings.Contains(body, `sentry_peer_up{peer="node-s"} 1`) && strings.Contains(body, "sentry_verdict_timestamp_seconds")
	})
	for _, want := range []string{`sentry_node_info{node="node-p",role="primary"} 1`, `sentry_readiness_check{check="peer",state="pass"} 1`,
		`sentry_build_info{`, `sentry_config_apply_failures_total 0`} {
		if !strings.Contains(body, want) {
			t.Errorf("the scrape lacks %s:\n%s", want, body)
		}
	}
}
