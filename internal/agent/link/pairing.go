package link

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/sentryha/sentry/internal/peer"
	"github.com/sentryha/sentry/internal/pki"
	"github.com/sentryha/sentry/internal/stamp"
	"github.com/sentryha/sentry/internal/store"
	"github.com/sentryha/sentry/synchronizer"
)

// DefaultTokenTTL is how long a join token is valid.
const DefaultTokenTTL = time.Hour

// ErrInitialized is returned by init and join on a disk set that already
// belongs to a cluster.
var ErrInitialized = errors.New("this disk set already belongs to a cluster")

// Initialized is the error of init or join on a disk set of cluster st.
func Initialized(st *stamp.Stamp) error {
	return fmt.Errorf("%w %q (%s)", ErrInitialized, st.ClusterName, st.ClusterID)
}

func randomID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// InitResult is what `sentry init` prints.
type InitResult struct {
	ClusterID     string    `json:"cluster_id"`
	ClusterName   string    `json:"cluster_name"`
	Node          string    `json:"node"`
	DiskSet       string    `json:"disk_set"`
	Hardware      string    `json:"hardware"`
	CAFingerprint string    `json:"ca_fingerprint"`
	Token         string    `json:"token"`
	TokenExpires  time.Time `json:"token_expires"`
}

// Init makes this disk set the primary of a new cluster, and starts the
// link.
func (l *Link) Init(name string, ttl time.Duration) (*InitResult, error) {
	l.joinMu.Lock()
	defer l.joinMu.Unlock()
	if st := l.d.Identity().Stamp; st != nil {
		return nil, Initialized(st)
	}
	hw, err := l.d.Hardware()
	if err != nil {
		return nil, fmt.Errorf("cannot identify this machine: %w", err)
	}
	now := time.Now().UTC()
	clusterID := randomID()
	ca, err := pki.NewCA(clusterID, name, now)
	if err != nil {
		return nil, err
	}
	key, err := pki.NewKey()
	if err != nil {
		return nil, err
	}
	nodeName := l.nodeName()
	certPEM, err := ca.SignKey(key, nodeName, now)
	if err != nil {
		return nil, err
	}
	ck, err := synchronizer.NewClusterKey()
	if err != nil {
		return nil, err
	}
	st := &stamp.Stamp{ClusterID: clusterID, ClusterName: name, DiskSet: randomID(), Role: stamp.RolePrimary,
		Generation: 1, HomeHardware: hw, Written: now}
	cl := &stamp.Cluster{ClusterID: clusterID, ClusterName: name, NodeName: nodeName}
	if err := l.d.Commit(Commit{Fresh: true, CACert: ca.Cert, CAKey: ca.Key, CertPEM: certPEM, Key: key,
		ClusterKey: ck, Cluster: cl, Stamp: st}); err != nil {
		return nil, err
	}
	l.d.Event("init", nodeName, fmt.Sprintf("cluster %q created; this disk set is the primary, generation 1", name),
		map[string]string{"cluster_id": clusterID, "hardware": hw, "disk_set": st.DiskSet})
	tok, err := l.NewToken(ttl)
	if err != nil {
		return nil, err
	}
	if err := l.Start(); err != nil {
		return nil, err
	}
	return &InitResult{ClusterID: clusterID, ClusterName: name, Node: nodeName, DiskSet: st.DiskSet,
		Hardware: hw, CAFingerprint: pki.Fingerprint(ca.Cert), Token: tok.String(), TokenExpires: tok.ExpiresAt()}, nil
}

