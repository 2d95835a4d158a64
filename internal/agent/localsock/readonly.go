package localsock

import (
	"context"
	"encoding/json"
	"log"
	"net"
	"net/http"
	"time"

	"github.com/sentryha/sentry/internal/agent/api"
)

// Refusal is the error the read-only socket answers (403) to a request
// that is not on its allow list; the client makes it the not-root error.
const Refusal = "read-only: this needs root (sudo sentry ...)"

// readable is the allow list of the read-only socket: GET of these paths
// (whatever the query), nothing else. Each shows state and neither acts
// nor shows a secret (the cluster key, the canary password, join tokens,
// what a tracked file says).
var readable = map[string]bool{
	"/v1/status":           true, // sentry status, the TUI
	"/v1/ready":            true, // sentry ready: the verdict, judged now
	"/v1/events":           true, // sentry events
	"/v1/events/stream":    true, // sentry events --follow, the TUI
	"/v1/verify":           true, // the last scheduled round's results
	"/v1/verify/results":   true, // sentry verify --node N --last: stored results
	"/v1/failover/status":  true, // sentry failover status
	"/v1/failover/history": true, // sentry failover history
	"/v1/report":           true, // sentry report (also --from-peer), without --mail
	"/v1/reports":          true, // sentry report list
	"/v1/parity":           true, // sentry parity plan, drift, compat
	"/v1/config/log":       true, // sentry config log: commits, paths changed
	"/v1/modules":          true, // the modules: versions, pins, what waits for approval
}

// withheld are the GET requests the read-only socket refuses, and why:
// each stays root's (the test checks that every GET route of the local
// API is in readable or here).
var withheld = map[string]string{
	"/v1/config/show":  "a tracked file's content, which may hold a password",
	"/v1/config/diff":  "a commit's patch and the nodes' overlay diffs: what tracked files say",
	"/v1/config/drift": "the diff of a locally edited file, unredacted; and it records drift events",
	"/v1/verify/debug": "a probe's own log (what it sent and was answered, its errors as they came)",
}

// Readable lists the allow list's paths (docs and tests).
func Readable() []string {
	out := make([]string, 0, len(readable))
	for p := range readable {
		out = append(out, p)
	}
	return out
}

// ReadOnly serves only the allow list of h: a GET of a listed path. Any
// other method or path is answered 403 with Refusal, so is a path given
// with escapes (it is matched as written).
func ReadOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.RawPath != "" || !readable[r.URL.Path] {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			json.NewEncoder(w).Encode(api.Error{Error: Refusal})
			return
		}
		h.ServeHTTP(w, r)
	})
}

type rootKey struct{}

// Server serves h on the listeners of Listen: the whole of it on the
// root-only socket's connections, ReadOnly(h) on any other (the read-only
// socket's).
func Server(h http.Handler, errLog *log.Logger) *http.Server {
	ro := ReadOnly(h)
	return &http.Server{ReadHeaderTimeout: 5 * time.Second, ErrorLog: errLog,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if lc, ok := c.(*conn); ok && !lc.readOnly {
				return context.WithValue(ctx, rootKey{}, true)
			}
			return ctx
		},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if root, _ := r.Context().Value(rootKey{}).(bool); root {
				h.ServeHTTP(w, r)
				return
			}
			ro.ServeHTTP(w, r)
		})}
}
