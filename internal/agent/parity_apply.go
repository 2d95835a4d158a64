package agent

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/sentryha/sentry/internal/peer"
	"github.com/sentryha/sentry/internal/stamp"
	"github.com/sentryha/sentry/synchronizer/inventory"
)

// Parity apply: the exact .deb files come from this node's apt cache or
// local (file:) repositories, or from the peer's over the peer link; each
// is installed only when its SHA-256 is in a signed apt index here, or the
// operator approved that hash (docs/parity.md).
var (
	AptArchives   = "/var/cache/apt/archives"
	AptLists      = "/var/lib/apt/lists"
	AptEtc        = "/etc/apt"
	AptKeyrings   = []string{"/etc/apt/trusted.gpg.d", "/usr/share/keyrings"}
	GpgvCmd       = "gpgv"
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

// ApplyRequest is the body of POST /v1/parity/apply.
type ApplyRequest struct {
	Yes     bool     `json:"yes"`
	Approve []string `json:"approve,omitempty"` // SHA-256 of .debs the operator accepts without a signed index
}

// ApplyAction is one step of an apply, with the output of what it ran.
type ApplyAction struct {
	Action  string `json:"action"` // install, hold, unhold, add-to-initramfs, skip
	Target  string `json:"target"` // name:arch=version, a package or a module
	Source  string `json:"source,omitempty"`
	SHA256  string `json:"sha256,omitempty"`
	Trusted string `json:"trusted,omitempty"` // the signed index, or "approved by the operator"
	Command string `json:"command,omitempty"`
	Output  string `json:"output,omitempty"`
	Error   string `json:"error,omitempty"`
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
	res := &ApplyResult{DryRun: !req.Yes, Node: rep.Node, Plan: rep.Plan, Actions: []ApplyAction{}}
	switch rep.Role {
	case stamp.RolePrimary:
		res.DiskSet = "P"
	case stamp.RoleSecondary:
		res.DiskSet = "S"
	default:
		return nil, errors.New("this node belongs to no cluster: nothing to be in step with")
	}
	if rep.Self.Taken.IsZero() || rep.Peer.Taken.IsZero() {
		return nil, fmt.Errorf("both inventories are needed: this node %s, peer %s", dashIf(rep.Self.Error), dashIf(rep.Peer.Error))
	}
	a.mu.Lock()
	peerInv, selfInv := a.parity.peer, a.parity.self
	a.mu.Unlock()

	var want []DebRequest
	var marks []ApplyAction
	fromPeer := map[DebRequest]bool{}
	if res.DiskSet == "S" {
		for _, i := range rep.Plan.InstallOnS {
			d := DebRequest{Name: i.Name, Arch: i.Arch, Version: i.Version}
			want = append(want, d)
			fromPeer[d] = true // P's exact file
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
	for _, d := range want {
		res.Actions = append(res.Actions, ApplyAction{Action: "install", Target: d.String()})
	}
	res.Actions = append(res.Actions, marks...)
	if !req.Yes {
		return res, nil
	}
	if len(want) > 0 {
		a.installDebs(ctx, res, want, fromPeer, req.Approve)
	}
	if res.Error == "" {
		a.applyMarks(ctx, res)
	}
	// The new state now, not after the debounce.
	a.takeInventory("parity apply")
	a.noteDrift()
	return res, nil
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
	index, idxErrs := signedIndex()
	var srcErr error // unreadable apt sources: a refusal says so
	for _, e := range idxErrs {
		a.log.Warn("parity apply: apt index not used", "err", e)
		if errors.Is(e, errAptSources) {
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
			act.SHA256, act.Trusted, err = checkDeb(path, d, index, ok)
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
		msg += " (" + act.Trusted + ")"
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
	local, lerr := locateDeb(d)
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
	body, _ := json.Marshal(d)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	resp, err := a.peerPost(ctx, "/v1/parity/deb", "application/json", body)
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		env, rerr := peer.Read(resp.Body)
		if rerr == nil && env.Type == peer.TypeError {
			eb, _ := env.Error()
			return "", "", fmt.Errorf("the peer has no file for it: %s", eb.Message)
		}
		return "", "", fmt.Errorf("the peer answered %s", resp.Status)
	}
	name := filepath.Base(resp.Header.Get("X-Sentry-Deb-Filename"))
	want := strings.ToLower(resp.Header.Get("X-Sentry-Deb-SHA256"))
	if !strings.HasSuffix(name, ".deb") || strings.HasPrefix(name, ".") || len(want) != 64 {
		return "", "", fmt.Errorf("the peer sent no file name or SHA-256 (%q, %q)", name, want)
	}
	if resp.ContentLength > MaxDebSize {
		return "", "", fmt.Errorf("the peer's file is %d bytes, more than the limit of %d", resp.ContentLength, MaxDebSize)
	}
	path = filepath.Join(dir, name)
	os.Remove(path)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return "", "", err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(resp.Body, MaxDebSize+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	switch {
	case err != nil:
		return "", "", fmt.Errorf("receiving %s: %w", name, err)
	case n > MaxDebSize:
		return "", "", fmt.Errorf("%s is larger than the limit of %d bytes", name, MaxDebSize)
	case resp.ContentLength >= 0 && n != resp.ContentLength:
		return "", "", fmt.Errorf("%s truncated: %d of %d bytes", name, n, resp.ContentLength)
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
	path, err = locateDeb(d)
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
	index, idxErrs := signedIndex()
	for _, e := range idxErrs {
		a.log.Warn("parity: apt index not used", "err", e)
	}
	sum, trusted, err := checkDeb(path, d, index, nil)
	for _, e := range idxErrs {
		if err != nil && errors.Is(e, errAptSources) {
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

// aptFileName is the name apt gives d's file in its cache and with apt-get
// download: name_version_arch.deb, the version's ':' as %3a.
func aptFileName(d DebRequest) string {
	return d.Name + "_" + strings.ReplaceAll(url.PathEscape(d.Version), ":", "%3a") + "_" + d.Arch + ".deb"
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
func locateDeb(d DebRequest) (string, error) {
	var cands []string
	cands = append(cands, filepath.Join(AptArchives, aptFileName(d)))
	repos, srcErr := localRepos()
	for _, r := range repos {
		for _, p := range r.packagesFiles() {
			ents, err := readPackages(p)
			if err != nil {
				continue
			}
			for _, e := range ents {
				if e.Package == d.Name && e.Version == d.Version && e.Arch == d.Arch {
					cands = append(cands, filepath.Join(r.base, e.Filename))
				}
			}
		}
	}
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

// indexEntry is one package of a Packages file.
type indexEntry struct {
	Package, Version, Arch, Filename, SHA256 string
	Index                                    string // the InRelease it is signed by
}

// readPackages reads a Packages file (plain or .gz).
func readPackages(path string) ([]indexEntry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, err
		}
		r = zr
	}
	var out []indexEntry
	var e indexEntry
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	flush := func() {
		if e.Package != "" {
			out = append(out, e)
		}
		e = indexEntry{}
	}
	for sc.Scan() {
		l := sc.Text()
		if l == "" {
			flush()
			continue
		}
		k, v, ok := strings.Cut(l, ":")
		if !ok || strings.HasPrefix(l, " ") {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "Package":
			e.Package = v
		case "Version":
			e.Version = v
		case "Architecture":
			e.Arch = v
		case "Filename":
			e.Filename = v
		case "SHA256":
			e.SHA256 = strings.ToLower(v)
		}
	}
	flush()
	return out, sc.Err()
}

// aptRepo is a signed index: an InRelease and where the files it lists are.
type aptRepo struct {
	base      string                  // a file: repository's root ("" for apt's lists)
	inRelease string                  // the InRelease file
	local     func(rel string) string // where a file InRelease lists is kept here
}

func (r aptRepo) packagesFiles() []string {
	// Not verified: for locating a file only (checkDeb checks it).
	dir := filepath.Dir(r.inRelease)
	var out []string
	for _, n := range []string{"Packages", "Packages.gz"} {
		if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
			out = append(out, filepath.Join(dir, n))
		}
	}
	ms, _ := filepath.Glob(filepath.Join(dir, "*", "binary-*", "Packages*"))
	return append(out, ms...)
}

// errAptSources: apt's sources could not be read, so the local (file:)
// repositories are unknown; apt itself refuses to run then.
var errAptSources = errors.New("the local apt repositories are not known")

// localRepos are the file: repositories of this node's apt sources. When
// the sources cannot be read there are none, and the error (naming the
// file and the line) says why.
func localRepos() ([]aptRepo, error) {
	srcs, err := inventory.ReadAptSources(AptEtc)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errAptSources, err)
	}
	var out []aptRepo
	for _, s := range srcs {
		if s.Disabled {
			continue
		}
		for _, u := range s.URIs {
			root, ok := strings.CutPrefix(u, "file:")
			if !ok {
				continue
			}
			root = "/" + strings.TrimLeft(root, "/")
			for _, suite := range s.Suites {
				dir := filepath.Join(root, "dists", suite)
				if strings.HasSuffix(suite, "/") || len(s.Components) == 0 {
					dir = filepath.Join(root, suite) // a flat repository
				}
				out = append(out, aptRepo{base: root, inRelease: filepath.Join(dir, "InRelease"),
					local: func(rel string) string { return filepath.Join(dir, rel) }})
			}
		}
	}
	return out, nil
}

// listRepos are the indexes apt downloaded into its lists.
func listRepos() []aptRepo {
	ms, _ := filepath.Glob(filepath.Join(AptLists, "*_InRelease"))
	var out []aptRepo
	for _, m := range ms {
		prefix := strings.TrimSuffix(m, "InRelease")
		out = append(out, aptRepo{inRelease: m, local: func(rel string) string { return prefix + strings.ReplaceAll(rel, "/", "_") }})
	}
	return out
}

// signedIndex reads every signed index of this node: each InRelease whose
// signature gpgv verifies with the apt keyrings, each Packages file whose
// SHA-256 that InRelease lists, and each package of those files by its
// SHA-256. Indexes that do not verify are left out, with why.
func signedIndex() (map[string][]indexEntry, []error) {
	keyrings, cleanup, err := keyringFiles()
	defer cleanup()
	if err != nil {
		return nil, []error{err}
	}
	index := map[string][]indexEntry{}
	var errs []error
	repos, err := localRepos()
	if err != nil {
		errs = append(errs, err)
	}
	for _, r := range append(repos, listRepos()...) {
		if _, err := os.Stat(r.inRelease); err != nil {
			continue
		}
		signed, err := verifyInRelease(r.inRelease, keyrings)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for rel, sum := range releaseSHA256(signed) {
			if base := filepath.Base(rel); base != "Packages" && base != "Packages.gz" {
				continue
			}
			p := r.local(rel)
			b, err := os.ReadFile(p)
			if err != nil {
				continue // not downloaded: apt fetches only what it needs
			}
			if got := sha256.Sum256(b); hex.EncodeToString(got[:]) != sum {
				errs = append(errs, fmt.Errorf("%s: SHA-256 differs from %s's: not used", p, r.inRelease))
				continue
			}
			ents, err := readPackages(p)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", p, err))
				continue
			}
			for _, e := range ents {
				e.Index = r.inRelease
				index[e.SHA256] = append(index[e.SHA256], e)
			}
		}
	}
	return index, errs
}

// verifyInRelease returns the signed text of an InRelease file, as gpgv
// verified it.
func verifyInRelease(path string, keyrings []string) ([]byte, error) {
	args := []string{"--status-fd", "2"}
	for _, k := range keyrings {
		args = append(args, "--keyring", k)
	}
	args = append(args, "--output", "-", path)
	var out, errb bytes.Buffer
	cmd := exec.Command(GpgvCmd, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s: signature does not verify with the apt keyrings (%v): %s", path, err, lastLines(errb.String(), 3))
	}
	if !strings.Contains(errb.String(), "[GNUPG:] GOODSIG") || !strings.Contains(errb.String(), "[GNUPG:] VALIDSIG") {
		return nil, fmt.Errorf("%s: gpgv reported no good signature", path)
	}
	return out.Bytes(), nil
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, " | ")
}

// releaseSHA256 reads the SHA256 section of a Release file: path -> sum.
func releaseSHA256(b []byte) map[string]string {
	m := map[string]string{}
	in := false
	for _, l := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(l, "SHA256:"):
			in = true
		case in && strings.HasPrefix(l, " "):
			f := strings.Fields(l)
			if len(f) == 3 {
				m[f[2]] = strings.ToLower(f[0])
			}
		default:
			in = false
		}
	}
	return m
}

// keyringTemp makes the temporary file of a dearmored keyring.
var keyringTemp = func() (*os.File, error) { return os.CreateTemp("", "sentry-keyring-*.gpg") }

// keyringFiles lists apt's keyrings for gpgv; armored (.asc) ones are
// dearmored into temporary files, as apt does. A copy that cannot be
// written is an error: no signature is verified then.
func keyringFiles() ([]string, func(), error) {
	var out, tmps []string
	cleanup := func() {
		for _, t := range tmps {
			os.Remove(t)
		}
	}
	for _, d := range AptKeyrings {
		ents, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		for _, e := range ents {
			p := filepath.Join(d, e.Name())
			switch filepath.Ext(e.Name()) {
			case ".gpg":
				out = append(out, p)
			case ".asc":
				b, err := os.ReadFile(p)
				if err != nil {
					continue
				}
				bin, err := dearmor(b)
				if err != nil {
					continue
				}
				f, err := keyringTemp()
				if err != nil {
					return nil, cleanup, fmt.Errorf("%s: no file for its dearmored copy: %w", p, err)
				}
				tmps = append(tmps, f.Name())
				_, err = f.Write(bin)
				if cerr := f.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					// gpgv never runs with a keyring cut short or missing.
					return nil, cleanup, fmt.Errorf("%s: its dearmored copy for gpgv was not written: %w", p, err)
				}
				out = append(out, f.Name())
			}
		}
	}
	if len(out) == 0 {
		return nil, cleanup, fmt.Errorf("no apt keyring in %s", strings.Join(AptKeyrings, " or "))
	}
	sort.Strings(out)
	return out, cleanup, nil
}

// dearmor decodes an ASCII-armored OpenPGP block.
func dearmor(b []byte) ([]byte, error) {
	lines := strings.Split(strings.ReplaceAll(string(b), "\r", ""), "\n")
	var body strings.Builder
	state := 0 // 0 before BEGIN, 1 headers, 2 body
	for _, l := range lines {
		switch {
		case state == 0 && strings.HasPrefix(l, "-----BEGIN PGP PUBLIC KEY BLOCK"):
			state = 1
		case state == 1 && strings.TrimSpace(l) == "":
			state = 2
		case state == 1 && !strings.Contains(l, ":"):
			state = 2
			body.WriteString(strings.TrimSpace(l))
		case state == 2 && strings.HasPrefix(l, "-----END"):
			return base64.StdEncoding.DecodeString(body.String())
		case state == 2 && strings.HasPrefix(l, "="):
			// the CRC line
		case state == 2:
			body.WriteString(strings.TrimSpace(l))
		}
	}
	return nil, errors.New("no armored public key block")
}

// checkDeb says why a .deb may be installed: its SHA-256 is in a signed
// index under d's name, version and architecture, with a Filename of the
// same name (or named as apt names the file in its cache and with apt-get
// download: an epoch's ':' is %3a there, and the pool's name has no
// epoch), or the operator approved the hash.
func checkDeb(path string, d DebRequest, index map[string][]indexEntry, approved map[string]bool) (sum, trusted string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", "", err
	}
	sum = hex.EncodeToString(h.Sum(nil))
	var near []string
	for _, e := range index[sum] {
		if e.Package == d.Name && e.Version == d.Version && (e.Arch == d.Arch || e.Arch == "all") &&
			(filepath.Base(e.Filename) == filepath.Base(path) || filepath.Base(path) == aptFileName(d)) {
			return sum, "signed index " + e.Index, nil
		}
		near = append(near, fmt.Sprintf("%s=%s (%s) in %s", e.Package, e.Version, e.Filename, e.Index))
	}
	if approved[sum] {
		return sum, "approved by the operator", nil
	}
	if len(near) > 0 {
		return sum, "", fmt.Errorf("SHA-256 %s is in a signed index, but as %s", sum, strings.Join(near, "; "))
	}
	return sum, "", fmt.Errorf("SHA-256 %s of %s is in no signed apt index of this node: approve it with `sentry parity apply --yes --approve %s` if you trust it", sum, filepath.Base(path), sum)
}
