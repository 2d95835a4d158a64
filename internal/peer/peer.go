// Package peer defines the messages the two agents exchange over the peer
// link (HTTPS with mutual TLS): a versioned envelope with a typed body, and
// a decoder that bounds size and checks every field before anything else
// looks at a message.
package peer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"time"

	"github.com/sentryha/sentry/internal/hwid"
	"github.com/sentryha/sentry/internal/store"
)

// ProtocolVersion is the newest version this agent speaks;
// MinProtocolVersion the oldest it still understands. Version 2 added the
// inventory messages and the verification run on request; version 3 put
// the configuration fetch and the package fetch under the envelope
// (config-fetch, deb-request; their answers lead with a message). Fields
// added to a message are optional and ignored by older agents, so they
// need no new version; a new message type does.
const ProtocolVersion = 3

// MinProtocolVersion is the oldest version this agent reads.
const MinProtocolVersion = 1

// Codec encodes and decodes messages, speaking protocol versions
// MinProtocolVersion to its own newest. The zero Codec speaks
// ProtocolVersion; Speaking makes one that speaks an older version (a
// test of a mixed pair, in one process).
type Codec struct{ max int }

// Speaking is a Codec whose newest version is v (bounded to the versions
// this build knows).
func Speaking(v int) Codec {
	return Codec{max: min(max(v, MinProtocolVersion), ProtocolVersion)}
}

// Version is the newest protocol version c speaks.
func (c Codec) Version() int {
	if c.max == 0 {
		return ProtocolVersion
	}
	return c.max
}

// typeVersion is the version that introduced a message type. Every message
// is sent at that version, so an older peer reads each message it knows,
// and refuses (by version) only the types it cannot know.
var typeVersion = map[string]int{TypeInventoryRequest: 2, TypeInventory: 2, TypeVerifyRequest: 2, TypeVerifyResults: 2,
	TypeConfigFetch: 3, TypeConfigPack: 3, TypeDebRequest: 3, TypeDeb: 3}

// VersionOf is the protocol version a message of type typ is sent at.
func VersionOf(typ string) int {
	if v, ok := typeVersion[typ]; ok {
		return v
	}
	return MinProtocolVersion
}

// MaxMessageSize bounds one message on the wire.
const MaxMessageSize = 1 << 20

// Message types.
const (
	TypeHello        = "hello"
	TypeJoinRequest  = "join-request"
	TypeJoinResponse = "join-response"
	TypeError        = "error"
)

// Errors of the decoder; each decode error wraps one of them.
var (
	ErrTooLarge  = fmt.Errorf("message larger than %d bytes", MaxMessageSize)
	ErrMalformed = errors.New("malformed message")
	ErrVersion   = errors.New("unsupported protocol version")
)

// Envelope is one message.
type Envelope struct {
	Version int             `json:"v"`
	Type    string          `json:"type"`
	From    string          `json:"from"`
	Sent    time.Time       `json:"sent"`
	Body    json.RawMessage `json:"body"`

	// hello is the hello Decode checked, decoded: the first Hello takes it
	// rather than decoding the body again.
	hello *NodeStatus
}

