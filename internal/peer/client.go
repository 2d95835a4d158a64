package peer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sentryha/sentry/internal/pki"
)

// ErrEncode wraps an error of a message this node could not encode (too
// large, or of a type its protocol does not have): nothing was sent.
var ErrEncode = errors.New("message not sent")

// Target is the peer a Client calls: its address and node name, and this
// node's certificates to call it with.
type Target struct {
	Addr, Name string
	Node       *pki.Node
}

// Client is this agent's one client of its peer: a mutual-TLS transport
// made once per Target and reused by every call (hello, configuration
// fetch, inventory, package files, verification runs), its idle
// connections closed when the target changes and on Close.
type Client struct {
	target func() (Target, error)
	from   func() string
	codec  Codec

	mu  sync.Mutex
	cur Target
	tr  *http.Transport
}

// idleTimeout is shorter than the peer server's idle time (its read
// timeout, 15 s), so a connection is not reused just as the server
// closes it, and longer than the default hello interval with its jitter
// (10-11 s), so that the hellos reuse one connection rather than make a
// TLS handshake on both nodes each (at 10 s, the connection always
// expired just before the next hello).
const idleTimeout = 13 * time.Second

// NewClient makes a client that calls the peer target says (its error,
// when there is no peer, is what every call returns), as node from,
// speaking codec's protocol.
func NewClient(target func() (Target, error), from func() string, codec Codec) *Client {
	return &Client{target: target, from: from, codec: codec}
}

// Codec is the protocol the client speaks.
func (c *Client) Codec() Codec { return c.codec }

func (c *Client) transport() (Target, *http.Transport, error) {
	t, err := c.target()
	if err != nil {
		return t, nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tr == nil || t != c.cur {
		if c.tr != nil {
			c.tr.CloseIdleConnections()
		}
		c.tr = &http.Transport{TLSClientConfig: t.Node.ClientTLS(t.Name), IdleConnTimeout: idleTimeout,
			MaxIdleConnsPerHost: 4, TLSHandshakeTimeout: 10 * time.Second}
		c.cur = t
	}
	return t, c.tr, nil
}

// Close closes the idle connections; a later call makes a new transport.
func (c *Client) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tr != nil {
		c.tr.CloseIdleConnections()
		c.tr = nil
	}
}

// do posts body to path; its errors are net/http's, unwrapped.
func (c *Client) do(ctx context.Context, path, contentType string, body io.Reader) (Target, *http.Response, error) {
	t, tr, err := c.transport()
	if err != nil {
		return t, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+t.Addr+path, body)
	if err != nil {
		return t, nil, err
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := (&http.Client{Transport: tr}).Do(req)
	return t, resp, err
}

// Post sends body to the peer's path and returns the answer; an error
// names the peer and its address.
func (c *Client) Post(ctx context.Context, path, contentType string, body io.Reader) (*http.Response, error) {
	t, resp, err := c.do(ctx, path, contentType, body)
	if err != nil && t.Addr != "" {
		return nil, fmt.Errorf("peer %s at %s: %w", t.Name, t.Addr, err)
	}
	return resp, err
}

// Call sends one message of type typ to path and returns the answer,
// decoded and checked. A refusal becomes an error wrapping ErrRefused
// with the peer's words.
func (c *Client) Call(ctx context.Context, path, typ string, body any) (*Envelope, error) {
	b, err := c.codec.Encode(typ, c.from(), body)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEncode, err)
	}
	t, resp, err := c.do(ctx, path, "application/json", bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	env, err := c.codec.Read(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("answer of %s: %w", t.Addr, err)
	}
	if env.Type == TypeError {
		eb, _ := env.Error()
		msg := ""
		if eb != nil {
			msg = eb.Message
		}
		return nil, fmt.Errorf("%w: %s", ErrRefused, msg)
	}
	return env, nil
}

// Hello sends this node's status and returns the peer's.
func (c *Client) Hello(ctx context.Context, self NodeStatus) (*NodeStatus, error) {
	env, err := c.Call(ctx, "/v1/hello", TypeHello, self)
	if err != nil {
		return nil, err
	}
	return env.Hello()
}

// Verify asks the peer to run its probes now.
func (c *Client) Verify(ctx context.Context, req VerifyRequest) (*VerifyResults, error) {
	env, err := c.Call(ctx, "/v1/verify/run", TypeVerifyRequest, req)
	if err != nil {
		return nil, err
	}
	return env.VerifyResults()
}

// FetchConfig asks the primary for its head and a pack of what have lacks
// (POST /v1/config/fetch). The request is a message when the peer speaks
// protocol 3 (peerProto, from its hello; 0: not known yet), else protocol
// 2's bare JSON; either form of answer is read. pack is nil when the
// primary sent none (have is its head); else the caller closes it, and
// it is gzip-compressed.
func (c *Client) FetchConfig(ctx context.Context, have string, peerProto int) (head string, pack io.ReadCloser, err error) {
	body, err := c.request(TypeConfigFetch, ConfigFetch{Have: have}, peerProto)
	if err != nil {
		return "", nil, err
	}
	_, resp, err := c.do(ctx, "/v1/config/fetch", "application/json", bytes.NewReader(body))
	if err != nil {
		return "", nil, err
	}
	if resp.StatusCode == http.StatusOK && resp.Header.Get("Content-Type") == StreamContentType {
		br := bufio.NewReader(resp.Body)
		env, err := c.codec.ReadLead(br)
		var cp *ConfigPack
		if err == nil {
			cp, err = env.ConfigPack()
		}
		switch {
		case err != nil:
			resp.Body.Close()
			return "", nil, fmt.Errorf("the primary's answer: %w", err)
		case !cp.Pack:
			resp.Body.Close()
			return cp.Head, nil, nil
		case cp.Encoding != "gzip":
			resp.Body.Close()
			return "", nil, fmt.Errorf("primary sent a pack in an unknown encoding")
		}
		return cp.Head, readCloser{br, resp.Body}, nil
	}
	head = resp.Header.Get(HeaderConfigHead)
	switch resp.StatusCode {
	case http.StatusNoContent:
		resp.Body.Close()
		return head, nil, nil
	case http.StatusOK:
		if resp.Header.Get(HeaderPackEncoding) != "gzip" {
			resp.Body.Close()
			return "", nil, fmt.Errorf("primary sent a pack in an unknown encoding")
		}
		return head, resp.Body, nil
	}
	defer resp.Body.Close()
	if msg, ok := c.codec.readErrorAnswer(resp.Body); ok {
		return "", nil, fmt.Errorf("primary refused: %s", msg)
	}
	return "", nil, fmt.Errorf("primary answered %s", resp.Status)
}

