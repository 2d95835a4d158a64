package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
)

// peerPost sends a request to the peer's API and returns the response.
func (a *Agent) peerPost(ctx context.Context, path, contentType string, body []byte) (*http.Response, error) {
	a.mu.Lock()
	if a.cluster == nil || a.cluster.PeerAddress == "" || a.node == nil {
		a.mu.Unlock()
		return nil, errNoPeer
	}
	addr, name := a.cluster.PeerAddress, a.cluster.PeerName
	tlsCfg := a.node.ClientTLS(name)
	a.mu.Unlock()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+addr+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", contentType)
	tr := &http.Transport{TLSClientConfig: tlsCfg}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		tr.CloseIdleConnections()
		return nil, fmt.Errorf("peer %s at %s: %w", name, addr, err)
	}
	return resp, nil
}

var errNoPeer = errors.New("this node has no peer yet (sentry init / sentry join)")
