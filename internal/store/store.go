// Package store is the embedded, crash-safe state store of the sentry agent.
//
// It keeps these records in one bbolt file: an append-only log of events,
// join tokens (only the hash of each secret, never the secret), the last
// known record of each peer node, the recent results of each probe on each
// node, the state of the alerts, the last readiness verdict, the
// failover plans and records, and the history that outlives the results
// (hourly and weekly rollups, the weekly reports: rollup.go). Every write
// is one bbolt transaction, fsynced on commit, so a write that has
// returned survives the process being killed. Only one process can have
// the file open at a time:
// bbolt holds an exclusive file lock for as long as the store is open.
package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"sort"
	"strconv"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// SchemaVersion is the layout version of the store file. Open records it in
// the "meta" bucket of a new file and refuses a file that records a newer
// one, since an older sentry cannot know what a newer one wrote.
//
// Adding a bucket does not change the version: Open creates missing buckets
// in a file of the same version, and a sentry that does not know a bucket
// leaves it alone. The "results" and "alert" buckets came that way; a
// version 1 file written before them gains them when it is opened.
const SchemaVersion = 1

// Errors returned by UseToken. They are wrapped with details, so compare them
// with errors.Is.
var (
	// ErrTokenUnknown means no token with the given hash is stored.
	ErrTokenUnknown = errors.New("join token unknown")
	// ErrTokenExpired means the token's expiry time has passed.
	ErrTokenExpired = errors.New("join token expired")
	// ErrTokenUsed means the token was already used once.
	ErrTokenUsed = errors.New("join token already used")
)

// Bucket and key names inside the bbolt file.
var (
	bucketMeta     = []byte("meta")
	bucketEvents   = []byte("events")
	bucketTokens   = []byte("tokens")
	bucketPeers    = []byte("peers")
	bucketResults  = []byte("results") // node -> probe -> resultKey -> StoredResult
	bucketAlert    = []byte("alert")
	bucketVerdict  = []byte("verdict")  // "last" -> the last readiness verdict
	bucketFailover = []byte("failover") // "plan" | "record" -> id -> document

	allBuckets = [][]byte{bucketMeta, bucketEvents, bucketTokens, bucketPeers, bucketResults, bucketAlert, bucketVerdict, bucketFailover,
		bucketHourly, bucketWeekly, bucketReports} // the last three: rollup.go

	keySchema     = []byte("schema_version")
	keyAlertState = []byte("state")
	keyVerdict    = []byte("last")
)

// defaultLockTimeout is how long Open waits for the file lock when
// Options.LockTimeout is zero.
const defaultLockTimeout = 2 * time.Second

// Options changes how Open opens the store.
type Options struct {
	// LockTimeout is how long Open waits for the file lock held by another
	// process before it gives up. Zero means 2 seconds.
	LockTimeout time.Duration
}

// Store is an open store file. Its methods are safe for concurrent use by
// several goroutines of the one process that opened it.
type Store struct {
	db      *bolt.DB
	path    string
	rollups rollupCache // the rollups PutResults last wrote
	peers   peerQueue   // peer records PutPeerSoon holds for the next write
}

// Open opens the store file at path, creating it with mode 0600 if it does
// not exist, and creates any missing buckets. A new file gets SchemaVersion
// recorded in it; a file that records a newer schema version is refused. If
// another process holds the file, Open waits up to opt.LockTimeout and then
// fails with an error naming the path.
func Open(path string, opt Options) (*Store, error) {
	timeout := opt.LockTimeout
	if timeout <= 0 {
		timeout = defaultLockTimeout
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("store: open %s: another process (the sentry agent?) holds the file lock; gave up after %s: %w", path, timeout, err)
		}
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	s := &Store{db: db, path: path}
	if err := s.init(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// init checks the schema version and creates the buckets. The check runs in
// a read transaction first, so that a file from a newer sentry is refused
// without being written to.
func (s *Store) init() error {
	var (
		stored    uint64
		found     bool
		needWrite bool
	)
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		stored, found, err = readSchema(tx)
		for _, name := range allBuckets {
			if tx.Bucket(name) == nil {
				needWrite = true
			}
		}
		if tx.Bucket(bucketHourlyByProbe) != nil || tx.Bucket(bucketWeeklyByProbe) != nil {
			needWrite = true // rollups to move (migrateRollups)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("store: open %s: %w", s.path, err)
	}
	if found && stored > SchemaVersion {
		return fmt.Errorf("store: open %s: the file has schema version %d, but this sentry only knows schema version %d or older; use a newer sentry", s.path, stored, SchemaVersion)
	}
	// Nothing older than version 1 exists. Within it, the builds before
	// kept the rollups in a bucket per probe: moved here.
	if found && !needWrite {
		return nil
	}
	err = s.update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %q: %w", name, err)
			}
		}
		if _, err := migrateRollups(tx); err != nil {
			return err
		}
		if found {
			return nil
		}
		return tx.Bucket(bucketMeta).Put(keySchema, []byte(strconv.FormatUint(SchemaVersion, 10)))
	})
	if err != nil {
		return fmt.Errorf("store: open %s: %w", s.path, err)
	}
	return nil
}

