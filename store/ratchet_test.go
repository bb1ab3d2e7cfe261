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
			// Pruning: version 1 was superseded at t0+2h (version 2's creation); the
			// newest is never deleted; another owner's are not touched.
			if err := s.AddPrekey(ctx, peer, ratchet.Prekey{Public: key(11), Private: key(1)[:32], Version: 1, Created: t0}); err != nil {
				t.Fatal(err)
			}
			if err := s.AddPrekey(ctx, peer, ratchet.Prekey{Public: key(12), Private: key(1)[:32], Version: 2, Created: t0}); err != nil {
				t.Fatal(err)
			}
			if n, err := s.PrunePrekeys(ctx, owner, 0, t0.Add(2*time.Hour)); err != nil || n != 0 {
				t.Fatalf("prune at the supersession time: %d %v, want 0", n, err)
			}
			// Version 1 is the newest replaced one: kept by a count of 1 whatever its age.
			if n, err := s.PrunePrekeys(ctx, owner, 1, t0.Add(100*time.Hour)); err != nil || n != 0 {
				t.Fatalf("prune keeping the newest replaced one: %d %v, want 0", n, err)
			}
			if n, err := s.PrunePrekeys(ctx, owner, 0, t0.Add(100*time.Hour)); err != nil || n != 1 {
				t.Fatalf("prune after: %d %v, want 1", n, err)
			}
			if ps, err := s.Prekeys(ctx, owner); err != nil || len(ps) != 1 || ps[0].Version != 2 {
				t.Fatalf("prekeys after pruning %+v %v, want version 2 only", ps, err)
			}
			if ps, err := s.Prekeys(ctx, peer); err != nil || len(ps) != 2 {
				t.Fatalf("another owner's prekeys after pruning: %d %v, want 2", len(ps), err)
			}
			if err := s.AddPrekey(ctx, owner, ratchet.Prekey{Public: key(11), Private: bytes.Repeat([]byte{1}, 32), Version: 1,
				Created: t0.Add(time.Hour)}); err != nil { // back, for what follows
				t.Fatal(err)
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
			if ks, err := s.SecretTopicKeys(ctx, owner); err != nil || len(ks) != 0 {
				t.Fatalf("topic keys before any was kept: %x %v", ks, err)
			}
			for _, p := range [][]byte{peer, key(4)} { // key(4): not a secret peer, not kept
				if err := s.SetSecretTopicKey(ctx, owner, p, bytes.Repeat(p[:1], 32)); err != nil {
					t.Fatal(err)
				}
			}
			if ks, err := s.SecretTopicKeys(ctx, owner); err != nil || len(ks) != 1 || !bytes.Equal(ks[string(peer)], bytes.Repeat(peer[:1], 32)) {
				t.Fatalf("topic keys %x %v, want the peer's only", ks, err)
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

// TestRatchetStore_peers: on both backends, the bound on an owner's peers (UsePeer):
// a use touches a kept peer; a new one is admitted until the bound, then the least
// recently used peer that is not pinned is evicted with every row about it
// (installations, sessions with their keys and old chains, agreed installations,
// negotiated secret); a touch never admits; with every kept peer pinned a new one is
// refused unless the use pins it; other owners are not affected. And a session's old
// chains are capped, oldest first.
func TestRatchetStore_peers(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := openStore(t, be.config(t))
			owner, other := key(1), key(9)
			p1, p2, p3, p4 := key(21), key(22), key(23), key(24)
			at := func(i int) time.Time { return time.Unix(1_700_000_000+int64(i), 0) }
			use := func(owner, peer []byte, i int, pin, admit bool) ratchet.Admission {
				t.Helper()
				a, err := s.UsePeer(ctx, owner, peer, ratchet.PeerUse{At: at(i), Pin: pin, Admit: admit, Max: 2})
				if err != nil {
					t.Fatal(err)
				}
				return a
			}
			if a := use(owner, p1, 1, false, true); !a.Admitted || len(a.Evicted) != 0 {
				t.Fatalf("first peer: %+v", a)
			}
			// p1's state: an installation, a session with a key and an old chain, an
			// agreed installation and the negotiated secret.
			if err := s.SaveDevice(ctx, owner, ratchet.Device{Identity: p1, InstallationID: "a", SignedPreKey: key(30), ProtocolVersion: 1, Timestamp: 1}, 3); err != nil {
				t.Fatal(err)
			}
			st := ratchet.State{DHsPublic: key(40), DHsPrivate: key(41)[:32], RootKey: key(42)[:32], SendKey: key(43)[:32], RecvKey: key(44)[:32]}
			id, err := s.InsertSession(ctx, owner, ratchet.NewSession{Session: ratchet.Session{Peer: p1, InstallationID: "a", BundleID: key(30),
				SK: key(45)[:32], Created: at(1), State: st}, Keys: []ratchet.MessageKey{{DH: key(50), N: 1, Key: key(46)[:32]}}, Keep: 8})
			if err != nil {
				t.Fatal(err)
			}
			for i, c := range [][]byte{key(60), key(61), key(62)} {
				if err := s.UpdateSession(ctx, owner, ratchet.SessionUpdate{Session: id, State: st, DeleteUpTo: -1, OldChain: c, OldChainsKept: 2}); err != nil {
					t.Fatalf("old chain %d: %v", i, err)
				}
			}
			for i, want := range []bool{false, true, true} {
				if ok, err := s.OldChain(ctx, id, key(byte(60+i))); err != nil || ok != want {
					t.Fatalf("old chain %d remembered=%v (%v), want %v (2 kept, oldest dropped)", i, ok, err, want)
				}
			}
			if _, err := s.MarkAgreed(ctx, owner, p1, "a"); err != nil {
				t.Fatal(err)
			}
			if _, err := s.AddSecretPeer(ctx, owner, p1); err != nil {
				t.Fatal(err)
			}

			use(owner, p2, 2, false, true)
			if a := use(owner, p1, 3, false, false); !a.Admitted {
				t.Fatal("a touch of a kept peer: not admitted")
			}
			use(owner, p2, 4, false, false) // p1 is the least recently used again
			a := use(owner, p3, 5, false, true)
			if !a.Admitted || len(a.Evicted) != 1 || !bytes.Equal(a.Evicted[0], p1) {
				t.Fatalf("third peer with a bound of 2: %+v, want p1 evicted", a)
			}
			if ds, _ := s.Devices(ctx, owner, p1); len(ds) != 0 {
				t.Fatalf("evicted peer's installations kept: %+v", ds)
			}
			if ss, _ := s.Sessions(ctx, owner, p1, "a"); len(ss) != 0 {
				t.Fatalf("evicted peer's sessions kept: %+v", ss)
			}
			if _, ok, _ := s.MessageKey(ctx, id, key(50), 1); ok {
				t.Fatal("evicted peer's message key kept")
			}
			if ok, _ := s.OldChain(ctx, id, key(62)); ok {
				t.Fatal("evicted peer's old chains kept")
			}
			if ids, _ := s.Agreed(ctx, owner, p1); len(ids) != 0 {
				t.Fatalf("evicted peer's agreed installations kept: %v", ids)
			}
			if ps, _ := s.SecretPeers(ctx, owner); len(ps) != 0 {
				t.Fatalf("evicted peer's secret kept: %x", ps)
			}
			if a := use(owner, p4, 6, false, false); a.Admitted || len(a.Evicted) != 0 {
				t.Fatalf("a touch admitted a new peer: %+v", a)
			}
			// Both kept peers pinned: a new one is refused, unless pinned itself.
			use(owner, p2, 7, true, true)
			use(owner, p3, 8, true, true)
			if a := use(owner, p4, 9, false, true); a.Admitted || len(a.Evicted) != 0 {
				t.Fatalf("with every kept peer pinned: %+v, want refused", a)
			}
			if a := use(owner, p4, 10, true, true); !a.Admitted || len(a.Evicted) != 0 {
				t.Fatalf("the user's own conversation: %+v, want admitted beyond the bound", a)
			}
			if a := use(owner, p1, 11, false, true); a.Admitted {
				t.Fatalf("over the bound, all pinned: %+v, want refused", a)
			}
			// Another owner's peers are its own.
			if a := use(other, p1, 12, false, true); !a.Admitted || len(a.Evicted) != 0 {
				t.Fatalf("another owner: %+v", a)
			}
		})
	}
}
