package cfgsync

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/sentryha/sentry/synchronizer"
)

// FetchPath is the peer API path of the fetch.
const FetchPath = "/v1/config/fetch"

// HandleFetch serves the secondary: the primary's head, and a packfile of
// what the secondary lacks (POST /v1/config/fetch, peer only: the wiring
// mounts it behind the peer's checks).
func (s *Sync) HandleFetch(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Have string `json:"have"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&req); err != nil {
		s.d.Refuse(w, r, http.StatusBadRequest, fmt.Errorf("fetch request: %w", err))
		return
	}
	s.mu.Lock()
	repo := s.repo
	s.mu.Unlock()
	if repo == nil {
		s.d.Refuse(w, r, http.StatusConflict, fmt.Errorf("this node is not the primary"))
		return
	}
	head := repo.Head()
	w.Header().Set("X-Sentry-Config-Head", head.String())
	if head.IsZero() || head.String() == req.Have {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	// The packfile, gzipped: its objects are compressed one by one, and a
	// stream compression over all of them saves another quarter or so.
	w.Header().Set("Content-Type", "application/x-git-packfile")
	w.Header().Set("X-Sentry-Pack-Encoding", "gzip")
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	n, err := synchronizer.WritePack(zw, repo.Git().Storer, head, []plumbing.Hash{plumbing.NewHash(req.Have)})
	if err == nil {
		err = zw.Close()
	}
	if err != nil {
		s.d.Log.Error("config fetch", "err", err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusOK)
	w.Write(buf.Bytes())
	s.d.Log.Debug("config fetch served", "peer", r.RemoteAddr, "objects", n, "bytes", buf.Len())
}

// fetcher is the secondary's side of HandleFetch, through Deps.Peer.
func (s *Sync) fetcher() synchronizer.Fetcher {
	return func(ctx context.Context, have plumbing.Hash) (plumbing.Hash, io.ReadCloser, error) {
		if s.d.Peer == nil {
			return plumbing.ZeroHash, nil, fmt.Errorf("no peer to fetch from")
		}
		haveStr := ""
		if !have.IsZero() {
			haveStr = have.String()
		}
		headStr, pack, err := s.d.Peer.FetchConfig(ctx, haveStr)
		if err != nil {
			return plumbing.ZeroHash, nil, err
		}
		head := plumbing.NewHash(headStr)
		if pack == nil {
			return head, nil, nil
		}
		cr := &synchronizer.CountingReader{R: io.LimitReader(pack, 1<<30)}
		zr, err := gzip.NewReader(cr)
		if err != nil {
			pack.Close()
			return plumbing.ZeroHash, nil, fmt.Errorf("pack from the primary: %w", err)
		}
		return head, &gzipPack{Reader: zr, body: pack, cr: cr}, nil
	}
}

// gzipPack is the pack as read from the wire; WireBytes is what crossed.
type gzipPack struct {
	*gzip.Reader
	body io.Closer
	cr   *synchronizer.CountingReader
}

func (g *gzipPack) Close() error     { g.Reader.Close(); return g.body.Close() }
func (g *gzipPack) WireBytes() int64 { return g.cr.N }