// readSchema returns the schema version recorded in tx, if any.
func readSchema(tx *bolt.Tx) (uint64, bool, error) {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return 0, false, nil
	}
	v := meta.Get(keySchema)
	if v == nil {
		return 0, false, nil
	}
	n, err := strconv.ParseUint(string(v), 10, 64)
	if err != nil || n == 0 {
		return 0, false, fmt.Errorf("meta bucket holds an invalid schema version %q", v)
	}
	return n, true, nil
}

// Close closes the store file and releases its lock.
func (s *Store) Close() error {
	if len(s.peers.held()) > 0 {
		if err := s.update(func(*bolt.Tx) error { return nil }); err != nil {
			s.db.Close()
			return fmt.Errorf("store: close %s: the peers' records: %w", s.path, err)
		}
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: close %s: %w", s.path, err)
	}
	return nil
}

// Path returns the path the store was opened with.
func (s *Store) Path() string { return s.path }

// Check runs bbolt's consistency check over the whole file in a read
// transaction and returns the first problem it finds, naming the path, or
// nil if the file is consistent.
func (s *Store) Check() error {
	var first error
	more := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		// Drain the channel fully so that the checking goroutine ends
		// before the transaction does.
		for err := range tx.Check() {
			if first == nil {
				first = err
			} else {
				more++
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: check %s: %w", s.path, err)
	}
	if first != nil {
		if more > 0 {
			return fmt.Errorf("store: check %s: %w (and %d more problems)", s.path, first, more)
		}
		return fmt.Errorf("store: check %s: %w", s.path, first)
	}
	return nil
}

// ---------------------------------------------------------------- events

// Event is one entry of the event log.
type Event struct {
	Seq     uint64            `json:"seq"` // assigned by AppendEvent, increasing, never reused
	Time    time.Time         `json:"time"`
	Kind    string            `json:"kind"` // e.g. "join", "peer-refused", "failover"
	Node    string            `json:"node,omitempty"`
	Message string            `json:"message"`
	Fields  map[string]string `json:"fields,omitempty"`
}

// seqKey is the bbolt key of an event: its sequence number as 8 big-endian
// bytes, so that keys sort in sequence order.
func seqKey(seq uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	return k[:]
}

// decodeEvent decodes a stored event and checks that its key and its Seq
// agree.
func decodeEvent(k, v []byte) (Event, error) {
	if len(k) != 8 {
		return Event{}, fmt.Errorf("event key %x is not 8 bytes long", k)
	}
	var e Event
	if err := json.Unmarshal(v, &e); err != nil {
		return Event{}, fmt.Errorf("event %d: %w", binary.BigEndian.Uint64(k), err)
	}
	if seq := binary.BigEndian.Uint64(k); e.Seq != seq {
		return Event{}, fmt.Errorf("event stored under seq %d says seq %d", seq, e.Seq)
	}
	return e, nil
}

// AppendEvent adds e to the event log and returns the sequence number it was
// given (e.Seq is ignored). A zero e.Time is set to the current time. The
// event is on disk when AppendEvent returns without error.
func (s *Store) AppendEvent(e Event) (uint64, error) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEvents)
		b.FillPercent = appendFill
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		e.Seq = seq
		v, err := json.Marshal(e)
		if err != nil {
			return err
		}
		return b.Put(seqKey(seq), v)
	})
	if err != nil {
		return 0, fmt.Errorf("store %s: append event: %w", s.path, err)
	}
	return e.Seq, nil
}

// Events returns the events whose sequence number is greater than afterSeq,
// oldest first, at most limit of them; a limit of zero or less means all.
func (s *Store) Events(afterSeq uint64, limit int) ([]Event, error) {
	var out []Event
	if afterSeq == math.MaxUint64 {
		return out, nil
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketEvents).Cursor()
		for k, v := c.Seek(seqKey(afterSeq + 1)); k != nil; k, v = c.Next() {
			if limit > 0 && len(out) >= limit {
				break
			}
			e, err := decodeEvent(k, v)
			if err != nil {
				return err
			}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store %s: read events: %w", s.path, err)
	}
	return out, nil
}

