package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/sentryha/sentry/internal/peer"
	"github.com/sentryha/sentry/internal/pki"
	"github.com/sentryha/sentry/internal/stamp"
	"github.com/sentryha/sentry/internal/store"
)

func (a *Agent) peerHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/join", a.handleJoin)
	mux.HandleFunc("POST /v1/hello", a.requirePeer(a.handleHello))
	mux.HandleFunc("POST /v1/verify/run", a.requirePeer(a.limitVerifyRuns(a.handleVerifyRun)))
	mux.HandleFunc("POST /v1/config/fetch", a.requirePeer(a.streamEndpoint("fetch request", configFetchForm, a.handleFetch)))
	mux.HandleFunc("POST /v1/inventory/fetch", a.requirePeer(a.handleInventoryFetch))
	mux.HandleFunc("POST /v1/parity/deb", a.requirePeer(a.streamEndpoint("deb request", debForm, a.limitDebs(a.handleDeb))))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if _, err := pki.VerifyClient(r.TLS, ""); err != nil {
			a.refuseUnauthenticated(w, r, http.StatusUnauthorized, err)
			return
		}
		writeEnvelope(w, http.StatusNotFound, peer.TypeError, a.nodeName(), peer.ErrorBody{Message: "no such peer endpoint " + r.URL.Path})
	})
	return mux
}

// streamForm reads a stream endpoint's request in either form (legacy:
// protocol 2's bare JSON) and says how a protocol-3 answer starts.
type streamForm struct {
	read   func(c peer.Codec, b []byte) (req any, legacy bool, err error)
	answer func(c peer.Codec, w http.ResponseWriter, from string) *peer.LeadWriter
}

var (
	configFetchForm = streamForm{
		read: func(c peer.Codec, b []byte) (any, bool, error) { return c.ReadConfigFetch(b) },
		answer: func(c peer.Codec, w http.ResponseWriter, from string) *peer.LeadWriter {
			return c.AnswerConfigPack(w, from)
		}}
	debForm = streamForm{
		read:   func(c peer.Codec, b []byte) (any, bool, error) { return c.ReadDebRequest(b) },
		answer: func(c peer.Codec, w http.ResponseWriter, from string) *peer.LeadWriter { return c.AnswerDeb(w, from) }}
)

// streamEndpoint serves an endpoint that answers with a stream in both
// protocols: a protocol-2 request goes to h as it came, and h's answer
// (its facts in headers) goes back so; a protocol-3 request (a message) is
// checked and handed to h as the bare JSON it carries, and h's answer
// starts with a message (peer.LeadWriter). h knows one form only.
func (a *Agent) streamEndpoint(what string, form streamForm, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, peer.MaxMessageSize))
		if err != nil {
			a.refusePeer(w, r, http.StatusBadRequest, fmt.Errorf("%s: %w", what, err))
			return
		}
		req, legacy, err := form.read(a.paths.codec, b)
		if legacy || err != nil {
			// Protocol 2's form, or a message h need not see: h says
			// what is wrong with a bad legacy request, as it always did.
			if err != nil && !legacy {
				a.refusePeer(w, r, http.StatusBadRequest, fmt.Errorf("%s: %w", what, err))
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(b))
			h(w, r)
			return
		}
		bare, err := json.Marshal(req)
		if err != nil {
			a.refusePeer(w, r, http.StatusBadRequest, fmt.Errorf("%s: %w", what, err))
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(bare))
		h(form.answer(a.paths.codec, w, a.nodeName()), r)
	}
}

func (a *Agent) refusePeer(w http.ResponseWriter, r *http.Request, code int, err error) {
	a.log.Warn("refused peer request", "peer", r.RemoteAddr, "path", r.URL.Path, "reason", err.Error())
	writeEnvelope(w, code, peer.TypeError, a.nodeName(), peer.ErrorBody{Message: err.Error()})
}

// refuseUnauthenticated refuses a request without the peer's certificate.
// It is logged while its source address is within the unauthenticated
// requests' limit, and only counted past it (the counts are logged once a
// period): a flood costs no log line each.
func (a *Agent) refuseUnauthenticated(w http.ResponseWriter, r *http.Request, code int, err error) {
	if ok, _, _ := a.limits().join.anon.allow(r.RemoteAddr, time.Now()); ok {
		a.log.Warn("refused peer request", "peer", r.RemoteAddr, "path", r.URL.Path, "reason", err.Error())
	} else {
		a.noteUnauthenticated(r.RemoteAddr, "no peer certificate", false)
	}
	writeEnvelope(w, code, peer.TypeError, a.nodeName(), peer.ErrorBody{Message: err.Error()})
}