// NewToken makes another one-time join token (primary only).
func (l *Link) NewToken(ttl time.Duration) (Token, error) {
	if n := l.d.Identity().Node; n == nil || n.CAKey == nil {
		return Token{}, errors.New("join tokens are made on the primary that ran `sentry init`")
	}
	if ttl <= 0 {
		ttl = DefaultTokenTTL
	}
	secret, err := newSecret()
	if err != nil {
		return Token{}, err
	}
	id := l.d.Identity()
	now := time.Now().UTC()
	t := Token{ClusterID: id.Stamp.ClusterID, Primary: id.Cluster.NodeName, CAFingerprint: pki.Fingerprint(id.Node.CA),
		Secret: secret, Expires: now.Add(ttl).Unix()}
	if err := l.d.Store().PutToken(store.Token{Hash: store.HashSecret([]byte(secret)), Created: now, Expires: t.ExpiresAt()}); err != nil {
		return Token{}, err
	}
	l.d.Event("token", id.Cluster.NodeName, "join token made", map[string]string{"expires": t.ExpiresAt().Format(time.RFC3339)})
	return t, nil
}

// JoinResult is what `sentry join` prints.
type JoinResult struct {
	ClusterID   string `json:"cluster_id"`
	ClusterName string `json:"cluster_name"`
	Node        string `json:"node"`
	Primary     string `json:"primary"`
	DiskSet     string `json:"disk_set"`
	Hardware    string `json:"hardware"`
}

// Join pairs this disk set, as the secondary, with the primary at addr,
// and starts the link. No lock of the agent is held across the call to
// the primary (status answers meanwhile).
func (l *Link) Join(ctx context.Context, tokenText, addr string) (*JoinResult, error) {
	tok, err := ParseToken(tokenText)
	if err != nil {
		return nil, err
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("primary address %q is not host:port", addr)
	}
	l.joinMu.Lock()
	defer l.joinMu.Unlock()
	if st := l.d.Identity().Stamp; st != nil {
		return nil, Initialized(st)
	}
	hw, hwErr := l.d.Hardware()
	if hwErr != nil {
		return nil, fmt.Errorf("cannot identify this machine: %w", hwErr)
	}
	if time.Now().After(tok.ExpiresAt()) {
		return nil, fmt.Errorf("the join token expired at %s: make a new one with `sentry token` on the primary", tok.ExpiresAt().Format(time.RFC3339))
	}
	key, err := pki.NewKey()
	if err != nil {
		return nil, err
	}
	cfg := l.d.Conf()
	name := cfg.Node.Name
	csr, err := pki.NewCSR(key, name)
	if err != nil {
		return nil, err
	}
	_, portStr, _ := net.SplitHostPort(cfg.Agent.Listen)
	port, _ := strconv.Atoi(portStr)
	diskSet := randomID()
	req := peer.JoinRequest{Secret: tok.Secret, CSR: string(csr), ListenPort: port,
		Node: peer.NodeStatus{Name: name, Role: stamp.RoleSecondary, DiskSet: diskSet, Hardware: hw,
			AgentVersion: l.d.Version, Protocol: l.codec.Version(), Time: time.Now().UTC()}}
	body, err := l.codec.Encode(peer.TypeJoinRequest, name, req)
	if err != nil {
		return nil, err
	}
	// The one call made before this node has a certificate: its own
	// transport, trusting the CA the token names.
	client := &http.Client{Timeout: cfg.Peer.Timeout.Duration * 2,
		Transport: &http.Transport{TLSClientConfig: pki.JoinTLS(tok.CAFingerprint), ForceAttemptHTTP2: false}}
	defer client.CloseIdleConnections()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+addr+"/v1/join", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("join %s: %w", addr, err)
	}
	defer resp.Body.Close()
	env, err := l.codec.Read(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("join %s: answer: %w", addr, err)
	}
	if env.Type == peer.TypeError {
		eb, _ := env.Error()
		return nil, fmt.Errorf("the primary %s refused the join: %s", addr, eb.Message)
	}
	jr, err := env.JoinResponse()
	if err != nil {
		return nil, fmt.Errorf("join %s: %w", addr, err)
	}
	ca, err := pki.ParseCert([]byte(jr.CA))
	if err != nil {
		return nil, fmt.Errorf("join %s: CA certificate: %w", addr, err)
	}
	if pki.Fingerprint(ca) != tok.CAFingerprint || pki.ClusterID(ca) != tok.ClusterID || jr.ClusterID != tok.ClusterID {
		return nil, fmt.Errorf("join %s: the answer is for another cluster than the token", addr)
	}
	cert, err := pki.ParseCert([]byte(jr.Cert))
	if err != nil {
		return nil, fmt.Errorf("join %s: node certificate: %w", addr, err)
	}
	if err := cert.CheckSignatureFrom(ca); err != nil || cert.Subject.CommonName != name {
		return nil, fmt.Errorf("join %s: the certificate received is not ours or not signed by the cluster CA", addr)
	}
	// This disk set knows no generation yet: the primary's is only bounded
	// (it becomes the stamp's other generation).
	if err := peer.CheckGeneration(jr.Primary.Generation, 0); err != nil {
		return nil, fmt.Errorf("join %s: the primary says %w", addr, err)
	}
	now := time.Now().UTC()
	cl := &stamp.Cluster{ClusterID: jr.ClusterID, ClusterName: jr.ClusterName, NodeName: name, PeerName: jr.Primary.Name, PeerAddress: addr}
	st := &stamp.Stamp{ClusterID: jr.ClusterID, ClusterName: jr.ClusterName, DiskSet: diskSet, Role: stamp.RoleSecondary,
		Generation: 1, HomeHardware: hw, OtherGeneration: jr.Primary.Generation, Written: now}
	if err := l.d.Commit(Commit{Fresh: true, CACert: ca, CertPEM: []byte(jr.Cert), Key: key,
		ClusterKey: jr.ClusterKey, Cluster: cl, Stamp: st}); err != nil {
		if errors.Is(err, ErrClusterKey) {
			return nil, fmt.Errorf("join %s: %w", addr, err)
		}
		return nil, err
	}
	l.SetPeer(&jr.Primary)
	if l.d.OnPeerStatus != nil { // the components know the peer from the join on, not from the first hello
		l.d.OnPeerStatus(&jr.Primary, nil)
	}
	l.d.Event("join", name, fmt.Sprintf("joined cluster %q as the secondary of %s (%s)", jr.ClusterName, jr.Primary.Name, addr),
		map[string]string{"cluster_id": jr.ClusterID, "primary": jr.Primary.Name, "hardware": hw, "disk_set": diskSet})
	if err := l.Start(); err != nil {
		return nil, err
	}
	return &JoinResult{ClusterID: jr.ClusterID, ClusterName: jr.ClusterName, Node: name, Primary: jr.Primary.Name,
		DiskSet: diskSet, Hardware: hw}, nil
}

