package link

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// tokenPrefix marks a Sentry join token and its format version.
const tokenPrefix = "sentry1-"

// Token is what `sentry init` prints and `sentry join` takes: everything a
// new node needs to pair safely. The primary keeps only the secret's hash.
type Token struct {
	ClusterID     string `json:"c"`
	Primary       string `json:"n"` // the primary's node name
	CAFingerprint string `json:"f"` // hex SHA-256 of the cluster CA certificate
	Secret        string `json:"s"` // base64url, 32 random bytes
	Expires       int64  `json:"e"` // unix seconds
}

func newSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// String encodes the token for the operator to copy.
func (t Token) String() string {
	b, _ := json.Marshal(t)
	return tokenPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// ErrBadToken is wrapped by every token parse error.
var ErrBadToken = errors.New("not a valid join token")

// ParseToken decodes a token as printed by String.
func ParseToken(s string) (Token, error) {
	var t Token
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, tokenPrefix) {
		return t, fmt.Errorf("%w: it does not start with %q", ErrBadToken, tokenPrefix)
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(s, tokenPrefix))
	if err != nil {
		return t, fmt.Errorf("%w: %v (was it cut when copied?)", ErrBadToken, err)
	}
	if err := json.Unmarshal(b, &t); err != nil {
		return t, fmt.Errorf("%w: %v", ErrBadToken, err)
	}
	if t.ClusterID == "" || t.Primary == "" || len(t.CAFingerprint) != 64 || len(t.Secret) < 16 || t.Expires == 0 {
		return t, fmt.Errorf("%w: a field is missing", ErrBadToken)
	}
	return t, nil
}

// ExpiresAt is the token's expiry time.
func (t Token) ExpiresAt() time.Time { return time.Unix(t.Expires, 0).UTC() }
