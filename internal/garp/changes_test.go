package garp

import (
	"context"
	"testing"
	"time"
)

// The channel closes when the context ends (no change needed).
func TestChangesEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := Changes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("the channel stayed open after the context ended")
		}
	}
}
