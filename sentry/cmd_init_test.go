package main

import (
	"fmt"
	"testing"

	"github.com/sentryha/sentry/internal/store"
)

func TestFilterEvents(t *testing.T) {
	var evs []store.Event
	for i, k := range []string{"join", "failover", "probe-red", "failover", "bootcheck", "failover"} {
		evs = append(evs, store.Event{Seq: uint64(i + 1), Kind: k})
	}
	got := filterEvents(evs, []string{"failover", " bootcheck"}, 3)
	var seqs []uint64
	for _, e := range got {
		seqs = append(seqs, e.Seq)
	}
	if fmt.Sprint(seqs) != "[4 5 6]" {
		t.Errorf("newest 3 failover/bootcheck events: %v", seqs)
	}
	if got := filterEvents(evs, []string{"nothing"}, 3); len(got) != 0 {
		t.Errorf("no such kind: %v", got)
	}
}
