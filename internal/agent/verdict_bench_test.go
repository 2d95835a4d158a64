package agent

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sentryha/sentry/internal/readiness"
	"github.com/sentryha/sentry/internal/store"
)

// BenchmarkVerdictWeekOfResults: judging the verdict on a primary whose
// store holds a week of results of both nodes (15 probes every 30 s: about
// 600,000 stored results), paired with a live secondary. The verdict reads
// the newest results the schedule keeps and the peer's status, never the
// history: issue 15 wants it under 20 ms.
//
//	go test -run '^$' -bench VerdictWeekOfResults -benchtime 200x ./internal/agent/
func BenchmarkVerdictWeekOfResults(b *testing.B) {
	ctx := context.Background()
	p, s := startNode(b, "node-p"), startNode(b, "node-s")
	res, err := p.c.Init(ctx, "office", time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.c.Join(ctx, res.Token, p.listen); err != nil {
		b.Fatal(err)
	}
	const probes, every = 15, 30 * time.Second
	start := time.Now().Add(-7 * 24 * time.Hour)
	batch := make([]store.StoredResult, 0, 6000)
	n := 0
	fill := time.Now()
	for at := start; at.Before(time.Now()); at = at.Add(every) {
		for _, node := range []string{"node-p", "node-s"} {
			for i := 0; i < probes; i++ {
				batch = append(batch, store.StoredResult{Node: node, Probe: fmt.Sprintf("probe-%02d", i), OK: true, Kind: "web", Start: at.UTC(), DurationMS: 120,
					Phases: []store.PhaseTiming{{Name: "connect", MS: 20}, {Name: "check answer", MS: 100}}})
				if len(batch) == cap(batch) {
					if err := p.a.store.PutResults(batch...); err != nil {
						b.Fatal(err)
					}
					n += len(batch)
					batch = batch[:0]
				}
			}
		}
	}
	if err := p.a.store.PutResults(batch...); err != nil {
		b.Fatal(err)
	}
	n += len(batch)
	b.Logf("stored %d results in %s", n, time.Since(fill).Round(time.Millisecond))
	deadline := time.Now().Add(30 * time.Second)
	for p.a.verdict.Evaluate().Peer == nil && !p.a.lnk().State().Reachable {
		if time.Now().After(deadline) {
			b.Fatal("the secondary never answered")
		}
		time.Sleep(50 * time.Millisecond)
	}
	var last readiness.Result
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		last = p.a.verdict.Evaluate()
	}
	b.StopTimer()
	per := b.Elapsed() / time.Duration(b.N)
	b.ReportMetric(float64(per.Microseconds())/1000, "ms/verdict")
	b.Logf("verdict %s with %d findings: %s per judgement (issue 15's bound: 20 ms)", last.Verdict, len(last.Findings), per)
}