// NodeStatus is what an agent says about its node.
type NodeStatus struct {
	Name         string    `json:"name"`
	Role         string    `json:"role,omitempty"`
	ClusterID    string    `json:"cluster_id,omitempty"`
	DiskSet      string    `json:"disk_set,omitempty"`
	Generation   uint64    `json:"generation,omitempty"`
	Hardware     string    `json:"hardware,omitempty"`
	AgentVersion string    `json:"agent_version,omitempty"`
	Protocol     int       `json:"protocol,omitempty"`
	Address      string    `json:"address,omitempty"`
	Time         time.Time `json:"time"`
	// The configuration repository: the primary's head; on the secondary
	// also the commit applied last and why the newest one failed, if so.
	ConfigHead    string `json:"config_head,omitempty"`
	ConfigApplied string `json:"config_applied,omitempty"`
	ConfigFailed  string `json:"config_failed,omitempty"`
	ConfigError   string `json:"config_error,omitempty"`
	ConfigRetry   string `json:"config_retry,omitempty"` // the failure may clear by itself: when the secondary tries again
	// BoundaryPending: what the primary's modules ask the secondary to
	// write or run beyond what was approved there (sentry modules approve).
	BoundaryPending []string `json:"boundary_pending,omitempty"`
	ConfigDrift     int      `json:"config_drift,omitempty"` // tracked paths edited locally on the secondary
	// InventoryTaken is when the node's newest inventory was taken: the
	// peer fetches it when it holds an older one.
	InventoryTaken time.Time `json:"inventory_taken,omitzero"`
	// The verifier: "15/15 green, ..." and the red probes with why.
	Verify    string   `json:"verify,omitempty"`
	VerifyRed []string `json:"verify_red,omitempty"`
	// The boot decision: "primary", "secondary", "safe-mode" (with why),
	// whether this boot is a failover, the disk set's home machine, and
	// this machine's NICs (for the machine profiles in the config repo).
	Boot         string     `json:"boot,omitempty"`
	SafeMode     string     `json:"safe_mode,omitempty"`
	Failover     bool       `json:"failover,omitempty"`
	HomeHardware string     `json:"home_hardware,omitempty"`
	HardwareNICs []hwid.NIC `json:"hardware_nics,omitempty"`
	// Results are the newest result of each of this node's probes, with
	// per-phase timings: the peer stores them, so either node shows both.
	Results []store.StoredResult `json:"results,omitempty"`
	// Readiness (issue 15): when the primary committed its head, the
	// modules in use (name: version), and the node's local facts.
	ConfigHeadAt time.Time         `json:"config_head_at,omitzero"`
	Modules      map[string]string `json:"modules,omitempty"`
	Facts        *Facts            `json:"facts,omitempty"`
	// Verdict is the node's own readiness verdict, as it last judged it:
	// either node shows both, and the last one heard with its age when
	// the peer is gone.
	Verdict *Verdict `json:"verdict,omitempty"`
	// Maintenance announces a planned swap (sentry failover plan
	// --planned): its expected faults do not alert on either node until
	// Until, or until the swap's record completes.
	Maintenance *Maintenance `json:"maintenance,omitempty"`
	// Restore is the last weekly restore test of the node's backups
	// (nil: none configured or none made yet).
	Restore *Restore `json:"restore,omitempty"`
}

// Restore is a node's last restore test of a backup repository: the
// newest failed one of a repository still configured, else the newest.
type Restore struct {
	At       time.Time `json:"at"`
	Repo     string    `json:"repo"`               // shown with a URL's password hidden
	Snapshot string    `json:"snapshot,omitempty"` // short ID
	Err      string    `json:"error,omitempty"`    // "": good
}

func (r *Restore) validate() error {
	if r == nil {
		return nil
	}
	if len(r.Repo) > 512 || len(r.Snapshot) > 64 || len(r.Err) > 4096 || hasControl(r.Repo+r.Snapshot) {
		return fmt.Errorf("%w: restore test: repository, snapshot or error too long, or with control characters", ErrMalformed)
	}
	return nil
}

// Maintenance is a planned swap under way.
type Maintenance struct {
	Plan  string    `json:"plan"`
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
}

// Verdict is a readiness verdict in brief.
type Verdict struct {
	Verdict string    `json:"verdict"` // READY, NOT READY, UNKNOWN
	At      time.Time `json:"at"`      // when it was judged
	Reasons []string  `json:"reasons,omitempty"`
}

// MaxVerdictReasons bounds a verdict's reasons on the wire.
const MaxVerdictReasons = 64

