package whisper

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/rlp"
)

// startService runs a service until the test ends.
func startService(t testing.TB, cfg Config) *Service {
	t.Helper()
	s, err := NewService(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("service run: %v", err)
		}
	})
	return s
}

func randomID() enode.ID {
	var id enode.ID
	rand.Read(id[:])
	return id
}

// connect joins two services through an in-memory pipe, each seeing the other as a peer
// with a fresh random ID; the link is closed at the end of the test, or by calling the
// returned function. Handler errors are sent on errs.
func connect(t testing.TB, a, b *Service) (cut func(), errs <-chan error) {
	t.Helper()
	rwA, rwB := p2p.MsgPipe()
	ec := make(chan error, 2)
	go func() { ec <- a.RunPeer(p2p.NewPeer(randomID(), "b", nil), rwA) }()
	go func() { ec <- b.RunPeer(p2p.NewPeer(randomID(), "a", nil), rwB) }()
	var closed atomic.Bool
	cut = func() {
		if closed.CompareAndSwap(false, true) {
			rwA.Close()
		}
	}
	t.Cleanup(cut)
	waitFor(t, "peers connected", func() bool { return len(a.Peers()) > 0 && len(b.Peers()) > 0 })
	return cut, ec
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// receive waits for one message on sub.
func receive(t testing.TB, sub *Subscription) *ReceivedMessage {
	t.Helper()
	select {
	case m, ok := <-sub.C():
		if !ok {
			t.Fatal("subscription closed")
		}
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no message within 10 s")
		return nil
	}
}

// rawMsg is a packet read by a rawPeer.
type rawMsg struct {
	code uint64
	body []byte
}

// rawPeer is a hand-driven shh/6 peer on a pipe: tests write arbitrary packets with it.
type rawPeer struct {
	t   testing.TB
	id  enode.ID
	rw  *p2p.MsgPipeRW
	in  chan rawMsg
	ret chan error // RunPeer's result
}

// dialRaw connects a raw peer to s. status is the body of the first packet the raw
// peer sends (code 0); nil sends a valid full-node status with PoW 0.
func dialRaw(t testing.TB, s *Service, status []byte) *rawPeer {
	t.Helper()
	return dialRawCode(t, s, statusCode, status)
}

func dialRawCode(t testing.TB, s *Service, code uint64, status []byte) *rawPeer {
	t.Helper()
	if status == nil {
		var err error
		if status, err = EncodeStatus(Status{Bloom: FullBloom()}); err != nil {
			t.Fatal(err)
		}
	}
	rwS, rwR := p2p.MsgPipe()
	r := &rawPeer{t: t, id: randomID(), rw: rwR, in: make(chan rawMsg, 4096), ret: make(chan error, 1)}
	go func() { r.ret <- s.RunPeer(p2p.NewPeer(r.id, "raw", nil), rwS) }()
	go r.readLoop()
	t.Cleanup(func() { rwR.Close() })
	r.send(code, status)
	return r
}

func (r *rawPeer) readLoop() {
	for {
		msg, err := r.rw.ReadMsg()
		if err != nil {
			close(r.in)
			return
		}
		body, _ := io.ReadAll(msg.Payload)
		select {
		case r.in <- rawMsg{msg.Code, body}:
		default: // tests read what they need; the rest is dropped
		}
	}
}

// send writes one packet; a closed pipe is not an error (the service may have
// disconnected us already, which the test checks through result).
func (r *rawPeer) send(code uint64, body []byte) {
	_ = r.rw.WriteMsg(p2p.Msg{Code: code, Size: uint32(len(body)), Payload: bytes.NewReader(body)})
}

// sendEnvelopes writes a code-1 packet holding envs.
func (r *rawPeer) sendEnvelopes(envs ...*Envelope) {
	r.t.Helper()
	body, err := rlp.EncodeToBytes(envs)
	if err != nil {
		r.t.Fatal(err)
	}
	r.send(messagesCode, body)
}

// result waits for the service to end the connection and returns its reason.
func (r *rawPeer) result() error {
	r.t.Helper()
	select {
	case err := <-r.ret:
		return err
	case <-time.After(10 * time.Second):
		r.t.Fatal("service did not disconnect the raw peer within 10 s")
		return nil
	}
}

// alive reports whether the service still serves the raw peer.
func (r *rawPeer) alive() bool {
	select {
	case err := <-r.ret:
		r.ret <- err
		return false
	default:
		return true
	}
}

// next returns the next packet with code, skipping others, within 10 s.
func (r *rawPeer) next(code uint64) rawMsg {
	r.t.Helper()
	return r.nextWithin(code, 10*time.Second)
}

// nextWithin is next with a deadline of d.
func (r *rawPeer) nextWithin(code uint64, d time.Duration) rawMsg {
	r.t.Helper()
	timeout := time.After(d)
	for {
		select {
		case m, ok := <-r.in:
			if !ok {
				r.t.Fatalf("connection closed while waiting for packet %d", code)
			}
			if m.code == code {
				return m
			}
		case <-timeout:
			r.t.Fatalf("no packet %d within %v", code, d)
		}
	}
}

func powBits(p float64) []byte {
	b, _ := rlp.EncodeToBytes(math.Float64bits(p))
	return b
}

// testEnvelope builds a symmetric, signed envelope for topic name, sealed to pow (0: no
// sealing), with the given TTL and sent time.
func testEnvelope(t testing.TB, name string, payload string, pow float64, ttl uint32, now time.Time) *Envelope {
	t.Helper()
	env, err := Wrap(&MessageParams{Topic: TopicFromName(name), KeySym: symKeyOf(t, name), Src: keyOf(t, "alice"),
		Payload: []byte(payload), TTL: ttl, PoW: pow, WorkTime: 5 * time.Second, Clock: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// lowPoW returns env's content with the first nonce whose PoW is below pow.
func lowPoW(t testing.TB, env *Envelope, pow float64) *Envelope {
	t.Helper()
	for n := uint64(0); ; n++ {
		e, err := NewEnvelope(env.Expiry(), env.TTL(), env.Topic(), env.Data(), n)
		if err != nil {
			t.Fatal(err)
		}
		if e.PoW() < pow {
			return e
		}
	}
}
