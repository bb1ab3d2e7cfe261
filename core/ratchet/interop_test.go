package ratchet_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"testing"

	"github.com/statusgate/statusgate/core/ratchet"
	"github.com/statusgate/statusgate/test/statusref"
)

// Interop with status-go v0.70.1's protocol/encryption (test/statusgo, "encryption"
// mode: a separate process running status-go's own code on its own databases). Every
// ProtocolMessage one side builds is handled by the other, both directions.

// realParty is a party on the real clock: status-go stamps bundles with time.Now, and
// newer bundles win.
func realParty(tb testing.TB, name string, key *ecdsa.PrivateKey) *party {
	tb.Helper()
	p := &party{name: name, key: key, inst: name + "-installation", path: tb.TempDir() + "/" + name + ".db"}
	p.cfg = ratchet.Config{Identity: key, InstallationID: p.inst}
	p.open(tb)
	return p
}

// sgParty is a status-go party in the reference process.
type sgParty struct {
	e    *statusref.Encryption
	name string
	key  *ecdsa.PrivateKey
	inst string
	n    int // message ids
}

func newSG(e *statusref.Encryption, name string, key *ecdsa.PrivateKey) *sgParty {
	s := &sgParty{e: e, name: name, key: key, inst: name + "-sg-installation"}
	e.NewParty(name, key, s.inst)
	return s
}

func (s *sgParty) pub() *ecdsa.PublicKey { return &s.key.PublicKey }

// handle has status-go handle our message, checks the payload and confirms it.
func (s *sgParty) handle(t *testing.T, from *party, out *ratchet.Outgoing, want string) statusref.Handled {
	t.Helper()
	s.n++
	id := []byte(fmt.Sprintf("%s-%d", s.name, s.n))
	h, err := s.e.Handle(s.name, from.pub(), out.Payload, id)
	if err != nil {
		t.Fatalf("status-go %s handling %q: %v", s.name, want, err)
	}
	if string(h.Payload) != want {
		t.Fatalf("status-go %s decrypted %q, want %q", s.name, h.Payload, want)
	}
	s.e.Confirm(s.name, id)
	return h
}

// receiveSG has us receive status-go's message.
func (p *party) receiveSG(t *testing.T, from *sgParty, spec statusref.Spec, want string) *ratchet.Incoming {
	t.Helper()
	in, err := p.r.Receive(context.Background(), from.pub(), spec.Message)
	if err != nil {
		t.Fatalf("%s receiving %q from status-go: %v", p.name, want, err)
	}
	if in.Kind != ratchet.KindDirect || string(in.Payload) != want || in.InstallationID != from.inst || !sameKey(in.Sender, from.pub()) {
		t.Fatalf("%s from status-go: %v %q from %s, want %q from %s", p.name, in.Kind, in.Payload, in.InstallationID, want, from.inst)
	}
	if err := p.r.Processed(context.Background(), in.Receipt); err != nil {
		t.Fatal(err)
	}
	return in
}

// TestInterop_statusGoStarts: status-go writes first with no bundle of ours (DH), we
// answer with X3DH from the bundle it attached, it decrypts; then 50 messages alternate
// through the Double Ratchet, each decrypted by the other implementation, and both sides
// agree on the negotiated secret and move to its topic at the same message.
func TestInterop_statusGoStarts(t *testing.T) {
	e := statusref.StartEncryption(t)
	sg := newSG(e, "sg", keyOf(t, "statusgo user"))
	gw := realParty(t, "gw", keyOf(t, "gateway"))

	first := e.BuildDirect(sg.name, gw.pub(), []byte("hello from status-go"))
	if first.Agreed || len(first.Installations) != 0 {
		t.Fatalf("status-go's first message: agreed=%v installations=%v, want DH", first.Agreed, first.Installations)
	}
	in := gw.receiveSG(t, sg, first, "hello from status-go")
	if in.Mode != ratchet.ModeDH || in.NewSecret == nil || !bytes.Equal(in.NewSecret.Key, first.SharedSecret) {
		t.Fatalf("ours on status-go's first: mode %v secret %v, want DH and its secret %x", in.Mode, in.NewSecret, first.SharedSecret)
	}
	ans := gw.encrypt(t, sg.fake(), "hello status-go")
	if ans.Copies[0].Mode != ratchet.ModeX3DH || ans.Copies[0].InstallationID != sg.inst || !ans.Agreed {
		t.Fatalf("our answer %+v agreed=%v, want X3DH to %s on the negotiated topic", ans.Copies, ans.Agreed, sg.inst)
	}
	h := sg.handle(t, gw, ans, "hello status-go")
	if len(h.Secrets) != 1 || !bytes.Equal(h.Secrets[0], first.SharedSecret) {
		t.Fatalf("status-go's secrets %x, want %x", h.Secrets, first.SharedSecret)
	}
	alternate(t, e, sg, gw, 50)
}

