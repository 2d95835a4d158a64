package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/sentryha/sentry/internal/apttrust"
	"github.com/sentryha/sentry/internal/peer"
	"github.com/sentryha/sentry/internal/stamp"
	"github.com/sentryha/sentry/synchronizer/inventory"
)

// Parity apply: the exact .deb files come from this node's apt cache or
// local (file:) repositories, or from the peer's over the peer link; each
// is installed only when its SHA-256 is in a signed apt index here
// (internal/apttrust), or the operator approved that hash
// (docs/parity.md).
var (
	AptArchives   = "/var/cache/apt/archives"
	DpkgCmd       = "dpkg"
	AptMarkCmd    = "apt-mark"
	DpkgDebCmd    = "dpkg-deb"
	UpdateInitCmd = "update-initramfs"
	InitramfsList = "/etc/initramfs-tools/modules"
	// AptGetCmd fetches, on the primary, a .deb that is in neither its apt
	// cache nor a local repository (apt-get download), into a private
	// folder made under DebFetchDir for each file.
	AptGetCmd   = "apt-get"
	DebFetchDir = "/var/cache/sentry"
	// MaxDebSize bounds one .deb sent over the peer link.
	MaxDebSize int64 = 200 << 20
)

// DebRequest names one package file (POST /v1/parity/deb, peer only).
type DebRequest struct {
	Name    string `json:"name"`
	Arch    string `json:"arch"`
	Version string `json:"version"`
}

func (d DebRequest) String() string { return d.Name + ":" + d.Arch + "=" + d.Version }