// LastEvents returns the newest n events, oldest first. It returns no events
// if n is zero or less.
func (s *Store) LastEvents(n int) ([]Event, error) {
	var out []Event
	if n <= 0 {
		return out, nil
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketEvents).Cursor()
		for k, v := c.Last(); k != nil && len(out) < n; k, v = c.Prev() {
			e, err := decodeEvent(k, v)
			if err != nil {
				return err
			}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store %s: read events: %w", s.path, err)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

// ---------------------------------------------------------------- tokens

// Token is a join token as stored: the hash of its secret and its life
// times. The secret itself is never stored.
type Token struct {
	Hash    string    `json:"hash"` // HashSecret of the secret
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
	Used    time.Time `json:"used,omitempty"`    // zero until the token is used
	UsedBy  string    `json:"used_by,omitempty"` // who used it
}

// HashSecret returns the lowercase hex SHA-256 of a token secret, the form
// in which tokens are stored and looked up.
func HashSecret(secret []byte) string {
	sum := sha256.Sum256(secret)
	return hex.EncodeToString(sum[:])
}

// validHash reports whether h looks like the output of HashSecret. It keeps
// a caller from storing a secret by mistake in place of its hash.
func validHash(h string) bool {
	if len(h) != sha256.Size*2 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// PutToken stores t, replacing any token with the same hash. t.Hash must be
// a HashSecret result (64 lowercase hex digits) and t.Expires must be set.
func (s *Store) PutToken(t Token) error {
	if !validHash(t.Hash) {
		return fmt.Errorf("store %s: put token: hash is not 64 lowercase hex digits (pass HashSecret(secret), never the secret)", s.path)
	}
	if t.Expires.IsZero() {
		return fmt.Errorf("store %s: put token %s: no expiry time", s.path, shortHash(t.Hash))
	}
	v, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("store %s: put token %s: %w", s.path, shortHash(t.Hash), err)
	}
	err = s.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTokens).Put([]byte(t.Hash), v)
	})
	if err != nil {
		return fmt.Errorf("store %s: put token %s: %w", s.path, shortHash(t.Hash), err)
	}
	return nil
}

// shortHash returns the first 12 characters of a token hash, enough to
// name it in a message.
func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// UseToken marks the token with the given hash as used at now by by, and
// returns it as stored afterwards. Lookup and marking happen in one
// transaction, so a token can be used only once even under concurrent
// callers. It fails with an error wrapping ErrTokenUnknown if no such token
// is stored, ErrTokenUsed if it was used before, or ErrTokenExpired if now
// is after its expiry time, in that order of precedence.
func (s *Store) UseToken(hash string, now time.Time, by string) (Token, error) {
	var t Token
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTokens)
		var err error
		if t, err = usableToken(b.Get([]byte(hash)), now); err != nil {
			return err
		}
		t.Used = now
		t.UsedBy = by
		nv, err := json.Marshal(t)
		if err != nil {
			return err
		}
		return b.Put([]byte(hash), nv)
	})
	if err != nil {
		return Token{}, fmt.Errorf("store %s: use token %s: %w", s.path, shortHash(hash), err)
	}
	return t, nil
}

// CheckToken says what UseToken would, with the same errors, but only
// reads (it changes nothing). A caller checks the token, then the rest of
// its request, and only then spends the token with UseToken (which
// decides again, atomically).
func (s *Store) CheckToken(hash string, now time.Time) (Token, error) {
	var t Token
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		t, err = usableToken(tx.Bucket(bucketTokens).Get([]byte(hash)), now)
		return err
	})
	if err != nil {
		return Token{}, fmt.Errorf("store %s: check token %s: %w", s.path, shortHash(hash), err)
	}
	return t, nil
}

// usableToken decodes a stored token and says whether it can be used at now.
func usableToken(v []byte, now time.Time) (Token, error) {
	var t Token
	if v == nil {
		return t, ErrTokenUnknown
	}
	if err := json.Unmarshal(v, &t); err != nil {
		return t, fmt.Errorf("decode token: %w", err)
	}
	if !t.Used.IsZero() {
		return t, fmt.Errorf("%w (at %s by %q)", ErrTokenUsed, t.Used.Format(time.RFC3339), t.UsedBy)
	}
	if now.After(t.Expires) {
		return t, fmt.Errorf("%w (at %s)", ErrTokenExpired, t.Expires.Format(time.RFC3339))
	}
	return t, nil
}

