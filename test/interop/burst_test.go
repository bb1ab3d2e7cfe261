package interop

import (
	"fmt"
	"testing"
	"time"

	"github.com/statusgate/statusgate/core/node"
	"github.com/statusgate/statusgate/core/whisper"
)

// TestRLPx_eagerBurstKeepsGethConnected: our node forwards eagerly (a packet as soon as
// envelopes are pooled, coalesced within the window and the packet budget); under a
// burst of 2,000 envelopes offered in one second, geth v1.9.20 receives every one and
// keeps the connection. Nothing on the wire changed: code-1 packets of envelope lists.
func TestRLPx_eagerBurstKeepsGethConnected(t *testing.T) {
	const (
		total   = 2000
		perTick = 10
		tick    = 5 * time.Millisecond // perTick every tick: 2,000 envelopes per second
	)
	ref, ours := linkedPair(t, node.Config{})
	topic := whisper.TopicFromName("burst")
	sym := mustSymKey(t, "burst")
	alice := mustKey(t, "alice")
	if _, err := ref.Subscribe(topic, sym.Bytes(), nil, 0); err != nil {
		t.Fatal(err)
	}
	envs := make([]*whisper.Envelope, total)
	for i := range envs {
		env, err := whisper.Wrap(&whisper.MessageParams{Topic: topic, KeySym: sym, Src: alice,
			Payload: []byte(fmt.Sprint("burst ", i)), TTL: 60, PoW: 0.002, WorkTime: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		envs[i] = env
	}

	sent := make(chan error, 1)
	go func() {
		pace := time.NewTicker(tick)
		defer pace.Stop()
		for i := 0; i < total; i += perTick {
			for _, env := range envs[i : i+perTick] {
				if err := ours.Whisper().Send(env); err != nil {
					sent <- err
					return
				}
			}
			<-pace.C
		}
		sent <- nil
	}()
	start := time.Now()
	got := map[[32]byte]bool{}
	for len(got) < total {
		m := ref.WaitMessage(t, msgTimeout)
		got[m.Hash] = true
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	for _, env := range envs {
		if !got[env.Hash()] {
			t.Fatalf("geth did not receive %s", env)
		}
	}
	for drained := false; !drained; {
		select {
		case ev := <-ref.PeerEvents():
			if ev.Event == "drop" {
				t.Fatalf("geth dropped us: %+v", ev)
			}
		default:
			drained = true
		}
	}
	info := peerInfo(t, ours, refID(t, ref))
	t.Logf("geth received %d envelopes in %v, in %d packets from us", total, time.Since(start).Round(time.Millisecond), info.Packets)
	waitRefPeers(t, ref, 1)
}
