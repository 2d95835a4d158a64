package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/sentryha/sentry/internal/peer"
	"github.com/sentryha/sentry/internal/store"
	"github.com/sentryha/sentry/synchronizer"
)

// NodeView is one node as `sentry status` shows it.
type NodeView struct {
	Name         string     `json:"name"`
	Self         bool       `json:"self"`
	Role         string     `json:"role"`
	Hardware     string     `json:"hardware"`
	DiskSet      string     `json:"disk_set"`
	Generation   uint64     `json:"generation"`
	AgentVersion string     `json:"agent_version"`
	Address      string     `json:"address,omitempty"`
	Reachable    bool       `json:"reachable"`
	LastContact  *time.Time `json:"last_contact,omitempty"`
	Error        string     `json:"error,omitempty"`
	// Configuration sync: the primary's head as this node knows it, and on
	// the secondary the commit applied last and the one that failed.
	ConfigHead    string `json:"config_head,omitempty"`
	ConfigApplied string `json:"config_applied,omitempty"`
	ConfigFailed  string `json:"config_failed,omitempty"`
	ConfigError   string `json:"config_error,omitempty"`
	ConfigRetry   string `json:"config_retry,omitempty"` // a failure that may clear by itself: when it is tried again
	// BoundaryPending: what the primary's modules ask beyond what this
	// secondary approved (sentry modules approve).
	BoundaryPending []string `json:"boundary_pending,omitempty"`
	ConfigDrift     int      `json:"config_drift,omitempty"`
	Verify          string   `json:"verify,omitempty"`
	VerifyRed       []string `json:"verify_red,omitempty"`
	// The boot decision; SafeMode is why the role's services are held.
	Boot     string `json:"boot,omitempty"`
	SafeMode string `json:"safe_mode,omitempty"`
	Failover bool   `json:"failover,omitempty"`
}

// Status is the answer of GET /v1/status.
type Status struct {
	Initialized bool       `json:"initialized"`
	ClusterID   string     `json:"cluster_id,omitempty"`
	ClusterName string     `json:"cluster_name,omitempty"`
	Nodes       []NodeView `json:"nodes"`
	Hint        string     `json:"hint,omitempty"`
	// SafeMode is set when this node holds its role's services, with why.
	SafeMode string `json:"safe_mode,omitempty"`
}

func (a *Agent) status() Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	self := a.selfStatusLocked()
	sv := NodeView{Name: self.Name, Self: true, Role: self.Role, Hardware: self.Hardware, DiskSet: self.DiskSet,
		Generation: self.Generation, AgentVersion: self.AgentVersion, Address: a.conf().Agent.Listen, Reachable: true,
		ConfigHead: self.ConfigHead, ConfigApplied: self.ConfigApplied, ConfigFailed: self.ConfigFailed, ConfigError: self.ConfigError, ConfigRetry: self.ConfigRetry, BoundaryPending: self.BoundaryPending,
		ConfigDrift: self.ConfigDrift, Verify: self.Verify, VerifyRed: self.VerifyRed,
		Boot: self.Boot, SafeMode: self.SafeMode, Failover: self.Failover}
	if a.hwErr != nil {
		sv.Error = "hardware identity: " + a.hwErr.Error()
	}
	st := Status{Nodes: []NodeView{sv}}
	if why := a.safeModeLocked(); why != "" {
		st.SafeMode = why
	}
	if a.stamp == nil {
		st.Hint = "this disk set belongs to no cluster: run `sentry init --cluster NAME` on the primary, `sentry join TOKEN ADDRESS` on the secondary"
		return st
	}
	st.Initialized, st.ClusterID, st.ClusterName = true, a.stamp.ClusterID, a.stamp.ClusterName
	if a.cluster.PeerName == "" {
		st.Hint = "no secondary has joined yet: run `sentry token` here and `sentry join` on the secondary"
		return st
	}
	pv := NodeView{Name: a.cluster.PeerName, Address: a.cluster.PeerAddress, Reachable: a.lnk().State().Reachable, Error: a.lnk().State().LastError}
	p := a.lnk().Peer()
	if p == nil {
		// Not heard from since this agent started: the store remembers.
		if rec, ok, err := a.store.Peer(a.cluster.PeerName); err == nil && ok {
			var ns peer.NodeStatus
			if json.Unmarshal(rec.Status, &ns) == nil {
				p = &ns
			}
			lc := rec.LastContact
			pv.LastContact = &lc
		}
	} else {
		lc := a.lnk().State().LastContact
		pv.LastContact = &lc
	}
	if p != nil {
		pv.Role, pv.Hardware, pv.DiskSet, pv.Generation, pv.AgentVersion = p.Role, p.Hardware, p.DiskSet, p.Generation, p.AgentVersion
		pv.ConfigHead, pv.ConfigApplied, pv.ConfigFailed, pv.ConfigError, pv.ConfigRetry = p.ConfigHead, p.ConfigApplied, p.ConfigFailed, p.ConfigError, p.ConfigRetry
		pv.BoundaryPending = p.BoundaryPending
		pv.ConfigDrift = p.ConfigDrift
		pv.Verify, pv.VerifyRed = p.Verify, p.VerifyRed
		pv.Boot, pv.SafeMode, pv.Failover = p.Boot, p.SafeMode, p.Failover
	}
	if pv.Reachable {
		pv.Error = ""
	}
	st.Nodes = append(st.Nodes, pv)
	sort.SliceStable(st.Nodes, func(i, j int) bool { return st.Nodes[i].Role == "primary" && st.Nodes[j].Role != "primary" })
	return st
}