// Tokens returns all stored tokens, oldest Created first.
func (s *Store) Tokens() ([]Token, error) {
	var out []Token
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTokens).ForEach(func(k, v []byte) error {
			var t Token
			if err := json.Unmarshal(v, &t); err != nil {
				return fmt.Errorf("decode token %s: %w", shortHash(string(k)), err)
			}
			out = append(out, t)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store %s: read tokens: %w", s.path, err)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, nil
}

// ---------------------------------------------------------------- peers

// PeerRecord is the last known record of one peer node.
type PeerRecord struct {
	Name        string          `json:"name"`
	LastContact time.Time       `json:"last_contact"`
	Address     string          `json:"address,omitempty"`
	Status      json.RawMessage `json:"status,omitempty"` // any JSON value; the store does not look inside
}

// encodePeer is p as stored, or an error naming the store and the peer.
func encodePeer(path string, p PeerRecord) ([]byte, error) {
	if p.Name == "" {
		return nil, fmt.Errorf("store %s: put peer: empty name", path)
	}
	v, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("store %s: put peer %q: %w", path, p.Name, err)
	}
	return v, nil
}

// PutPeer stores p as the record of the peer p.Name, replacing the previous
// one. p.Name must not be empty, and p.Status, if set, must be valid JSON.
func (s *Store) PutPeer(p PeerRecord) error {
	v, err := encodePeer(s.path, p)
	if err != nil {
		return err
	}
	s.peers.drop(p.Name) // this one is newer
	err = s.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketPeers).Put([]byte(p.Name), v)
	})
	if err != nil {
		return fmt.Errorf("store %s: put peer %q: %w", s.path, p.Name, err)
	}
	return nil
}

// PeerWriteEvery bounds how long PutPeerSoon holds a record back.
const PeerWriteEvery = time.Minute

// peerQueue holds the peer records PutPeerSoon has not written yet.
type peerQueue struct {
	mu      sync.Mutex
	pending map[string][]byte // name -> encoded record
	written time.Time         // when a held record was last written
}

// hold keeps v as the record of name; due: the last write of a held
// record is PeerWriteEvery old or more.
func (q *peerQueue) hold(name string, v []byte) (due bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.pending == nil {
		q.pending = map[string][]byte{}
	}
	q.pending[name] = v
	return time.Since(q.written) >= PeerWriteEvery
}

// get is the held record of name.
func (q *peerQueue) get(name string) ([]byte, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	v, ok := q.pending[name]
	return v, ok
}

// drop forgets the held record of name (a newer one is written).
func (q *peerQueue) drop(name string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.pending, name)
}

// held is a copy of the held records, for a write.
func (q *peerQueue) held() map[string][]byte {
	q.mu.Lock()
	defer q.mu.Unlock()
	return maps.Clone(q.pending)
}

// wrote says the records of w were written: those not replaced since
// are no longer held.
func (q *peerQueue) wrote(w map[string][]byte) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for name, v := range w {
		if cur, ok := q.pending[name]; ok && &cur[0] == &v[0] {
			delete(q.pending, name)
		}
	}
	q.written = time.Now()
}

// PutPeerSoon stores p as PutPeer does, but without a write of its own
// while the last one is younger than PeerWriteEvery: the record goes to the
// file with the store's next write (of any kind), at the latest with the
// first PutPeerSoon after PeerWriteEvery, and at Close. Peer returns it at
// once. For the record of each contact with the peer (every few seconds),
// whose last minute a crash may lose: the peer says it again.
func (s *Store) PutPeerSoon(p PeerRecord) error {
	v, err := encodePeer(s.path, p)
	if err != nil {
		return err
	}
	if !s.peers.hold(p.Name, v) {
		return nil
	}
	if err := s.update(func(*bolt.Tx) error { return nil }); err != nil {
		return fmt.Errorf("store %s: put peer %q: %w", s.path, p.Name, err)
	}
	return nil
}

// update is db.Update of fn, with the peer records PutPeerSoon holds
// written in the same transaction (and no longer held once it commits).
func (s *Store) update(fn func(*bolt.Tx) error) error {
	var held map[string][]byte
	err := s.db.Update(func(tx *bolt.Tx) error {
		held = s.peers.held()
		for name, v := range held { // before fn: a PutPeer in fn is newer
			if err := tx.Bucket(bucketPeers).Put([]byte(name), v); err != nil {
				return err
			}
		}
		return fn(tx)
	})
	if err == nil && len(held) > 0 {
		s.peers.wrote(held)
	}
	return err
}

