package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Limits of the endpoint. A scrape is one small GET every 15 to 60
// seconds; anything slower or bigger is not a scraper.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 16 << 10
	// gatherTimeout answers 503 when gathering takes longer (a snapshot
	// function stuck behind a lock): the scrape fails, the target is down.
	gatherTimeout = 10 * time.Second
	// maxInFlight scrapes at once; more are answered 503.
	maxInFlight = 4
	// shutdownTimeout is how long Serve waits for scrapes in flight when
	// its context ends.
	shutdownTimeout = 5 * time.Second
)

// NewRegistry is a registry with c and the Go runtime's and the process's
// collectors (go_*, process_*), as Serve exports them.
func NewRegistry(c prometheus.Collector) (*prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	for _, x := range []prometheus.Collector{
		c,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(x); err != nil {
			return nil, fmt.Errorf("metrics: register a collector: %w", err)
		}
	}
	return reg, nil
}

// Handler serves reg in the exposition format a scraper asks for, and
// counts its own requests (promhttp_metric_handler_requests_total). An
// error while gathering fails the whole scrape with an HTTP error rather
// than leaving series out: a failed scrape is seen (up == 0), a missing
// series is not.
func Handler(reg *prometheus.Registry) http.Handler { return handler(reg, nil) }

func handler(reg *prometheus.Registry, log *slog.Logger) http.Handler {
	opts := promhttp.HandlerOpts{
		ErrorHandling:       promhttp.HTTPErrorOnError,
		Registry:            reg,
		MaxRequestsInFlight: maxInFlight,
		Timeout:             gatherTimeout,
	}
	if log != nil {
		opts.ErrorLog = errorLog{log}
	}
	return promhttp.InstrumentMetricHandler(reg, promhttp.HandlerFor(reg, opts))
}

// errorLog is promhttp's error log on slog.
type errorLog struct{ log *slog.Logger }

func (l errorLog) Println(v ...any) { l.log.Error("serving metrics", "err", fmt.Sprint(v...)) }

// Serve answers GET /metrics on listen (metrics.listen: host:port) with c
// and the Go and process collectors, until ctx ends; then it waits a
// little for scrapes in flight and returns nil. It returns an error,
// naming the address, when it cannot listen or the server fails.
//
// The endpoint has no authentication: it is meant for a LAN or a VPN
// address, behind a firewall or a reverse proxy (docs/monitoring.md).
func Serve(ctx context.Context, listen string, c prometheus.Collector, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	reg, err := NewRegistry(c)
	if err != nil {
		return err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", listen)
	if err != nil {
		return fmt.Errorf("metrics: listen on %s (metrics.listen): %w", listen, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", handler(reg, log))
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("metrics endpoint listening", "addr", ln.Addr().String(), "path", "/metrics")
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done: // the server failed on its own
		return fmt.Errorf("metrics: serve on %s (metrics.listen): %w", listen, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	err = srv.Shutdown(sctx)
	if serr := <-done; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		srv.Close()
		return fmt.Errorf("metrics: shut down the endpoint on %s: %w", listen, err)
	}
	log.Info("metrics endpoint stopped", "addr", ln.Addr().String())
	return nil
}
