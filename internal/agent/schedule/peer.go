package schedule

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/sentryha/sentry/internal/peer"
	"github.com/sentryha/sentry/internal/store"
	"github.com/sentryha/sentry/verifier"
)

// FillStatus fills this node's probe fields of the status it tells the
// peer and `sentry status`: the summary, the red probes and the newest
// results, within what the peer takes (the first by name).
func (s *Schedule) FillStatus(st *peer.NodeStatus) {
	if s == nil {
		return
	}
	node := s.node()
	s.mu.Lock()
	st.Verify, st.VerifyRed = s.summaryLocked()
	st.Results = s.latestLocked(node)
	s.mu.Unlock()
	if len(st.Results) > peer.MaxProbes {
		st.Results = st.Results[:peer.MaxProbes]
	}
	if len(st.VerifyRed) > peer.MaxProbes {
		st.VerifyRed = st.VerifyRed[:peer.MaxProbes]
	}
}

// NotePeer takes the peer's status (checked: peer.NodeStatus.Validate and
// the generation): of its results it keeps those admitted (h.Results is
// cut to them) and stores those that are new. It notes the peer's
// protocol, for runs on request.
func (s *Schedule) NotePeer(h *peer.NodeStatus) {
	if s == nil {
		return
	}
	h.Results = s.admit(h.Name, h.Results)
	s.mu.Lock()
	s.peerProto = h.Protocol
	var fresh []store.StoredResult
	for _, r := range h.Results {
		if r.Node != h.Name || r.Probe == "" {
			continue
		}
		if seen, ok := s.peerSeen[r.Probe]; ok && !r.Start.After(seen) {
			continue
		}
		if s.peerSeen == nil {
			s.peerSeen = map[string]time.Time{}
		}
		s.peerSeen[r.Probe] = r.Start
		r.Values = boundValues(r.Values)
		fresh = append(fresh, r)
	}
	if len(fresh) > 0 && len(s.peerHeld) == 0 {
		s.peerHeldSince = time.Now()
	}
	s.peerHeld = append(s.peerHeld, fresh...)
	due := len(s.peerHeld) > 0 && (time.Since(s.peerHeldSince) >= PeerResultsHold || len(s.peerHeld) >= 4*peer.MaxProbes)
	s.mu.Unlock()
	if due {
		s.FlushPeerResults()
	}
}

// PeerResultsHold bounds how long the peer's results wait in memory for
// this node's round, whose store write takes them along.
const PeerResultsHold = time.Minute

// takePeerHeld takes the peer's results waiting for a store write.
func (s *Schedule) takePeerHeld() []store.StoredResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	held := s.peerHeld
	s.peerHeld = nil
	return held
}

// FlushPeerResults writes the peer's results that wait for this node's
// round: before the stored results are read, and when the schedule stops.
func (s *Schedule) FlushPeerResults() {
	if s == nil || s.d.Store == nil {
		return
	}
	held := s.takePeerHeld()
	if len(held) == 0 {
		return
	}
	if err := s.d.Store.PutResults(held...); err != nil {
		s.d.Log.Error("store peer results", "err", err)
	}
}

// admit is, of results the peer sent about node, those this node keeps: a
// probe already stored, one of this node's own probe names (the two nodes
// run the same modules), or a new name while fewer than peer.MaxProbes are
// stored for node. The rest are dropped (logged at most hourly).
func (s *Schedule) admit(node string, results []store.StoredResult) []store.StoredResult {
	if len(results) == 0 || s.d.Store == nil {
		return results
	}
	s.mu.Lock()
	known := map[string]bool{}
	for name := range s.peerSeen {
		known[name] = true
	}
	own := map[string]bool{}
	for name := range s.last {
		own[name] = true
	}
	s.mu.Unlock()
	listed := false
	out := results[:0:0]
	dropped := 0
	for _, r := range results {
		if !known[r.Probe] && !listed {
			names, err := s.d.Store.Probes(node)
			if err != nil {
				s.d.Log.Error("peer results", "err", err)
				return nil
			}
			for _, n := range names {
				known[n] = true
			}
			listed = true
		}
		switch {
		case known[r.Probe] || own[r.Probe]:
		case len(known) < peer.MaxProbes:
			known[r.Probe] = true
		default:
			dropped++
			continue
		}
		out = append(out, r)
	}
	if dropped > 0 {
		s.mu.Lock()
		say := time.Since(s.dropSaid) > time.Hour
		if say {
			s.dropSaid = time.Now()
		}
		s.mu.Unlock()
		if say {
			s.d.Log.Warn("peer results dropped: the peer has more probes than this node keeps", "node", node, "dropped", dropped, "limit", peer.MaxProbes)
		}
	}
	return out
}