// alternate runs n messages alternating status-go → us → status-go … on the
// established session, checking the mode and that both sides call it agreed.
func alternate(t *testing.T, e *statusref.Encryption, sg *sgParty, gw *party, n int) {
	t.Helper()
	for i := range n {
		text := fmt.Sprintf("message %d", i)
		if i%2 == 0 {
			spec := e.BuildDirect(sg.name, gw.pub(), []byte(text))
			if !spec.Agreed {
				t.Fatalf("%s: status-go not agreed", text)
			}
			if in := gw.receiveSG(t, sg, spec, text); in.Mode != ratchet.ModeDR {
				t.Fatalf("%s: mode %v, want DR", text, in.Mode)
			}
		} else {
			out := gw.encrypt(t, sg.fake(), text)
			if out.Copies[0].Mode != ratchet.ModeDR || !out.Agreed {
				t.Fatalf("%s: %+v agreed=%v", text, out.Copies, out.Agreed)
			}
			sg.handle(t, gw, out, text)
		}
	}
}

// fake is a party value naming the status-go identity, for our encrypt helper.
func (s *sgParty) fake() *party { return &party{name: s.name, key: s.key, inst: s.inst} }

// TestInterop_weStart: we write first with no bundle (DH); status-go decrypts, learns our
// bundle and answers with X3DH, which we decrypt; then the ratchet both ways.
func TestInterop_weStart(t *testing.T) {
	e := statusref.StartEncryption(t)
	sg := newSG(e, "sg", keyOf(t, "statusgo user"))
	gw := realParty(t, "gw", keyOf(t, "gateway"))

	first := gw.encrypt(t, sg.fake(), "hello from the gateway")
	if first.Copies[0].Mode != ratchet.ModeDH || first.Envelope.TopicName != ratchet.PartitionedTopicName(sg.pub()) {
		t.Fatalf("our first %+v on %s, want DH on the partitioned topic", first.Copies, first.Envelope.TopicName)
	}
	h := sg.handle(t, gw, first, "hello from the gateway")
	if len(h.Installations) != 1 || h.Installations[0] != gw.inst {
		t.Fatalf("status-go learned installations %v, want [%s]", h.Installations, gw.inst)
	}
	ans := e.BuildDirect(sg.name, gw.pub(), []byte("x3dh from status-go"))
	if !ans.Agreed || len(ans.Installations) != 1 {
		t.Fatalf("status-go's answer agreed=%v installations=%v", ans.Agreed, ans.Installations)
	}
	if in := gw.receiveSG(t, sg, ans, "x3dh from status-go"); in.Mode != ratchet.ModeX3DH {
		t.Fatalf("mode %v, want x3dh", in.Mode)
	}
	alternate(t, e, sg, gw, 20)
}