// refuseLimit answers 429 for a limit, with when to try again. It is not
// logged each time (debug only): the peer asking too often is no news.
func (a *Agent) refuseLimit(w http.ResponseWriter, r *http.Request, err error) {
	var le *limitError
	if errors.As(err, &le) && le.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(roundUp(le.retryAfter)))
	}
	a.log.Debug("refused peer request: limit", "peer", r.RemoteAddr, "path", r.URL.Path, "reason", err.Error())
	writeEnvelope(w, http.StatusTooManyRequests, peer.TypeError, a.nodeName(), peer.ErrorBody{Message: err.Error()})
}

// limitVerifyRuns lets through the peer's verification runs one at a
// time and verifyRunsPerMinute.
func (a *Agent) limitVerifyRuns(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		release, err := a.limits().verify.begin(time.Now())
		if err != nil {
			a.refuseLimit(w, r, err)
			return
		}
		defer release()
		h(w, r)
	}
}

// limitDebs serves the peer's .deb requests one at a time, and of those
// this node must fetch with apt-get download (a primary, the file in no
// apt cache or local repository), debFetchesPerHour.
func (a *Agent) limitDebs(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		lim := &a.limits().deb
		if !lim.serve.TryLock() {
			a.refuseLimit(w, r, &limitError{msg: "the peer's package requests are served one at a time, and one is being served: try again when it is done", retryAfter: 5 * time.Second})
			return
		}
		defer lim.serve.Unlock()
		body, err := io.ReadAll(io.LimitReader(r.Body, 4096))
		if err != nil {
			a.refusePeer(w, r, http.StatusBadRequest, fmt.Errorf("deb request: %w", err))
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		var d DebRequest
		if json.Unmarshal(body, &d) == nil && debField.MatchString(d.Name) && debField.MatchString(d.Arch) && debField.MatchString(d.Version) && a.isPrimary() {
			if _, err := a.locateDeb(d); err != nil {
				// handleDeb will run apt-get download for it.
				release, err := lim.fetch.begin(time.Now())
				if err != nil {
					a.refuseLimit(w, r, err)
					return
				}
				defer release()
			}
		}
		h(w, r)
	}
}

// requirePeer lets through only the cluster's other node, by its
// certificate (verified against the cluster CA during the handshake).
func (a *Agent) requirePeer(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		want := a.cluster.PeerName
		a.mu.Unlock()
		name, err := pki.VerifyClient(r.TLS, "")
		if err != nil {
			a.refuseUnauthenticated(w, r, http.StatusUnauthorized, err)
			return
		}
		if name != want {
			a.refuseUnauthenticated(w, r, http.StatusForbidden, fmt.Errorf("node %q is not this node's peer (%q)", name, want))
			return
		}
		h(w, r)
	}
}

