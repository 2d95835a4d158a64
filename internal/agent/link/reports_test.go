package link

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sentryha/sentry/internal/peer"
)

// TestReportsFetchMounted: the kept reports' endpoint (Handlers.ReportsFetch)
// is served to the peer only, behind its certificate; a link without the
// handler answers as an older agent does, "no such peer endpoint".
func TestReportsFetchMounted(t *testing.T) {
	p, s := newFake(t, "node-p"), newFake(t, "node-s")
	dp := p.deps()
	got := make(chan string, 4)
	dp.Handlers.ReportsFetch = func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- string(b)
		w.Write([]byte(`{"node":"node-p","reports":[]}`))
	}
	lp, ls := New(dp), New(s.deps())
	defer lp.Stop(context.Background())
	defer ls.Stop(context.Background())
	res, err := lp.Init("office", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ls.Join(context.Background(), res.Token, lp.Addr()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := ls.Client().Post(ctx, "/v1/reports/fetch", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != `{"node":"node-p","reports":[]}` || <-got != `{}` {
		t.Errorf("the secondary asks the primary: %d %s", resp.StatusCode, b)
	}
	// The secondary serves no such endpoint here.
	resp, err = lp.Client().Post(ctx, "/v1/reports/fetch", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	env, err := peer.Read(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 404 || env.Type != peer.TypeError {
		t.Fatalf("without the handler: %d %v %v", resp.StatusCode, env, err)
	}
	if eb, _ := env.Error(); eb.Message != "no such peer endpoint /v1/reports/fetch" {
		t.Errorf("without the handler: %q", eb.Message)
	}
	// A client without the peer's certificate is refused before the handler.
	anon := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err = anon.Post("https://"+lp.Addr()+"/v1/reports/fetch", "application/json", strings.NewReader(`{}`))
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("no certificate: %d", resp.StatusCode)
		}
	}
	if len(got) != 0 {
		t.Errorf("the handler ran for a client without a certificate")
	}
}