func (v *Verdict) validate() error {
	if v == nil {
		return nil
	}
	switch v.Verdict {
	case "READY", "NOT READY", "UNKNOWN":
	default:
		return fmt.Errorf("%w: verdict %.40q", ErrMalformed, v.Verdict)
	}
	if len(v.Reasons) > MaxVerdictReasons {
		return fmt.Errorf("%w: %d verdict reasons (at most %d)", ErrMalformed, len(v.Reasons), MaxVerdictReasons)
	}
	for _, r := range v.Reasons {
		if len(r) > 4096 {
			return fmt.Errorf("%w: verdict reason longer than 4096 bytes", ErrMalformed)
		}
	}
	return nil
}

// JoinRequest is sent by a node that pairs with a primary.
type JoinRequest struct {
	Secret     string     `json:"secret"` // the token's secret, base64url
	CSR        string     `json:"csr"`    // PEM certificate request for Node.Name
	Node       NodeStatus `json:"node"`
	ListenPort int        `json:"listen_port"`
}

// JoinResponse answers a successful join.
type JoinResponse struct {
	Cert        string     `json:"cert"` // PEM node certificate
	CA          string     `json:"ca"`   // PEM cluster CA certificate
	ClusterID   string     `json:"cluster_id"`
	ClusterName string     `json:"cluster_name"`
	Primary     NodeStatus `json:"primary"`
	// ClusterKey decrypts the secrets the primary sends encrypted (age
	// X25519 identity); it crosses once, here, over the verified link.
	ClusterKey string `json:"cluster_key,omitempty"`
}

// ErrorBody carries a refusal.
type ErrorBody struct {
	Message string `json:"message"`
}

// Encode makes a message of type typ from node from, at this build's
// protocol.
func Encode(typ, from string, body any) ([]byte, error) { return Codec{}.Encode(typ, from, body) }

// Read decodes one message from r at this build's protocol.
func Read(r io.Reader) (*Envelope, error) { return Codec{}.Read(r) }

// Decode checks and decodes one message at this build's protocol.
func Decode(b []byte) (*Envelope, error) { return Codec{}.Decode(b) }

// Encode makes a message of type typ from node from.
func (c Codec) Encode(typ, from string, body any) ([]byte, error) {
	newest := c.Version()
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	v := VersionOf(typ)
	if v > newest {
		return nil, fmt.Errorf("%w: a %s message needs protocol %d, this agent speaks up to %d", ErrVersion, typ, v, newest)
	}
	env := Envelope{Version: v, Type: typ, From: from, Sent: time.Now().UTC(), Body: b}
	out, err := json.Marshal(env)
	if err != nil {
		return nil, err
	}
	if len(out) > MaxMessageSize {
		return nil, ErrTooLarge
	}
	return out, nil
}

// Read decodes one message from r, reading at most MaxMessageSize bytes.
func (c Codec) Read(r io.Reader) (*Envelope, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxMessageSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return c.Decode(b)
}

