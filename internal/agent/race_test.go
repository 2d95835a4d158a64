package agent

import (
	"context"
	"net"
	"testing"
	"time"
)

// SIGHUP replaces the configuration while the verifier, parity and the
// local API read it: under -race this failed while reload wrote a.cfg
// under the lock and readers took no lock.
func TestReloadWhileServing(t *testing.T) {
	n := startNode(t, "node-p")
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 50; i++ {
			n.a.reload()
		}
	}()
	for i := 0; i < 50; i++ {
		st, err := n.c.Status(context.Background())
		if err != nil || st.Initialized {
			t.Fatalf("status during reloads: %+v %v", st, err)
		}
		_ = n.a.nodeName()
		_ = n.a.statePath("x")
	}
	<-done
}

// A join waits on the primary; meanwhile the joining agent still answers
// status (it held its lock across the call to the primary before).
func TestStatusAnswersDuringJoin(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var held []net.Conn
	go func() { // a "primary" that accepts and never answers
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	s := startNode(t, "node-s")
	p := startNode(t, "node-p")
	res, err := p.c.Init(context.Background(), "office", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	joined := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_, err := s.c.Join(ctx, res.Token, ln.Addr().String())
		joined <- err
	}()
	time.Sleep(200 * time.Millisecond) // the join is on its way to the silent primary
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := s.c.Status(ctx)
	if err != nil {
		t.Fatalf("status while a join waits on the primary: %v", err)
	}
	select {
	case err := <-joined:
		t.Fatalf("the join ended before status was asked (%v): the test proves nothing", err)
	default:
	}
	if st.Initialized {
		t.Errorf("status during the join says initialized")
	}
	if err := <-joined; err == nil {
		t.Errorf("a join to a primary that never answers succeeded")
	}
}