func (a *Agent) localHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, a.status())
	})
	mux.HandleFunc("POST /v1/modules/approve", func(w http.ResponseWriter, r *http.Request) {
		res, err := a.ApproveModules()
		reply(w, res, err)
	})
	mux.HandleFunc("POST /v1/promote", func(w http.ResponseWriter, r *http.Request) {
		res, err := a.Promote()
		reply(w, res, err)
	})
	mux.HandleFunc("POST /v1/bootcheck/adopt", func(w http.ResponseWriter, r *http.Request) {
		var req AdoptRequest
		if !readJSON(w, r, &req) {
			return
		}
		res, err := a.Adopt(r.Context(), req.Replaces, req.Force)
		reply(w, res, err)
	})
	mux.HandleFunc("POST /v1/init", func(w http.ResponseWriter, r *http.Request) {
		var req InitRequest
		if !readJSON(w, r, &req) {
			return
		}
		res, err := a.Init(req.ClusterName, time.Duration(req.TokenTTLSeconds)*time.Second)
		reply(w, res, err)
	})
	mux.HandleFunc("POST /v1/token", func(w http.ResponseWriter, r *http.Request) {
		var req TokenRequest
		if !readJSON(w, r, &req) {
			return
		}
		t, err := a.NewToken(time.Duration(req.TTLSeconds) * time.Second)
		reply(w, TokenResult{Token: t.String(), Expires: t.ExpiresAt()}, err)
	})
	mux.HandleFunc("POST /v1/join", func(w http.ResponseWriter, r *http.Request) {
		var req JoinRequest
		if !readJSON(w, r, &req) {
			return
		}
		res, err := a.Join(r.Context(), req.Token, req.Primary)
		reply(w, res, err)
	})
	mux.HandleFunc("POST /v1/sync", func(w http.ResponseWriter, r *http.Request) {
		var req SyncRequest
		if !readJSON(w, r, &req) {
			return
		}
		res, err := a.syncOnce(r.Context(), req.Force)
		reply(w, res, err)
	})
	mux.HandleFunc("GET /v1/verify", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, a.VerifyResults())
	})
	mux.HandleFunc("GET /v1/verify/results", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		node, probe := q.Get("node"), q.Get("probe")
		if node == "" {
			node = a.nodeName()
		}
		if probe != "" {
			n, _ := strconv.Atoi(q.Get("n"))
			if n <= 0 {
				n = 20
			}
			res, err := a.store.Results(node, probe, n)
			reply(w, res, err)
			return
		}
		m, err := a.store.LatestResults(node)
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
		var req VerifyRunRequest
		if !readJSON(w, r, &req) {
			return
		}
		res, err := a.VerifyNode(r.Context(), req.Node, req.Service)
		reply(w, res, err)
	})
	mux.HandleFunc("GET /v1/verify/debug", func(w http.ResponseWriter, r *http.Request) {
		res, err := a.Debug(r.URL.Query().Get("probe"))
		reply(w, res, err)
	})
	mux.HandleFunc("GET /v1/config/drift", func(w http.ResponseWriter, r *http.Request) {
		a.checkDrift() // records what is new, for events and status
		items, err := a.Drift()
		if items == nil {
			items = []synchronizer.DriftItem{}
		}
		reply(w, items, err)
	})
	mux.HandleFunc("POST /v1/config/rollback", func(w http.ResponseWriter, r *http.Request) {
		var req RollbackRequest
		if !readJSON(w, r, &req) {
			return
		}
		res, err := a.Rollback(req.Rev)
		reply(w, res, err)
	})
	mux.HandleFunc("GET /v1/parity", func(w http.ResponseWriter, r *http.Request) {
		res, err := a.Parity(r.Context())
		reply(w, res, err)
	})
	mux.HandleFunc("POST /v1/parity/apply", func(w http.ResponseWriter, r *http.Request) {
		var req ApplyRequest
		if !readJSON(w, r, &req) {
			return
		}
		res, err := a.Apply(r.Context(), req)
		reply(w, res, err)
	})
	mux.HandleFunc("POST /v1/reload", func(w http.ResponseWriter, r *http.Request) {
		a.reload()
		writeJSON(w, http.StatusOK, map[string]bool{"reloaded": true})
	})
	mux.HandleFunc("GET /v1/events", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		if n <= 0 {
			n = 50
		}
		evs, err := a.store.LastEvents(n)
		if evs == nil {
			evs = []store.Event{}
		}
		reply(w, evs, err)
	})
	return mux
}

// Requests of the local API.
type (
	InitRequest struct {
		ClusterName     string `json:"cluster_name"`
		TokenTTLSeconds int64  `json:"token_ttl_seconds"`
	}
	TokenRequest struct {
		TTLSeconds int64 `json:"ttl_seconds"`
	}
	TokenResult struct {
		Token   string    `json:"token"`
		Expires time.Time `json:"expires"`
	}
	SyncRequest struct {
		Force bool `json:"force"`
	}
	RollbackRequest struct {
		Rev string `json:"rev"`
	}
	JoinRequest struct {
		Token   string `json:"token"`
		Primary string `json:"primary"`
	}
	apiError struct {
		Error string `json:"error"`
	}
)

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
		code := http.StatusInternalServerError
		if errors.Is(err, ErrInitialized) || errors.Is(err, ErrBadToken) {
			code = http.StatusConflict
		}
		writeJSON(w, code, apiError{err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
