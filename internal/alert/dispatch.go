package alert

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Sender delivers a notice somewhere (mail, ...). Send must give up when
// ctx ends.
type Sender interface {
	Name() string
	Send(ctx context.Context, n Notice) error
}

// LogNotice writes n to log: an error when an alert fires, a warning for a
// reminder, and info when it is resolved. This is the journal's copy of
// every alert.
func LogNotice(log *slog.Logger, n Notice) {
	level := slog.LevelInfo
	switch n.Kind {
	case Firing:
		level = slog.LevelError
	case Reminder:
		level = slog.LevelWarn
	}
	log.Log(context.Background(), level, "alert "+string(n.Kind)+": "+n.Text(),
		"alert", string(n.Kind), "node", n.Node, "probe", n.Probe, "phase", n.Phase,
		"message", n.Message, "since", n.Since.UTC().Format(time.RFC3339), "failures", n.Failures)
}

// DispatcherOptions bound the work of a Dispatcher. A zero field takes the
// default named beside it.
type DispatcherOptions struct {
	QueueSize   int           // notices waiting to be sent; 64
	Attempts    int           // tries per sender and notice; 4
	Backoff     time.Duration // pause after the first failed try, doubled after each; 5s
	MaxBackoff  time.Duration // longest pause; 1m
	SendTimeout time.Duration // deadline of one try; 30s
}

func (o DispatcherOptions) normal() DispatcherOptions {
	if o.QueueSize <= 0 {
		o.QueueSize = 64
	}
	if o.Attempts <= 0 {
		o.Attempts = 4
	}
	if o.Backoff <= 0 {
		o.Backoff = 5 * time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = time.Minute
	}
	if o.SendTimeout <= 0 {
		o.SendTimeout = 30 * time.Second
	}
	return o
}

// Dispatcher logs every notice at once and hands it to its senders in the
// background. Notify never blocks: the queue is bounded, and when it is
// full the oldest notice is dropped (for the senders only; it was logged)
// with a warning.
type Dispatcher struct {
	log     *slog.Logger
	opt     DispatcherOptions
	senders []Sender

	mu    sync.Mutex
	queue []Notice
	wake  chan struct{} // one token: the queue may be non-empty
}

// NewDispatcher returns a Dispatcher; Run does the sending.
func NewDispatcher(log *slog.Logger, opt DispatcherOptions, senders ...Sender) *Dispatcher {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Dispatcher{log: log, opt: opt.normal(), senders: senders, wake: make(chan struct{}, 1)}
}

// Notify logs the notices and queues them for the senders. It returns at
// once.
func (d *Dispatcher) Notify(ns ...Notice) {
	for _, n := range ns {
		LogNotice(d.log, n)
	}
	if len(d.senders) == 0 || len(ns) == 0 {
		return
	}
	d.mu.Lock()
	for _, n := range ns {
		if len(d.queue) >= d.opt.QueueSize {
			old := d.queue[0]
			d.queue = d.queue[1:]
			d.log.Warn("alert queue full: dropped the oldest alert, it was logged but not sent",
				"alert", string(old.Kind), "node", old.Node, "probe", old.Probe, "queue_size", d.opt.QueueSize)
		}
		d.queue = append(d.queue, n)
	}
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Pending returns how many notices wait to be sent.
func (d *Dispatcher) Pending() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.queue)
}

func (d *Dispatcher) next() (Notice, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.queue) == 0 {
		return Notice{}, false
	}
	n := d.queue[0]
	d.queue = d.queue[1:]
	return n, true
}

// Run sends queued notices until ctx ends, one at a time and in order.
// Notices still queued then are logged as not sent. It returns nil.
func (d *Dispatcher) Run(ctx context.Context) error {
	for {
		for {
			n, ok := d.next()
			if !ok {
				break
			}
			for _, s := range d.senders {
				d.deliver(ctx, s, n)
			}
			if ctx.Err() != nil {
				break
			}
		}
		select {
		case <-ctx.Done():
			if left := d.Pending(); left > 0 {
				d.log.Warn("alerts not sent: shutting down", "count", left)
			}
			return nil
		case <-d.wake:
		}
	}
}

// deliver tries s up to Attempts times, with a growing pause between tries.
func (d *Dispatcher) deliver(ctx context.Context, s Sender, n Notice) {
	pause := d.opt.Backoff
	err := ctx.Err()
	tried := 0
	for attempt := 1; attempt <= d.opt.Attempts; attempt++ {
		if ctx.Err() != nil {
			break
		}
		tried = attempt
		sctx, cancel := context.WithTimeout(ctx, d.opt.SendTimeout)
		err = s.Send(sctx, n)
		cancel()
		if err == nil {
			d.log.Debug("alert sent", "sender", s.Name(), "alert", string(n.Kind), "node", n.Node, "probe", n.Probe, "attempt", attempt)
			return
		}
		if attempt == d.opt.Attempts {
			break
		}
		d.log.Warn("alert not sent, will retry", "sender", s.Name(), "alert", string(n.Kind), "node", n.Node, "probe", n.Probe,
			"attempt", attempt, "retry_in", pause.String(), "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
		pause = min(2*pause, d.opt.MaxBackoff)
	}
	d.log.Error("alert not sent, gave up", "sender", s.Name(), "alert", string(n.Kind), "node", n.Node, "probe", n.Probe,
		"attempts", tried, "err", err)
}