// Peer returns the record of the peer called name (the one PutPeerSoon
// holds, else the file's), and whether there is one.
func (s *Store) Peer(name string) (PeerRecord, bool, error) {
	var p PeerRecord
	if v, held := s.peers.get(name); held {
		if err := json.Unmarshal(v, &p); err != nil {
			return PeerRecord{}, false, fmt.Errorf("store %s: read peer %q: %w", s.path, name, err)
		}
		return p, true, nil
	}
	var found bool
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketPeers).Get([]byte(name))
		if v == nil {
			return nil
		}
		found = true
		// Unmarshal copies, so p stays valid after the transaction.
		return json.Unmarshal(v, &p)
	})
	if err != nil {
		return PeerRecord{}, false, fmt.Errorf("store %s: read peer %q: %w", s.path, name, err)
	}
	return p, found, nil
}

// ---------------------------------------------------------------- retention

// Retention says what Prune deletes. A zero field sets no limit.
type Retention struct {
	// MaxResults keeps the results of the last MaxResults writes of each
	// node and probe, deleting the older ones (see pruneResults: a result
	// written out of time order can hold a few for longer).
	MaxResults int
	// MaxAge deletes events whose Time is before now minus MaxAge, and
	// every result of a probe whose newest result started before then (a
	// probe no longer run, or a name the peer sent once).
	MaxAge time.Duration
	// MaxEvents keeps at most this many events, deleting the oldest.
	MaxEvents int
	// TokenAge deletes tokens that were used, or have expired, more than
	// TokenAge before now. Tokens still usable are never deleted.
	TokenAge time.Duration
	// HourlyAge and WeeklyAge delete hourly rollups, and weekly rollups
	// and stored reports, older than this (see rollup.go). Unlike the
	// fields above, zero means the default (DefaultHourlyAge,
	// DefaultWeeklyAge): the history is never kept without a limit.
	HourlyAge time.Duration
	WeeklyAge time.Duration
}

