package api

import "time"

// The bodies of the local API's requests and answers that belong to no
// component.
type (
	// AdoptRequest is the body of POST /v1/bootcheck/adopt.
	AdoptRequest struct {
		Replaces string `json:"replaces,omitempty"`
		// Force adopts though the peer was last seen on the machine replaced.
		Force bool `json:"force,omitempty"`
	}
	InitRequest struct {
		ClusterName     string `json:"cluster_name"`
		TokenTTLSeconds int64  `json:"token_ttl_seconds"`
	}
	TokenRequest struct {
		TTLSeconds int64 `json:"ttl_seconds"`
	}
	TokenResult struct {
		Token   string    `json:"token"`
		Expires time.Time `json:"expires"`
	}
	SyncRequest struct {
		Force bool `json:"force"`
	}
	RollbackRequest struct {
		Rev string `json:"rev"`
	}
	JoinRequest struct {
		Token   string `json:"token"`
		Primary string `json:"primary"`
	}
	// Error is the body of a refusal.
	Error struct {
		Error string `json:"error"`
	}
)