// ErrClusterKey is wrapped by a Commit that could not write or load its
// cluster key.
var ErrClusterKey = errors.New("cluster key")

// handleJoin is the primary's side of a join (POST /v1/join on the peer
// port; the caller has no certificate yet). An unauthenticated request
// costs no disk write: past the limit of its source address it is answered
// 429 and counted; a refusal is logged (within that limit) and counted,
// and the counts become one join-refused event at most every
// joinSummaryEvery (noteUnauthenticated). The token is checked read-only
// first, then everything else in the request (the certificate request is
// signed), and only then spent; no lock is held across any of it.
func (l *Link) handleJoin(w http.ResponseWriter, r *http.Request) {
	g := &l.lim.join
	if ok, wait, which := g.joins.allow(r.RemoteAddr, time.Now()); !ok {
		l.lim.noteUnauthenticated(r.RemoteAddr, "too many join attempts", true)
		w.Header().Set("Retry-After", strconv.Itoa(roundUp(wait)))
		WriteEnvelope(w, http.StatusTooManyRequests, peer.TypeError, l.nodeName(),
			peer.ErrorBody{Message: fmt.Sprintf("too many join attempts %s: try again in %ds", which, roundUp(wait))})
		return
	}
	refuse := func(code int, reason string, err error) {
		l.d.Log.Warn("refused join", "peer", r.RemoteAddr, "reason", reason, "err", err)
		l.lim.noteUnauthenticated(r.RemoteAddr, reason, true)
		WriteEnvelope(w, code, peer.TypeError, l.nodeName(), peer.ErrorBody{Message: reason})
	}
	env, err := l.codec.Read(http.MaxBytesReader(w, r.Body, peer.MaxMessageSize))
	if err != nil {
		refuse(http.StatusBadRequest, "bad message: "+err.Error(), err)
		return
	}
	req, err := env.JoinRequest()
	if err != nil {
		refuse(http.StatusBadRequest, "bad join request: "+err.Error(), err)
		return
	}
	// One join at a time past the limits (the status and the peer link go
	// on meanwhile).
	g.serve.Lock()
	defer g.serve.Unlock()
	id := l.d.Identity()
	var signer *pki.CA
	var own string
	var known uint64
	if id.Node != nil && id.Cluster != nil && id.Stamp != nil {
		signer, err = id.Node.Signer()
		own, known = id.Cluster.NodeName, max(id.Stamp.Generation, id.Stamp.OtherGeneration)
	} else {
		err = errors.New("not initialized")
	}
	if err != nil {
		refuse(http.StatusForbidden, "this node is not the cluster's primary", err)
		return
	}
	if req.Node.Name == own {
		refuse(http.StatusConflict, fmt.Sprintf("node name %q is the primary's own; give the secondary another name", req.Node.Name), nil)
		return
	}
	if err := peer.CheckGeneration(req.Node.Generation, known); err != nil {
		refuse(http.StatusBadRequest, "bad join request: "+err.Error(), err)
		return
	}
	hash, now := store.HashSecret([]byte(req.Secret)), time.Now()
	tokenRefused := func(err error) {
		reason := "join token refused"
		switch {
		case errors.Is(err, store.ErrTokenUsed):
			reason = "join token already used"
		case errors.Is(err, store.ErrTokenExpired):
			reason = "join token expired"
		case errors.Is(err, store.ErrTokenUnknown):
			reason = "join token unknown"
		}
		refuse(http.StatusForbidden, reason, err)
	}
	st := l.d.Store()
	if _, err := st.CheckToken(hash, now); err != nil { // read-only
		tokenRefused(err)
		return
	}
	certPEM, err := signer.SignCSR([]byte(req.CSR), req.Node.Name, now)
	if err != nil {
		refuse(http.StatusBadRequest, "certificate request: "+err.Error(), err)
		return
	}
	// Everything checked: spend the token (atomically: a second join with
	// it, even at the same time, is refused here).
	if _, err := st.UseToken(hash, now, req.Node.Name+"@"+r.RemoteAddr); err != nil {
		tokenRefused(err)
		return
	}
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	cl := *l.d.Identity().Cluster
	if cl.PeerName != "" && cl.PeerName != req.Node.Name {
		l.d.Log.Warn("join replaces the earlier secondary", "old", cl.PeerName, "new", req.Node.Name)
	}
	cl.PeerName, cl.PeerAddress = req.Node.Name, net.JoinHostPort(host, strconv.Itoa(req.ListenPort))
	if err := l.d.Commit(Commit{Cluster: &cl}); err != nil {
		l.d.Log.Error("join: cluster state", "err", err)
		WriteEnvelope(w, http.StatusInternalServerError, peer.TypeError, l.nodeName(), peer.ErrorBody{Message: "primary could not record the join"})
		return
	}
	l.SetPeer(&req.Node)
	if l.d.OnPeerStatus != nil {
		l.d.OnPeerStatus(&req.Node, nil)
	}
	l.d.Event("join", req.Node.Name, fmt.Sprintf("node %s joined from %s as the secondary", req.Node.Name, r.RemoteAddr),
		map[string]string{"peer": r.RemoteAddr, "hardware": req.Node.Hardware, "disk_set": req.Node.DiskSet})
	l.d.Log.Info("node joined", "node", req.Node.Name, "peer", r.RemoteAddr)
	id = l.d.Identity()
	WriteEnvelope(w, http.StatusOK, peer.TypeJoinResponse, l.nodeName(), peer.JoinResponse{
		Cert: string(certPEM), CA: string(pki.CertPEM(id.Node.CA)), ClusterID: id.Stamp.ClusterID,
		ClusterName: id.Stamp.ClusterName, Primary: l.d.SelfStatus(), ClusterKey: l.d.ClusterKey()})
}