var nameRe = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// Decode checks and decodes one message.
func (c Codec) Decode(b []byte) (*Envelope, error) {
	newest := c.Version()
	if len(b) > MaxMessageSize {
		return nil, ErrTooLarge
	}
	var env Envelope
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&env); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the message", ErrMalformed)
	}
	if env.Version < MinProtocolVersion || env.Version > newest {
		return nil, fmt.Errorf("%w: peer speaks %d, this agent %d to %d", ErrVersion, env.Version, MinProtocolVersion, newest)
	}
	if v, ok := typeVersion[env.Type]; ok && (v > newest || env.Version < v) {
		return nil, fmt.Errorf("%w: a %s message is protocol %d, this agent speaks %d to %d", ErrVersion, env.Type, v, MinProtocolVersion, newest)
	}
	switch env.Type {
	case TypeHello, TypeJoinRequest, TypeJoinResponse, TypeError, TypeInventoryRequest, TypeInventory, TypeVerifyRequest, TypeVerifyResults,
		TypeConfigFetch, TypeConfigPack, TypeDebRequest, TypeDeb:
	default:
		return nil, fmt.Errorf("%w: unknown type %.40q", ErrMalformed, env.Type)
	}
	if !nameRe.MatchString(env.From) {
		return nil, fmt.Errorf("%w: sender %.70q is not a node name", ErrMalformed, env.From)
	}
	if len(env.Body) == 0 || string(env.Body) == "null" {
		return nil, fmt.Errorf("%w: no body", ErrMalformed)
	}
	// Check the body now, so a message either decodes whole or not at all.
	var err error
	switch env.Type {
	case TypeHello:
		env.hello, err = env.Hello()
	case TypeJoinRequest:
		_, err = env.JoinRequest()
	case TypeJoinResponse:
		_, err = env.JoinResponse()
	case TypeError:
		_, err = env.Error()
	case TypeInventoryRequest:
		_, err = env.InventoryRequest()
	case TypeInventory:
		_, err = env.Inventory()
	case TypeVerifyRequest:
		_, err = env.VerifyRequest()
	case TypeVerifyResults:
		_, err = env.VerifyResults()
	case TypeConfigFetch:
		_, err = env.ConfigFetch()
	case TypeConfigPack:
		_, err = env.ConfigPack()
	case TypeDebRequest:
		_, err = env.DebRequest()
	case TypeDeb:
		_, err = env.Deb()
	}
	if err != nil {
		return nil, err
	}
	return &env, nil
}

func (e *Envelope) body(typ string, v any) error {
	if e.Type != typ {
		return fmt.Errorf("%w: a %s message, not %s", ErrMalformed, e.Type, typ)
	}
	if err := json.Unmarshal(e.Body, v); err != nil {
		return fmt.Errorf("%w: %s body: %v", ErrMalformed, typ, err)
	}
	return nil
}

// Validate checks what a node says about itself before anything else
// looks at it: names of the strict form, every text and list bounded, and
// at most MaxProbes results, each a probe of this node with a probe name
// (see validResult). The generation is not checked here: the receiver
// checks it against what it knows (CheckGeneration).
func (s *NodeStatus) Validate() error {
	if !nameRe.MatchString(s.Name) {
		return fmt.Errorf("%w: node name %.70q", ErrMalformed, s.Name)
	}
	for k, v := range map[string]string{"role": s.Role, "cluster_id": s.ClusterID, "disk_set": s.DiskSet,
		"hardware": s.Hardware, "agent_version": s.AgentVersion, "address": s.Address,
		"config_head": s.ConfigHead, "config_applied": s.ConfigApplied, "config_failed": s.ConfigFailed,
		"config_retry": s.ConfigRetry, "boot": s.Boot, "home_hardware": s.HomeHardware} {
		if len(v) > 512 {
			return fmt.Errorf("%w: %s longer than 512 bytes", ErrMalformed, k)
		}
	}
	// The machine identities go into machines.toml and the console.
	for k, v := range map[string]string{"hardware": s.Hardware, "home_hardware": s.HomeHardware} {
		if hasControl(v) {
			return fmt.Errorf("%w: %s %.70q holds control characters", ErrMalformed, k, v)
		}
	}
	if len(s.Verify) > 512 || len(s.VerifyRed) > MaxProbes {
		return fmt.Errorf("%w: verifier summary too long", ErrMalformed)
	}
	for _, r := range s.VerifyRed {
		if len(r) > 4096 {
			return fmt.Errorf("%w: verifier message longer than 4096 bytes", ErrMalformed)
		}
	}
	if len(s.ConfigError) > 4096 {
		return fmt.Errorf("%w: config_error longer than 4096 bytes", ErrMalformed)
	}
	if len(s.BoundaryPending) > MaxBoundaryPending {
		return fmt.Errorf("%w: %d pending boundary entries (at most %d)", ErrMalformed, len(s.BoundaryPending), MaxBoundaryPending)
	}
	for _, b := range s.BoundaryPending {
		if len(b) > 4096 {
			return fmt.Errorf("%w: pending boundary entry longer than 4096 bytes", ErrMalformed)
		}
	}
	if len(s.SafeMode) > 4096 {
		return fmt.Errorf("%w: safe_mode longer than 4096 bytes", ErrMalformed)
	}
	if len(s.HardwareNICs) > 64 || len(s.Results) > MaxProbes {
		return fmt.Errorf("%w: %d NICs, %d results (at most 64 and %d)", ErrMalformed, len(s.HardwareNICs), len(s.Results), MaxProbes)
	}
	for _, n := range s.HardwareNICs {
		if len(n.Name) > 64 || len(n.MAC) > 64 || len(n.Kind) > 64 || len(n.Driver) > 64 || hasControl(n.Name+n.MAC+n.Kind+n.Driver) {
			return fmt.Errorf("%w: NIC %.40q: a field longer than 64 bytes or with control characters", ErrMalformed, n.Name)
		}
	}
	if err := validResults(s.Results, s.Name); err != nil {
		return err
	}
	if err := validModules(s.Modules); err != nil {
		return err
	}
	if err := s.Facts.validate(); err != nil {
		return err
	}
	if err := s.Verdict.validate(); err != nil {
		return err
	}
	if err := s.Restore.validate(); err != nil {
		return err
	}
	if m := s.Maintenance; m != nil && (len(m.Plan) > 128 || hasControl(m.Plan)) {
		return fmt.Errorf("%w: maintenance plan id %.40q", ErrMalformed, m.Plan)
	}
	switch s.Role {
	case "", "primary", "secondary", "safe-mode":
	default:
		return fmt.Errorf("%w: role %.40q", ErrMalformed, s.Role)
	}
	return nil
}