// FetchDeb asks the peer for the .deb d names (POST /v1/parity/deb), in
// the form the peer reads (see FetchConfig). The caller closes file and
// checks it against what deb says (Size -1: not said).
func (c *Client) FetchDeb(ctx context.Context, d DebRequest, peerProto int) (deb *Deb, file io.ReadCloser, err error) {
	body, err := c.request(TypeDebRequest, d, peerProto)
	if err != nil {
		return nil, nil, err
	}
	resp, err := c.Post(ctx, "/v1/parity/deb", "application/json", bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		if msg, ok := c.codec.readErrorAnswer(resp.Body); ok {
			return nil, nil, fmt.Errorf("the peer has no file for it: %s", msg)
		}
		return nil, nil, fmt.Errorf("the peer answered %s", resp.Status)
	}
	if resp.Header.Get("Content-Type") == StreamContentType {
		br := bufio.NewReader(resp.Body)
		env, err := c.codec.ReadLead(br)
		if err == nil {
			deb, err = env.Deb()
		}
		if err != nil {
			resp.Body.Close()
			return nil, nil, fmt.Errorf("the peer's answer: %w", err)
		}
		return deb, readCloser{br, resp.Body}, nil
	}
	return &Deb{Filename: resp.Header.Get(HeaderDebFilename), SHA256: strings.ToLower(resp.Header.Get(HeaderDebSHA256)),
		Size: resp.ContentLength}, resp.Body, nil
}

// request is the body of a request of type typ: a message for a peer of
// protocol VersionOf(typ) or newer, else the bare JSON of protocol 2.
func (c *Client) request(typ string, body any, peerProto int) ([]byte, error) {
	if peerProto >= VersionOf(typ) && c.codec.Version() >= VersionOf(typ) {
		return c.codec.Encode(typ, c.from(), body)
	}
	return json.Marshal(body)
}

type readCloser struct {
	io.Reader
	io.Closer
}

// LeadWriter turns a handler's protocol-2 answer (its facts in headers)
// into a protocol-3 one (a message on a line, then the stream): made by
// AnswerConfigPack and AnswerDeb. Unwrap lets net/http's
// ResponseController reach the connection.
type LeadWriter struct {
	http.ResponseWriter
	lead    func(h http.Header, code int) (typ string, body any, ok bool)
	codec   Codec
	from    string
	written bool
	err     error
}

// Unwrap is the wrapped writer.
func (l *LeadWriter) Unwrap() http.ResponseWriter { return l.ResponseWriter }

// WriteHeader writes the lead message for an answer the lead func takes,
// and passes any other (a refusal) through.
func (l *LeadWriter) WriteHeader(code int) {
	if l.written {
		return
	}
	l.written = true
	typ, body, ok := l.lead(l.Header(), code)
	if !ok {
		l.ResponseWriter.WriteHeader(code)
		return
	}
	l.Header().Del("Content-Length") // the lead line comes first
	l.err = l.codec.WriteLead(l.ResponseWriter, http.StatusOK, typ, l.from, body)
}

func (l *LeadWriter) Write(b []byte) (int, error) {
	if !l.written {
		l.WriteHeader(http.StatusOK)
	}
	if l.err != nil {
		return 0, l.err
	}
	return l.ResponseWriter.Write(b)
}

// AnswerConfigPack wraps w for a configuration fetch handler that answers
// in protocol 2's form (204 or 200 with the head and encoding in headers).
func (c Codec) AnswerConfigPack(w http.ResponseWriter, from string) *LeadWriter {
	return &LeadWriter{ResponseWriter: w, codec: c, from: from, lead: func(h http.Header, code int) (string, any, bool) {
		switch code {
		case http.StatusNoContent:
			return TypeConfigPack, ConfigPack{Head: h.Get(HeaderConfigHead)}, true
		case http.StatusOK:
			return TypeConfigPack, ConfigPack{Head: h.Get(HeaderConfigHead), Pack: true, Encoding: h.Get(HeaderPackEncoding)}, true
		}
		return "", nil, false
	}}
}

// AnswerDeb wraps w for a package handler that answers in protocol 2's
// form (200, the file's name and SHA-256 in headers, its length in
// Content-Length).
func (c Codec) AnswerDeb(w http.ResponseWriter, from string) *LeadWriter {
	return &LeadWriter{ResponseWriter: w, codec: c, from: from, lead: func(h http.Header, code int) (string, any, bool) {
		if code != http.StatusOK {
			return "", nil, false
		}
		size, err := strconv.ParseInt(h.Get("Content-Length"), 10, 64)
		if err != nil {
			size = -1
		}
		return TypeDeb, Deb{Filename: h.Get(HeaderDebFilename), SHA256: h.Get(HeaderDebSHA256), Size: size}, true
	}}
}
