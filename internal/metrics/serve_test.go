package metrics

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// addrHandler is a slog handler that hands the address of the first
// "metrics endpoint listening" record to a channel.
type addrHandler struct {
	slog.Handler
	once *sync.Once
	addr chan string
}

func (h addrHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "metrics endpoint listening" {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "addr" {
				h.once.Do(func() { h.addr <- a.Value.String() })
			}
			return true
		})
	}
	return h.Handler.Handle(ctx, r)
}

func get(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestServeAnswersAndShutsDown(t *testing.T) {
	h := addrHandler{Handler: slog.NewTextHandler(io.Discard, nil), once: &sync.Once{}, addr: make(chan string, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, "127.0.0.1:0", NewCollector(fixed, "1.4.0"), slog.New(h)) }()

	var addr string
	select {
	case addr = <-h.addr:
	case err := <-done:
		t.Fatalf("Serve returned before listening: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not log its address within 10s")
	}
	base := "http://" + addr

	code, body := get(t, http.MethodGet, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d\n%s", code, body)
	}
	for _, want := range []string{
		"\nsentry_ready 0\n",
		`sentry_verdict{verdict="not_ready"} 1`,
		`sentry_probe_success{node="node-p",probe="mail"} 0`,
		"\ngo_goroutines ",
		"\nprocess_start_time_seconds ",
		"promhttp_metric_handler_requests_total",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("GET /metrics lacks %q", want)
		}
	}
	if code, _ := get(t, http.MethodGet, base+"/"); code != http.StatusNotFound {
		t.Errorf("GET /: %d, want 404 (only /metrics is served)", code)
	}
	if code, _ := get(t, http.MethodPost, base+"/metrics"); code != http.StatusMethodNotAllowed {
		t.Errorf("POST /metrics: %d, want 405", code)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve after cancel = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return within 10s of its context's end")
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after shutdown", addr)
	}
}

// An address that cannot be listened on is an error that names it and
// the key, at once.
func TestServeListenErrorNamesAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	done := make(chan error, 1)
	go func() { done <- Serve(context.Background(), addr, NewCollector(fixed, "v"), nil) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "metrics.listen") {
			t.Errorf("Serve on a taken address = %v, want an error naming %s and metrics.listen", err, addr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve on a taken address did not return")
	}
}

// A failed snapshot fails the scrape with an HTTP error: the target goes
// down (up == 0) instead of the sentry series going away unseen.
func TestHandlerFailsScrapeOnSnapshotPanic(t *testing.T) {
	reg, err := NewRegistry(NewCollector(func() Snapshot { panic("boom") }, "v"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(Handler(reg))
	defer srv.Close()
	code, body := get(t, http.MethodGet, srv.URL)
	if code != http.StatusInternalServerError || !strings.Contains(body, "boom") {
		t.Errorf("scrape with a panicking snapshot: %d %q, want 500 naming the panic", code, body)
	}
}

func TestNewRegistryRefusesDuplicate(t *testing.T) {
	reg, err := NewRegistry(NewCollector(fixed, "v"))
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Register(NewCollector(fixed, "v")); err == nil {
		t.Error("a second sentry collector registered")
	}
}
