// Package logging gives Sentry's daemons a log/slog logger that writes
// structured entries to the systemd journal (one journal field per slog
// attribute) when the journal is there, and text to stderr otherwise.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"

	"github.com/coreos/go-systemd/v22/journal"
)

// New returns a logger at the level held by lv. Under systemd (stderr is a
// journal stream) it sends to the journal; otherwise it writes text to w.
func New(w io.Writer, lv *slog.LevelVar, identifier string) *slog.Logger {
	if ok, _ := journal.StderrIsJournalStream(); ok && journal.Enabled() {
		return slog.New(&journalHandler{level: lv, ident: identifier, send: journal.Send})
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: lv}))
}

// ParseLevel turns the config's level words into a slog level.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("log level %q: %w", s, err)
	}
	return l, nil
}

type journalHandler struct {
	level  slog.Leveler
	ident  string
	attrs  []slog.Attr
	prefix string
	send   func(string, journal.Priority, map[string]string) error
	mu     sync.Mutex
}

func (h *journalHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.level.Level()
}

func priority(l slog.Level) journal.Priority {
	switch {
	case l >= slog.LevelError:
		return journal.PriErr
	case l >= slog.LevelWarn:
		return journal.PriWarning
	case l >= slog.LevelInfo:
		return journal.PriInfo
	}
	return journal.PriDebug
}

// fieldName makes a journal field name: upper case letters, digits and '_'.
func fieldName(prefix, key string) string {
	var b strings.Builder
	b.WriteString("SENTRY_")
	for _, r := range strings.ToUpper(prefix + key) {
		if (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

func (h *journalHandler) Handle(_ context.Context, r slog.Record) error {
	vars := map[string]string{"SYSLOG_IDENTIFIER": h.ident}
	var text strings.Builder
	text.WriteString(r.Message)
	add := func(prefix string, a slog.Attr) {
		v := a.Value.Resolve().String()
		vars[fieldName(prefix, a.Key)] = v
		fmt.Fprintf(&text, " %s=%q", prefix+a.Key, v)
	}
	for _, a := range h.attrs {
		add("", a)
	}
	r.Attrs(func(a slog.Attr) bool {
		add(h.prefix, a)
		return true
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.send(text.String(), priority(r.Level), vars)
}

func (h *journalHandler) WithAttrs(as []slog.Attr) slog.Handler {
	n := &journalHandler{level: h.level, ident: h.ident, prefix: h.prefix, send: h.send}
	n.attrs = append(append([]slog.Attr{}, h.attrs...), prefixed(h.prefix, as)...)
	return n
}

func prefixed(p string, as []slog.Attr) []slog.Attr {
	if p == "" {
		return as
	}
	out := make([]slog.Attr, len(as))
	for i, a := range as {
		out[i] = slog.Attr{Key: p + a.Key, Value: a.Value}
	}
	return out
}

func (h *journalHandler) WithGroup(name string) slog.Handler {
	return &journalHandler{level: h.level, ident: h.ident, attrs: h.attrs, prefix: h.prefix + name + ".", send: h.send}
}
