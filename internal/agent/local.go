package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/sentryha/sentry/internal/agent/api"
	"github.com/sentryha/sentry/internal/agent/cfgsync"
	"github.com/sentryha/sentry/internal/agent/parity"
	"github.com/sentryha/sentry/internal/peer"
	"github.com/sentryha/sentry/synchronizer"
)

// NodeView is one node as `sentry status` shows it, and Status the
// answer of GET /v1/status: the typed, versioned state (api.State), under
// the names sentry/ and e2e/ use.
type (
	NodeView = api.Node
	Status   = api.State
)

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
		writeJSON(w, http.StatusOK, a.state())
	})
	mux.HandleFunc("GET /v1/ready", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, a.verdict.Evaluate()) // judged now: a change is recorded as between rounds
	})
	a.swaps.Routes(mux)
	mux.HandleFunc("POST /v1/modules/approve", func(w http.ResponseWriter, r *http.Request) {
		res, err := a.mods().Approve()
		reply(w, res, err)
	})
	mux.HandleFunc("POST /v1/promote", func(w http.ResponseWriter, r *http.Request) {
		res, err := a.machines.Promote()
		reply(w, res, err)
	})
	mux.HandleFunc("POST /v1/bootcheck/adopt", func(w http.ResponseWriter, r *http.Request) {
		var req api.AdoptRequest
		if !readJSON(w, r, &req) {
			return
		}
		res, err := a.machines.Adopt(r.Context(), req.Replaces, req.Force)
		reply(w, res, err)
	})
	mux.HandleFunc("POST /v1/init", func(w http.ResponseWriter, r *http.Request) {
		var req api.InitRequest
		if !readJSON(w, r, &req) {
			return
		}
		res, err := a.lnk().Init(req.ClusterName, time.Duration(req.TokenTTLSeconds)*time.Second)
		reply(w, res, err)
	})
	mux.HandleFunc("POST /v1/token", func(w http.ResponseWriter, r *http.Request) {
		var req api.TokenRequest
		if !readJSON(w, r, &req) {
			return
		}
		t, err := a.lnk().NewToken(time.Duration(req.TTLSeconds) * time.Second)
		reply(w, api.TokenResult{Token: t.String(), Expires: t.ExpiresAt()}, err)
	})
	mux.HandleFunc("POST /v1/join", func(w http.ResponseWriter, r *http.Request) {
		var req api.JoinRequest
		if !readJSON(w, r, &req) {
			return
		}
		res, err := a.lnk().Join(r.Context(), req.Token, req.Primary)
		reply(w, res, err)
	})
	mux.HandleFunc("POST /v1/sync", func(w http.ResponseWriter, r *http.Request) {
		var req api.SyncRequest
		if !readJSON(w, r, &req) {
			return
		}
		res, err := a.cfgsync().SyncNow(r.Context(), req.Force)
		reply(w, res, err)
	})
	a.sched.Routes(mux) // /v1/verify...
	mux.HandleFunc("GET /v1/config/drift", func(w http.ResponseWriter, r *http.Request) {
		a.cfgsync().CheckDrift() // records what is new, for events and status
		items, err := a.cfgsync().Drift()
		if items == nil {
			items = []synchronizer.DriftItem{}
		}
		reply(w, items, err)
	})
	// config log/show/diff read this node's repository (cfgsync.History).
	(&cfgsync.History{Dir: a.statePath("config.git")}).Routes(mux, reply)
	mux.HandleFunc("POST /v1/config/rollback", func(w http.ResponseWriter, r *http.Request) {
		var req api.RollbackRequest
		if !readJSON(w, r, &req) {
			return
		}
		res, err := a.cfgsync().Rollback(req.Rev)
		reply(w, res, err)
	})
	mux.HandleFunc("GET /v1/parity", func(w http.ResponseWriter, r *http.Request) {
		res, err := a.parity.Report(r.Context())
		reply(w, res, err)
	})
	mux.HandleFunc("POST /v1/parity/apply", func(w http.ResponseWriter, r *http.Request) {
		var req parity.ApplyRequest
		if !readJSON(w, r, &req) {
			return
		}
		res, err := a.parity.Apply(r.Context(), req)
		reply(w, res, err)
	})
	mux.HandleFunc("POST /v1/reload", func(w http.ResponseWriter, r *http.Request) {
		a.reload()
		writeJSON(w, http.StatusOK, map[string]bool{"reloaded": true})
	})
	a.events.Routes(mux, a.store, reply) // /v1/events, /v1/events/stream
	a.reports.Routes(mux, reply)         // /v1/report, /v1/reports, /v1/report/run
	a.mods().Routes(mux, reply)          // /v1/modules, /v1/modules/use, /v1/modules/rollback
	return mux
}

// Requests of the local API.

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeJSON(w, http.StatusBadRequest, api.Error{Error: fmt.Sprintf("bad request: %v", err)})
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
		writeJSON(w, code, api.Error{Error: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
