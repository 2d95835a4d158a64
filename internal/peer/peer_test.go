package peer

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func hello() NodeStatus {
	return NodeStatus{Name: "node-p", Role: "primary", ClusterID: "c1", Generation: 1, Time: time.Now().UTC()}
}

func TestRoundTrip(t *testing.T) {
	b, err := Encode(TypeHello, "node-p", hello())
	if err != nil {
		t.Fatal(err)
	}
	env, err := Read(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	h, err := env.Hello()
	if err != nil || h.Name != "node-p" || h.Role != "primary" || env.Version != VersionOf(TypeHello) {
		t.Fatalf("got %+v, %v", h, err)
	}
	if _, err := env.JoinRequest(); err == nil {
		t.Error("a hello decoded as a join request")
	}
}

func TestDecodeRefusals(t *testing.T) {
	big := `{"v":1,"type":"hello","from":"node-p","body":{"name":"` + strings.Repeat("a", MaxMessageSize) + `"}}`
	for _, tc := range []struct {
		name, in string
		want     error
		msg      string
	}{
		{"empty", ``, ErrMalformed, "EOF"},
		{"not json", `hello`, ErrMalformed, "invalid character"},
		{"too large", big, ErrTooLarge, "larger than"},
		{"future version", `{"v":4,"type":"hello","from":"node-p","body":{"name":"node-p"}}`, ErrVersion, "peer speaks 4, this agent 1 to 3"},
		{"v3 type at v2", `{"v":2,"type":"config-fetch","from":"node-s","body":{"have":""}}`, ErrVersion, "a config-fetch message is protocol 3"},
		{"config fetch, bad have", `{"v":3,"type":"config-fetch","from":"node-s","body":{"have":"../x"}}`, ErrMalformed, "not a commit hash"},
		{"deb request, bad name", `{"v":3,"type":"deb-request","from":"node-s","body":{"name":"-x","arch":"all","version":"1"}}`, ErrMalformed, "bad name"},
		{"v2 type at v1", `{"v":1,"type":"inventory-request","from":"node-p","body":{}}`, ErrVersion, "a inventory-request message is protocol 2"},
		{"no version", `{"type":"hello","from":"node-p","body":{"name":"node-p"}}`, ErrVersion, "peer speaks 0"},
		{"unknown type", `{"v":1,"type":"exec","from":"node-p","body":{}}`, ErrMalformed, `unknown type "exec"`},
		{"bad sender", `{"v":1,"type":"hello","from":"Node P","body":{"name":"node-p"}}`, ErrMalformed, "is not a node name"},
		{"no body", `{"v":1,"type":"hello","from":"node-p"}`, ErrMalformed, "no body"},
		{"body of wrong shape", `{"v":1,"type":"hello","from":"node-p","body":[1,2]}`, ErrMalformed, "hello body"},
		{"bad role", `{"v":1,"type":"hello","from":"node-p","body":{"name":"node-p","role":"king"}}`, ErrMalformed, `role "king"`},
		{"trailing data", `{"v":1,"type":"hello","from":"node-p","body":{"name":"node-p"}} {}`, ErrMalformed, "data after"},
		{"short secret", `{"v":1,"type":"join-request","from":"node-s","body":{"secret":"x","csr":"y","node":{"name":"node-s"},"listen_port":7443}}`, ErrMalformed, "join secret of 1 bytes"},
		{"bad port", `{"v":1,"type":"join-request","from":"node-s","body":{"secret":"0123456789abcdef0123","csr":"y","node":{"name":"node-s"},"listen_port":70000}}`, ErrMalformed, "listen port 70000"},
	} {
		_, err := Decode([]byte(tc.in))
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: err %v, want %v containing %q", tc.name, err, tc.want, tc.msg)
		}
	}
}

func TestReadStopsAtLimit(t *testing.T) {
	// An endless stream is cut at the limit, not read to the end.
	r := &endless{}
	if _, err := Read(r); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err %v", err)
	}
	if r.n > MaxMessageSize+32*1024 {
		t.Errorf("read %d bytes of an endless stream", r.n)
	}
}

type endless struct{ n int }

func (e *endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	e.n += len(p)
	return len(p), nil
}

// FuzzDecode: no input crashes the decoder, and whatever it accepts it can
// encode again and accept again with the same meaning.
func FuzzDecode(f *testing.F) {
	for _, typ := range []string{TypeHello, TypeJoinRequest, TypeJoinResponse, TypeError} {
		var body any
		switch typ {
		case TypeHello:
			body = hello()
		case TypeJoinRequest:
			body = JoinRequest{Secret: "0123456789abcdef0123456789", CSR: "-----BEGIN CERTIFICATE REQUEST-----", Node: hello(), ListenPort: 7443}
		case TypeJoinResponse:
			body = JoinResponse{Cert: "c", CA: "ca", ClusterID: "c1", Primary: hello()}
		case TypeError:
			body = ErrorBody{Message: "token already used"}
		}
		b, err := Encode(typ, "node-p", body)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		env, err := Decode(in)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrVersion) {
				t.Fatalf("error %v wraps no decoder error", err)
			}
			return
		}
		var body any
		switch env.Type {
		case TypeHello:
			body, err = env.Hello()
		case TypeJoinRequest:
			body, err = env.JoinRequest()
		case TypeJoinResponse:
			body, err = env.JoinResponse()
		case TypeError:
			body, err = env.Error()
		}
		if err != nil {
			t.Fatalf("accepted envelope with a bad body: %v", err)
		}
		again, err := Encode(env.Type, env.From, body)
		if err != nil {
			if errors.Is(err, ErrTooLarge) {
				return
			}
			t.Fatal(err)
		}
		env2, err := Decode(again)
		if err != nil {
			t.Fatalf("re-encoded message refused: %v\n%s", err, again)
		}
		if env2.Type != env.Type || env2.From != env.From {
			t.Fatalf("re-encoding changed the message: %+v vs %+v", env2, env)
		}
	})
}

// Decode checks a hello by decoding it; the first Hello takes that
// decoding, a second decodes again (the first's caller may change its own).
func TestDecodedHelloTakenOnce(t *testing.T) {
	b, err := Encode(TypeHello, "node-p", NodeStatus{Name: "node-p", Role: "primary", Time: time.Now().UTC()})
	if err != nil {
		t.Fatal(err)
	}
	env, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	first, err := env.Hello()
	if err != nil || first.Name != "node-p" || first.Role != "primary" {
		t.Fatalf("%+v, %v", first, err)
	}
	first.Role = "changed by its caller"
	second, err := env.Hello()
	if err != nil || second == first || second.Role != "primary" {
		t.Fatalf("second Hello: %+v, %v", second, err)
	}
}