// VerifyNode runs node's probes now: this node's here, the peer's by asking
// its agent over the peer link (which stores them too).
func (s *Schedule) VerifyNode(ctx context.Context, node, service string) ([]store.StoredResult, error) {
	self := s.node()
	if node == "" || node == self {
		return s.VerifyNow(ctx, service)
	}
	if peerName := s.d.PeerName(); node != peerName {
		return nil, fmt.Errorf("no node %q in this cluster (this node is %s, its peer %q)", node, self, peerName)
	}
	s.mu.Lock()
	peerProto := s.peerProto
	s.mu.Unlock()
	if need := peer.VersionOf(peer.TypeVerifyRequest); peerProto > 0 && peerProto < need {
		return nil, fmt.Errorf("%s's agent speaks peer protocol %d; a run on request needs %d: update sentry there (its scheduled results: sentry verify --node %s --last)", node, peerProto, need, node)
	}
	ctx, cancel := context.WithTimeout(ctx, s.d.Conf().Verifier.Timeout.Duration+10*time.Second)
	defer cancel()
	vr, err := s.d.Peer.VerifyRun(ctx, peer.VerifyRequest{Service: service})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", node, err)
	}
	if vr.Error != "" {
		return nil, fmt.Errorf("%s: %s", node, vr.Error)
	}
	vr.Results = s.admit(node, vr.Results) // the peer's probe names are capped
	for i := range vr.Results {
		vr.Results[i].Values = boundValues(vr.Results[i].Values)
	}
	if err := s.d.Store.PutResults(vr.Results...); err != nil {
		s.d.Log.Error("store peer results", "err", err)
	}
	return vr.Results, nil
}

// HandleVerifyRun is the peer's side of VerifyNode (POST /v1/verify/run
// on the peer API, behind the link's authentication and limits).
func (s *Schedule) HandleVerifyRun(w http.ResponseWriter, r *http.Request) {
	env, err := peer.Read(http.MaxBytesReader(w, r.Body, peer.MaxMessageSize))
	if err != nil {
		s.refusePeer(w, r, http.StatusBadRequest, err)
		return
	}
	req, err := env.VerifyRequest()
	if err != nil {
		s.refusePeer(w, r, http.StatusBadRequest, err)
		return
	}
	timeout := s.d.Conf().Verifier.Timeout.Duration
	// A run lasts up to one probe deadline: longer than the peer API's
	// usual write timeout.
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(timeout + 10*time.Second))
	ctx, cancel := context.WithTimeout(r.Context(), timeout+5*time.Second)
	defer cancel()
	res, err := s.VerifyNow(ctx, req.Service)
	out := peer.VerifyResults{Results: res}
	if err != nil {
		out.Error = err.Error()
	}
	if len(out.Results) > peer.MaxProbes { // what the peer takes
		out.Results = out.Results[:peer.MaxProbes]
	}
	if out.Results == nil {
		out.Results = []store.StoredResult{}
	}
	writeEnvelope(w, http.StatusOK, peer.TypeVerifyResults, s.node(), out)
}

func (s *Schedule) refusePeer(w http.ResponseWriter, r *http.Request, code int, err error) {
	s.d.Log.Warn("refused peer request", "peer", r.RemoteAddr, "path", r.URL.Path, "reason", err.Error())
	writeEnvelope(w, code, peer.TypeError, s.node(), peer.ErrorBody{Message: err.Error()})
}

func writeEnvelope(w http.ResponseWriter, code int, typ, from string, body any) {
	b, err := peer.Encode(typ, from, body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(b)
}

// latestLocked is this node's newest results, for hello.
func (s *Schedule) latestLocked(node string) []store.StoredResult {
	var out []store.StoredResult
	for _, r := range s.last {
		out = append(out, storedResult(node, r))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Probe < out[j].Probe })
	return out
}

// summaryLocked says, for hello and status, how this node's probes stand:
// "15/15 green" or the red ones with their messages.
func (s *Schedule) summaryLocked() (summary string, red []string) {
	if len(s.last) == 0 {
		return "", nil
	}
	names := make([]string, 0, len(s.last))
	for n := range s.last {
		names = append(names, n)
	}
	sort.Strings(names)
	green := 0
	for _, n := range names {
		if s.red[n] {
			red = append(red, n+": "+s.last[n].Message)
		} else {
			green++
		}
	}
	return fmt.Sprintf("%d/%d green, round %d ms at %s", green, len(names), s.roundMS, s.round.UTC().Format(time.RFC3339)), red
}

// Results are the newest scheduled results of this node's probes.
func (s *Schedule) Results() []verifier.Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []verifier.Result
	for _, r := range s.last {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
