package modset

import (
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"

	"github.com/sentryha/sentry/internal/agent/api"
	"github.com/sentryha/sentry/modules"
)

// The local API's bodies.
type (
	// List is the answer of GET /v1/modules: every module as `sentry
	// modules list --json` shows it, and on the secondary what the
	// primary's modules ask beyond its approved boundary (held back until
	// `sentry modules approve` there).
	List struct {
		Node      string   `json:"node"`
		Secondary bool     `json:"secondary"`
		Modules   []Module `json:"modules"`
		// Warnings are the module files' warnings (`sentry modules list`
		// prints them on stderr).
		Warnings []string `json:"warnings,omitempty"`
		// Pending is what waits for approval on this secondary, roots
		// then executables (as `sentry status` shows it).
		Pending []string `json:"pending,omitempty"`
	}
	// Module is one module: its row of `sentry modules list --json`, and
	// what of Pending the selected version asks for.
	Module struct {
		modules.Status
		HeldBack []string `json:"held_back,omitempty"`
	}
	// UseRequest is the body of POST /v1/modules/use: select version of
	// the module name (`sentry modules use NAME@VERSION`).
	UseRequest struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	}
	// RollbackRequest is the body of POST /v1/modules/rollback: select the
	// version of name used before, and pin it (`sentry modules rollback
	// NAME`).
	RollbackRequest struct {
		Name string `json:"name"`
	}
	// Changed is the answer of both: the module's state now, as `sentry
	// modules use --json` prints it, and the module files' warnings.
	Changed struct {
		Status   modules.Status `json:"status"`
		Warnings []string       `json:"warnings,omitempty"`
	}
)

// ListModules is every module as `sentry modules list` shows it, with
// what waits for approval on the secondary. On the secondary the files
// are read as the agent reads them (as a follower: a probe of a kind this
// binary does not have is a warning, not a refusal).
func (s *Set) ListModules() (*List, error) {
	opts := s.d.Modules
	opts.Follower = s.d.Secondary()
	list, warns, err := modules.List(opts)
	if err != nil {
		return nil, err
	}
	out := &List{Node: s.node(), Secondary: opts.Follower, Modules: make([]Module, 0, len(list)), Warnings: warnStrings(warns)}
	if opts.Follower {
		out.Pending = s.Pending()
	}
	var set *modules.Set
	if len(out.Pending) > 0 {
		set = s.Modules()
	}
	for _, st := range list {
		m := Module{Status: st}
		if set != nil {
			if man := set.Module(st.Name); man != nil {
				m.HeldBack = heldBack(man, out.Pending)
			}
		}
		out.Modules = append(out.Modules, m)
	}
	return out, nil
}

// heldBack is what of pending the manifest asks for: a tracked root or an
// executable.
func heldBack(m *modules.Manifest, pending []string) []string {
	var out []string
	for _, p := range pending {
		for _, want := range append(slices.Clone(m.Tracked), m.Executables...) {
			if filepath.Clean(want) == p {
				out = append(out, p)
				break
			}
		}
	}
	return out
}

func warnStrings(ws []modules.Warning) []string {
	var out []string
	for _, w := range ws {
		out = append(out, w.String())
	}
	return out
}

// Use selects version of module name, as `sentry modules use` does (the
// same options: the node's module folders), then reads the module files
// again. The sync carries the selection to the secondary.
func (s *Set) Use(name, version string) (*Changed, error) {
	if name == "" || version == "" {
		return nil, errors.New("bad request: use needs a module name and a version")
	}
	return s.change("use", name, func(o modules.Options) (modules.Status, []modules.Warning, error) {
		return modules.Use(o, name, version)
	})
}

// Rollback selects the version of module name used before, and pins it,
// as `sentry modules rollback` does, then reads the module files again.
func (s *Set) Rollback(name string) (*Changed, error) {
	if name == "" {
		return nil, errors.New("bad request: rollback needs a module name")
	}
	return s.change("rollback", name, func(o modules.Options) (modules.Status, []modules.Warning, error) {
		return modules.Rollback(o, name)
	})
}

// change runs one change of the selection at a time, and then forgets the
// cached set as a reload (SIGHUP) does: the next use reads the files
// (their fingerprint would tell too, but not a change within the same
// clock tick and size). It records an event.
func (s *Set) change(verb, name string, f func(modules.Options) (modules.Status, []modules.Warning, error)) (*Changed, error) {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	before := ""
	if set := s.Modules(); set != nil {
		if m := set.Module(name); m != nil {
			before = m.Version
		}
	}
	// The options `sentry modules use` builds: the node's folders, not
	// as a follower.
	opts := s.d.Modules
	opts.Follower = false
	st, warns, err := f(opts)
	if err != nil {
		return nil, err
	}
	s.Reload()
	msg := fmt.Sprintf("module %s: %s selected", name, st.Selected)
	if verb == "rollback" {
		msg += " and pinned (rolled back)"
	}
	if before != "" && before != st.Selected {
		msg += ", was " + before
	}
	s.event("modules-"+verb, msg+" (through the local API)", map[string]string{"module": name, "version": st.Selected, "before": before})
	return &Changed{Status: st, Warnings: warnStrings(warns)}, nil
}

// Routes serves the local API's module requests: GET /v1/modules, POST
// /v1/modules/use and POST /v1/modules/rollback. (POST /v1/modules/approve
// is the wiring's, to Approve.)
func (s *Set) Routes(mux *http.ServeMux, reply func(http.ResponseWriter, any, error)) {
	mux.HandleFunc("GET /v1/modules", func(w http.ResponseWriter, q *http.Request) {
		l, err := s.ListModules()
		reply(w, l, err)
	})
	mux.HandleFunc("POST /v1/modules/use", func(w http.ResponseWriter, q *http.Request) {
		var req UseRequest
		if err := api.Decode(w, q, &req); err != nil {
			reply(w, nil, err)
			return
		}
		res, err := s.Use(req.Name, req.Version)
		reply(w, res, err)
	})
	mux.HandleFunc("POST /v1/modules/rollback", func(w http.ResponseWriter, q *http.Request) {
		var req RollbackRequest
		if err := api.Decode(w, q, &req); err != nil {
			reply(w, nil, err)
			return
		}
		res, err := s.Rollback(req.Name)
		reply(w, res, err)
	})
}
