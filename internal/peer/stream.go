package peer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
)

// The configuration fetch (POST /v1/config/fetch) and the package fetch
// (POST /v1/parity/deb) answer with a stream: a git pack, a .deb file.
// Since protocol 3 their requests are messages, and so is the start of
// their answers: one message on a line of its own (a marshalled envelope
// holds no newline), then the stream. An agent of protocol 2 sent bare
// JSON requests and put the answer's facts in headers; both forms are
// served, and the asker sends the form its peer reads (by the protocol
// the peer says in its hello).
const (
	TypeConfigFetch = "config-fetch" // a ConfigFetch
	TypeConfigPack  = "config-pack"  // a ConfigPack, then the pack when it says so
	TypeDebRequest  = "deb-request"  // a DebRequest
	TypeDeb         = "deb"          // a Deb, then the file
)

// StreamContentType marks an answer that is one message on a line, then a
// stream.
const StreamContentType = "application/x-sentry-stream"

// Headers of the protocol-2 answers.
const (
	HeaderConfigHead   = "X-Sentry-Config-Head"
	HeaderPackEncoding = "X-Sentry-Pack-Encoding"
	HeaderDebSHA256    = "X-Sentry-Deb-SHA256"
	HeaderDebFilename  = "X-Sentry-Deb-Filename"
)

// ConfigFetch asks the primary for its head and a pack of what Have
// (a commit hash, or empty) lacks.
type ConfigFetch struct {
	Have string `json:"have"`
}

// ConfigPack is the start of the primary's answer: its head and, when
// Pack, the encoding of the pack that follows.
type ConfigPack struct {
	Head     string `json:"head"`
	Pack     bool   `json:"pack,omitempty"`
	Encoding string `json:"encoding,omitempty"`
}

// DebRequest names one package file.
type DebRequest struct {
	Name    string `json:"name"`
	Arch    string `json:"arch"`
	Version string `json:"version"`
}

// Deb is the start of a package file sent: its name, SHA-256 (hex) and
// size in bytes.
type Deb struct {
	Filename string `json:"filename"`
	SHA256   string `json:"sha256"`
	Size     int64  `json:"size"`
}

var (
	hashRe    = regexp.MustCompile(`^([0-9a-f]{40}|[0-9a-f]{64})?$`)
	debField  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.+~:_-]{0,200}$`)
	sha256Re  = regexp.MustCompile(`^[0-9a-f]{64}$`)
	encodings = map[string]bool{"": true, "gzip": true}
)

// ValidDebField says whether s may be a package's name, architecture or
// version in a request.
func ValidDebField(s string) bool { return debField.MatchString(s) }

// ConfigFetch returns the body of a config-fetch message.
func (e *Envelope) ConfigFetch() (*ConfigFetch, error) {
	var r ConfigFetch
	if err := e.body(TypeConfigFetch, &r); err != nil {
		return nil, err
	}
	if !hashRe.MatchString(r.Have) {
		return nil, fmt.Errorf("%w: have %.70q is not a commit hash", ErrMalformed, r.Have)
	}
	return &r, nil
}

// ConfigPack returns the body of a config-pack message.
func (e *Envelope) ConfigPack() (*ConfigPack, error) {
	var r ConfigPack
	if err := e.body(TypeConfigPack, &r); err != nil {
		return nil, err
	}
	if !hashRe.MatchString(r.Head) || !encodings[r.Encoding] {
		return nil, fmt.Errorf("%w: config pack head %.70q, encoding %.20q", ErrMalformed, r.Head, r.Encoding)
	}
	return &r, nil
}

// DebRequest returns the body of a deb-request message.
func (e *Envelope) DebRequest() (*DebRequest, error) {
	var r DebRequest
	if err := e.body(TypeDebRequest, &r); err != nil {
		return nil, err
	}
	if !debField.MatchString(r.Name) || !debField.MatchString(r.Arch) || !debField.MatchString(r.Version) {
		return nil, fmt.Errorf("%w: deb request: bad name, architecture or version", ErrMalformed)
	}
	return &r, nil
}

// Deb returns the body of a deb message.
func (e *Envelope) Deb() (*Deb, error) {
	var r Deb
	if err := e.body(TypeDeb, &r); err != nil {
		return nil, err
	}
	if len(r.Filename) == 0 || len(r.Filename) > 512 || hasControl(r.Filename) || !sha256Re.MatchString(r.SHA256) || r.Size < -1 {
		return nil, fmt.Errorf("%w: deb %.70q, SHA-256 %.70q, %d bytes", ErrMalformed, r.Filename, r.SHA256, r.Size)
	}
	return &r, nil
}

// IsEnvelope says whether a request body is a message (protocol 3) rather
// than the bare JSON of protocol 2: a JSON object with a "type".
func IsEnvelope(b []byte) bool {
	var probe struct {
		Type *string `json:"type"`
	}
	return json.Unmarshal(b, &probe) == nil && probe.Type != nil
}

// ReadConfigFetch reads a configuration fetch request of either form;
// legacy says it was protocol 2's (answer it in that form).
func (c Codec) ReadConfigFetch(b []byte) (req *ConfigFetch, legacy bool, err error) {
	if IsEnvelope(b) {
		env, err := c.Decode(b)
		if err != nil {
			return nil, false, err
		}
		req, err = env.ConfigFetch()
		return req, false, err
	}
	var r ConfigFetch
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(&r); err != nil {
		return nil, true, err
	}
	return &r, true, nil
}

// ReadDebRequest reads a package request of either form; legacy says it
// was protocol 2's. The legacy form is not checked here (the server says
// what is wrong with it, as before).
func (c Codec) ReadDebRequest(b []byte) (req *DebRequest, legacy bool, err error) {
	if IsEnvelope(b) {
		env, err := c.Decode(b)
		if err != nil {
			return nil, false, err
		}
		req, err = env.DebRequest()
		return req, false, err
	}
	var r DebRequest
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(&r); err != nil {
		return nil, true, err
	}
	return &r, true, nil
}

// WriteLead starts a stream answer: the content type, the status, and the
// message typ on a line; the stream follows.
func (c Codec) WriteLead(w http.ResponseWriter, code int, typ, from string, body any) error {
	b, err := c.Encode(typ, from, body)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", StreamContentType)
	w.WriteHeader(code)
	_, err = w.Write(append(b, '\n'))
	return err
}

// ReadLead reads the message that starts a stream answer (at most
// MaxMessageSize bytes, up to its newline); the stream is what br holds
// after it.
func (c Codec) ReadLead(br *bufio.Reader) (*Envelope, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > MaxMessageSize+1 {
			return nil, ErrTooLarge
		}
		if err == nil {
			break
		}
		if err != bufio.ErrBufferFull {
			return nil, fmt.Errorf("%w: the answer's first line: %v", ErrMalformed, err)
		}
	}
	return c.Decode(bytes.TrimSuffix(line, []byte("\n")))
}

// readErrorAnswer is the refusal in a non-stream answer, if it is one.
func (c Codec) readErrorAnswer(r io.Reader) (string, bool) {
	env, err := c.Read(r)
	if err != nil || env.Type != TypeError {
		return "", false
	}
	eb, err := env.Error()
	if err != nil {
		return "", false
	}
	return eb.Message, true
}
