package schedule

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sentryha/sentry/internal/store"
	"github.com/sentryha/sentry/verifier"
)

// ProbeDebug is one probe's last scheduled run with its own log.
type ProbeDebug struct {
	Result verifier.Result `json:"result"`
	Log    string          `json:"log"`
}

// Debug returns the last scheduled run of probe name, with its log.
func (s *Schedule) Debug(name string) (*ProbeDebug, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.last[name]
	if !ok {
		var names []string
		for n := range s.last {
			names = append(names, n)
		}
		sort.Strings(names)
		if len(names) == 0 {
			return nil, errors.New("no scheduled probe run yet (the agent runs them once the node is paired and `sentry verifier setup` ran)")
		}
		return nil, fmt.Errorf("no probe %q ran (probes: %s)", name, strings.Join(names, ", "))
	}
	return &ProbeDebug{Result: r, Log: s.logs[name]}, nil
}

// NodeRunRequest is the body of POST /v1/verify/run: node's probes now,
// through the agents.
type NodeRunRequest struct {
	Node    string `json:"node,omitempty"`
	Service string `json:"service,omitempty"`
}

// RunRequest is the body of POST /v1/verify/now: this node's probes now.
type RunRequest struct {
	Service string `json:"service,omitempty"`
	// TimeoutMS other than 0 and the schedule's deadline makes the run ad
	// hoc (not stored).
	TimeoutMS int64 `json:"timeout_ms,omitempty"`
}

// Routes mounts the schedule's local API on mux.
func (s *Schedule) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/verify", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Results())
	})
	mux.HandleFunc("GET /v1/verify/results", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		node, probe := q.Get("node"), q.Get("probe")
		if node == "" {
			node = s.node()
		}
		s.FlushPeerResults() // what the peer sent is there too
		if probe != "" {
			n, _ := strconv.Atoi(q.Get("n"))
			if n <= 0 {
				n = 20
			}
			res, err := s.d.Store.Results(node, probe, n)
			reply(w, res, err)
			return
		}
		m, err := s.d.Store.LatestResults(node)
		var res []store.StoredResult
		for _, v := range m {
			res = append(res, v)
		}
		sort.Slice(res, func(i, j int) bool { return res[i].Probe < res[j].Probe })
		if res == nil {
			res = []store.StoredResult{}
		}
		reply(w, res, err)
	})
	mux.HandleFunc("POST /v1/verify/run", func(w http.ResponseWriter, r *http.Request) {
		var req NodeRunRequest
		if !readJSON(w, r, &req) {
			return
		}
		res, err := s.VerifyNode(r.Context(), req.Node, req.Service)
		reply(w, res, err)
	})
	mux.HandleFunc("POST /v1/verify/now", func(w http.ResponseWriter, r *http.Request) {
		var req RunRequest
		if !readJSON(w, r, &req) {
			return
		}
		res, err := s.RunNow(r.Context(), req.Service, time.Duration(req.TimeoutMS)*time.Millisecond)
		reply(w, res, err)
	})
	mux.HandleFunc("GET /v1/verify/debug", func(w http.ResponseWriter, r *http.Request) {
		res, err := s.Debug(r.URL.Query().Get("probe"))
		reply(w, res, err)
	})
}

// The local API's answers, as the agent's other routes give them.

type apiError struct {
	Error string `json:"error"`
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{fmt.Sprintf("bad request: %v", err)})
		return false
	}
	return true
}

func reply(w http.ResponseWriter, v any, err error) {
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, apiError{err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