// TestInterop_publicBundle: status-go's wrapped public message teaches us its bundle, so
// our first DM to it uses X3DH, which status-go decrypts; ours teaches status-go ours.
func TestInterop_publicBundle(t *testing.T) {
	e := statusref.StartEncryption(t)
	sg := newSG(e, "sg", keyOf(t, "statusgo user"))
	gw := realParty(t, "gw", keyOf(t, "gateway"))

	pub := e.BuildPublic(sg.name, []byte("public payload"))
	in, err := gw.r.Receive(context.Background(), sg.pub(), pub.Message)
	if err != nil || in.Kind != ratchet.KindPublic || string(in.Payload) != "public payload" || in.InstallationID != sg.inst {
		t.Fatalf("status-go's public message: %+v %v", in, err)
	}
	out := gw.encrypt(t, sg.fake(), "first dm, x3dh")
	if out.Copies[0].Mode != ratchet.ModeX3DH || out.Agreed {
		t.Fatalf("first dm %+v agreed=%v, want X3DH on the partitioned topic", out.Copies, out.Agreed)
	}
	sg.handle(t, gw, out, "first dm, x3dh")

	wrapped, err := gw.r.WrapPublic(context.Background(), []byte("our public payload"))
	if err != nil {
		t.Fatal(err)
	}
	sg2 := newSG(e, "sg2", keyOf(t, "another statusgo user"))
	h, err := e.Handle(sg2.name, gw.pub(), wrapped, []byte("public-1"))
	if err != nil || string(h.Payload) != "our public payload" || len(h.Installations) != 1 || h.Installations[0] != gw.inst {
		t.Fatalf("status-go on our public message: %+v %v", h, err)
	}
	if spec := e.BuildDirect(sg2.name, gw.pub(), []byte("x3dh from our public bundle")); len(spec.Installations) != 1 {
		t.Fatalf("status-go did not address our installation: %+v", spec)
	} else if in := gw.receiveSG(t, sg2, spec, "x3dh from our public bundle"); in.Mode != ratchet.ModeX3DH {
		t.Fatalf("mode %v", in.Mode)
	}
}

// TestInterop_outOfOrder: 20 messages each way delivered in reverse order decrypt once,
// through the other implementation's skipped keys.
func TestInterop_outOfOrder(t *testing.T) {
	e := statusref.StartEncryption(t)
	sg := newSG(e, "sg", keyOf(t, "statusgo user"))
	gw := realParty(t, "gw", keyOf(t, "gateway"))
	gw.receiveSG(t, sg, e.BuildDirect(sg.name, gw.pub(), []byte("dh")), "dh")
	sg.handle(t, gw, gw.encrypt(t, sg.fake(), "x3dh"), "x3dh")

	var specs []statusref.Spec
	for i := range 20 {
		specs = append(specs, e.BuildDirect(sg.name, gw.pub(), []byte(fmt.Sprintf("sg %d", i))))
	}
	for i := 19; i >= 0; i-- {
		gw.receiveSG(t, sg, specs[i], fmt.Sprintf("sg %d", i))
	}
	for i := range specs {
		if _, err := gw.r.Receive(context.Background(), sg.pub(), specs[i].Message); !errors.Is(err, ratchet.ErrReplay) {
			t.Fatalf("replay of status-go's message %d: %v", i, err)
		}
	}
	var outs []*ratchet.Outgoing
	for i := range 20 {
		outs = append(outs, gw.encrypt(t, sg.fake(), fmt.Sprintf("gw %d", i)))
	}
	for i := 19; i >= 0; i-- {
		sg.handle(t, gw, outs[i], fmt.Sprintf("gw %d", i))
	}
	alternate(t, e, sg, gw, 4)
}

// TestInterop_restart: both sides restart from their databases mid-conversation and go
// on without a new X3DH.
func TestInterop_restart(t *testing.T) {
	e := statusref.StartEncryption(t)
	sg := newSG(e, "sg", keyOf(t, "statusgo user"))
	gw := realParty(t, "gw", keyOf(t, "gateway"))
	gw.receiveSG(t, sg, e.BuildDirect(sg.name, gw.pub(), []byte("dh")), "dh")
	sg.handle(t, gw, gw.encrypt(t, sg.fake(), "x3dh"), "x3dh")
	alternate(t, e, sg, gw, 6)
	gw.restart(t)
	e.Close(sg.name)
	e.NewParty(sg.name, sg.key, sg.inst)
	alternate(t, e, sg, gw, 6)
}

