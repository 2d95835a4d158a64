package events

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"github.com/sentryha/sentry/internal/agentclient"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sentryha/sentry/internal/store"
)

// eventServer serves a hub's stream, with a real store, on a unix socket
// in a temp folder, as the agent's local API does.
type eventServer struct {
	hub   *Hub
	store *store.Store
	srv   *http.Server
	c     *agentclient.Client
	sock  string
}

func newEventServer(t *testing.T, hub *Hub) *eventServer {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "state.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sock := filepath.Join(dir, "api.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/events/stream", hub.Stream(st))
	srv := &http.Server{Handler: mux}
	srv.RegisterOnShutdown(hub.Close)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return &eventServer{hub: hub, store: st, srv: srv, c: agentclient.New(sock), sock: sock}
}

func (s *eventServer) record(t *testing.T, kind, msg string) {
	t.Helper()
	if err := s.hub.Record(store.Event{Time: time.Now().UTC(), Kind: kind, Node: "node-p", Message: msg}, s.store.AppendEvent); err != nil {
		t.Fatal(err)
	}
}

// next reads events from a subscription until n came, or fails.
func collect(t *testing.T, evs <-chan store.Event, n int) []store.Event {
	t.Helper()
	var out []store.Event
	timeout := time.After(10 * time.Second)
	for len(out) < n {
		select {
		case e, ok := <-evs:
			if !ok {
				t.Fatalf("the stream ended after %d of %d events: %+v", len(out), n, out)
			}
			out = append(out, e)
		case <-timeout:
			t.Fatalf("%d of %d events after 10 s: %+v", len(out), n, out)
		}
	}
	return out
}

// subscribe runs c.Subscribe into a channel; the error that ends it goes
// to errc.
func subscribe(ctx context.Context, c *agentclient.Client, since uint64) (<-chan store.Event, <-chan error) {
	out, errc := make(chan store.Event, 1000), make(chan error, 1)
	go func() {
		defer close(out)
		for e, err := range c.Subscribe(ctx, since) {
			if err != nil {
				errc <- err
				return
			}
			out <- e
		}
	}()
	return out, errc
}

// raw is a plain HTTP client of the server's socket.
func (s *eventServer) raw() *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", s.sock)
	}}}
}

// rawStream opens the stream with the Last-Event-ID header lastID ("":
// none) and returns its lines.
func rawStream(t *testing.T, s *eventServer, lastID string) (*bufio.Scanner, func()) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://agent/v1/events/stream", nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := s.raw().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %s %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	return bufio.NewScanner(resp.Body), func() { resp.Body.Close() }
}

// readUntil reads lines until one has prefix, and returns those read.
func readUntil(t *testing.T, sc *bufio.Scanner, prefix string) []string {
	t.Helper()
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if strings.HasPrefix(sc.Text(), prefix) {
			return lines
		}
	}
	t.Fatalf("no line %q in %q (%v)", prefix, lines, sc.Err())
	return nil
}

// Events written from several goroutines reach a subscriber once each, in
// store order, and the wire format is id, event, data.
func TestEventStreamOrder(t *testing.T) {
	s := newEventServer(t, NewHub())
	sc, closeRaw := rawStream(t, s, "")
	defer closeRaw()
	readUntil(t, sc, ": sentry events") // subscribed
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	evs, _ := subscribe(ctx, s.c, 0)
	// The subscription is up once it replayed the store's first event.
	s.record(t, "first", "first")
	collect(t, evs, 1)

	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				s.record(t, "peer-reachable", fmt.Sprintf("g%d-%d", g, i))
			}
		}()
	}
	wg.Wait()
	got := collect(t, evs, 100)
	stored, err := s.store.Events(1, 0)
	if err != nil || len(stored) != 100 {
		t.Fatalf("stored: %d %v", len(stored), err)
	}
	for i, e := range got {
		if e.Seq != stored[i].Seq || e.Message != stored[i].Message || e.Kind != "peer-reachable" {
			t.Fatalf("event %d: %+v, stored %+v", i, e, stored[i])
		}
	}
	lines := readUntil(t, sc, "data: ")
	if want := []string{"id: 1", "event: first"}; len(lines) < 3 || strings.Join(lines[len(lines)-3:len(lines)-1], "|") != strings.Join(want, "|") ||
		!strings.Contains(lines[len(lines)-1], `"seq":1,`) || !strings.Contains(lines[len(lines)-1], `"message":"first"`) {
		t.Errorf("wire format: %q", lines)
	}
}