var debField = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.+~:_-]{0,200}$`)

// aptTrust says where this node's apt sources, keys and indexes are.
func (a *Agent) aptTrust() apttrust.Options { return a.paths.apt }

// ApplyRequest is the body of POST /v1/parity/apply.
type ApplyRequest struct {
	Yes     bool     `json:"yes"`
	Approve []string `json:"approve,omitempty"` // SHA-256 of .debs the operator accepts without a signed index
	// AllowDowngrade lets the apply install a version older than the one
	// installed (sentry parity apply --allow-downgrade); without it a
	// downgrade is refused and nothing is changed.
	AllowDowngrade bool `json:"allow_downgrade,omitempty"`
}

// ApplyAction is one step of an apply, with the output of what it ran.
type ApplyAction struct {
	Action  string `json:"action"` // install, hold, unhold, add-to-initramfs, skip
	Target  string `json:"target"` // name:arch=version, a package or a module
	Source  string `json:"source,omitempty"`
	SHA256  string `json:"sha256,omitempty"`
	Trusted string `json:"trusted,omitempty"` // the signed index, or "approved by the operator"
	// Downgrade is the newer version installed now, when the install is
	// a downgrade.
	Downgrade string `json:"downgrade_from,omitempty"`
	Command   string `json:"command,omitempty"`
	Output    string `json:"output,omitempty"`
	Error     string `json:"error,omitempty"`
}

// ApplyResult is the answer of POST /v1/parity/apply.
type ApplyResult struct {
	DryRun  bool                 `json:"dry_run"`
	Node    string               `json:"node"`
	DiskSet string               `json:"disk_set"` // P or S: which plan steps are this node's
	Plan    inventory.ParityPlan `json:"plan"`
	Actions []ApplyAction        `json:"actions"`
	Error   string               `json:"error,omitempty"`
}

// Apply carries out this node's part of the plan: on S the packages and
// holds of P, and on either node the fixes of its own disk set. Without
// yes it only says what it would do.
func (a *Agent) Apply(ctx context.Context, req ApplyRequest) (*ApplyResult, error) {
	if !a.parity.applyMu.TryLock() {
		return nil, errors.New("a parity apply is already running")
	}
	defer a.parity.applyMu.Unlock()
	rep, err := a.Parity(ctx)
	if err != nil {
		return nil, err
	}
	res, ran, err := a.applyReport(ctx, rep, req)
	if err != nil || !ran {
		return res, err
	}
	// The new state now, not after the debounce.
	a.takeInventory("parity apply")
	a.noteDrift()
	return res, nil
}

// applyReport carries out this node's part of rep's plan (Apply); ran
// says whether it changed, or tried to change, anything.
func (a *Agent) applyReport(ctx context.Context, rep *ParityReport, req ApplyRequest) (res *ApplyResult, ran bool, err error) {
	res = &ApplyResult{DryRun: !req.Yes, Node: rep.Node, Plan: rep.Plan, Actions: []ApplyAction{}}
	switch rep.Role {
	case stamp.RolePrimary:
		res.DiskSet = "P"
	case stamp.RoleSecondary:
		res.DiskSet = "S"
	default:
		return nil, false, errors.New("this node belongs to no cluster: nothing to be in step with")
	}
	if rep.Self.Taken.IsZero() || rep.Peer.Taken.IsZero() {
		return nil, false, fmt.Errorf("both inventories are needed: this node %s, peer %s", dashIf(rep.Self.Error), dashIf(rep.Peer.Error))
	}
	a.mu.Lock()
	peerInv, selfInv := a.parity.peer, a.parity.self
	a.mu.Unlock()

	var want []DebRequest
	var marks []ApplyAction
	fromPeer := map[DebRequest]bool{}
	planned := map[DebRequest]string{} // the plan's downgrades: the version installed now
	if res.DiskSet == "S" {
		for _, i := range rep.Plan.InstallOnS {
			d := DebRequest{Name: i.Name, Arch: i.Arch, Version: i.Version}
			want = append(want, d)
			fromPeer[d] = true // P's exact file
			if i.Downgrade {
				planned[d] = i.Current
			}
		}
		for _, h := range rep.Plan.HoldOnS {
			marks = append(marks, ApplyAction{Action: "hold", Target: h, Command: AptMarkCmd + " hold " + h})
		}
		for _, h := range rep.Plan.UnholdOnS {
			marks = append(marks, ApplyAction{Action: "unhold", Target: h, Command: AptMarkCmd + " unhold " + h})
		}
	}
	for _, f := range rep.Plan.DiskSetFixes {
		if f.DiskSet != res.DiskSet {
			continue
		}
		switch f.Action {
		case "install-package", "install-firmware":
			if d, ok := findInstalled(f.Package, peerInv, selfInv); ok {
				want = append(want, d)
			} else {
				res.Actions = append(res.Actions, ApplyAction{Action: "skip", Target: f.Package, Error: "no node has " + f.Package + " installed: its exact version is unknown"})
			}
		case "add-to-initramfs":
			marks = append(marks, ApplyAction{Action: "add-to-initramfs", Target: f.Module, Command: "echo " + f.Module + " >> " + InitramfsList + "; " + UpdateInitCmd + " -u"})
		default:
			res.Actions = append(res.Actions, ApplyAction{Action: "skip", Target: f.Device, Error: f.Reason})
		}
	}
	want = uniqueDebs(want)
	var refused []string
	for _, d := range want {
		act := ApplyAction{Action: "install", Target: d.String(), Downgrade: downgradeFrom(d, planned, selfInv)}
		if act.Downgrade != "" && !req.AllowDowngrade {
			act.Error = fmt.Sprintf("a downgrade from %s (installed), refused without --allow-downgrade", act.Downgrade)
			refused = append(refused, fmt.Sprintf("%s is older than the installed %s", d, act.Downgrade))
		}
		res.Actions = append(res.Actions, act)
	}
	res.Actions = append(res.Actions, marks...)
	if !req.Yes {
		return res, false, nil
	}
	if len(refused) > 0 {
		// Nothing at all: the other packages may need the versions
		// installed now.
		res.Error = fmt.Sprintf("%s: a downgrade is installed only with `sentry parity apply --allow-downgrade`; nothing was changed", strings.Join(refused, "; "))
		for i := range res.Actions {
			if act := &res.Actions[i]; act.Action == "install" && act.Error != "" {
				a.recordAction(act, errors.New(act.Error))
			}
		}
		return res, false, nil
	}
	if len(want) > 0 {
		a.installDebs(ctx, res, want, fromPeer, req.Approve)
	}
	if res.Error == "" {
		a.applyMarks(ctx, res)
	}
	return res, true, nil
}

// downgradeFrom is the version of d's package installed on this node when
// it is newer than d's (the plan marks those of P's packages; a fix's
// package is compared here), else "".
func downgradeFrom(d DebRequest, planned map[DebRequest]string, self *inventory.Inventory) string {
	if v, ok := planned[d]; ok {
		return v
	}
	if self == nil {
		return ""
	}
	for _, p := range self.Packages {
		if p.Name == d.Name && p.Installed() && (p.Arch == d.Arch || p.Arch == "all" || d.Arch == "all") &&
			inventory.CompareVersions(p.Version, d.Version) > 0 {
			return p.Version
		}
	}
	return ""
}

// applyMarks carries out the holds, unholds and initramfs modules of res,
// in order, until one fails.
func (a *Agent) applyMarks(ctx context.Context, res *ApplyResult) {
	for i := range res.Actions {
		act := &res.Actions[i]
		var err error
		switch act.Action {
		case "hold", "unhold":
			act.Output, err = runLogged(ctx, AptMarkCmd, act.Action, act.Target)
		case "add-to-initramfs":
			if err = appendLine(InitramfsList, act.Target); err == nil {
				act.Output, err = runLogged(ctx, UpdateInitCmd, "-u")
			}
		default:
			continue
		}
		if err != nil && strings.TrimSpace(act.Output) != "" {
			err = fmt.Errorf("%w: %s", err, lastLines(act.Output, 3))
		}
		a.recordAction(act, err)
		if err != nil {
			act.Error = err.Error() // shown as the action's failure, not as done
			res.Error = fmt.Sprintf("%s %s failed: %v", act.Action, act.Target, err)
			return
		}
	}
}

// findInstalled finds the exact version of a package installed on a node.
func findInstalled(name string, invs ...*inventory.Inventory) (DebRequest, bool) {
	for _, inv := range invs {
		if inv == nil {
			continue
		}
		for _, p := range inv.Packages {
			if p.Name == name && p.Installed() {
				return DebRequest{Name: p.Name, Arch: p.Arch, Version: p.Version}, true
			}
		}
	}
	return DebRequest{}, false
}

func uniqueDebs(l []DebRequest) []DebRequest {
	seen := map[DebRequest]bool{}
	var out []DebRequest
	for _, d := range l {
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out
}

// installDebs gets, checks and installs the .debs in one apt-get run.
func (a *Agent) installDebs(ctx context.Context, res *ApplyResult, want []DebRequest, fromPeer map[DebRequest]bool, approved []string) {
	dir := a.statePath("debs")
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		res.Error = err.Error()
		return
	}
	defer os.RemoveAll(dir)
	index, idxErrs := a.aptTrust().SignedIndex()
	var srcErr error // unreadable apt sources: a refusal says so
	for _, e := range idxErrs {
		a.log.Warn("parity apply: apt index not used", "err", e)
		if errors.Is(e, apttrust.ErrSources) {
			srcErr = e
		}
	}
	ok := map[string]bool{}
	for _, h := range approved {
		ok[strings.ToLower(h)] = true
	}
	var files []string
	for _, d := range want {
		act := findAction(res, "install", d.String())
		path, source, err := a.getDeb(ctx, d, dir, fromPeer[d])
		act.Source = source
		if err == nil {
			act.SHA256, act.Trusted, err = index.Check(path, apttrust.Package(d), ok)
			if err != nil && srcErr != nil {
				err = fmt.Errorf("%w (%w)", err, srcErr)
			}
		}
		if err != nil {
			act.Error = err.Error()
			res.Error = fmt.Sprintf("%s not installed: %v", d, err)
			a.recordAction(act, err)
			return
		}
		files = append(files, path)
	}
	// dpkg, all files in one run: their dependencies on one another are
	// met together, and nothing is downloaded. (apt-get install
	// --no-download ./x.deb fails with "Pathname to install is not
	// absolute" on Debian 12.)
	args := append([]string{"--install"}, files...)
	out, err := runLogged(ctx, DpkgCmd, args...)
	failed := failedPackages(out)
	for _, d := range want {
		act := findAction(res, "install", d.String())
		act.Command = DpkgCmd + " " + strings.Join(args, " ")
		act.Output = out
		var aerr error
		if err != nil && (len(failed) == 0 || failed[d.Name]) {
			aerr = err
			act.Error = fmt.Sprintf("%v", err)
		}
		a.recordAction(act, aerr)
	}
	if err != nil {
		var names []string
		for _, d := range want {
			if len(failed) == 0 || failed[d.Name] {
				names = append(names, d.String())
			}
		}
		res.Error = fmt.Sprintf("installing %s failed (%v); dpkg said:\n%s", strings.Join(names, ", "), err, tail(out, 3000))
	}
}

var errProcessing = regexp.MustCompile(`error processing (?:package|archive) (\S+)`)

// failedPackages are the packages dpkg names in "error processing".
func failedPackages(out string) map[string]bool {
	m := map[string]bool{}
	for _, sm := range errProcessing.FindAllStringSubmatch(out, -1) {
		n := strings.Trim(sm[1], "()")
		n = filepath.Base(n)
		n, _, _ = strings.Cut(n, "_")
		n, _, _ = strings.Cut(n, ":")
		m[n] = true
	}
	return m
}

func findAction(res *ApplyResult, action, target string) *ApplyAction {
	for i := range res.Actions {
		if res.Actions[i].Action == action && res.Actions[i].Target == target {
			return &res.Actions[i]
		}
	}
	res.Actions = append(res.Actions, ApplyAction{Action: action, Target: target})
	return &res.Actions[len(res.Actions)-1]
}

// recordAction logs one action with its output (journal) and records it.
func (a *Agent) recordAction(act *ApplyAction, err error) {
	fields := map[string]string{"action": act.Action, "target": act.Target, "command": act.Command,
		"output": tail(act.Output, 4000), "sha256": act.SHA256, "source": act.Source, "trusted": act.Trusted}
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		a.log.Error("parity apply failed", "action", act.Action, "target", act.Target, "command", act.Command, "output", act.Output, "err", err)
		fields["error"] = err.Error()
		a.event("parity-apply", a.nodeName(), fmt.Sprintf("%s %s FAILED: %v", act.Action, act.Target, err), fields)
		return
	}
	a.log.Info("parity apply", "action", act.Action, "target", act.Target, "command", act.Command, "sha256", act.SHA256, "trusted", act.Trusted, "output", act.Output)
	msg := fmt.Sprintf("%s %s done", act.Action, act.Target)
	if act.Trusted != "" { // a .deb: what vouched for it (holds and modules have none)
		if act.Downgrade != "" {
			msg += " (" + act.Trusted + "; a downgrade from " + act.Downgrade + ")"
		} else {
			msg += " (" + act.Trusted + ")"
		}
	}
	a.event("parity-apply", a.nodeName(), msg, fields)
}

func tail(s string, n int) string {
	if len(s) > n {
		return "...\n" + s[len(s)-n:]
	}
	return s
}

func runLogged(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// readFile reads the file appendLine adds to (tests make it fail).
var readFile = os.ReadFile

// appendLine adds line to the file at path unless a line of it is already
// that line. A file that exists but cannot be read is left as it is: the
// line may be in it, and its last line may lack its newline.
func appendLine(path, line string) error {
	b, err := readFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: the file is left as it is", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(l) == line {
			return nil
		}
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if len(b) > 0 && !bytes.HasSuffix(b, []byte("\n")) {
		line = "\n" + line
	}
	_, err = fmt.Fprintln(f, line)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// getDeb puts the .deb of d into dir: from the peer's apt cache or local
// repositories (peerFirst: the primary's exact file for S), or from this
// node's, whichever has it first.
func (a *Agent) getDeb(ctx context.Context, d DebRequest, dir string, peerFirst bool) (path, source string, err error) {
	if peerFirst {
		path, source, err = a.peerDeb(ctx, d, dir)
		if err == nil {
			return path, source, nil
		}
		a.log.Info("parity apply: the peer did not send the package; looking on this node", "package", d.String(), "err", err)
	}
	local, lerr := a.locateDeb(d)
	if lerr == nil {
		dst := filepath.Join(dir, filepath.Base(local))
		if err := copyLimited(local, dst); err != nil {
			return "", "", err
		}
		return dst, "this node: " + local, nil
	}
	if !peerFirst {
		path, source, err = a.peerDeb(ctx, d, dir)
		if err == nil {
			return path, source, nil
		}
	}
	// The peer's answer, then this node's, each said once: the peer's
	// "no .deb of ... in /var/cache/apt/archives or a local apt
	// repository" is the sentence this node's lookup would say again.
	var nd *noDebError
	if errors.As(lerr, &nd) && nd.sources == nil {
		err = fmt.Errorf("%w; this node has none either", err)
	} else {
		err = fmt.Errorf("%w; on this node: %w", err, lerr)
	}
	if !a.isPrimary() {
		return "", "", err
	}
	// The primary fetches what neither node has (installDebs checks it
	// against the signed index, as every file).
	a.log.Info("parity apply: the peer did not send the package; fetching it", "package", d.String(), "err", err)
	fetched, cleanup, ferr := a.fetchDebLogged(ctx, d)
	if ferr != nil {
		return "", "", fmt.Errorf("%w; %w", err, ferr)
	}
	defer cleanup()
	dst := filepath.Join(dir, filepath.Base(fetched))
	if err := copyLimited(fetched, dst); err != nil {
		return "", "", err
	}
	return dst, "this node: fetched by " + AptGetCmd + " download", nil
}

func (a *Agent) isPrimary() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.stamp != nil && a.stamp.Role == stamp.RolePrimary
}

// peerDeb receives the .deb of d from the peer (POST /v1/parity/deb).
func (a *Agent) peerDeb(ctx context.Context, d DebRequest, dir string) (path, source string, err error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	deb, file, err := a.peerClient().FetchDeb(ctx, peer.DebRequest(d), a.peerProtocol())
	if err != nil {
		return "", "", err
	}
	defer file.Close()
	name := filepath.Base(deb.Filename)
	want := strings.ToLower(deb.SHA256)
	if !strings.HasSuffix(name, ".deb") || strings.HasPrefix(name, ".") || len(want) != 64 {
		return "", "", fmt.Errorf("the peer sent no file name or SHA-256 (%q, %q)", name, want)
	}
	if deb.Size > MaxDebSize {
		return "", "", fmt.Errorf("the peer's file is %d bytes, more than the limit of %d", deb.Size, MaxDebSize)
	}
	path = filepath.Join(dir, name)
	os.Remove(path)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return "", "", err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(file, MaxDebSize+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	switch {
	case err != nil:
		return "", "", fmt.Errorf("receiving %s: %w", name, err)
	case n > MaxDebSize:
		return "", "", fmt.Errorf("%s is larger than the limit of %d bytes", name, MaxDebSize)
	case deb.Size >= 0 && n != deb.Size:
		return "", "", fmt.Errorf("%s truncated: %d of %d bytes", name, n, deb.Size)
	case hex.EncodeToString(h.Sum(nil)) != want:
		return "", "", fmt.Errorf("%s: SHA-256 %x is not the %s the peer announced", name, h.Sum(nil), want)
	}
	return path, "the peer: " + name, nil
}

func copyLimited(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if st, err := in.Stat(); err == nil && st.Size() > MaxDebSize {
		return fmt.Errorf("%s is larger than the limit of %d bytes", src, MaxDebSize)
	}
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// handleDeb streams one .deb of this node's apt cache or local repository
// to the peer, its SHA-256 in X-Sentry-Deb-SHA256 (peer only).
func (a *Agent) handleDeb(w http.ResponseWriter, r *http.Request) {
	var d DebRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&d); err != nil {
		a.refusePeer(w, r, http.StatusBadRequest, fmt.Errorf("deb request: %w", err))
		return
	}
	if !debField.MatchString(d.Name) || !debField.MatchString(d.Arch) || !debField.MatchString(d.Version) {
		a.refusePeer(w, r, http.StatusBadRequest, fmt.Errorf("deb request: bad name, architecture or version"))
		return
	}
	path, cleanup, err := a.debForPeer(r.Context(), d)
	if err != nil {
		a.refusePeer(w, r, http.StatusNotFound, err)
		return
	}
	defer cleanup()
	f, err := os.Open(path)
	if err != nil {
		a.refusePeer(w, r, http.StatusNotFound, err)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() > MaxDebSize {
		a.refusePeer(w, r, http.StatusRequestEntityTooLarge, fmt.Errorf("%s: larger than %d bytes or unreadable", path, MaxDebSize))
		return
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		a.refusePeer(w, r, http.StatusInternalServerError, err)
		return
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		a.refusePeer(w, r, http.StatusInternalServerError, err)
		return
	}
	// The peer server's write timeout is for messages; a file takes longer.
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(10 * time.Minute))
	w.Header().Set("Content-Type", "application/vnd.debian.binary-package")
	w.Header().Set("Content-Length", fmt.Sprint(st.Size()))
	w.Header().Set("X-Sentry-Deb-SHA256", hex.EncodeToString(h.Sum(nil)))
	w.Header().Set("X-Sentry-Deb-Filename", filepath.Base(path))
	w.WriteHeader(http.StatusOK)
	n, err := io.Copy(w, f)
	a.log.Info("parity: sent a package to the peer", "package", d.String(), "file", path, "bytes", n, "err", err)
}

// debForPeer is the .deb of d to send to the peer: from the apt cache or a
// local repository (locateDeb); else, on the primary, fetched by apt-get
// download into a private folder and sent only when its SHA-256 is in this
// node's signed apt index. cleanup removes a fetched file.
func (a *Agent) debForPeer(ctx context.Context, d DebRequest) (path string, cleanup func(), err error) {
	path, err = a.locateDeb(d)
	if err == nil {
		return path, func() {}, nil
	}
	if !a.isPrimary() {
		return "", nil, err
	}
	a.log.Info("parity: the peer asks for a package this node has in no apt cache or local repository; fetching it", "package", d.String(), "err", err)
	path, cleanup, ferr := a.fetchDebLogged(ctx, d)
	if ferr != nil {
		return "", nil, fmt.Errorf("%w; %w", err, ferr)
	}
	index, idxErrs := a.aptTrust().SignedIndex()
	for _, e := range idxErrs {
		a.log.Warn("parity: apt index not used", "err", e)
	}
	sum, trusted, err := index.Check(path, apttrust.Package(d), nil)
	for _, e := range idxErrs {
		if err != nil && errors.Is(e, apttrust.ErrSources) {
			err = fmt.Errorf("%w (%w)", err, e)
		}
	}
	if err != nil {
		cleanup()
		a.log.Error("parity: a fetched package is not sent", "package", d.String(), "file", path, "err", err)
		return "", nil, fmt.Errorf("%s fetched by %s download, not sent: %w", d, AptGetCmd, err)
	}
	a.log.Info("parity: fetched package checked", "package", d.String(), "file", path, "sha256", sum, "trusted", trusted)
	return path, cleanup, nil
}

// fetchDebLogged is fetchDeb, with what it ran and said in the journal.
func (a *Agent) fetchDebLogged(ctx context.Context, d DebRequest) (string, func(), error) {
	path, cleanup, cmd, out, err := fetchDeb(ctx, d)
	if err != nil {
		a.log.Error("parity: apt-get download failed", "package", d.String(), "command", cmd, "output", out, "err", err)
		return "", nil, err
	}
	a.log.Info("parity: package fetched", "package", d.String(), "command", cmd, "file", path, "output", out)
	return path, cleanup, nil
}

// fetchDeb runs apt-get download for d in a new private folder under
// DebFetchDir and returns the file it wrote (its control fields checked),
// and a cleanup that removes the folder; with the command and its output.
func fetchDeb(ctx context.Context, d DebRequest) (path string, cleanup func(), command, output string, err error) {
	arg := inventory.AptArg(d.Name, d.Arch, d.Version) // name=version for an "all" package
	command = AptGetCmd + " download " + arg
	if err := os.MkdirAll(DebFetchDir, 0o755); err != nil {
		return "", nil, command, "", fmt.Errorf("fetching package %s version %s: %w", d.Name, d.Version, err)
	}
	dir, err := os.MkdirTemp(DebFetchDir, "deb-") // mode 0700
	if err != nil {
		return "", nil, command, "", fmt.Errorf("fetching package %s version %s: %w", d.Name, d.Version, err)
	}
	cleanup = func() { os.RemoveAll(dir) }
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, AptGetCmd, "download", arg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	out, err := cmd.CombinedOutput()
	output = string(out)
	if err != nil {
		cleanup()
		return "", nil, command, output, fmt.Errorf("package %s version %s: `%s` failed (%v): %s", d.Name, d.Version, command, err, lastLines(output, 3))
	}
	debs, _ := filepath.Glob(filepath.Join(dir, "*.deb"))
	if len(debs) != 1 {
		cleanup()
		return "", nil, command, output, fmt.Errorf("package %s version %s: `%s` wrote %d .deb files, not one: %s", d.Name, d.Version, command, len(debs), lastLines(output, 3))
	}
	if err := debMatches(debs[0], d); err != nil {
		cleanup()
		return "", nil, command, output, fmt.Errorf("package %s version %s: `%s`: %w", d.Name, d.Version, command, err)
	}
	return debs[0], cleanup, command, output, nil
}

// debMatches checks a .deb's control fields against d.
func debMatches(path string, d DebRequest) error {
	out, err := exec.Command(DpkgDebCmd, "--field", path, "Package", "Version", "Architecture").Output()
	if err != nil {
		return fmt.Errorf("%s: %s --field: %v", filepath.Base(path), DpkgDebCmd, err)
	}
	f := controlFields(string(out))
	if f["Package"] != d.Name || f["Version"] != d.Version || f["Architecture"] != d.Arch {
		return fmt.Errorf("%s is %s:%s=%s, not %s", filepath.Base(path), f["Package"], f["Architecture"], f["Version"], d)
	}
	return nil
}

// locateDeb finds the .deb of d in the apt cache, then in the local (file:)
// repositories of this node's apt sources, and checks its control fields.
func (a *Agent) locateDeb(d DebRequest) (string, error) {
	cands := []string{filepath.Join(AptArchives, apttrust.CacheName(apttrust.Package(d)))}
	local, srcErr := a.aptTrust().LocalFiles(apttrust.Package(d))
	cands = append(cands, local...)
	for _, c := range cands {
		if _, err := os.Stat(c); err != nil {
			continue
		}
		if debMatches(c, d) == nil {
			return c, nil
		}
	}
	return "", &noDebError{d: d, sources: srcErr}
}

// noDebError is locateDeb's: no file of d here, and why the local
// repositories were not looked in, if they were not.
type noDebError struct {
	d       DebRequest
	sources error
}

func (e *noDebError) Error() string {
	msg := fmt.Sprintf("no .deb of %s in %s or a local apt repository", e.d, AptArchives)
	if e.sources != nil {
		msg += " (" + e.sources.Error() + ")"
	}
	return msg
}

func (e *noDebError) Unwrap() error { return e.sources }

func controlFields(s string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && !strings.HasPrefix(l, " ") {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, " | ")
}
