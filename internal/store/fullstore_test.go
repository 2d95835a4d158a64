package store

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkPutRoundFullStore is one round of the lab's agent (15 probes of
// each of 2 nodes, stored with their rollups in one transaction) on the
// store of a long-running agent: 40 days of hourly history and then 1000
// results of each probe and node, pruned to those as the agent prunes,
// closed and opened again. Besides the time it reports the pages each
// round writes and, with -benchtime 60x (ten minutes of rounds), how much
// of the file the rounds left mapped (the agent's RSS counts it; the
// kernel maps 64 KiB around each page read through bbolt's map).
//
//	go test -run X -bench PutRoundFullStore -benchtime 60x ./internal/store
func BenchmarkPutRoundFullStore(b *testing.B) {
	path := b.TempDir() + "/state.db"
	s, err := Open(path, Options{})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now().Add(-time.Hour)
	start := now.Add(-1000 * 10 * time.Second)
	for i := 0; i < 40*24; i++ {
		if err := s.PutResults(labRound(start.Add(-time.Duration(40*24-i) * time.Hour))...); err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; i < 1000; i++ {
		if err := s.PutResults(labRound(start.Add(time.Duration(i) * 10 * time.Second))...); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := s.Prune(time.Now(), Retention{MaxResults: 1000}); err != nil {
		b.Fatal(err)
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	if s, err = Open(path, Options{}); err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	before := mappedKiB(b, path)
	st0 := s.db.Stats()
	at := now
	for b.Loop() {
		if err := s.PutResults(labRound(at)...); err != nil {
			b.Fatal(err)
		}
		at = at.Add(10 * time.Second)
	}
	st := s.db.Stats()
	d := st.Sub(&st0)
	b.ReportMetric(float64(d.TxStats.GetWrite())/float64(b.N), "pages-written/op")
	b.ReportMetric(float64(mappedKiB(b, path)-before), "KiB-mapped")
}

// labRound is a round of the lab's results: 15 probes of 2 nodes at t.
func labRound(t time.Time) []StoredResult {
	var rs []StoredResult
	for _, node := range []string{"node-p", "node-s"} {
		for p := 0; p < 15; p++ {
			rs = append(rs, StoredResult{Node: node, Probe: fmt.Sprintf("probe-%02d", p), Kind: "mail", Start: t.Add(time.Duration(p) * time.Millisecond),
				DurationMS: int64(30 + p), OK: true, Message: "canary delivered and read back",
				Phases: []PhaseTiming{{Name: "connect", MS: 3, OK: true}, {Name: "tls", MS: 7, OK: true}, {Name: "login", MS: 40, OK: true}, {Name: "fetch", MS: 17, OK: true}},
				Values: map[string]string{"latency_ms": "98", "tls_days_left": "3640"}})
		}
	}
	return rs
}

// mappedKiB is the resident part of this process's mappings of path
// (/proc/self/smaps).
func mappedKiB(b *testing.B, path string) int {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	total, in := 0, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		fields := strings.Fields(l)
		if len(fields) >= 5 && strings.Count(fields[0], "-") == 1 && !strings.HasSuffix(fields[0], ":") {
			in = len(fields) >= 6 && fields[len(fields)-1] == path
			continue
		}
		if in && len(fields) == 3 && fields[0] == "Rss:" {
			n, err := strconv.Atoi(fields[1])
			if err != nil {
				b.Fatalf("/proc/self/smaps: %q: %v", l, err)
			}
			total += n
		}
	}
	if err := sc.Err(); err != nil {
		b.Fatal(err)
	}
	return total
}
