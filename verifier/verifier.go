// Package verifier exercises services end to end: each probe kind does what
// a user of the service does (fetch a page, send a mail and read it back,
// write and read a row, write and read a file) and reports each phase with
// its timing, so a failure says what failed and where.
//
// Probe kinds are compiled in and registered in one place (kinds.go), each
// with its typed parameters and their defaults (params.go: a manifest's
// parameters are decoded and checked when it is read) and its probe, which
// receives them typed. Run checks the parameters and wraps every probe with
// the same rules: a hard deadline, a recorder of phases, recovery from a
// panic, and cleanup that always runs.
package verifier

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Phase is one step of a probe ("connect", "login", "write row", ...).
type Phase struct {
	Name     string        `json:"name"`
	Duration time.Duration `json:"duration_ns"`
	Error    string        `json:"error,omitempty"`
}

// Recorder times a probe's phases and collects its cleanups.
type Recorder struct {
	mu       sync.Mutex
	ctx      context.Context
	phases   []Phase
	cleanups []func(context.Context)
	log      *slog.Logger
	values   map[string]string
	current  string    // the phase running now
	since    time.Time // when it started
}

// Phase runs one named step and records how long it took and how it ended.
// An error is wrapped with the phase's name.
func (r *Recorder) Phase(name string, f func() error) error {
	if err := r.ctx.Err(); err != nil {
		r.mu.Lock()
		r.phases = append(r.phases, Phase{Name: name, Error: "not started: " + err.Error()})
		r.mu.Unlock()
		return fmt.Errorf("%s: %w", name, err)
	}
	start := time.Now()
	r.mu.Lock()
	r.current, r.since = name, start
	r.mu.Unlock()
	err := f()
	ph := Phase{Name: name, Duration: time.Since(start)}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.current = ""
	if err != nil {
		// A connection's own I/O deadline (set from the probe's) can fire
		// a moment before the context's timer: both are the deadline.
		dl, hasDL := r.ctx.Deadline()
		atDeadline := r.ctx.Err() != nil || (hasDL && time.Until(dl) < 100*time.Millisecond)
		if atDeadline && !errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("%w (deadline reached)", err)
		}
		ph.Error = err.Error()
		r.log.Debug("phase failed", "phase", name, "err", err, "ms", ph.Duration.Milliseconds())
	} else {
		r.log.Debug("phase done", "phase", name, "ms", ph.Duration.Milliseconds())
	}
	r.phases = append(r.phases, ph)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// Cleanup registers f to run when the probe ends, whatever happened, with a
// fresh short deadline of its own (the probe's may be spent).
func (r *Recorder) Cleanup(f func(ctx context.Context)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cleanups = append(r.cleanups, f)
}

// Set records a measured value (latency, days left, free space) in the result.
func (r *Recorder) Set(key, value string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.values[key] = value
}

// take returns the phases and values so far and the cleanups not yet taken.
func (r *Recorder) take() ([]Phase, map[string]string, []func(context.Context)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	vals := map[string]string{}
	for k, v := range r.values {
		vals[k] = v
	}
	cs := r.cleanups
	r.cleanups = nil
	return append([]Phase{}, r.phases...), vals, cs
}

func runCleanups(cs []func(context.Context)) {
	for i := len(cs) - 1; i >= 0; i-- {
		cctx, cancel := context.WithTimeout(context.Background(), CleanupTimeout)
		func() {
			defer func() { recover() }()
			cs[i](cctx)
		}()
		cancel()
	}
}

// Log is the probe's own logger (shown by `sentry verify --debug`).
func (r *Recorder) Log() *slog.Logger { return r.log }

// Spec is one probe to run. Params are the kind's (nil: its defaults);
// Run checks them before the probe runs.
type Spec struct {
	Name    string        `json:"name"`
	Kind    string        `json:"kind"`
	Params  Params        `json:"params,omitempty"`
	Timeout time.Duration `json:"timeout_ns"`
}

// Result is one run of one probe.
type Result struct {
	Name     string            `json:"name"`
	Kind     string            `json:"kind"`
	OK       bool              `json:"ok"`
	Message  string            `json:"message,omitempty"`
	Phases   []Phase           `json:"phases"`
	Values   map[string]string `json:"values,omitempty"`
	Started  time.Time         `json:"started"`
	Duration time.Duration     `json:"duration_ns"`
}

// CleanupTimeout bounds each cleanup.
const CleanupTimeout = 5 * time.Second

// Run runs one probe under its deadline. It never panics and never blocks
// past the deadline plus the cleanups' own bounded time.
func Run(ctx context.Context, s Spec, log *slog.Logger) (res Result) {
	res = Result{Name: s.Name, Kind: s.Kind, Started: time.Now().UTC()}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	k, ok := kinds[s.Kind]
	if !ok {
		res.Message = fmt.Sprintf("unknown probe kind %q (known: %s)", s.Kind, strings.Join(KindNames(), ", "))
		return res
	}
	params := s.Params
	if params == nil {
		params = k.defaults()
	}
	if err := Check(s.Kind, params); err != nil {
		res.Message = err.Error()
		return res
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	rec := &Recorder{ctx: pctx, log: log.With("probe", s.Name, "kind", s.Kind), values: map[string]string{}}
	done := make(chan error, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- fmt.Errorf("probe crashed: %v", p)
			}
		}()
		done <- k.run(pctx, params, rec)
	}()
	var err error
	select {
	case err = <-done:
	case <-pctx.Done():
		// The probe did not give up by itself: answer at the deadline
		// anyway. Its goroutine ends when its I/O sees the cancelled
		// context; cleanups it registers after this run when it does.
		err = fmt.Errorf("no answer within %s", timeout)
		if ctx.Err() != nil {
			// Not the probe's deadline: its caller gave up first.
			err = fmt.Errorf("cut short after %s: %w", time.Since(res.Started).Round(time.Millisecond), context.Cause(ctx))
		}
		rec.mu.Lock()
		if rec.current != "" {
			// Say where it hangs: the phase still running is the answer.
			rec.phases = append(rec.phases, Phase{Name: rec.current, Duration: time.Since(rec.since), Error: err.Error()})
			err = fmt.Errorf("%s: %w", rec.current, err)
			rec.current = ""
		}
		rec.mu.Unlock()
		go func() {
			<-done
			_, _, late := rec.take()
			runCleanups(late)
		}()
	}
	phases, values, cleanups := rec.take()
	runCleanups(cleanups)
	res.Phases, res.Values = phases, values
	if len(res.Values) == 0 {
		res.Values = nil
	}
	res.Duration = time.Since(res.Started)
	if err != nil {
		res.Message = err.Error()
		return res
	}
	res.OK = true
	return res
}

// RunAll runs specs side by side, so that a stalled service costs one
// deadline, not one per stalled service; results are in the order of
// specs. The round's systemd probes share one connection to the system bus
// (made when the first asks, closed when the round ends). logs, when given, holds a logger per spec (nil entries log
// nothing).
func RunAll(ctx context.Context, specs []Spec, logs []*slog.Logger) []Result {
	ctx, end := withSharedBus(ctx)
	defer end()
	results := make([]Result, len(specs))
	var wg sync.WaitGroup
	for i, spec := range specs {
		var log *slog.Logger
		if i < len(logs) {
			log = logs[i]
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = Run(ctx, spec, log)
		}()
	}
	wg.Wait()
	return results
}