// A reconnecting client gets from the store what it missed (after
// Last-Event-ID), then the new events, none twice.
func TestEventStreamReplay(t *testing.T) {
	s := newEventServer(t, NewHub())
	for i := 1; i <= 5; i++ {
		s.record(t, "sync-applied", fmt.Sprintf("e%d", i))
	}
	sc, closeRaw := rawStream(t, s, "3")
	defer closeRaw()
	lines := readUntil(t, sc, "id: 5")
	if strings.Contains(strings.Join(lines, "\n"), "id: 3\n") || !strings.Contains(strings.Join(lines, "\n"), "id: 4\n") {
		t.Errorf("replay after 3: %q", lines)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	evs, _ := subscribe(ctx, s.c, 2)
	got := collect(t, evs, 3)
	s.record(t, "sync-applied", "e6")
	got = append(got, collect(t, evs, 1)...)
	for i, e := range got {
		if want := fmt.Sprintf("e%d", i+3); e.Message != want || e.Seq != uint64(i+3) {
			t.Errorf("event %d: %+v, want %s", i, e, want)
		}
	}
	// A bad id is a bad request.
	resp, err := s.raw().Get("http://agent/v1/events/stream?since=x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("since=x: %s", resp.Status)
	}
}

// An idle stream gets a keepalive comment.
func TestEventStreamKeepalive(t *testing.T) {
	hub := NewHub()
	hub.keepalive = 20 * time.Millisecond
	s := newEventServer(t, hub)
	sc, closeRaw := rawStream(t, s, "")
	defer closeRaw()
	readUntil(t, sc, ": keepalive")
}

// blockedWriter is a subscriber's connection that takes nothing until
// released.
type blockedWriter struct {
	header  http.Header
	release chan struct{}
	once    sync.Once
	started chan struct{}
	greeted chan struct{} // the handler subscribed and said so
	mu      sync.Mutex
	b       strings.Builder
}

func (w *blockedWriter) Header() http.Header { return w.header }
func (w *blockedWriter) WriteHeader(int)     {}
func (w *blockedWriter) Flush()              {}
func (w *blockedWriter) Write(p []byte) (int, error) {
	if strings.HasPrefix(string(p), ": sentry events") {
		defer close(w.greeted)
	}
	if strings.HasPrefix(string(p), "id: ") {
		w.once.Do(func() { close(w.started) })
		<-w.release
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// A subscriber that does not keep up is dropped with a final overflow
// event; the agent does not wait for it.
func TestEventStreamSlowSubscriberDropped(t *testing.T) {
	hub := NewHub()
	hub.buffer = 4
	s := newEventServer(t, hub)
	w := &blockedWriter{header: http.Header{}, release: make(chan struct{}), started: make(chan struct{}), greeted: make(chan struct{})}
	req, _ := http.NewRequest(http.MethodGet, "/v1/events/stream", nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		hub.Stream(s.store)(w, req)
	}()
	<-w.greeted
	s.record(t, "first", "e1")
	<-w.started // the handler is stuck writing event 1
	recorded := make(chan struct{})
	go func() {
		defer close(recorded)
		for i := 2; i <= 20; i++ {
			s.record(t, "sync-applied", fmt.Sprintf("e%d", i))
		}
	}()
	select {
	case <-recorded:
	case <-time.After(10 * time.Second):
		t.Fatal("recording events waited for the slow subscriber")
	}
	close(w.release)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the dropped subscriber's stream did not end")
	}
	out := w.b.String()
	// Event 1, the four buffered (2-5), then the overflow naming 5.
	if !strings.Contains(out, "id: 5\n") || strings.Contains(out, "id: 6\n") ||
		!strings.HasSuffix(out, "event: overflow\ndata: {\"error\":\"this subscriber fell behind; reconnect with Last-Event-ID to read the rest\",\"last\":5}\n\n") {
		t.Errorf("stream of the dropped subscriber:\n%s", out)
	}
	hub.mu.Lock()
	n := len(hub.subs)
	hub.mu.Unlock()
	if n != 0 {
		t.Errorf("%d subscribers left", n)
	}
}

// After an overflow the client reconnects after the last event it got and
// reads the rest from the store: a slow reader misses none.
func TestSubscribeResumesAfterOverflow(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "api.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var asked []string
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		asked = append(asked, r.Header.Get("Last-Event-ID"))
		first := len(asked) == 1
		mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		if first {
			writeEvent(w, store.Event{Seq: 8, Kind: "k", Message: "m8"})
			writeSSE(w, "", "overflow", overflowBody{Last: 8})
			return
		}
		writeEvent(w, store.Event{Seq: 9, Kind: "k", Message: "m9"})
	})}
	go srv.Serve(ln)
	defer srv.Close()
	var got []string
	var end error
	for e, err := range agentclient.New(sock).Subscribe(context.Background(), 7) {
		if err != nil {
			end = err
			break
		}
		got = append(got, e.Message)
	}
	if strings.Join(got, ",") != "m8,m9" || !errors.Is(end, agentclient.ErrStreamClosed) || strings.Join(asked, ",") != "7,8" {
		t.Errorf("events %v, end %v, Last-Event-IDs %v", got, end, asked)
	}
}

// The agent's shutdown ends the streams (the server drains at once), the
// client says so, and no new stream starts.
func TestEventStreamShutdown(t *testing.T) {
	s := newEventServer(t, NewHub())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	evs, errc := subscribe(ctx, s.c, 0)
	s.record(t, "first", "e1")
	collect(t, evs, 1)
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	start := time.Now()
	if err := s.srv.Shutdown(sctx); err != nil {
		t.Fatalf("shutdown: %v after %v", err, time.Since(start))
	}
	select {
	case err := <-errc:
		if !errors.Is(err, agentclient.ErrStreamClosed) {
			t.Errorf("the stream ended with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stream did not end")
	}
	if _, err := s.hub.subscribe(); !errors.Is(err, errHubClosed) {
		t.Errorf("a subscription after close: %v", err)
	}
	// Recording goes on (the store is still open while the agent stops).
	s.record(t, "late", "e2")
}
