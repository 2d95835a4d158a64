package logging

import (
	"log/slog"
	"testing"

	"github.com/coreos/go-systemd/v22/journal"
)

func TestJournalFields(t *testing.T) {
	var got []map[string]string
	var msgs []string
	var pris []journal.Priority
	lv := new(slog.LevelVar)
	h := &journalHandler{level: lv, ident: "sentry", send: func(m string, p journal.Priority, v map[string]string) error {
		msgs, pris, got = append(msgs, m), append(pris, p), append(got, v)
		return nil
	}}
	log := slog.New(h).With("peer", "192.0.2.20:4711")
	log.WithGroup("tls").Warn("refused peer connection", "reason", "unknown authority")
	log.Debug("not shown at info")
	if len(got) != 1 {
		t.Fatalf("%d entries sent, want 1", len(got))
	}
	v := got[0]
	if v["SENTRY_PEER"] != "192.0.2.20:4711" || v["SENTRY_TLS_REASON"] != "unknown authority" || v["SYSLOG_IDENTIFIER"] != "sentry" {
		t.Errorf("fields %v", v)
	}
	if pris[0] != journal.PriWarning {
		t.Errorf("priority %v", pris[0])
	}
	if msgs[0] != `refused peer connection peer="192.0.2.20:4711" tls.reason="unknown authority"` {
		t.Errorf("message %q", msgs[0])
	}
	lv.Set(slog.LevelDebug)
	log.Debug("now shown")
	if len(got) != 2 {
		t.Error("level change not followed")
	}
}

func TestParseLevel(t *testing.T) {
	if l, err := ParseLevel("warn"); err != nil || l != slog.LevelWarn {
		t.Errorf("warn: %v %v", l, err)
	}
	if _, err := ParseLevel("loud"); err == nil {
		t.Error("bad level accepted")
	}
}
