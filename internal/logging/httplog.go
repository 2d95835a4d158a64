package logging

import (
	"log"
	"log/slog"
	"strings"
)

// HTTPErrorLog is an error log for a net/http server that turns its lines
// into structured entries of l; TLS handshake failures (a client of
// another CA, say) keep the address.
func HTTPErrorLog(l *slog.Logger, what string) *log.Logger {
	return log.New(&httpWriter{l, what}, "", 0)
}

type httpWriter struct {
	log  *slog.Logger
	what string
}

func (w *httpWriter) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	if rest, ok := strings.CutPrefix(msg, "http: TLS handshake error from "); ok {
		addr, reason, _ := strings.Cut(rest, ": ")
		w.log.Warn("refused peer connection: TLS handshake failed", "peer", addr, "reason", reason)
		return len(p), nil
	}
	w.log.Warn(w.what+": "+msg, "component", w.what)
	return len(p), nil
}
