package api

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// MaxRequest bounds the body of a local API request.
const MaxRequest = 4 << 10

// Decode reads a request's JSON body into v: at most MaxRequest bytes, no
// field v does not have. The error says "bad request" and why.
func Decode(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxRequest))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("bad request: %w", err)
	}
	return nil
}
