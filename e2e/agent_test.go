package e2e

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sentryha/sentry/internal/agent"
	"github.com/sentryha/sentry/lab"
)

// TestPairing runs the real agent under systemd in both nodes: init on P,
// join on S, and `sentry status --json` on either shows both nodes with
// their roles and identities.
func TestPairing(t *testing.T) {
	requireLab(t)
	sentry(t, "lab", "up")
	t.Cleanup(func() { sentryErr("lab", "down") })

	for _, set := range []string{"P", "S"} {
		out := sentry(t, "lab", "exec", set, "--", "systemctl", "show", "-p", "Type,NotifyAccess,WatchdogUSec,ActiveState,SubState", "sentry-agent")
		for _, want := range []string{"Type=notify", "NotifyAccess=main", "WatchdogUSec=30s", "ActiveState=active", "SubState=running"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: sentry-agent unit lacks %s:\n%s", set, want, out)
			}
		}
	}

	var ir agent.InitResult
	if err := json.Unmarshal([]byte(sentry(t, "lab", "exec", "P", "--", "sentry", "init", "--cluster", "office", "--json")), &ir); err != nil {
		t.Fatal(err)
	}
	primary := strings.Split(lab.Sets[0].Address, "/")[0]
	var jr agent.JoinResult
	if err := json.Unmarshal([]byte(sentry(t, "lab", "exec", "S", "--", "sentry", "join", ir.Token, primary+":7443", "--json")), &jr); err != nil {
		t.Fatal(err)
	}
	if jr.ClusterID != ir.ClusterID || jr.Primary != "node-p" {
		t.Fatalf("join %+v after init %+v", jr, ir)
	}

	wantHW := map[string]string{"node-p": "mac:02:00:00:00:0a:01", "node-s": "mac:02:00:00:00:0b:01"}
	wantRole := map[string]string{"node-p": "primary", "node-s": "secondary"}
	checkStatus := func(set string) {
		t.Helper()
		var st agent.Status
		deadline := time.Now().Add(30 * time.Second)
		var problems []string
		for time.Now().Before(deadline) {
			problems = nil
			st = agent.Status{}
			if err := json.Unmarshal([]byte(sentry(t, "lab", "exec", set, "--", "sentry", "status", "--json")), &st); err != nil {
				t.Fatal(err)
			}
			if !st.Initialized || st.ClusterID != ir.ClusterID || st.ClusterName != "office" || len(st.Nodes) != 2 {
				problems = append(problems, "cluster or node count")
			}
			for _, n := range st.Nodes {
				if n.Role != wantRole[n.Name] || n.Hardware != wantHW[n.Name] || n.Generation != 1 || !n.Reachable ||
					n.DiskSet == "" || !strings.HasPrefix(n.AgentVersion, "dev") {
					problems = append(problems, n.Name)
				}
				if !n.Self && n.LastContact == nil {
					problems = append(problems, n.Name+" never contacted")
				}
			}
			if len(problems) == 0 {
				return
			}
			time.Sleep(time.Second)
		}
		t.Errorf("status on %s: %v\n%+v", set, problems, st)
	}
	checkStatus("P")
	checkStatus("S")

	// A client without a certificate, from the office: refused, and the
	// refusal is in P's journal with the office's address.
	l := lab.New(lab.Options{Name: labName})
	tr := &http.Transport{
		Dial: func(network, addr string) (net.Conn, error) {
			return lab.DialFrom(l.NS("office"), network, addr, dialTimeout)
		},
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
	}
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Post("https://"+primary+":7443/v1/hello", "application/json", bytes.NewReader([]byte("{}")))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	tr.CloseIdleConnections()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no-certificate client from the office: %s", resp.Status)
	}
	journal := func(set string) string {
		return sentry(t, "lab", "exec", set, "--", "journalctl", "-u", "sentry-agent", "-o", "json", "--no-pager")
	}
	officeIP := strings.Split(lab.OfficeAddress, "/")[0]
	if j := journal("P"); !strings.Contains(j, `"SENTRY_PEER":"`+officeIP+`:`) || !strings.Contains(j, "refused peer request") {
		t.Errorf("P's journal has no structured refusal of %s", officeIP)
	}
	if j := journal("P"); !strings.Contains(j, `"MESSAGE":"node joined`) || !strings.Contains(j, `"SENTRY_NODE":"node-s"`) {
		t.Errorf("P's journal has no structured join entry")
	}

	// SIGHUP reloads; a restart keeps the cluster (files and store).
	sentry(t, "lab", "exec", "P", "--", "systemctl", "reload", "sentry-agent")
	sentry(t, "lab", "exec", "P", "--", "systemctl", "restart", "sentry-agent")
	if j := journal("P"); !strings.Contains(j, "configuration reloaded") || !strings.Contains(j, `"MESSAGE":"agent stopped"`) {
		t.Errorf("P's journal lacks the reload or the clean stop")
	}
	checkStatus("P")
	events := sentry(t, "lab", "exec", "P", "--", "sentry", "events")
	for _, want := range []string{"init", "join", "peer-reachable"} {
		if !strings.Contains(events, want) {
			t.Errorf("P's events lack %q:\n%s", want, events)
		}
	}
}
