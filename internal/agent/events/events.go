// Package events is the agent's event stream: every event the agent
// records passes through a Hub after it is stored, to the local API's
// subscribers (GET /v1/events/stream).
package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/sentryha/sentry/internal/agent/api"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/sentryha/sentry/internal/store"
)

// The event stream of the local API (GET /v1/events/stream): every event
// the agent records passes through an Hub after it is stored, and
// each subscriber gets it as a server-sent event:
//
//	id: <the event's store sequence>
//	event: <its kind>
//	data: <the event as JSON, as GET /v1/events gives it>
//
// A client that reconnects with Last-Event-ID (or ?since=SEQ) first gets
// from the store what it missed. A comment line keeps an idle stream open.
// A subscriber that does not keep up is dropped, not waited for: its
// stream ends with an "overflow" event (no id), and it reconnects with the
// last id it got to read the rest from the store.

const (
	// eventBuffer is how many events a subscriber may fall behind.
	eventBuffer = 256
	// eventKeepalive is how often an idle stream gets a comment line.
	eventKeepalive = 15 * time.Second
	// eventWriteTimeout bounds one write to a subscriber.
	eventWriteTimeout = 10 * time.Second
	// eventReplayPage is how many stored events one store read replays.
	eventReplayPage = 500
)

// errHubClosed: the agent is stopping.
var errHubClosed = errors.New("the agent is stopping")

// Hub passes each stored event to the subscribers.
type Hub struct {
	appendMu sync.Mutex // one append and publish at a time: subscribers get events in store order

	mu     sync.Mutex
	subs   map[*sub]struct{}
	closed bool
	// keepalive and buffer: eventKeepalive and eventBuffer (tests shorten them).
	keepalive time.Duration
	buffer    int
}

// sub is one subscriber.
type sub struct {
	ch      chan store.Event
	dropped chan struct{} // closed when it fell behind
	done    chan struct{} // closed when the hub closes
}

func NewHub() *Hub {
	return &Hub{subs: map[*sub]struct{}{}, keepalive: eventKeepalive, buffer: eventBuffer}
}

// record stores e with appendFn and, when stored, passes it on with its
// sequence number.
func (h *Hub) Record(e store.Event, appendFn func(store.Event) (uint64, error)) error {
	h.appendMu.Lock()
	defer h.appendMu.Unlock()
	seq, err := appendFn(e)
	if err != nil {
		return err
	}
	e.Seq = seq
	h.publish(e)
	return nil
}

// publish gives e to every subscriber that has room, and drops the others.
func (h *Hub) publish(e store.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		select {
		case s.ch <- e:
		default:
			delete(h.subs, s)
			close(s.dropped)
		}
	}
}

func (h *Hub) subscribe() (*sub, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, errHubClosed
	}
	s := &sub{ch: make(chan store.Event, h.buffer), dropped: make(chan struct{}), done: make(chan struct{})}
	h.subs[s] = struct{}{}
	return s, nil
}

func (h *Hub) unsubscribe(s *sub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs, s)
}

// close ends every stream (the agent stops) and refuses new ones.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	for s := range h.subs {
		delete(h.subs, s)
		close(s.done)
	}
}

// overflowBody is the data of the "overflow" event that ends the stream of
// a subscriber that fell behind.
type overflowBody struct {
	Error string `json:"error"`
	Last  uint64 `json:"last"` // the last event sent: reconnect with Last-Event-ID: Last
}

// streamEvents serves GET /v1/events/stream.
func (h *Hub) Stream(st *store.Store) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		since, replay, err := streamSince(r)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, api.Error{Error: err.Error()})
			return
		}
		// Subscribe before reading the store: nothing falls between.
		sub, err := h.subscribe()
		if err != nil {
			writeJSON(w, http.StatusServiceUnavailable, api.Error{Error: err.Error()})
			return
		}
		defer h.unsubscribe(sub)
		rc := http.NewResponseController(w)
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusOK)
		write := func(f func() error) bool {
			rc.SetWriteDeadline(time.Now().Add(eventWriteTimeout))
			if f() != nil {
				return false
			}
			return rc.Flush() == nil
		}
		if !write(func() error { _, err := fmt.Fprint(w, ": sentry events\n\n"); return err }) {
			return
		}
		last := since
		for replay {
			evs, err := st.Events(last, eventReplayPage)
			if err != nil {
				write(func() error { return writeSSE(w, "", "error", api.Error{Error: err.Error()}) })
				return
			}
			for _, e := range evs {
				if !write(func() error { return writeEvent(w, e) }) {
					return
				}
				last = e.Seq
			}
			replay = len(evs) == eventReplayPage
		}
		tick := time.NewTicker(h.keepalive)
		defer tick.Stop()
		for {
			select {
			case e := <-sub.ch:
				if e.Seq <= last {
					continue // sent from the store already
				}
				if !write(func() error { return writeEvent(w, e) }) {
					return
				}
				last = e.Seq
			case <-sub.dropped:
				// What is buffered is sent, then the overflow.
			drain:
				for {
					select {
					case e := <-sub.ch:
						if e.Seq > last {
							if !write(func() error { return writeEvent(w, e) }) {
								return
							}
							last = e.Seq
						}
					default:
						break drain
					}
				}
				write(func() error {
					return writeSSE(w, "", "overflow", overflowBody{Error: "this subscriber fell behind; reconnect with Last-Event-ID to read the rest", Last: last})
				})
				return
			case <-tick.C:
				if !write(func() error { _, err := fmt.Fprint(w, ": keepalive\n\n"); return err }) {
					return
				}
			case <-sub.done:
				return
			case <-r.Context().Done():
				return
			}
		}
	}
}

// streamSince reads where a stream starts: after the Last-Event-ID header
// or the since query parameter (replay is then true), or at the next event.
func streamSince(r *http.Request) (since uint64, replay bool, err error) {
	v := r.Header.Get("Last-Event-ID")
	if v == "" {
		v = r.URL.Query().Get("since")
	}
	if v == "" {
		return 0, false, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("bad event id %q: want a sequence number", v)
	}
	return n, true, nil
}

func writeEvent(w http.ResponseWriter, e store.Event) error {
	return writeSSE(w, strconv.FormatUint(e.Seq, 10), e.Kind, e)
}

// writeSSE writes one server-sent event. Kinds and ids hold no newline;
// JSON data holds none either.
func writeSSE(w http.ResponseWriter, id, kind string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if id != "" {
		if _, err := fmt.Fprintf(w, "id: %s\n", id); err != nil {
			return err
		}
	}
	_, err = fmt.Fprintf(w, "event: %s\ndata: %s\n\n", kind, b)
	return err
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// Routes serves GET /v1/events (?n=, the newest n, 50 by default) and the
// stream (GET /v1/events/stream) from st.
func (h *Hub) Routes(mux *http.ServeMux, st *store.Store, reply func(http.ResponseWriter, any, error)) {
	mux.HandleFunc("GET /v1/events/stream", h.Stream(st))
	mux.HandleFunc("GET /v1/events", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		if n <= 0 {
			n = 50
		}
		evs, err := st.LastEvents(n)
		if evs == nil {
			evs = []store.Event{}
		}
		reply(w, evs, err)
	})
}