// Hello returns the body of a hello message.
func (e *Envelope) Hello() (*NodeStatus, error) {
	if h := e.hello; h != nil && e.Type == TypeHello {
		e.hello = nil // the caller's to change; a second Hello decodes again
		return h, nil
	}
	var s NodeStatus
	if err := e.body(TypeHello, &s); err != nil {
		return nil, err
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

// JoinRequest returns the body of a join request.
func (e *Envelope) JoinRequest() (*JoinRequest, error) {
	var j JoinRequest
	if err := e.body(TypeJoinRequest, &j); err != nil {
		return nil, err
	}
	if err := j.Node.Validate(); err != nil {
		return nil, err
	}
	switch {
	case len(j.Secret) < 16 || len(j.Secret) > 128:
		return nil, fmt.Errorf("%w: join secret of %d bytes", ErrMalformed, len(j.Secret))
	case len(j.CSR) == 0 || len(j.CSR) > 8192:
		return nil, fmt.Errorf("%w: certificate request of %d bytes", ErrMalformed, len(j.CSR))
	case j.ListenPort < 1 || j.ListenPort > 65535:
		return nil, fmt.Errorf("%w: listen port %d", ErrMalformed, j.ListenPort)
	}
	return &j, nil
}

// JoinResponse returns the body of a join response.
func (e *Envelope) JoinResponse() (*JoinResponse, error) {
	var j JoinResponse
	if err := e.body(TypeJoinResponse, &j); err != nil {
		return nil, err
	}
	if err := j.Primary.Validate(); err != nil {
		return nil, err
	}
	if j.Cert == "" || j.CA == "" || j.ClusterID == "" || len(j.Cert) > 16384 || len(j.CA) > 16384 || len(j.ClusterKey) > 256 {
		return nil, fmt.Errorf("%w: join response without certificates or cluster id", ErrMalformed)
	}
	return &j, nil
}

// Error returns the body of an error message.
func (e *Envelope) Error() (*ErrorBody, error) {
	var b ErrorBody
	if err := e.body(TypeError, &b); err != nil {
		return nil, err
	}
	if len(b.Message) > 4096 {
		return nil, fmt.Errorf("%w: error message longer than 4096 bytes", ErrMalformed)
	}
	return &b, nil
}
