package peer

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
)

// ErrRefused wraps the message of a peer that answered with an error.
var ErrRefused = fmt.Errorf("peer refused")

// Call posts one message to path on the agent at addr (mutual TLS with
// tlsCfg) and returns its answer, decoded and checked. An error message
// from the peer becomes an error wrapping ErrRefused with the peer's words.
func Call(ctx context.Context, tlsCfg *tls.Config, addr, path string, body []byte) (*Envelope, error) {
	tr := &http.Transport{TLSClientConfig: tlsCfg}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+addr+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	env, err := Read(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("answer of %s: %w", addr, err)
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

// Write answers a peer's request with one message of type typ from node
// from, with HTTP status code.
func Write(w http.ResponseWriter, code int, typ, from string, body any) {
	b, err := Encode(typ, from, body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(b)
}
