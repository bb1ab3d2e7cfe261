package main

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/statusgate/statusgate/core/ratchet"
	"github.com/statusgate/statusgate/core/status"
	"github.com/statusgate/statusgate/store"
)

// TestRatchetCollector: the secure transport's counters on /metrics, summed over our
// identities' Ratchets: a conversation through DH, X3DH and the Double Ratchet, a
// garbage payload and a replay, each counted where it belongs.
func TestRatchetCollector(t *testing.T) {
	ctx := context.Background()
	open := func(name string) *store.Store { return ratchetStore(t, name) }
	ours := status.NewRatchetPool(open("ours"), ratchet.Config{})
	aliceKey, _ := crypto.ToECDSA(crypto.Keccak256([]byte("alice")))
	bobKey, _ := crypto.ToECDSA(crypto.Keccak256([]byte("bob")))
	alice, err := ours.Get(ctx, aliceKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ours.Get(ctx, bobKey); err != nil { // a second identity of ours, idle
		t.Fatal(err)
	}
	carolKey, _ := crypto.ToECDSA(crypto.Keccak256([]byte("carol")))
	carol, err := status.NewRatchetPool(open("carol"), ratchet.Config{}).Get(ctx, carolKey)
	if err != nil {
		t.Fatal(err)
	}
	send := func(from, to *ratchet.Ratchet, text string) []byte {
		t.Helper()
		out, err := from.Encrypt(ctx, to.PublicKey(), []byte(text))
		if err != nil {
			t.Fatal(err)
		}
		in, err := to.Receive(ctx, from.PublicKey(), out.Payload)
		if err != nil || string(in.Payload) != text {
			t.Fatalf("%q: %v %+v", text, err, in)
		}
		if err := to.Processed(ctx, in.Receipt); err != nil {
			t.Fatal(err)
		}
		return out.Payload
	}
	send(alice, carol, "dh")         // alice knows no bundle of carol: DH
	send(carol, alice, "x3dh")       // carol starts a session: alice responds
	last := send(alice, carol, "dr") // the ratchet
	send(carol, alice, "dr back")
	if _, err := alice.Receive(ctx, carol.PublicKey(), []byte("garbage")); err == nil {
		t.Fatal("garbage accepted")
	}
	if _, err := carol.Receive(ctx, alice.PublicKey(), last); err == nil {
		t.Fatal("replay accepted")
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(ratchetCollector{pool: ours})
	got := gather(t, reg)
	for k, v := range map[string]float64{
		"statusgate_ratchet_identities":                                            2,
		`statusgate_ratchet_sessions_started_total{role="responder"}`:              1,
		`statusgate_ratchet_sessions_started_total{role="initiator"}`:              0,
		`statusgate_ratchet_messages_encrypted_total{mode="dh"}`:                   1,
		`statusgate_ratchet_messages_encrypted_total{mode="dr"}`:                   1,
		`statusgate_ratchet_messages_decrypted_total{mode="x3dh"}`:                 1,
		`statusgate_ratchet_messages_decrypted_total{mode="dr"}`:                   1,
		`statusgate_ratchet_decrypt_failures_total{reason="not_protocol_message"}`: 1,
		`statusgate_ratchet_decrypt_failures_total{reason="replay"}`:               0, // carol's, not ours
		"statusgate_ratchet_bundles_received_total":                                2, // carol's, in her two messages
		`statusgate_ratchet_work_refused_total{work="secret"}`:                     0,
		"statusgate_ratchet_topic_keys_derived_total":                              1, // alice's "dr" went on the negotiated topic
	} {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if cs := carol.Stats(); cs.Replay != 1 {
		t.Errorf("carol's replays: %d, want 1", cs.Replay)
	}
}

// ratchetStore opens a fresh SQLite store named name in the test's directory.
func ratchetStore(t *testing.T, name string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), store.Config{Path: filepath.Join(t.TempDir(), name+".db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// gather returns every sample of reg by name and labels, as the text format writes them.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			k := mf.GetName()
			if len(m.GetLabel()) > 0 {
				k += "{"
				for i, l := range m.GetLabel() {
					if i > 0 {
						k += ","
					}
					k += fmt.Sprintf("%s=%q", l.GetName(), l.GetValue())
				}
				k += "}"
			}
			switch {
			case m.Counter != nil:
				out[k] = m.GetCounter().GetValue()
			case m.Gauge != nil:
				out[k] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}

// TestRatchetCollector_deferred: an X3DH message the work budgets refused is counted
// as deferred and kept (the gauge), then as retried once the budget refilled.
func TestRatchetCollector_deferred(t *testing.T) {
	ctx := context.Background()
	open := func(name string) *store.Store { return ratchetStore(t, name) }
	now := time.Unix(1_700_000_000, 0)
	ours := status.NewRatchetPool(open("ours"), ratchet.Config{WorkBurst: 2, WorkPerMinute: 2, Clock: func() time.Time { return now }})
	aliceKey, _ := crypto.ToECDSA(crypto.Keccak256([]byte("alice")))
	alice, err := ours.Get(ctx, aliceKey)
	if err != nil {
		t.Fatal(err)
	}
	b, err := alice.Bundle(ctx)
	if err != nil {
		t.Fatal(err)
	}
	theirs := status.NewRatchetPool(open("theirs"), ratchet.Config{})
	for i, wantErr := range []error{nil, ratchet.ErrDeferred} {
		k, _ := crypto.ToECDSA(crypto.Keccak256([]byte(fmt.Sprint("stranger ", i))))
		r, err := theirs.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.HandleBundle(ctx, alice.PublicKey(), b); err != nil {
			t.Fatal(err)
		}
		out, err := r.Encrypt(ctx, alice.PublicKey(), []byte("hi"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := alice.Receive(ctx, k.Public().(*ecdsa.PublicKey), out.Payload); !errors.Is(err, wantErr) {
			t.Fatalf("stranger %d: %v, want %v", i, err, wantErr)
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(ratchetCollector{pool: ours})
	check := func(want map[string]float64) {
		t.Helper()
		got := gather(t, reg)
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s = %v, want %v", k, got[k], v)
			}
		}
	}
	check(map[string]float64{`statusgate_ratchet_deferred_total{outcome="deferred"}`: 1, `statusgate_ratchet_deferred_total{outcome="retried"}`: 0,
		"statusgate_ratchet_deferred_queued": 1})
	now = now.Add(time.Minute)
	if rs := alice.Retry(ctx); len(rs) != 1 || rs[0].Err != nil || string(rs[0].In.Payload) != "hi" {
		t.Fatalf("retry: %+v", rs)
	}
	check(map[string]float64{`statusgate_ratchet_deferred_total{outcome="deferred"}`: 1, `statusgate_ratchet_deferred_total{outcome="retried"}`: 1,
		`statusgate_ratchet_deferred_total{outcome="dropped"}`: 0, "statusgate_ratchet_deferred_queued": 0})
}
