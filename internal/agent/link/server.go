package link

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/sentryha/sentry/internal/peer"
	"github.com/sentryha/sentry/internal/pki"
	"github.com/sentryha/sentry/internal/store"
)

// Handler is the peer API: joins, hellos, and the components' endpoints
// (Deps.Handlers) behind the peer's certificate and the limits.
func (l *Link) Handler() http.Handler {
	hs := l.d.Handlers
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/join", l.handleJoin)
	mux.HandleFunc("POST /v1/hello", l.requirePeer(l.handleHello))
	mux.HandleFunc("POST /v1/verify/run", l.requirePeer(l.limitVerifyRuns(hs.VerifyRun)))
	mux.HandleFunc("POST /v1/config/fetch", l.requirePeer(l.streamEndpoint("fetch request", configFetchForm, hs.ConfigFetch)))
	mux.HandleFunc("POST /v1/inventory/fetch", l.requirePeer(hs.InventoryFetch))
	mux.HandleFunc("POST /v1/parity/deb", l.requirePeer(l.streamEndpoint("deb request", debForm, l.limitDebs(hs.Deb))))
	if hs.ReportsFetch != nil { // the component bounds it (reports.HandlePeer)
		mux.HandleFunc("POST /v1/reports/fetch", l.requirePeer(hs.ReportsFetch))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if _, err := pki.VerifyClient(r.TLS, ""); err != nil {
			l.refuseUnauthenticated(w, r, http.StatusUnauthorized, err)
			return
		}
		WriteEnvelope(w, http.StatusNotFound, peer.TypeError, l.nodeName(), peer.ErrorBody{Message: "no such peer endpoint " + r.URL.Path})
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
func (l *Link) streamEndpoint(what string, form streamForm, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, peer.MaxMessageSize))
		if err != nil {
			l.RefusePeer(w, r, http.StatusBadRequest, fmt.Errorf("%s: %w", what, err))
			return
		}
		req, legacy, err := form.read(l.codec, b)
		if legacy || err != nil {
			// Protocol 2's form, or a message h need not see: h says
			// what is wrong with a bad legacy request, as it always did.
			if err != nil && !legacy {
				l.RefusePeer(w, r, http.StatusBadRequest, fmt.Errorf("%s: %w", what, err))
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(b))
			h(w, r)
			return
		}
		bare, err := json.Marshal(req)
		if err != nil {
			l.RefusePeer(w, r, http.StatusBadRequest, fmt.Errorf("%s: %w", what, err))
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(bare))
		h(form.answer(l.codec, w, l.nodeName()), r)
	}
}

func (l *Link) RefusePeer(w http.ResponseWriter, r *http.Request, code int, err error) {
	l.d.Log.Warn("refused peer request", "peer", r.RemoteAddr, "path", r.URL.Path, "reason", err.Error())
	WriteEnvelope(w, code, peer.TypeError, l.nodeName(), peer.ErrorBody{Message: err.Error()})
}

// refuseUnauthenticated refuses a request without the peer's certificate.
// It is logged while its source address is within the unauthenticated
// requests' limit, and only counted past it (the counts are logged once a
// period): a flood costs no log line each.
func (l *Link) refuseUnauthenticated(w http.ResponseWriter, r *http.Request, code int, err error) {
	if ok, _, _ := l.lim.join.anon.allow(r.RemoteAddr, time.Now()); ok {
		l.d.Log.Warn("refused peer request", "peer", r.RemoteAddr, "path", r.URL.Path, "reason", err.Error())
	} else {
		l.lim.noteUnauthenticated(r.RemoteAddr, "no peer certificate", false)
	}
	WriteEnvelope(w, code, peer.TypeError, l.nodeName(), peer.ErrorBody{Message: err.Error()})
}

// refuseLimit answers 429 for a limit, with when to try again. It is not
// logged each time (debug only): the peer asking too often is no news.
func (l *Link) refuseLimit(w http.ResponseWriter, r *http.Request, err error) {
	var le *limitError
	if errors.As(err, &le) && le.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(roundUp(le.retryAfter)))
	}
	l.d.Log.Debug("refused peer request: limit", "peer", r.RemoteAddr, "path", r.URL.Path, "reason", err.Error())
	WriteEnvelope(w, http.StatusTooManyRequests, peer.TypeError, l.nodeName(), peer.ErrorBody{Message: err.Error()})
}