// Prune deletes the events, tokens, probe results and history (rollups,
// stored reports) that r says to drop, in one transaction, and returns how
// many records it deleted. Sequence numbers of deleted events are never
// given out again. Peer records and the alert state are kept.
func (s *Store) Prune(now time.Time, r Retention) (deleted int, err error) {
	err = s.update(func(tx *bolt.Tx) error {
		deleted = 0
		n, err := pruneEvents(tx.Bucket(bucketEvents), now, r)
		if err != nil {
			return err
		}
		deleted += n
		n, err = pruneTokens(tx.Bucket(bucketTokens), now, r)
		if err != nil {
			return err
		}
		deleted += n
		n, err = pruneResults(tx.Bucket(bucketResults), now, r)
		deleted += n
		if err != nil {
			return err
		}
		n, err = pruneHistory(tx, now, r)
		deleted += n
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store %s: prune: %w", s.path, err)
	}
	return deleted, nil
}

// pruneEvents applies the age and count limits of r to the event bucket.
// Keys are collected first and deleted afterwards, since deleting under a
// bbolt cursor can make it skip the next key.
func pruneEvents(b *bolt.Bucket, now time.Time, r Retention) (int, error) {
	var drop [][]byte
	kept := 0
	cutoff := now.Add(-r.MaxAge)
	err := b.ForEach(func(k, v []byte) error {
		if r.MaxAge > 0 {
			e, err := decodeEvent(k, v)
			if err != nil {
				return err
			}
			// Times are set by callers and need not rise with Seq, so
			// every event is looked at.
			if e.Time.Before(cutoff) {
				drop = append(drop, bytes.Clone(k))
				return nil
			}
		}
		kept++
		return nil
	})
	if err != nil {
		return 0, err
	}
	if r.MaxEvents > 0 && kept > r.MaxEvents {
		excess := kept - r.MaxEvents
		dropped := make(map[string]bool, len(drop))
		for _, k := range drop {
			dropped[string(k)] = true
		}
		c := b.Cursor()
		for k, _ := c.First(); k != nil && excess > 0; k, _ = c.Next() {
			if dropped[string(k)] {
				continue
			}
			drop = append(drop, bytes.Clone(k))
			excess--
		}
	}
	for _, k := range drop {
		if err := b.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(drop), nil
}

// pruneTokens deletes tokens that were used or expired before now minus
// r.TokenAge.
func pruneTokens(b *bolt.Bucket, now time.Time, r Retention) (int, error) {
	if r.TokenAge <= 0 {
		return 0, nil
	}
	cutoff := now.Add(-r.TokenAge)
	var drop [][]byte
	err := b.ForEach(func(k, v []byte) error {
		var t Token
		if err := json.Unmarshal(v, &t); err != nil {
			return fmt.Errorf("decode token %s: %w", shortHash(string(k)), err)
		}
		// The moment the token stopped being usable: its use, or else its
		// expiry if that has passed.
		var dead time.Time
		switch {
		case !t.Used.IsZero():
			dead = t.Used
		case now.After(t.Expires):
			dead = t.Expires
		default:
			return nil
		}
		if dead.Before(cutoff) {
			drop = append(drop, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, k := range drop {
		if err := b.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(drop), nil
}

// ---------------------------------------------------------------- results

// StoredResult is one run of one probe on one node, as kept in the store.
type StoredResult struct {
	Node       string    `json:"node"`
	Probe      string    `json:"probe"`
	Kind       string    `json:"kind,omitempty"`
	Start      time.Time `json:"start"`
	DurationMS int64     `json:"duration_ms"`
	OK         bool      `json:"ok"`
	Message    string    `json:"message,omitempty"`
	// FailedPhase is the name of the phase that failed, "" if none did.
	FailedPhase string        `json:"failed_phase,omitempty"`
	Phases      []PhaseTiming `json:"phases,omitempty"`
	// Values are what the probe measured ("latency_ms", "tls_days_left",
	// "free_percent", ...). Records written before they were kept have none.
	Values map[string]string `json:"values,omitempty"`
}

// PhaseTiming is one phase of a stored result.
type PhaseTiming struct {
	Name  string `json:"name"`
	MS    int64  `json:"ms"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// appendFill is how full bbolt fills a page before it splits it, for the
// buckets written only at their end (the event log, each probe's results
// and rollups).
// bbolt's default of one half suits keys written anywhere; written in order,
// it leaves every page of the bucket half empty for good, and the file
// twice its size. The file is mapped, and every page of it the agent has
// touched counts in its resident memory.
const appendFill = 1.0

// resultKey is the key of a result inside its probe's bucket: the start
// time in nanoseconds with the sign bit flipped (so that keys sort in time
// order, before 1970 too) and then the bucket's sequence number, so that
// two results with the same start time both stay.
func resultKey(start time.Time, seq uint64) []byte {
	var k [16]byte
	binary.BigEndian.PutUint64(k[:8], uint64(start.UnixNano())^(1<<63))
	binary.BigEndian.PutUint64(k[8:], seq)
	return k[:]
}

// PutResult stores r under its node and probe. r.Node and r.Probe must not
// be empty; the start time orders the results of one probe.
func (s *Store) PutResult(r StoredResult) error { return s.PutResults(r) }

// PutResults stores results in one transaction (one fsync): a round's, or
// what the peer sent in one status. Nothing is stored if one is invalid.
func (s *Store) PutResults(rs ...StoredResult) error {
	vals := make([][]byte, len(rs))
	for i, r := range rs {
		if r.Node == "" || r.Probe == "" {
			return fmt.Errorf("store %s: put result: node %q and probe %q must both be named", s.path, r.Node, r.Probe)
		}
		v, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("store %s: put result %s/%s: %w", s.path, r.Node, r.Probe, err)
		}
		vals[i] = v
	}
	if len(rs) == 0 {
		return nil
	}
	err := s.update(func(tx *bolt.Tx) error {
		for i, r := range rs {
			nb, err := tx.Bucket(bucketResults).CreateBucketIfNotExists([]byte(r.Node))
			if err != nil {
				return err
			}
			pb, err := nb.CreateBucketIfNotExists([]byte(r.Probe))
			if err != nil {
				return err
			}
			pb.FillPercent = appendFill
			seq, err := pb.NextSequence()
			if err != nil {
				return err
			}
			if err := pb.Put(resultKey(r.Start, seq), vals[i]); err != nil {
				return err
			}
		}
		return rollInCached(tx, rs, &s.rollups) // the history, in the same transaction
	})
	if err != nil {
		return fmt.Errorf("store %s: put %d result(s) (%s/%s first): %w", s.path, len(rs), rs[0].Node, rs[0].Probe, err)
	}
	return nil
}

// Results returns the stored results of probe on node, newest first, at
// most limit of them; a limit of zero or less means all. An unknown node
// or probe has no results.
func (s *Store) Results(node, probe string, limit int) ([]StoredResult, error) {
	out := []StoredResult{}
	err := s.db.View(func(tx *bolt.Tx) error {
		nb := tx.Bucket(bucketResults).Bucket([]byte(node))
		if nb == nil {
			return nil
		}
		pb := nb.Bucket([]byte(probe))
		if pb == nil {
			return nil
		}
		c := pb.Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			if limit > 0 && len(out) >= limit {
				break
			}
			r, err := decodeResult([]byte(node), []byte(probe), k, v)
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store %s: read results %s/%s: %w", s.path, node, probe, err)
	}
	return out, nil
}

// LatestResults returns the newest stored result of each probe on node,
// by probe name. A node without results gives an empty map.
func (s *Store) LatestResults(node string) (map[string]StoredResult, error) {
	out := map[string]StoredResult{}
	err := s.db.View(func(tx *bolt.Tx) error {
		nb := tx.Bucket(bucketResults).Bucket([]byte(node))
		if nb == nil {
			return nil
		}
		return nb.ForEachBucket(func(probe []byte) error {
			k, v := nb.Bucket(probe).Cursor().Last()
			if k == nil {
				return nil
			}
			r, err := decodeResult([]byte(node), probe, k, v)
			if err != nil {
				return err
			}
			out[string(probe)] = r
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store %s: read latest results of %s: %w", s.path, node, err)
	}
	return out, nil
}

// pruneResults drops the probes of r.MaxAge (see Retention), then keeps
// the results of the last r.MaxResults writes of every node and probe
// left.
//
// It does so without counting: a probe bucket's sequence is the number of
// results ever written to it, and each result's key holds the sequence it
// was written with, so the results to drop are those written at least
// r.MaxResults writes ago, and they are at the front. Only the pages of
// what is dropped are read. (Counting reads every page of every probe,
// which, on a memory map, puts the whole file in the agent's memory once
// an hour.) The walk stops at the first result to keep: a result written
// out of time order (its start before results written earlier) holds the
// ones behind it until it is old enough itself, so a probe may briefly keep
// a few more than r.MaxResults.
func pruneResults(b *bolt.Bucket, now time.Time, r Retention) (int, error) {
	deleted := 0
	if r.MaxAge > 0 {
		n, err := pruneStaleProbes(b, now.Add(-r.MaxAge))
		if err != nil {
			return 0, err
		}
		deleted += n
	}
	keep := uint64(max(r.MaxResults, 0))
	if keep == 0 {
		return deleted, nil
	}
	err := b.ForEachBucket(func(node []byte) error {
		nb := b.Bucket(node)
		return nb.ForEachBucket(func(probe []byte) error {
			pb := nb.Bucket(probe)
			seq := pb.Sequence()
			if seq <= keep {
				return nil
			}
			last := seq - keep // the last write whose result is dropped
			var drop [][]byte
			c := pb.Cursor()
			for k, _ := c.First(); k != nil && resultSeq(k) <= last; k, _ = c.Next() {
				drop = append(drop, bytes.Clone(k))
			}
			for _, k := range drop {
				if err := pb.Delete(k); err != nil {
					return err
				}
			}
			deleted += len(drop)
			return nil
		})
	})
	return deleted, err
}

// resultSeq is the write sequence in a result's key (see resultKey); 0 for
// a key of another form, which is dropped first.
func resultSeq(k []byte) uint64 {
	if len(k) != 16 {
		return 0
	}
	return binary.BigEndian.Uint64(k[8:])
}

// pruneStaleProbes deletes the probes whose newest result started before
// cutoff, and a node left with no probe. Names are collected first:
// buckets are not deleted under the iteration.
func pruneStaleProbes(b *bolt.Bucket, cutoff time.Time) (int, error) {
	deleted := 0
	var nodes [][]byte
	if err := b.ForEachBucket(func(node []byte) error { nodes = append(nodes, bytes.Clone(node)); return nil }); err != nil {
		return 0, err
	}
	for _, node := range nodes {
		nb := b.Bucket(node)
		var stale [][]byte
		left := 0
		err := nb.ForEachBucket(func(probe []byte) error {
			k, _ := nb.Bucket(probe).Cursor().Last()
			if k == nil || resultStart(k).Before(cutoff) {
				stale = append(stale, bytes.Clone(probe))
			} else {
				left++
			}
			return nil
		})
		if err != nil {
			return 0, err
		}
		for _, probe := range stale {
			deleted += nb.Bucket(probe).Stats().KeyN
			if err := nb.DeleteBucket(probe); err != nil {
				return 0, err
			}
		}
		if left == 0 {
			if err := b.DeleteBucket(node); err != nil {
				return 0, err
			}
		}
	}
	return deleted, nil
}

// resultStart is the start time in a result's key (see resultKey).
func resultStart(k []byte) time.Time {
	if len(k) < 8 {
		return time.Time{}
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(k[:8])^(1<<63)))
}

// Probes returns the names of the probes of node that have stored
// results, sorted.
func (s *Store) Probes(node string) ([]string, error) {
	var out []string
	err := s.db.View(func(tx *bolt.Tx) error {
		nb := tx.Bucket(bucketResults).Bucket([]byte(node))
		if nb == nil {
			return nil
		}
		return nb.ForEachBucket(func(probe []byte) error {
			out = append(out, string(probe))
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store %s: probes of %s: %w", s.path, node, err)
	}
	return out, nil
}

// ---------------------------------------------------------------- alert state

// PutAlertState stores the alert state (alert.Tracker's Marshal output),
// replacing the previous one. An empty b deletes the stored state.
func (s *Store) PutAlertState(b []byte) error {
	return s.putOne(bucketAlert, keyAlertState, b, "alert state")
}

// AlertState returns the stored alert state, or nil if none was stored.
func (s *Store) AlertState() ([]byte, error) {
	return s.getOne(bucketAlert, keyAlertState, "alert state")
}

// putOne puts (or with an empty b deletes) one key's value.
func (s *Store) putOne(bucket, key, b []byte, what string) error {
	err := s.update(func(tx *bolt.Tx) error {
		if len(b) == 0 {
			return tx.Bucket(bucket).Delete(key)
		}
		return tx.Bucket(bucket).Put(key, b)
	})
	if err != nil {
		return fmt.Errorf("store %s: put %s: %w", s.path, what, err)
	}
	return nil
}

// getOne is one key's value, nil when none is stored.
func (s *Store) getOne(bucket, key []byte, what string) ([]byte, error) {
	var out []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucket).Get(key); v != nil {
			out = bytes.Clone(v)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store %s: read %s: %w", s.path, what, err)
	}
	return out, nil
}

// ---------------------------------------------------------------- verdict

// PutVerdict stores the last readiness verdict (the readiness component's
// JSON), replacing the previous one, so that a restarted agent shows it
// with its age until it has judged again.
func (s *Store) PutVerdict(b []byte) error { return s.putOne(bucketVerdict, keyVerdict, b, "verdict") }

// Verdict returns the stored verdict, or nil if none was stored.
func (s *Store) Verdict() ([]byte, error) { return s.getOne(bucketVerdict, keyVerdict, "verdict") }

// ---------------------------------------------------------------- failover

// validFailoverKind says whether kind is one the store keeps.
func validFailoverKind(kind string) bool { return kind == "plan" || kind == "record" }

// PutFailoverDoc stores one failover document (a plan or a record, as
// JSON) under its id, replacing one of the same id. Ids sort by time
// (they start with a UTC timestamp), so the newest is the last.
func (s *Store) PutFailoverDoc(kind, id string, b []byte) error {
	if !validFailoverKind(kind) || id == "" {
		return fmt.Errorf("store %s: put failover %q %q: invalid kind or empty id", s.path, kind, id)
	}
	err := s.update(func(tx *bolt.Tx) error {
		k, err := tx.Bucket(bucketFailover).CreateBucketIfNotExists([]byte(kind))
		if err != nil {
			return err
		}
		return k.Put([]byte(id), b)
	})
	if err != nil {
		return fmt.Errorf("store %s: put failover %s %s: %w", s.path, kind, id, err)
	}
	return nil
}

// FailoverDocs returns up to limit documents of kind, newest first (limit
// below 1: all).
func (s *Store) FailoverDocs(kind string, limit int) ([][]byte, error) {
	if !validFailoverKind(kind) {
		return nil, fmt.Errorf("store %s: failover documents %q: invalid kind", s.path, kind)
	}
	var out [][]byte
	err := s.db.View(func(tx *bolt.Tx) error {
		k := tx.Bucket(bucketFailover).Bucket([]byte(kind))
		if k == nil {
			return nil
		}
		c := k.Cursor()
		for key, v := c.Last(); key != nil && (limit < 1 || len(out) < limit); key, v = c.Prev() {
			out = append(out, bytes.Clone(v))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store %s: read failover %s: %w", s.path, kind, err)
	}
	return out, nil
}
