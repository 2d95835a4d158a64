// Package parity keeps the two nodes' packages in step (docs/parity.md):
// this node's inventory, retaken at start, every InventoryInterval and
// InventoryDebounce after each dpkg run; the peer's, fetched over the peer
// link; the machines' hardware profiles; the drift, both compatibility
// reports and the plan (Report); and the plan carried out (Apply), with
// the exact .deb files served to and fetched from the peer.
//
// The wiring (internal/agent) builds one Parity with New, runs it (Run),
// mounts its local and peer handlers, and tells it of the peer's hellos
// (NotePeer). Its calls to the peer go through Deps.Peer.
package parity

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/sentryha/sentry/internal/apttrust"
	"github.com/sentryha/sentry/internal/peer"
	"github.com/sentryha/sentry/synchronizer/inventory"
)

// Timings and bounds of package parity.
const (
	// InventoryFile is this node's inventory, in Options.StateDir.
	InventoryFile     = "inventory.json"
	InventoryInterval = 10 * time.Minute
	InventoryDebounce = 2 * time.Second
	// InventoryStale: an inventory older than this makes drift unknown.
	InventoryStale = 25 * time.Minute
	// InventorySysEnv names an environment variable that points the
	// inventory's /sys elsewhere. Only the lab sets it (its machines share
	// the host's /sys; each has its own PCI list).
	InventorySysEnv = "SENTRY_INVENTORY_SYS"
	// PeerInventoryTimeout bounds one fetch of the peer's inventory.
	PeerInventoryTimeout = 15 * time.Second
	// InventoryRetry is how often the peer's inventory is asked for while
	// this node has none of it.
	InventoryRetry = 30 * time.Second
	// MaxInventoryJSON bounds a gzipped inventory from the peer once
	// decompressed (30,000 packages are about 3.5 MB).
	MaxInventoryJSON = 64 << 20
	// MaxDebSize bounds one .deb sent over the peer link.
	MaxDebSize int64 = 200 << 20
	// debTimeout bounds one .deb's transfer or apt-get download.
	debTimeout = 10 * time.Minute
)

// ErrNoPeer is what Peer.Post returns (wrapped or as is) while this node
// has no peer.
var ErrNoPeer = errors.New("this node has no peer yet (sentry init / sentry join)")

// Options are the files and commands parity uses: the system's
// (DefaultOptions), or a test's fixture tree.
type Options struct {
	// StateDir holds InventoryFile and, during an apply, the .debs to
	// install (its "debs" folder).
	StateDir string
	// HardwareDir holds the machines' hardware profiles, one file a
	// machine (the cluster folder's hardware/, carried by the sync).
	HardwareDir string
	// Root is the system the inventory reads ("/").
	Root string
	// DpkgDir is read and watched: dpkg renames a new status file into it
	// at the end of every run.
	DpkgDir string
	// Sys is the inventory's /sys ("": Root's).
	Sys string
	// Apt says where this node's apt sources, keys and indexes are.
	Apt apttrust.Options
	// AptArchives is apt's cache of .debs.
	AptArchives string
	// DebFetchDir: a .deb in neither the apt cache nor a local repository
	// is fetched, on the primary, by AptGet download into a private
	// folder made under it for each file.
	DebFetchDir string
	// InitramfsList is the list of modules added to the initramfs.
	InitramfsList string
	// The commands run.
	Dpkg, DpkgDeb, AptMark, AptGet, UpdateInitramfs string
}

// DefaultOptions are the system's files and commands; Sys is the one
// InventorySysEnv names, if set. StateDir and HardwareDir are the
// wiring's to set.
func DefaultOptions() Options {
	return Options{
		Root: "/", DpkgDir: "/var/lib/dpkg", Sys: os.Getenv(InventorySysEnv),
		AptArchives: "/var/cache/apt/archives", DebFetchDir: "/var/cache/sentry",
		InitramfsList: "/etc/initramfs-tools/modules",
		Dpkg:          "dpkg", DpkgDeb: "dpkg-deb", AptMark: "apt-mark", AptGet: "apt-get", UpdateInitramfs: "update-initramfs",
	}
}

