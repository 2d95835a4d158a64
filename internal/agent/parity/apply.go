package parity

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/sentryha/sentry/internal/apttrust"
	"github.com/sentryha/sentry/internal/stamp"
	"github.com/sentryha/sentry/synchronizer/inventory"
)

// Parity apply: the exact .deb files come from this node's apt cache or
// local (file:) repositories, or from the peer's over the peer link; each
// is installed only when its SHA-256 is in a signed apt index here
// (internal/apttrust), or the operator approved that hash
// (docs/parity.md).

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
func (p *Parity) Apply(ctx context.Context, req ApplyRequest) (*ApplyResult, error) {
	if !p.applyMu.TryLock() {
		return nil, errors.New("a parity apply is already running")
	}
	defer p.applyMu.Unlock()
	rep, err := p.Report(ctx)
	if err != nil {
		return nil, err
	}
	res, ran, err := p.applyReport(ctx, rep, req)
	if err != nil || !ran {
		return res, err
	}
	// The new state now, not after the debounce.
	p.takeInventory("parity apply")
	p.noteDrift()
	return res, nil
}

// applyReport carries out this node's part of rep's plan (Apply); ran
// says whether it changed, or tried to change, anything.
func (p *Parity) applyReport(ctx context.Context, rep *Report, req ApplyRequest) (res *ApplyResult, ran bool, err error) {
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
	p.mu.Lock()
	peerInv, selfInv := p.peer, p.self
	p.mu.Unlock()
	o := p.opts

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
			marks = append(marks, ApplyAction{Action: "hold", Target: h, Command: o.AptMark + " hold " + h})
		}
		for _, h := range rep.Plan.UnholdOnS {
			marks = append(marks, ApplyAction{Action: "unhold", Target: h, Command: o.AptMark + " unhold " + h})
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
			marks = append(marks, ApplyAction{Action: "add-to-initramfs", Target: f.Module, Command: "echo " + f.Module + " >> " + o.InitramfsList + "; " + o.UpdateInitramfs + " -u"})
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
				p.recordAction(act, errors.New(act.Error))
			}
		}
		return res, false, nil
	}
	if len(want) > 0 {
		p.installDebs(ctx, res, want, fromPeer, req.Approve)
	}
	if res.Error == "" {
		p.applyMarks(ctx, res)
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
func (p *Parity) applyMarks(ctx context.Context, res *ApplyResult) {
	for i := range res.Actions {
		act := &res.Actions[i]
		var err error
		switch act.Action {
		case "hold", "unhold":
			act.Output, err = runLogged(ctx, p.opts.AptMark, act.Action, act.Target)
		case "add-to-initramfs":
			if err = appendLine(os.ReadFile, p.opts.InitramfsList, act.Target); err == nil {
				act.Output, err = runLogged(ctx, p.opts.UpdateInitramfs, "-u")
			}
		default:
			continue
		}
		if err != nil && strings.TrimSpace(act.Output) != "" {
			err = fmt.Errorf("%w: %s", err, lastLines(act.Output, 3))
		}
		p.recordAction(act, err)
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
func (p *Parity) installDebs(ctx context.Context, res *ApplyResult, want []DebRequest, fromPeer map[DebRequest]bool, approved []string) {
	dir := filepath.Join(p.opts.StateDir, "debs")
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		res.Error = err.Error()
		return
	}
	defer os.RemoveAll(dir)
	index, idxErrs := p.opts.Apt.SignedIndex()
	var srcErr error // unreadable apt sources: a refusal says so
	for _, e := range idxErrs {
		p.deps.Log.Warn("parity apply: apt index not used", "err", e)
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
		path, source, err := p.getDeb(ctx, d, dir, fromPeer[d])
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
			p.recordAction(act, err)
			return
		}
		files = append(files, path)
	}
	// dpkg, all files in one run: their dependencies on one another are
	// met together, and nothing is downloaded. (apt-get install
	// --no-download ./x.deb fails with "Pathname to install is not
	// absolute" on Debian 12.)
	args := append([]string{"--install"}, files...)
	out, err := runLogged(ctx, p.opts.Dpkg, args...)
	failed := failedPackages(out)
	for _, d := range want {
		act := findAction(res, "install", d.String())
		act.Command = p.opts.Dpkg + " " + strings.Join(args, " ")
		act.Output = out
		var aerr error
		if err != nil && (len(failed) == 0 || failed[d.Name]) {
			aerr = err
			act.Error = fmt.Sprintf("%v", err)
		}
		p.recordAction(act, aerr)
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
func (p *Parity) recordAction(act *ApplyAction, err error) {
	node := p.deps.Self().Node
	fields := map[string]string{"action": act.Action, "target": act.Target, "command": act.Command,
		"output": tail(act.Output, 4000), "sha256": act.SHA256, "source": act.Source, "trusted": act.Trusted}
	if err != nil {
		p.deps.Log.Error("parity apply failed", "action", act.Action, "target", act.Target, "command", act.Command, "output", act.Output, "err", err)
		fields["error"] = err.Error()
		p.deps.Event("parity-apply", node, fmt.Sprintf("%s %s FAILED: %v", act.Action, act.Target, err), fields)
		return
	}
	p.deps.Log.Info("parity apply", "action", act.Action, "target", act.Target, "command", act.Command, "sha256", act.SHA256, "trusted", act.Trusted, "output", act.Output)
	msg := fmt.Sprintf("%s %s done", act.Action, act.Target)
	if act.Trusted != "" { // a .deb: what vouched for it (holds and modules have none)
		if act.Downgrade != "" {
			msg += " (" + act.Trusted + "; a downgrade from " + act.Downgrade + ")"
		} else {
			msg += " (" + act.Trusted + ")"
		}
	}
	p.deps.Event("parity-apply", node, msg, fields)
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

// appendLine adds line to the file at path unless a line of it is already
// that line; readFile reads the file (os.ReadFile; tests make it fail). A
// file that exists but cannot be read is left as it is: the line may be in
// it, and its last line may lack its newline.
func appendLine(readFile func(string) ([]byte, error), path, line string) error {
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