// limitVerifyRuns lets through the peer's verification runs one at a
// time and verifyRunsPerMinute.
func (l *Link) limitVerifyRuns(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		release, err := l.lim.verify.begin(time.Now())
		if err != nil {
			l.refuseLimit(w, r, err)
			return
		}
		defer release()
		h(w, r)
	}
}

// limitDebs serves the peer's .deb requests one at a time, and of those
// this node must fetch with apt-get download (a primary, the file in no
// apt cache or local repository), debFetchesPerHour.
func (l *Link) limitDebs(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		lim := &l.lim.deb
		if !lim.serve.TryLock() {
			l.refuseLimit(w, r, &limitError{msg: "the peer's package requests are served one at a time, and one is being served: try again when it is done", retryAfter: 5 * time.Second})
			return
		}
		defer lim.serve.Unlock()
		body, err := io.ReadAll(io.LimitReader(r.Body, 4096))
		if err != nil {
			l.RefusePeer(w, r, http.StatusBadRequest, fmt.Errorf("deb request: %w", err))
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		var d peer.DebRequest
		if json.Unmarshal(body, &d) == nil && peer.ValidDebField(d.Name) && peer.ValidDebField(d.Arch) && peer.ValidDebField(d.Version) && l.d.Handlers.DebNeedsFetch != nil {
			if l.d.Handlers.DebNeedsFetch(d) {
				// handleDeb will run apt-get download for it.
				release, err := lim.fetch.begin(time.Now())
				if err != nil {
					l.refuseLimit(w, r, err)
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
func (l *Link) requirePeer(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var want string
		if cl := l.d.Identity().Cluster; cl != nil {
			want = cl.PeerName
		}
		name, err := pki.VerifyClient(r.TLS, "")
		if err != nil {
			l.refuseUnauthenticated(w, r, http.StatusUnauthorized, err)
			return
		}
		if name != want {
			l.refuseUnauthenticated(w, r, http.StatusForbidden, fmt.Errorf("node %q is not this node's peer (%q)", name, want))
			return
		}
		h(w, r)
	}
}

func (l *Link) handleHello(w http.ResponseWriter, r *http.Request) {
	env, err := l.codec.Read(http.MaxBytesReader(w, r.Body, peer.MaxMessageSize))
	if err != nil {
		l.RefusePeer(w, r, http.StatusBadRequest, err)
		return
	}
	h, err := env.Hello()
	if err != nil {
		l.RefusePeer(w, r, http.StatusBadRequest, err)
		return
	}
	var cluster string
	if st := l.d.Identity().Stamp; st != nil {
		cluster = st.ClusterID
	}
	if h.ClusterID != cluster {
		l.RefusePeer(w, r, http.StatusForbidden, fmt.Errorf("hello for cluster %s, this is %s", h.ClusterID, cluster))
		return
	}
	// Said once per value (CheckPeerGeneration), not per hello.
	if err := l.CheckPeerGeneration(h); err != nil {
		WriteEnvelope(w, http.StatusConflict, peer.TypeError, l.nodeName(), peer.ErrorBody{Message: err.Error()})
		return
	}
	l.recordContact(h, r.RemoteAddr, -1)
	WriteEnvelope(w, http.StatusOK, peer.TypeHello, l.nodeName(), l.d.SelfStatus())
}

// WriteEnvelope answers with one message.
func WriteEnvelope(w http.ResponseWriter, code int, typ, from string, body any) {
	peer.Write(w, code, typ, from, body)
}

// putPeer records the peer's status and when it was last heard: with the
// store's next write, at most a minute late (store.PutPeerSoon), since the
// peer says it again every few seconds.
func putPeer(st *store.Store, h *peer.NodeStatus, addr string, now time.Time) error {
	if st == nil {
		return nil
	}
	raw, _ := json.Marshal(h)
	return st.PutPeerSoon(store.PeerRecord{Name: h.Name, LastContact: now, Address: addr, Status: raw})
}
