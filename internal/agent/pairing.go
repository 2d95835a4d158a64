package agent

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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

// Init makes this disk set the primary of a new cluster.
func (a *Agent) Init(name string, ttl time.Duration) (*InitResult, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stamp != nil {
		return nil, fmt.Errorf("%w %q (%s)", ErrInitialized, a.stamp.ClusterName, a.stamp.ClusterID)
	}
	if a.hwErr != nil {
		return nil, fmt.Errorf("cannot identify this machine: %w", a.hwErr)
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
	nodeName := a.conf().Node.Name
	certPEM, err := ca.SignKey(key, nodeName, now)
	if err != nil {
		return nil, err
	}
	if err := pki.Save(a.statePath("pki"), ca.Cert, ca.Key, certPEM, key); err != nil {
		return nil, err
	}
	ck, err := synchronizer.NewClusterKey()
	if err != nil {
		return nil, err
	}
	if err := a.saveClusterKeyLocked(ck); err != nil {
		return nil, err
	}
	st := &stamp.Stamp{ClusterID: clusterID, ClusterName: name, DiskSet: randomID(), Role: stamp.RolePrimary,
		Generation: 1, HomeHardware: a.hw.ID, Written: now}
	cl := &stamp.Cluster{ClusterID: clusterID, ClusterName: name, NodeName: nodeName}
	if err := a.commitIdentityLocked(cl, st); err != nil {
		return nil, err
	}
	a.event("init", nodeName, fmt.Sprintf("cluster %q created; this disk set is the primary, generation 1", name),
		map[string]string{"cluster_id": clusterID, "hardware": a.hw.ID, "disk_set": st.DiskSet})
	tok, err := a.newTokenLocked(ttl)
	if err != nil {
		return nil, err
	}
	a.updateMachinesLocked()
	if err := a.startPeerLocked(); err != nil {
		return nil, err
	}
	return &InitResult{ClusterID: clusterID, ClusterName: name, Node: nodeName, DiskSet: st.DiskSet,
		Hardware: a.hw.ID, CAFingerprint: pki.Fingerprint(ca.Cert), Token: tok.String(), TokenExpires: tok.ExpiresAt()}, nil
}

// NewToken makes another one-time join token (primary only).
func (a *Agent) NewToken(ttl time.Duration) (Token, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.node == nil || a.node.CAKey == nil {
		return Token{}, errors.New("join tokens are made on the primary that ran `sentry init`")
	}
	return a.newTokenLocked(ttl)
}

func (a *Agent) newTokenLocked(ttl time.Duration) (Token, error) {
	if ttl <= 0 {
		ttl = DefaultTokenTTL
	}
	secret, err := newSecret()
	if err != nil {
		return Token{}, err
	}
	now := time.Now().UTC()
	t := Token{ClusterID: a.stamp.ClusterID, Primary: a.cluster.NodeName, CAFingerprint: pki.Fingerprint(a.node.CA),
		Secret: secret, Expires: now.Add(ttl).Unix()}
	if err := a.store.PutToken(store.Token{Hash: store.HashSecret([]byte(secret)), Created: now, Expires: t.ExpiresAt()}); err != nil {
		return Token{}, err
	}
	a.event("token", a.cluster.NodeName, "join token made", map[string]string{"expires": t.ExpiresAt().Format(time.RFC3339)})
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

// Join pairs this disk set, as the secondary, with the primary at addr.
func (a *Agent) Join(ctx context.Context, tokenText, addr string) (*JoinResult, error) {
	tok, err := ParseToken(tokenText)
	if err != nil {
		return nil, err
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("primary address %q is not host:port", addr)
	}
	// One join at a time; the agent's lock is held only to check and to
	// commit, never across the call to the primary (status answers meanwhile).
	a.joinMu.Lock()
	defer a.joinMu.Unlock()
	a.mu.Lock()
	if a.stamp != nil {
		err := fmt.Errorf("%w %q (%s)", ErrInitialized, a.stamp.ClusterName, a.stamp.ClusterID)
		a.mu.Unlock()
		return nil, err
	}
	hw, hwErr := a.hw, a.hwErr
	a.mu.Unlock()
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
	name := a.conf().Node.Name
	csr, err := pki.NewCSR(key, name)
	if err != nil {
		return nil, err
	}
	_, portStr, _ := net.SplitHostPort(a.conf().Agent.Listen)
	port, _ := strconv.Atoi(portStr)
	diskSet := randomID()
	req := peer.JoinRequest{Secret: tok.Secret, CSR: string(csr), ListenPort: port,
		Node: peer.NodeStatus{Name: name, Role: stamp.RoleSecondary, DiskSet: diskSet, Hardware: hw.ID,
			AgentVersion: a.version, Protocol: a.paths.codec.Version(), Time: time.Now().UTC()}}
	body, err := peer.Encode(peer.TypeJoinRequest, name, req)
	if err != nil {
		return nil, err
	}
	client := &http.Client{Timeout: a.conf().Peer.Timeout.Duration * 2,
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
	env, err := peer.Read(resp.Body)
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
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stamp != nil {
		return nil, fmt.Errorf("%w %q (%s)", ErrInitialized, a.stamp.ClusterName, a.stamp.ClusterID)
	}
	if err := pki.Save(a.statePath("pki"), ca, nil, []byte(jr.Cert), key); err != nil {
		return nil, err
	}
	if jr.ClusterKey != "" {
		if err := a.saveClusterKeyLocked(jr.ClusterKey); err != nil {
			return nil, fmt.Errorf("join %s: cluster key: %w", addr, err)
		}
	}
	now := time.Now().UTC()
	cl := &stamp.Cluster{ClusterID: jr.ClusterID, ClusterName: jr.ClusterName, NodeName: name, PeerName: jr.Primary.Name, PeerAddress: addr}
	st := &stamp.Stamp{ClusterID: jr.ClusterID, ClusterName: jr.ClusterName, DiskSet: diskSet, Role: stamp.RoleSecondary,
		Generation: 1, HomeHardware: hw.ID, OtherGeneration: jr.Primary.Generation, Written: now}
	if err := a.commitIdentityLocked(cl, st); err != nil {
		return nil, err
	}
	a.link = linkState{Reachable: true, LastContact: now, Peer: &jr.Primary}
	a.event("join", name, fmt.Sprintf("joined cluster %q as the secondary of %s (%s)", jr.ClusterName, jr.Primary.Name, addr),
		map[string]string{"cluster_id": jr.ClusterID, "primary": jr.Primary.Name, "hardware": hw.ID, "disk_set": diskSet})
	if err := a.startPeerLocked(); err != nil {
		return nil, err
	}
	return &JoinResult{ClusterID: jr.ClusterID, ClusterName: jr.ClusterName, Node: name, Primary: jr.Primary.Name,
		DiskSet: diskSet, Hardware: hw.ID}, nil
}

// handleJoin is the primary's side of a join (POST /v1/join on the peer
// port; the caller has no certificate yet). An unauthenticated request
// costs no disk write: past the limit of its source address it is answered
// 429 and counted; a refusal is logged (within that limit) and counted,
// and the counts become one join-refused event at most every
// joinSummaryEvery (noteUnauthenticated). The token is checked read-only
// first, then everything else in the request (the certificate request is
// signed), and only then spent; the agent's lock is not held across any of
// it.
func (a *Agent) handleJoin(w http.ResponseWriter, r *http.Request) {
	g := &a.limits().join
	if ok, wait, which := g.joins.allow(r.RemoteAddr, time.Now()); !ok {
		a.noteUnauthenticated(r.RemoteAddr, "too many join attempts", true)
		w.Header().Set("Retry-After", strconv.Itoa(roundUp(wait)))
		writeEnvelope(w, http.StatusTooManyRequests, peer.TypeError, a.nodeName(),
			peer.ErrorBody{Message: fmt.Sprintf("too many join attempts %s: try again in %ds", which, roundUp(wait))})
		return
	}
	refuse := func(code int, reason string, err error) {
		a.log.Warn("refused join", "peer", r.RemoteAddr, "reason", reason, "err", err)
		a.noteUnauthenticated(r.RemoteAddr, reason, true)
		writeEnvelope(w, code, peer.TypeError, a.nodeName(), peer.ErrorBody{Message: reason})
	}
	env, err := peer.Read(http.MaxBytesReader(w, r.Body, peer.MaxMessageSize))
	if err != nil {
		refuse(http.StatusBadRequest, "bad message: "+err.Error(), err)
		return
	}
	req, err := env.JoinRequest()
	if err != nil {
		refuse(http.StatusBadRequest, "bad join request: "+err.Error(), err)
		return
	}
	// One join at a time past the limits (not under a.mu: the status and
	// the peer link go on meanwhile).
	g.serve.Lock()
	defer g.serve.Unlock()
	a.mu.Lock()
	var signer *pki.CA
	var own string
	var known uint64
	if a.node != nil && a.cluster != nil && a.stamp != nil {
		signer, err = a.node.Signer()
		own, known = a.cluster.NodeName, max(a.stamp.Generation, a.stamp.OtherGeneration)
	} else {
		err = errors.New("not initialized")
	}
	a.mu.Unlock()
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
	if _, err := a.store.CheckToken(hash, now); err != nil { // read-only
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
	if _, err := a.store.UseToken(hash, now, req.Node.Name+"@"+r.RemoteAddr); err != nil {
		tokenRefused(err)
		return
	}
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	a.mu.Lock()
	defer a.mu.Unlock()
	cl := *a.cluster
	if cl.PeerName != "" && cl.PeerName != req.Node.Name {
		a.log.Warn("join replaces the earlier secondary", "old", cl.PeerName, "new", req.Node.Name)
	}
	cl.PeerName, cl.PeerAddress = req.Node.Name, net.JoinHostPort(host, strconv.Itoa(req.ListenPort))
	if err := stamp.WriteCluster(a.statePath(stamp.ClusterFile), &cl); err != nil {
		a.log.Error("join: cluster state", "err", err)
		writeEnvelope(w, http.StatusInternalServerError, peer.TypeError, a.nodeName(), peer.ErrorBody{Message: "primary could not record the join"})
		return
	}
	a.cluster = &cl
	a.link = linkState{Reachable: true, LastContact: time.Now().UTC(), Peer: &req.Node}
	a.event("join", req.Node.Name, fmt.Sprintf("node %s joined from %s as the secondary", req.Node.Name, r.RemoteAddr),
		map[string]string{"peer": r.RemoteAddr, "hardware": req.Node.Hardware, "disk_set": req.Node.DiskSet})
	a.log.Info("node joined", "node", req.Node.Name, "peer", r.RemoteAddr)
	writeEnvelope(w, http.StatusOK, peer.TypeJoinResponse, a.nodeName(), peer.JoinResponse{
		Cert: string(certPEM), CA: string(pki.CertPEM(a.node.CA)), ClusterID: a.stamp.ClusterID,
		ClusterName: a.stamp.ClusterName, Primary: a.selfStatusLocked(), ClusterKey: a.clusterKeyLocked()})
}

func (a *Agent) nodeName() string { return a.conf().Node.Name }

// commitIdentityLocked writes the cluster state, then the disk stamp, and
// takes both with the certificates saved before. The stamp is last: a
// crash in between leaves no stamp, so the disk set still reads as new.
func (a *Agent) commitIdentityLocked(cl *stamp.Cluster, st *stamp.Stamp) error {
	if err := stamp.WriteCluster(a.statePath(stamp.ClusterFile), cl); err != nil {
		return err
	}
	if err := stamp.WriteStamp(a.statePath(stamp.StampFile), st); err != nil {
		return err
	}
	node, err := pki.Load(a.statePath("pki"))
	if err != nil {
		return err
	}
	a.stamp, a.cluster, a.node = st, cl, node
	return nil
}

// clusterKeyLocked is the cluster key as text, for the joining node.
func (a *Agent) clusterKeyLocked() string {
	b, err := os.ReadFile(filepath.Join(a.statePath("pki"), pki.ClusterKeyFile))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func (a *Agent) event(kind, node, msg string, fields map[string]string) {
	if _, err := a.store.AppendEvent(store.Event{Time: time.Now().UTC(), Kind: kind, Node: node, Message: msg, Fields: fields}); err != nil {
		a.log.Error("store event", "kind", kind, "err", err)
	}
}

func writeEnvelope(w http.ResponseWriter, code int, typ, from string, body any) {
	b, err := peer.Encode(typ, from, body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(b)
}