// Identity is what parity needs to know of this node.
type Identity struct {
	Node      string // this node's name
	Role      string // stamp.RolePrimary or stamp.RoleSecondary; "" before init or join
	PeerName  string // "" before pairing
	MachineID string // this machine's hardware identity; "" when it could not be read
	SafeMode  bool   // the hardware profiles are not written in safe mode
}

// Peer is the peer link as parity uses it: a POST to the peer's API over
// mutual TLS. Without a peer it returns an error wrapping ErrNoPeer.
type Peer interface {
	// Post carries the inventory fetch.
	Post(ctx context.Context, path, contentType string, body io.Reader) (*http.Response, error)
	// FetchDeb asks the peer for a .deb: what it says of the file (Size
	// -1: not said) and the file, which the caller closes and checks.
	FetchDeb(ctx context.Context, d DebRequest) (*peer.Deb, io.ReadCloser, error)
}

// Deps are what parity takes from the rest of the agent.
type Deps struct {
	Log *slog.Logger
	// Event records an event (the store's event log).
	Event func(kind, node, msg string, fields map[string]string)
	// Self is this node as it is now.
	Self func() Identity
	Peer Peer
	// ModulePackages are the packages of each selected module, by module
	// name; nil when no module set is loaded (nil func: none).
	ModulePackages func() map[string][]string
}

// Parity is package parity on this node. Its state is behind its own
// locks; none is held across a call of Deps, the network or a command.
type Parity struct {
	deps Deps
	opts Options
	apt  *aptTool

	takeMu    sync.Mutex // serializes takes of the inventory
	applyMu   sync.Mutex // one apply at a time
	profileMu sync.Mutex // serializes writes of the hardware profiles
	driftMu   sync.Mutex // serializes drift events

	mu         sync.Mutex
	self       *inventory.Inventory // last good own inventory
	selfErr    string               // why the newest take failed ("" when it did not)
	peer       *inventory.Inventory // the peer's, as fetched last
	peerErr    string
	peerStatus *peer.NodeStatus // the peer's last hello (NotePeer)
	modaliases []string         // the peer's devices the last take read firmware for
	wanted     []string         // the peer's devices, as its inventory or its request says
	driftKey   string           // the drift last recorded as an event
	current    currentReport    // Current's last report
	refetch    chan struct{}    // the peer announced a newer inventory than the one held

	profileAliases []string // the devices of the other machines' stored profiles
	profileErr     string   // the profile errors last logged
}

// New makes parity's state; Run keeps the inventory current.
func New(deps Deps, opts Options) *Parity {
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	if deps.Event == nil {
		deps.Event = func(string, string, string, map[string]string) {}
	}
	if deps.Self == nil {
		deps.Self = func() Identity { return Identity{} }
	}
	p := &Parity{deps: deps, opts: opts, refetch: make(chan struct{}, 1)}
	p.apt = &aptTool{opts: &p.opts, log: deps.Log}
	return p
}

// NotePeer notes the peer's status from a hello: its protocol (inventories
// need protocol 2), its machine and its name.
func (p *Parity) NotePeer(h *peer.NodeStatus) {
	if h == nil {
		return
	}
	c := *h
	p.mu.Lock()
	p.peerStatus = &c
	// The peer took a newer inventory (a dpkg run there, its schedule)
	// than the one held, or this node holds none (just paired): fetch it
	// now rather than at the next schedule or retry, so that drift and
	// compat (and the verdict) follow within a hello.
	var held time.Time
	if p.peer != nil {
		held = p.peer.Taken
	}
	newer := h.InventoryTaken.After(held)
	p.mu.Unlock()
	if newer {
		select {
		case p.refetch <- struct{}{}:
		default:
		}
	}
}
