package peer

import (
	"fmt"

	"github.com/sentryha/sentry/internal/store"
)

// Message types of a verification run on the peer, now (POST /v1/verify/run).
const (
	TypeVerifyRequest = "verify-request"
	TypeVerifyResults = "verify-results"
)

// VerifyRequest asks the peer to run its probes now: all of them, or those
// whose name starts with Service.
type VerifyRequest struct {
	Service string `json:"service,omitempty"`
}

// VerifyResults are the results of a run the peer made now.
type VerifyResults struct {
	Results []store.StoredResult `json:"results"`
	Error   string               `json:"error,omitempty"`
}

// VerifyRequest returns the body of a verify request.
func (e *Envelope) VerifyRequest() (*VerifyRequest, error) {
	var r VerifyRequest
	if err := e.body(TypeVerifyRequest, &r); err != nil {
		return nil, err
	}
	if len(r.Service) > 128 {
		return nil, fmt.Errorf("%w: service longer than 128 bytes", ErrMalformed)
	}
	return &r, nil
}

// VerifyResults returns the body of a verify-results message.
func (e *Envelope) VerifyResults() (*VerifyResults, error) {
	var r VerifyResults
	if err := e.body(TypeVerifyResults, &r); err != nil {
		return nil, err
	}
	if len(r.Results) > 256 || len(r.Error) > 4096 {
		return nil, fmt.Errorf("%w: %d results (at most 256), error of %d bytes", ErrMalformed, len(r.Results), len(r.Error))
	}
	for _, x := range r.Results {
		if x.Node != e.From || x.Probe == "" || len(x.Probe) > 128 || len(x.Message) > 4096 || len(x.Phases) > 64 {
			return nil, fmt.Errorf("%w: result %.40q of node %.40q from %s", ErrMalformed, x.Probe, x.Node, e.From)
		}
	}
	return &r, nil
}
