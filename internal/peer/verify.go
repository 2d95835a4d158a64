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
	if err := r.Validate(e.From); err != nil {
		return nil, err
	}
	return &r, nil
}

// Validate checks the results of a run node made: at most MaxProbes, each
// a probe of node with a probe name, every text bounded (see validResult).
func (r *VerifyResults) Validate(node string) error {
	if len(r.Results) > MaxProbes || len(r.Error) > 4096 {
		return fmt.Errorf("%w: %d results (at most %d), error of %d bytes", ErrMalformed, len(r.Results), MaxProbes, len(r.Error))
	}
	return validResults(r.Results, node)
}