// TestInterop_multiDevice: status-go on two installations of one identity, the second
// paired (enabled) on the first. We learn both from the first's bundle, encrypt one copy
// for each, and both decrypt; both answer and we decrypt both.
func TestInterop_multiDevice(t *testing.T) {
	e := statusref.StartEncryption(t)
	key := keyOf(t, "statusgo user")
	sg1 := newSG(e, "sg1", key)
	sg2 := newSG(e, "sg2", key)
	gw := realParty(t, "gw", keyOf(t, "gateway"))
	// Pairing on the status-go side: sg1 learns sg2's bundle and enables it.
	if _, err := e.ProcessBundle(sg1.name, e.Bundle(sg2.name)); err != nil {
		t.Fatal(err)
	}
	e.EnableInstallation(sg1.name, sg2.inst)
	first := e.BuildDirect(sg1.name, gw.pub(), []byte("from sg1"))
	gw.receiveSG(t, sg1, first, "from sg1")
	ds, err := gw.r.Installations(context.Background(), key.Public().(*ecdsa.PublicKey))
	if err != nil || len(ds) != 2 {
		t.Fatalf("we know %+v, want sg1 and sg2 from sg1's bundle", ds)
	}
	out := gw.encrypt(t, sg1.fake(), "to both devices")
	if len(out.Copies) != 2 {
		t.Fatalf("copies %+v, want two", out.Copies)
	}
	sg1.handle(t, gw, out, "to both devices")
	sg2.handle(t, gw, out, "to both devices")
	gw.receiveSG(t, sg2, e.BuildDirect(sg2.name, gw.pub(), []byte("from sg2")), "from sg2")
	gw.receiveSG(t, sg1, e.BuildDirect(sg1.name, gw.pub(), []byte("sg1 again")), "sg1 again")
}

// TestVectors_liveStatusGo: statusgo-ref still prints testdata/statusgo-vectors.json (the
// bundle, which status-go stamps with the current time, and the DH payload, sealed with a
// random nonce, excepted).
func TestVectors_liveStatusGo(t *testing.T) {
	var live, committed map[string]any
	if err := json.Unmarshal(statusref.Vectors(t), &live); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("testdata/statusgo-vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &committed); err != nil {
		t.Fatal(err)
	}
	for _, m := range []map[string]any{live, committed} {
		delete(m, "bundle")                        // stamped with the current time
		delete(m["dh"].(map[string]any), "sealed") // sealed with a random nonce
	}
	if !reflect.DeepEqual(live, committed) {
		t.Fatal("statusgo-ref vectors no longer prints testdata/statusgo-vectors.json: regenerate it (see its test)")
	}
}

// TestInterop_bundleBack: status-go knows only our second installation; our first one,
// receiving a message with no copy for it, answers with a bundle-back (an empty DH message
// with its bundle); status-go handles it, learns the installation, and its next message
// carries a copy for each of ours.
func TestInterop_bundleBack(t *testing.T) {
	e := statusref.StartEncryption(t)
	sg := newSG(e, "sg", keyOf(t, "statusgo user"))
	gwKey := keyOf(t, "gateway")
	gw1 := realParty(t, "gw1", gwKey)
	gw2 := realParty(t, "gw2", gwKey)
	sg.handle(t, gw2, gw2.encrypt(t, sg.fake(), "from gw2"), "from gw2")

	spec := e.BuildDirect(sg.name, gw1.pub(), []byte("to gw2 only"))
	if len(spec.Installations) != 1 || spec.Installations[0] != gw2.inst {
		t.Fatalf("status-go addressed %v, want [%s]", spec.Installations, gw2.inst)
	}
	in, err := gw1.r.Receive(context.Background(), sg.pub(), spec.Message)
	if err != nil || in.Kind != ratchet.KindNotForUs || in.Reply == nil {
		t.Fatalf("gw1: %+v %v, want not-for-us with a bundle-back", in, err)
	}
	h, err := e.Handle(sg.name, gw1.pub(), in.Reply.Payload, []byte("bundle-back"))
	if err != nil || len(h.Payload) != 0 || len(h.Installations) != 1 || h.Installations[0] != gw1.inst {
		t.Fatalf("status-go on our bundle-back: %+v %v, want no payload and %s learned", h, err, gw1.inst)
	}
	both := e.BuildDirect(sg.name, gw1.pub(), []byte("to both"))
	if len(both.Installations) != 2 {
		t.Fatalf("status-go now addresses %v, want both installations", both.Installations)
	}
	gw1.receiveSG(t, sg, both, "to both")
	gw2.receiveSG(t, sg, both, "to both")
}
