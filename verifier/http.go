package verifier

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// HTTPParams are the http probe's parameters.
type HTTPParams struct {
	URL    string `param:"url,required,url"`
	Status int    `param:"status,status"` // the status expected (default 200)
	Marker string `param:"marker"`        // a string the body must hold
	Host   string `param:"host"`          // the Host header
	// Insecure: do not verify the certificate (a self-signed canary
	// site); days left are still recorded.
	Insecure bool `param:"insecure"`
}

func (*HTTPParams) probeParams() {}

// probeHTTP fetches a URL and expects a status and a marker in the body; for
// https it records the certificate's days left.
func probeHTTP(ctx context.Context, p *HTTPParams, rec *Recorder) error {
	url, want := p.URL, p.Status
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: p.Insecure},
		DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	var resp *http.Response
	if err := rec.Phase("request", func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if h := p.Host; h != "" {
			req.Host = h
		}
		resp, err = (&http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		return err
	}); err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 {
		days := time.Until(resp.TLS.PeerCertificates[0].NotAfter).Hours() / 24
		rec.Set("tls_days_left", fmt.Sprintf("%.0f", days))
	}
	return rec.Phase("check answer", func() error {
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			return fmt.Errorf("reading the body: %w", err)
		}
		if resp.StatusCode != want {
			return fmt.Errorf("status %d, want %d", resp.StatusCode, want)
		}
		if m := p.Marker; m != "" && !strings.Contains(string(body), m) {
			return fmt.Errorf("the page does not hold the marker %q", m)
		}
		return nil
	})
}
