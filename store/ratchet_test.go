package store

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/statusgate/statusgate/core/ratchet"
)

func key(b byte) []byte { return bytes.Repeat([]byte{b}, 33) }

// TestRatchetStore: the ratchet tables on both backends — installation id (first writer
// wins), prekeys newest first, installations replaced by identity and capped, sessions
// with their state and keys (caps, retire, keep), agreed installations, secret peers and
// the contact-code time.
func TestRatchetStore(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := openStore(t, be.config(t))
			owner, peer := key(1), key(2)

			// Installation id.
			if _, ok, err := s.InstallationID(ctx, owner); err != nil || ok {
				t.Fatalf("fresh installation id: ok=%v err=%v", ok, err)
			}
			t0 := time.Unix(1_700_000_000, 5)
			if err := s.SetContactCodePublished(ctx, owner, t0); err != nil { // row before the id
				t.Fatal(err)
			}
			if _, ok, err := s.InstallationID(ctx, owner); err != nil || ok {
				t.Fatalf("installation id after contact code: ok=%v err=%v", ok, err)
			}
			if id, err := s.SetInstallationID(ctx, owner, "first"); err != nil || id != "first" {
				t.Fatalf("set installation id: %q %v", id, err)
			}
			if id, err := s.SetInstallationID(ctx, owner, "second"); err != nil || id != "first" {
				t.Fatalf("second set: %q %v, want first", id, err)
			}
			if at, err := s.ContactCodePublished(ctx, owner); err != nil || !at.Equal(t0) {
				t.Fatalf("contact code time %v %v", at, err)
			}
			if at, err := s.ContactCodePublished(ctx, peer); err != nil || !at.IsZero() {
				t.Fatalf("unknown owner's contact code time %v %v", at, err)
			}

			// Prekeys.
			for v := uint32(1); v <= 2; v++ {
				if err := s.AddPrekey(ctx, owner, ratchet.Prekey{Public: key(byte(10 + v)), Private: bytes.Repeat([]byte{byte(v)}, 32),
					Version: v, Created: t0.Add(time.Duration(v) * time.Hour)}); err != nil {
					t.Fatal(err)
				}
			}
			ps, err := s.Prekeys(ctx, owner)
			if err != nil || len(ps) != 2 || ps[0].Version != 2 || !ps[0].Created.Equal(t0.Add(2*time.Hour)) {
				t.Fatalf("prekeys %+v %v", ps, err)
			}
			if p, ok, err := s.PrekeyByPublic(ctx, owner, key(11)); err != nil || !ok || p.Version != 1 {
				t.Fatalf("prekey by public %+v %v %v", p, ok, err)
			}
			if _, ok, err := s.PrekeyByPublic(ctx, peer, key(11)); err != nil || ok {
				t.Fatalf("another owner's prekey found: %v %v", ok, err)
			}

			// Installations: newest first, an update keeps the enabled flag, capped at 3.
			for i, id := range []string{"a", "b", "c"} {
				if err := s.SaveDevice(ctx, owner, ratchet.Device{Identity: peer, InstallationID: id, SignedPreKey: key(byte(20 + i)),
					PrekeyVersion: 1, ProtocolVersion: 1, Timestamp: int64(100 + i), Enabled: false}, 3); err != nil {
					t.Fatal(err)
				}
			}
			if ok, err := s.SetDeviceEnabled(ctx, owner, peer, "a", true); err != nil || !ok {
				t.Fatalf("enable a: %v %v", ok, err)
			}
			if ok, err := s.SetDeviceEnabled(ctx, owner, peer, "zz", true); err != nil || ok {
				t.Fatalf("enable unknown: %v %v", ok, err)
			}
			if err := s.SaveDevice(ctx, owner, ratchet.Device{Identity: peer, InstallationID: "a", SignedPreKey: key(30),
				PrekeyVersion: 2, ProtocolVersion: 1, Timestamp: 200}, 3); err != nil {
				t.Fatal(err)
			}
			if err := s.SaveDevice(ctx, owner, ratchet.Device{Identity: peer, InstallationID: "d", SignedPreKey: key(31),
				ProtocolVersion: 1, Timestamp: 150, Enabled: true}, 3); err != nil {
				t.Fatal(err)
			}
			ds, err := s.Devices(ctx, owner, peer)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, d := range ds {
				ids = append(ids, d.InstallationID)
			}
			if !slices.Equal(ids, []string{"a", "d", "c"}) || !ds[0].Enabled || ds[0].PrekeyVersion != 2 ||
				!bytes.Equal(ds[0].SignedPreKey, key(30)) || ds[2].Enabled {
				t.Fatalf("installations %+v, want a (enabled, v2), d, c; b evicted", ds)
			}

			// Sessions and message keys.
			st := ratchet.State{DHsPublic: key(40), DHsPrivate: bytes.Repeat([]byte{4}, 32), RootKey: bytes.Repeat([]byte{5}, 32),
				SendKey: bytes.Repeat([]byte{6}, 32), RecvKey: bytes.Repeat([]byte{7}, 32), SendN: 1<<32 - 1, KeysCount: 3}
			sess := ratchet.Session{Peer: peer, InstallationID: "a", BundleID: key(11), Ephemeral: key(41), SK: bytes.Repeat([]byte{8}, 32),
				Created: t0, State: st}
			mk := func(n, seq uint32) ratchet.MessageKey {
				return ratchet.MessageKey{DH: key(50), N: n, Key: bytes.Repeat([]byte{byte(n)}, 32), Seq: seq}
			}
			id1, err := s.InsertSession(ctx, owner, ratchet.NewSession{Session: sess, Keys: []ratchet.MessageKey{mk(0, 0), mk(1, 1), mk(2, 2)}, Keep: 2})
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Sessions(ctx, owner, peer, "a")
			if err != nil || len(got) != 1 || got[0].ID != id1 || got[0].State.DHr != nil || got[0].State.SendN != 1<<32-1 ||
				!bytes.Equal(got[0].State.RootKey, st.RootKey) || !got[0].Created.Equal(t0) || got[0].Initiator {
				t.Fatalf("sessions %+v %v", got, err)
			}
			if k, ok, err := s.MessageKey(ctx, id1, key(50), 1); err != nil || !ok || k[0] != 1 {
				t.Fatalf("message key %x %v %v", k, ok, err)
			}
			// An update: new state, two new keys, capped at 3 keys, then keys with seq ≤ 1 deleted.
			st.DHr, st.RecvN, st.KeysCount, st.PrevDHr = key(50), 5, 5, append(key(51), key(52)...)
			if err := s.UpdateSession(ctx, owner, ratchet.SessionUpdate{Session: id1, State: st, Confirmed: true,
				Keys: []ratchet.MessageKey{mk(3, 3), mk(4, 4)}, MaxKeys: 3, DeleteUpTo: 2}); err != nil {
				t.Fatal(err)
			}
			for n := uint32(0); n <= 4; n++ {
				_, ok, err := s.MessageKey(ctx, id1, key(50), n)
				if err != nil || ok != (n >= 3) {
					t.Fatalf("after update, key %d present=%v (%v)", n, ok, err)
				}
			}
			if got, _ := s.Sessions(ctx, owner, peer, "a"); !bytes.Equal(got[0].State.PrevDHr, st.PrevDHr) || !got[0].Confirmed {
				t.Fatalf("after update: %+v", got[0])
			}
			if err := s.DeleteMessageKey(ctx, id1, key(50), 3); err != nil {
				t.Fatal(err)
			}
			if _, ok, _ := s.MessageKey(ctx, id1, key(50), 3); ok {
				t.Fatal("deleted key still there")
			}
			if err := s.UpdateSession(ctx, owner, ratchet.SessionUpdate{Session: id1 + 1000, State: st, DeleteUpTo: -1}); err == nil {
				t.Fatal("update of an unknown session succeeded")
			}
			// Two more sessions: the second retires the first, the third pushes it out (keep 2).
			id2, err := s.InsertSession(ctx, owner, ratchet.NewSession{Session: sess, Retire: id1, Keep: 2})
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := s.Sessions(ctx, owner, peer, "a"); len(got) != 2 || got[0].ID != id2 || !got[1].Retired || !got[1].Confirmed {
				t.Fatalf("after retire: %+v", got)
			}
			id3, err := s.InsertSession(ctx, owner, ratchet.NewSession{Session: sess, Keep: 2})
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := s.Sessions(ctx, owner, peer, "a"); len(got) != 2 || got[0].ID != id3 || got[1].ID != id2 {
				t.Fatalf("after keep: %+v", got)
			}
			if _, ok, _ := s.MessageKey(ctx, id1, key(50), 4); ok {
				t.Fatal("a deleted session's keys survived")
			}

			// Negotiation bookkeeping.
			for range 2 {
				if _, err := s.AddSecretPeer(ctx, owner, peer); err != nil {
					t.Fatal(err)
				}
			}
			if isNew, err := s.AddSecretPeer(ctx, owner, key(3)); err != nil || !isNew {
				t.Fatalf("new secret peer: %v %v", isNew, err)
			}
			if ps, err := s.SecretPeers(ctx, owner); err != nil || len(ps) != 2 {
				t.Fatalf("secret peers %x %v", ps, err)
			}
			if isNew, err := s.MarkAgreed(ctx, owner, peer, "a"); err != nil || !isNew {
				t.Fatalf("mark agreed: %v %v", isNew, err)
			}
			if isNew, err := s.MarkAgreed(ctx, owner, peer, "a"); err != nil || isNew {
				t.Fatalf("mark agreed again: %v %v", isNew, err)
			}
			if ids, err := s.Agreed(ctx, owner, peer); err != nil || !slices.Equal(ids, []string{"a"}) {
				t.Fatalf("agreed %v %v", ids, err)
			}
		})
	}
}
