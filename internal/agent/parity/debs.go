package parity

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/sentryha/sentry/internal/apttrust"
	"github.com/sentryha/sentry/internal/stamp"
	"github.com/sentryha/sentry/synchronizer/inventory"
)

// DebRequest names one package file (POST /v1/parity/deb, peer only).
type DebRequest struct {
	Name    string `json:"name"`
	Arch    string `json:"arch"`
	Version string `json:"version"`
}

func (d DebRequest) String() string { return d.Name + ":" + d.Arch + "=" + d.Version }

var debField = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.+~:_-]{0,200}$`)

// valid says whether d names a package, an architecture and a version
// (no path, no option).
func (d DebRequest) valid() bool {
	return debField.MatchString(d.Name) && debField.MatchString(d.Arch) && debField.MatchString(d.Version)
}

// HandleDeb streams one .deb of this node's apt cache or local repository
// to the peer, its SHA-256 in X-Sentry-Deb-SHA256 (POST /v1/parity/deb,
// peer only: the peer server mounts it behind its mutual TLS and limits).
func (p *Parity) HandleDeb(w http.ResponseWriter, r *http.Request) {
	id := p.deps.Self()
	var d DebRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&d); err != nil {
		p.refuse(w, r, id.Node, http.StatusBadRequest, fmt.Errorf("deb request: %w", err))
		return
	}
	if !d.valid() {
		p.refuse(w, r, id.Node, http.StatusBadRequest, fmt.Errorf("deb request: bad name, architecture or version"))
		return
	}
	path, cleanup, err := p.apt.forPeer(r.Context(), d, id.Role == stamp.RolePrimary)
	if err != nil {
		p.refuse(w, r, id.Node, http.StatusNotFound, err)
		return
	}
	defer cleanup()
	f, err := os.Open(path)
	if err != nil {
		p.refuse(w, r, id.Node, http.StatusNotFound, err)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() > MaxDebSize {
		p.refuse(w, r, id.Node, http.StatusRequestEntityTooLarge, fmt.Errorf("%s: larger than %d bytes or unreadable", path, MaxDebSize))
		return
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		p.refuse(w, r, id.Node, http.StatusInternalServerError, err)
		return
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		p.refuse(w, r, id.Node, http.StatusInternalServerError, err)
		return
	}
	// The peer server's write timeout is for messages; a file takes longer.
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(debTimeout))
	w.Header().Set("Content-Type", "application/vnd.debian.binary-package")
	w.Header().Set("Content-Length", fmt.Sprint(st.Size()))
	w.Header().Set("X-Sentry-Deb-SHA256", hex.EncodeToString(h.Sum(nil)))
	w.Header().Set("X-Sentry-Deb-Filename", filepath.Base(path))
	w.WriteHeader(http.StatusOK)
	n, err := io.Copy(w, f)
	p.deps.Log.Info("parity: sent a package to the peer", "package", d.String(), "file", path, "bytes", n, "err", err)
}

// DebNeedsFetch says whether HandleDeb would run apt-get download for d:
// a valid request, on the primary, for a file in no apt cache or local
// repository here. The peer link counts those against its limit of
// fetches.
func (p *Parity) DebNeedsFetch(d DebRequest) bool {
	if !d.valid() || p.deps.Self().Role != stamp.RolePrimary {
		return false
	}
	_, err := p.apt.locate(d)
	return err != nil
}

// getDeb puts the .deb of d into dir: from the peer's apt cache or local
// repositories (peerFirst: the primary's exact file for S), or from this
// node's, whichever has it first.
func (p *Parity) getDeb(ctx context.Context, d DebRequest, dir string, peerFirst bool) (path, source string, err error) {
	if peerFirst {
		path, source, err = p.peerDeb(ctx, d, dir)
		if err == nil {
			return path, source, nil
		}
		p.deps.Log.Info("parity apply: the peer did not send the package; looking on this node", "package", d.String(), "err", err)
	}
	local, lerr := p.apt.locate(d)
	if lerr == nil {
		dst := filepath.Join(dir, filepath.Base(local))
		if err := copyLimited(local, dst); err != nil {
			return "", "", err
		}
		return dst, "this node: " + local, nil
	}
	if !peerFirst {
		path, source, err = p.peerDeb(ctx, d, dir)
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
	if p.deps.Self().Role != stamp.RolePrimary {
		return "", "", err
	}
	// The primary fetches what neither node has (installDebs checks it
	// against the signed index, as every file).
	p.deps.Log.Info("parity apply: the peer did not send the package; fetching it", "package", d.String(), "err", err)
	fetched, cleanup, ferr := p.apt.fetchLogged(ctx, d)
	if ferr != nil {
		return "", "", fmt.Errorf("%w; %w", err, ferr)
	}
	defer cleanup()
	dst := filepath.Join(dir, filepath.Base(fetched))
	if err := copyLimited(fetched, dst); err != nil {
		return "", "", err
	}
	return dst, "this node: fetched by " + p.opts.AptGet + " download", nil
}

// peerDeb receives the .deb of d from the peer (POST /v1/parity/deb).
func (p *Parity) peerDeb(ctx context.Context, d DebRequest, dir string) (path, source string, err error) {
	if p.deps.Peer == nil {
		return "", "", ErrNoPeer
	}
	ctx, cancel := context.WithTimeout(ctx, debTimeout)
	defer cancel()
	deb, file, err := p.deps.Peer.FetchDeb(ctx, d)
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

// aptTool finds, fetches and checks .deb files with this node's apt and
// dpkg (the files and commands of Options).
type aptTool struct {
	opts *Options
	log  *slog.Logger
}

// forPeer is the .deb of d to send to the peer: from the apt cache or a
// local repository (locate); else, on the primary, fetched by apt-get
// download into a private folder and sent only when its SHA-256 is in this
// node's signed apt index. cleanup removes a fetched file.
func (t *aptTool) forPeer(ctx context.Context, d DebRequest, primary bool) (path string, cleanup func(), err error) {
	path, err = t.locate(d)
	if err == nil {
		return path, func() {}, nil
	}
	if !primary {
		return "", nil, err
	}
	t.log.Info("parity: the peer asks for a package this node has in no apt cache or local repository; fetching it", "package", d.String(), "err", err)
	path, cleanup, ferr := t.fetchLogged(ctx, d)
	if ferr != nil {
		return "", nil, fmt.Errorf("%w; %w", err, ferr)
	}
	index, idxErrs := t.opts.Apt.SignedIndex()
	for _, e := range idxErrs {
		t.log.Warn("parity: apt index not used", "err", e)
	}
	sum, trusted, err := index.Check(path, apttrust.Package(d), nil)
	for _, e := range idxErrs {
		if err != nil && errors.Is(e, apttrust.ErrSources) {
			err = fmt.Errorf("%w (%w)", err, e)
		}
	}
	if err != nil {
		cleanup()
		t.log.Error("parity: a fetched package is not sent", "package", d.String(), "file", path, "err", err)
		return "", nil, fmt.Errorf("%s fetched by %s download, not sent: %w", d, t.opts.AptGet, err)
	}
	t.log.Info("parity: fetched package checked", "package", d.String(), "file", path, "sha256", sum, "trusted", trusted)
	return path, cleanup, nil
}

// fetchLogged is fetch, with what it ran and said in the journal.
func (t *aptTool) fetchLogged(ctx context.Context, d DebRequest) (string, func(), error) {
	path, cleanup, cmd, out, err := t.fetch(ctx, d)
	if err != nil {
		t.log.Error("parity: apt-get download failed", "package", d.String(), "command", cmd, "output", out, "err", err)
		return "", nil, err
	}
	t.log.Info("parity: package fetched", "package", d.String(), "command", cmd, "file", path, "output", out)
	return path, cleanup, nil
}

// fetch runs apt-get download for d in a new private folder under
// DebFetchDir and returns the file it wrote (its control fields checked),
// and a cleanup that removes the folder; with the command and its output.
func (t *aptTool) fetch(ctx context.Context, d DebRequest) (path string, cleanup func(), command, output string, err error) {
	arg := inventory.AptArg(d.Name, d.Arch, d.Version) // name=version for an "all" package
	command = t.opts.AptGet + " download " + arg
	if err := os.MkdirAll(t.opts.DebFetchDir, 0o755); err != nil {
		return "", nil, command, "", fmt.Errorf("fetching package %s version %s: %w", d.Name, d.Version, err)
	}
	dir, err := os.MkdirTemp(t.opts.DebFetchDir, "deb-") // mode 0700
	if err != nil {
		return "", nil, command, "", fmt.Errorf("fetching package %s version %s: %w", d.Name, d.Version, err)
	}
	cleanup = func() { os.RemoveAll(dir) }
	ctx, cancel := context.WithTimeout(ctx, debTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, t.opts.AptGet, "download", arg)
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
	if err := t.matches(debs[0], d); err != nil {
		cleanup()
		return "", nil, command, output, fmt.Errorf("package %s version %s: `%s`: %w", d.Name, d.Version, command, err)
	}
	return debs[0], cleanup, command, output, nil
}

// matches checks a .deb's control fields against d.
func (t *aptTool) matches(path string, d DebRequest) error {
	out, err := exec.Command(t.opts.DpkgDeb, "--field", path, "Package", "Version", "Architecture").Output()
	if err != nil {
		return fmt.Errorf("%s: %s --field: %v", filepath.Base(path), t.opts.DpkgDeb, err)
	}
	f := controlFields(string(out))
	if f["Package"] != d.Name || f["Version"] != d.Version || f["Architecture"] != d.Arch {
		return fmt.Errorf("%s is %s:%s=%s, not %s", filepath.Base(path), f["Package"], f["Architecture"], f["Version"], d)
	}
	return nil
}

// locate finds the .deb of d in the apt cache, then in the local (file:)
// repositories of this node's apt sources, and checks its control fields.
func (t *aptTool) locate(d DebRequest) (string, error) {
	cands := []string{filepath.Join(t.opts.AptArchives, apttrust.CacheName(apttrust.Package(d)))}
	local, srcErr := t.opts.Apt.LocalFiles(apttrust.Package(d))
	cands = append(cands, local...)
	for _, c := range cands {
		if _, err := os.Stat(c); err != nil {
			continue
		}
		if t.matches(c, d) == nil {
			return c, nil
		}
	}
	return "", &noDebError{d: d, archives: t.opts.AptArchives, sources: srcErr}
}

// noDebError is locate's: no file of d here, and why the local
// repositories were not looked in, if they were not.
type noDebError struct {
	d        DebRequest
	archives string
	sources  error
}

func (e *noDebError) Error() string {
	msg := fmt.Sprintf("no .deb of %s in %s or a local apt repository", e.d, e.archives)
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
