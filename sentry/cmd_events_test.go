package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/sentryha/sentry/internal/agentclient"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sentryha/sentry/internal/store"
)

// fakeEvents serves GET /v1/events (stored) and a stream that gives more,
// then ends (as when the agent stops) or, with hold, stays open.
func fakeEvents(t *testing.T, stored, more []store.Event, hold bool) (*agentclient.Client, func() string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "api.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var lastID string
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/events", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(stored)
	})
	mux.HandleFunc("GET /v1/events/stream", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		lastID = r.Header.Get("Last-Event-ID")
		mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		for _, e := range more {
			b, _ := json.Marshal(e)
			fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", e.Seq, e.Kind, b)
		}
		w.(http.Flusher).Flush()
		if hold {
			<-r.Context().Done()
		}
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return agentclient.New(sock), func() string { mu.Lock(); defer mu.Unlock(); return lastID }
}

// lockedBuffer is an output written by one goroutine and read by another.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

func ev(seq uint64, kind, msg string) store.Event {
	return store.Event{Seq: seq, Time: time.Date(2026, 12, 2, 21, 0, int(seq), 0, time.UTC), Kind: kind, Message: msg}
}

func TestEventsFollow(t *testing.T) {
	stored := []store.Event{ev(1, "join", "joined"), ev(2, "failover", "failed over")}
	more := []store.Event{ev(3, "probe-red", "web red"), ev(4, "failover", "again")}

	// Text: the stored events, then the new ones, from after the newest
	// stored; the stream's end (the agent stopped) is an error.
	c, lastID := fakeEvents(t, stored, more, false)
	var out, errOut bytes.Buffer
	err := runEvents(context.Background(), c, eventsOptions{n: 50, follow: true}, &out, &errOut)
	if !errors.Is(err, agentclient.ErrStreamClosed) || lastID() != "2" {
		t.Errorf("follow: %v, Last-Event-ID %q", err, lastID())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 || !strings.HasSuffix(lines[0], "join             joined") || !strings.HasSuffix(lines[3], "failover         again") {
		t.Errorf("follow output:\n%s", out.String())
	}

	// JSON, one kind: one event a line; interrupted, no error.
	c, _ = fakeEvents(t, stored, more, true)
	var jout lockedBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runEvents(ctx, c, eventsOptions{n: 50, follow: true, asJSON: true, kinds: []string{"failover"}}, &jout, io.Discard)
	}()
	for i := 0; !strings.Contains(jout.String(), `"again"`); i++ {
		if i == 1000 {
			t.Fatalf("followed events not printed:\n%s", jout.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("interrupted: %v", err)
	}
	var seqs []uint64
	for _, l := range strings.Split(strings.TrimSpace(jout.String()), "\n") {
		var e store.Event
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		seqs = append(seqs, e.Seq)
	}
	if fmt.Sprint(seqs) != "[2 4]" {
		t.Errorf("failover events followed: %v\n%s", seqs, jout.String())
	}

	// Without --follow, the output is as it was: a JSON array.
	out.Reset()
	if err := runEvents(context.Background(), c, eventsOptions{n: 50, asJSON: true}, &out, &errOut); err != nil || !strings.HasPrefix(out.String(), "[\n") {
		t.Errorf("events --json: %v\n%s", err, out.String())
	}
}