func (a *Agent) handleHello(w http.ResponseWriter, r *http.Request) {
	env, err := a.paths.codec.Read(http.MaxBytesReader(w, r.Body, peer.MaxMessageSize))
	if err != nil {
		a.refusePeer(w, r, http.StatusBadRequest, err)
		return
	}
	h, err := env.Hello()
	if err != nil {
		a.refusePeer(w, r, http.StatusBadRequest, err)
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if h.ClusterID != a.stamp.ClusterID {
		a.refusePeer(w, r, http.StatusForbidden, fmt.Errorf("hello for cluster %s, this is %s", h.ClusterID, a.stamp.ClusterID))
		return
	}
	// Said once per value (checkPeerGenerationLocked), not per hello.
	if err := a.checkPeerGenerationLocked(h); err != nil {
		writeEnvelope(w, http.StatusConflict, peer.TypeError, a.nodeName(), peer.ErrorBody{Message: err.Error()})
		return
	}
	a.recordContactLocked(h, r.RemoteAddr)
	writeEnvelope(w, http.StatusOK, peer.TypeHello, a.nodeName(), a.selfStatusLocked())
}

// recordContactLocked notes a successful exchange with the peer, whose
// status was checked (peer.NodeStatus.Validate, checkPeerGenerationLocked).
// Of its results, only those admitted are kept (admitPeerResultsLocked).
func (a *Agent) recordContactLocked(h *peer.NodeStatus, addr string) {
	now := time.Now().UTC()
	h.Results = a.admitPeerResultsLocked(h.Name, h.Results)
	if !a.link.Reachable {
		a.event("peer-reachable", h.Name, "peer "+h.Name+" answers", map[string]string{"peer": addr})
		a.log.Info("peer reachable", "node", h.Name, "peer", addr)
	}
	prev := a.link.Peer
	a.link = linkState{Reachable: true, LastContact: now, Peer: h}
	a.notePeerSyncLocked(h)
	a.notePeerResultsLocked(h)
	if prev == nil || prev.Hardware != h.Hardware || prev.HomeHardware != h.HomeHardware || len(prev.HardwareNICs) != len(h.HardwareNICs) {
		a.updateMachinesLocked()
	}
	if a.stamp != nil && h.Generation > a.stamp.OtherGeneration && h.Boot != "bootcheck" {
		st := *a.stamp
		st.OtherGeneration = h.Generation
		if err := stamp.WriteStamp(a.statePath(stamp.StampFile), &st); err != nil {
			a.log.Error("stamp: other generation", "err", err)
		} else {
			a.stamp = &st
		}
	}
	raw, _ := json.Marshal(h)
	if err := a.store.PutPeer(store.PeerRecord{Name: h.Name, LastContact: now, Address: addr, Status: raw}); err != nil {
		a.log.Error("store peer", "err", err)
	}
}

// selfStatusLocked is what this agent tells about its node.
func (a *Agent) selfStatusLocked() peer.NodeStatus {
	s := peer.NodeStatus{Name: a.nodeName(), Hardware: a.hw.ID, AgentVersion: a.version,
		Protocol: a.paths.codec.Version(), Address: a.conf().Agent.Listen, Time: time.Now().UTC()}
	if a.stamp != nil {
		s.Role, s.ClusterID, s.DiskSet, s.Generation = a.stamp.Role, a.stamp.ClusterID, a.stamp.DiskSet, a.stamp.Generation
	}
	a.syncFieldsLocked(&s)
	a.bootFieldsLocked(&s)
	s.Verify, s.VerifyRed = a.verifySummaryLocked()
	s.Results = a.latestResultsLocked()
	// What the peer takes (peer.NodeStatus.Validate): the first by name.
	if len(s.Results) > peer.MaxProbes {
		s.Results = s.Results[:peer.MaxProbes]
	}
	if len(s.VerifyRed) > peer.MaxProbes {
		s.VerifyRed = s.VerifyRed[:peer.MaxProbes]
	}
	if n := len(s.BoundaryPending); n > peer.MaxBoundaryPending {
		s.BoundaryPending = append(s.BoundaryPending[:peer.MaxBoundaryPending-1:peer.MaxBoundaryPending-1], fmt.Sprintf("... and %d more", n-peer.MaxBoundaryPending+1))
	}
	return s
}

// runPeerLoop says hello to the peer every peer.interval (with jitter).
func (a *Agent) runPeerLoop(ctx context.Context) {
	for {
		a.helloOnce(ctx)
		a.mu.Lock()
		iv := a.conf().Peer.Interval.Duration
		a.mu.Unlock()
		jitter := time.Duration(rand.Int64N(int64(iv/10) + 1))
		select {
		case <-ctx.Done():
			return
		case <-time.After(iv + jitter):
		}
	}
}

func (a *Agent) helloOnce(ctx context.Context) {
	a.mu.Lock()
	if a.cluster == nil || a.cluster.PeerAddress == "" {
		a.mu.Unlock()
		return
	}
	addr, name := a.cluster.PeerAddress, a.cluster.PeerName
	self := a.selfStatusLocked()
	timeout := a.conf().Peer.Timeout.Duration
	a.mu.Unlock()
	hctx, cancel := context.WithTimeout(ctx, timeout)
	h, err := a.peerClient().Hello(hctx, self)
	cancel()
	if errors.Is(err, peer.ErrEncode) {
		a.log.Error("hello", "err", err)
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		if a.link.Reachable || a.link.LastError == "" {
			a.event("peer-unreachable", name, fmt.Sprintf("peer %s at %s does not answer: %v", name, addr, err), map[string]string{"peer": addr})
			a.log.Warn("peer unreachable", "node", name, "peer", addr, "err", err)
		}
		a.link.Reachable, a.link.LastError = false, err.Error()
		return
	}
	if h.Name != name {
		a.link.Reachable, a.link.LastError = false, fmt.Sprintf("peer answered as %q", h.Name)
		return
	}
	if err := a.checkPeerGenerationLocked(h); err != nil {
		a.link.Reachable, a.link.LastError = false, err.Error()
		return
	}
	a.recordContactLocked(h, addr)
}
