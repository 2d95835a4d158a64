// Command storefill fills an agent's state store with the results a
// long-running agent would have kept, so that a benchmark measures the
// steady state (a full store) instead of a fresh lab's.
//
//	go run ./bench/storefill -store /var/lib/sentry/state.db -n 1000 -every 10s
//
// For each probe of each node the store already holds, it takes the newest
// result as the model and writes n copies of it before the oldest one the
// store holds, every `every` apart, oldest first, a round (every probe of
// every node) per transaction as the agent writes them; their hourly and
// weekly rollups are written with them. -days adds, before those, one
// result per hour of each probe over that many days, so that the hourly
// rollups of a long-running agent are there too. The store is then pruned
// as an agent with verifier.keep_results = n prunes it: the raw results of
// those hours are dropped (the agent's own prune at its start would read
// them all, and keep them mapped), and each probe keeps n results before
// the agent's own, which stay the newest. The agent must be stopped: the
// store's file lock is taken (and waited for up to 2 s). Each round is a
// transaction of its own: a fill cut short leaves a sound store with
// fewer results.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/sentryha/sentry/internal/store"
)

func main() {
	path := flag.String("store", "/var/lib/sentry/state.db", "the store file")
	n := flag.Int("n", 1000, "results to write for each probe of each node")
	every := flag.Duration("every", 10*time.Second, "time between two results of a probe")
	days := flag.Int("days", 0, "days of hourly history (one result per probe and hour) before the results")
	nodes := flag.String("nodes", "node-p,node-s", "the nodes whose results to write, comma-separated (the store cannot list them)")
	flag.Parse()
	if err := run(*path, *n, *every, *days, *nodes); err != nil {
		fmt.Fprintln(os.Stderr, "storefill:", err)
		os.Exit(1)
	}
}

func run(path string, n int, every time.Duration, days int, nodeList string) error {
	if n < 1 || every <= 0 || days < 0 {
		return errors.New("-n must be at least 1, -every positive and -days at least 0")
	}
	if _, err := os.Stat(path); err != nil {
		return err // never create a store: it would have no peers, no schema of the agent's
	}
	s, err := store.Open(path, store.Options{})
	if err != nil {
		return err
	}
	defer s.Close()
	names := strings.Split(nodeList, ",")
	var models []store.StoredResult
	oldest := time.Now()
	for _, node := range names {
		latest, err := s.LatestResults(node)
		if err != nil {
			return err
		}
		probes := make([]string, 0, len(latest))
		for p := range latest {
			probes = append(probes, p)
		}
		sort.Strings(probes)
		for _, p := range probes {
			models = append(models, latest[p])
			all, err := s.Results(node, p, 0)
			if err != nil {
				return err
			}
			if len(all) > 0 && all[len(all)-1].Start.Before(oldest) {
				oldest = all[len(all)-1].Start
			}
		}
	}
	if len(models) == 0 {
		return fmt.Errorf("%s holds no results of nodes %v to model the others on: let the agent run a round first", path, names)
	}
	start := oldest.Add(-time.Duration(n) * every)
	write := func(at time.Time) error {
		round := make([]store.StoredResult, len(models))
		for j, m := range models {
			r := m
			r.Start = at.Add(time.Duration(j) * time.Millisecond)
			round[j] = r
		}
		return s.PutResults(round...)
	}
	t0 := time.Now()
	hours := days * 24
	for i := 0; i < hours; i++ {
		if err := write(start.Add(-time.Duration(hours-i) * time.Hour)); err != nil {
			return fmt.Errorf("hour %d: %w", i, err)
		}
	}
	for i := 0; i < n; i++ {
		if err := write(start.Add(time.Duration(i) * every)); err != nil {
			return fmt.Errorf("round %d: %w", i, err)
		}
	}
	// The agent keeps the last keep_results writes of each probe (by write
	// sequence, walking from the oldest start time and stopping at the
	// first to keep): the history's results go, the n written after them
	// and the agent's own, whose start times are the newest, stay.
	dropped, err := s.Prune(time.Now(), store.Retention{MaxResults: n})
	if err != nil {
		return err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	fmt.Printf("storefill: %s: %d results (%d probes of %d nodes, %d each, from %s to %s) after %d days of hourly history, in %s; %d results pruned as the agent would; the file is %.1f MB\n",
		path, n*len(models), len(models), len(names), n, start.Format(time.RFC3339), oldest.Format(time.RFC3339),
		days, time.Since(t0).Round(time.Millisecond), dropped, float64(fi.Size())/1e6)
	return nil
}
