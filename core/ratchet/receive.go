package ratchet

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"slices"

	"github.com/ethereum/go-ethereum/crypto"
	dr "github.com/status-im/doubleratchet"
	"google.golang.org/protobuf/proto"

	"github.com/statusgate/statusgate/core/ratchet/protobuf"
	"github.com/statusgate/statusgate/core/whisper"
)

// Kind is what a received ProtocolMessage turned out to be.
type Kind int

const (
	// KindPublic: a public-chat payload (public_message), not encrypted.
	KindPublic Kind = iota + 1
	// KindDirect: a direct message decrypted for this installation.
	KindDirect
	// KindBundles: bundles and nothing else (a contact-code advertisement).
	KindBundles
	// KindNotForUs: a direct message with no copy for this installation; Reply may hold
	// a bundle-back answer to send.
	KindNotForUs
	// KindOwn: a message of our own identity with no copy for this installation (our
	// own message seen again, or one from an installation we did not pair).
	KindOwn
)

func (k Kind) String() string {
	switch k {
	case KindPublic:
		return "public"
	case KindDirect:
		return "direct"
	case KindBundles:
		return "bundles"
	case KindNotForUs:
		return "not-for-us"
	case KindOwn:
		return "own"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Incoming is a received ProtocolMessage after decryption.
type Incoming struct {
	Kind Kind
	// Sender is the Whisper signer; InstallationID the sender's installation as the
	// message names it.
	Sender         *ecdsa.PublicKey
	InstallationID string
	// Payload is the plaintext (KindDirect) or the public payload (KindPublic). A
	// direct message may have an empty payload (a bundle-back answer).
	Payload []byte
	// Mode is how the direct message was encrypted.
	Mode Mode
	// NewInstallations lists installations first learned from this message's bundles.
	NewInstallations []string
	// NewSecret is set the first time we hold a negotiated secret with the sender:
	// listen on its topic from now on.
	NewSecret *Secret
	// Reply is a bundle-back answer (KindNotForUs, at most one per peer per
	// BundleBackInterval): send it so the sender learns this installation.
	Reply *Outgoing
	// Evicted lists the negotiated secrets of peers forgotten to keep MaxPeers (by this
	// message or an earlier call): stop listening on their topics.
	Evicted []*Secret
	// Receipt identifies the message key to delete once the payload is processed
	// (Ratchet.Processed); zero for messages that keep no key.
	Receipt Receipt
}

// Receipt names the stored message key of a received Double Ratchet message.
type Receipt struct {
	session int64
	dh      []byte
	n       uint32
}

// IsZero reports whether the receipt names no key.
func (rc Receipt) IsZero() bool { return rc.session == 0 }

// DecodeProtocolMessage decodes a Whisper payload as a ProtocolMessage. It fails with
// ErrNotProtocolMessage if the bytes are not one, or carry nothing a ProtocolMessage
// carries (no bundle, no direct or public message): a bare ApplicationMetadataMessage or
// Transit payload is not mistaken for one.
func DecodeProtocolMessage(b []byte) (*protobuf.ProtocolMessage, error) {
	var pm protobuf.ProtocolMessage
	if err := proto.Unmarshal(b, &pm); err != nil {
		return nil, fmt.Errorf("decode protocol message: %w", ErrNotProtocolMessage)
	}
	if len(pm.GetBundles()) == 0 && len(pm.GetDirectMessage()) == 0 && pm.PublicMessage == nil {
		return nil, fmt.Errorf("protocol message without bundle or message: %w", ErrNotProtocolMessage)
	}
	return &pm, nil
}

// Receive decodes and processes a ProtocolMessage received in a Whisper envelope signed by
// from: it verifies and stores the bundles (a bundle's identity must be from), returns a
// public payload as is, and decrypts a direct message's copy for this installation (or
// the DH copy), starting a session from an X3DH header (only for an installation the
// sender's bundles made known). On bad input it returns an error wrapping one of the
// sentinels of errors.go, counted in Stats: a bad bundle or a malformed copy stores
// nothing; valid bundles are kept when the copy then fails to decrypt (they are signed by
// the sender); a session and its keys are committed only when decryption succeeds. The
// message key of a decrypted Double Ratchet message stays stored until Processed is
// called with in.Receipt. On error the Incoming is nil, except for ErrUnknownPrekey,
// where it may carry a Reply (our current bundle) to send. An X3DH message the work
// budgets refuse is kept (ErrDeferred, defer.go) and processed by a later Retry.
func (r *Ratchet) Receive(ctx context.Context, from *ecdsa.PublicKey, payload []byte) (*Incoming, error) {
	return r.ReceiveEnvelope(ctx, &whisper.ReceivedMessage{Src: from, Payload: payload})
}

// ReceiveEnvelope is Receive for a message as Whisper delivered it (rm.Src the signer,
// rm.Payload the ProtocolMessage): a message deferred keeps what Retry hands back of rm
// (Retried.Msg: the envelope's hash and times).
func (r *Ratchet) ReceiveEnvelope(ctx context.Context, rm *whisper.ReceivedMessage) (*Incoming, error) {
	pm, err := DecodeProtocolMessage(rm.Payload)
	if err != nil {
		r.drop(rm.Src, err)
		return nil, err
	}
	return r.receiveMessage(ctx, rm, pm)
}

// ReceiveMessage is Receive for an already decoded ProtocolMessage.
func (r *Ratchet) ReceiveMessage(ctx context.Context, from *ecdsa.PublicKey, pm *protobuf.ProtocolMessage) (*Incoming, error) {
	return r.receiveMessage(ctx, &whisper.ReceivedMessage{Src: from}, pm)
}

func (r *Ratchet) receiveMessage(ctx context.Context, rm *whisper.ReceivedMessage, pm *protobuf.ProtocolMessage) (*Incoming, error) {
	r.mu.Lock()
	var st recvState
	in, err := r.receive(ctx, rm.Src, pm, &st)
	if err == nil {
		in.Evicted = r.takeEvicted()
	} else if st.deferrable(err) {
		err = r.deferMessage(rm, pm, &st, err)
	}
	r.mu.Unlock()
	if err != nil {
		if !errors.Is(err, ErrDeferred) {
			r.drop(rm.Src, err)
		}
		return in, err // nil, or only a Reply to send (ErrUnknownPrekey)
	}
	return in, nil
}

// recvState is what receive learned that a deferral needs.
type recvState struct {
	// copyKey and copy: our copy of a direct message and its direct_message key.
	copyKey string
	copy    *protobuf.DirectMessageProtocol
	// bundleRefused: the work budget refused to store a bundle of the message.
	bundleRefused bool
}

// deferrable reports whether err is a refusal by the work budgets of a direct message
// that passed every cheap check (defer.go).
func (st *recvState) deferrable(err error) bool {
	return st.copy != nil && errors.Is(err, ErrWorkRefused) && !errors.Is(err, ErrDeferred)
}

func (r *Ratchet) drop(from *ecdsa.PublicKey, err error) {
	r.stats.countDrop(err)
	sender := "unsigned"
	if validPublic(from) {
		sender = fmt.Sprintf("%x", crypto.CompressPubkey(from)[:6])
	}
	r.log.Debug("ratchet message dropped", "sender", sender, "err", err)
}

// receive is Receive under r.mu; st records what a deferral needs.
func (r *Ratchet) receive(ctx context.Context, from *ecdsa.PublicKey, pm *protobuf.ProtocolMessage, st *recvState) (*Incoming, error) {
	if !validPublic(from) {
		return nil, fmt.Errorf("sender key: %w", ErrMalformed)
	}
	if n := len(pm.GetBundles()); n > maxBundles {
		return nil, fmt.Errorf("%d bundles: %w", n, ErrTooManyBundles)
	}
	inst := pm.GetInstallationId()
	if len(inst) > maxInstallationIDLen {
		return nil, fmt.Errorf("sender installation id of %d bytes: %w", len(inst), ErrMalformed)
	}
	// Verify every bundle before storing any, so that a bad one stores nothing.
	for _, b := range pm.GetBundles() {
		identity, err := VerifyBundle(b)
		if err != nil {
			return nil, err
		}
		if !sameKey(identity, from) {
			return nil, fmt.Errorf("bundle of %x in a message signed by %x: %w",
				b.GetIdentity()[:4], crypto.CompressPubkey(from)[:4], ErrBundleSigner)
		}
	}
	in := &Incoming{Sender: from, InstallationID: inst}
	dm := pm.GetDirectMessage()
	var msg *protobuf.DirectMessageProtocol
	if len(dm) > 0 {
		key := r.cfg.InstallationID
		if msg = dm[key]; msg == nil {
			key = noInstallationID
			msg = dm[key]
		}
		if msg != nil {
			if err := checkDirect(msg); err != nil {
				return nil, err
			}
			st.copyKey, st.copy = key, msg
		}
	}
	for _, b := range pm.GetBundles() {
		added, refused, err := r.handleBundle(ctx, from, b)
		if err != nil {
			return nil, err
		}
		st.bundleRefused = st.bundleRefused || refused
		in.NewInstallations = append(in.NewInstallations, added...)
	}
	switch {
	case pm.PublicMessage != nil:
		in.Kind, in.Payload = KindPublic, pm.PublicMessage
		r.stats.public.Add(1)
		return in, nil
	case len(dm) == 0:
		in.Kind = KindBundles
		r.stats.bundlesOnly.Add(1)
		return in, nil
	case msg == nil && sameKey(from, &r.identity.PublicKey):
		in.Kind = KindOwn
		r.stats.own.Add(1)
		return in, nil
	case msg == nil:
		in.Kind = KindNotForUs
		r.stats.notForUs.Add(1)
		reply, err := r.bundleBack(ctx, from)
		if err != nil {
			return nil, err
		}
		in.Reply = reply
		return in, nil
	}
	if err := validInstallationID(inst); err != nil && msg.GetDHHeader() == nil {
		return nil, fmt.Errorf("sender installation: %w", err)
	}
	if err := r.decrypt(ctx, from, inst, msg, in); err != nil {
		if st.bundleRefused && errors.Is(err, ErrUnknownInstallation) {
			// The installation is unknown because the budget refused to store the
			// bundle this very message carried: the work was refused, not the message.
			return nil, fmt.Errorf("x3dh from installation %.40q, its bundle not stored: %w", inst, ErrWorkRefused)
		}
		if errors.Is(err, ErrUnknownPrekey) {
			// The sender started a session from a bundle of ours we no longer hold
			// (beyond the PrekeysKept newest replaced ones and PrekeyRetention): our current bundle in answer,
			// rate-limited as bundle-backs are, lets its next message start one.
			if reply, berr := r.bundleBack(ctx, from); berr == nil && reply != nil {
				return &Incoming{Sender: from, InstallationID: inst, Reply: reply}, err
			}
		}
		return nil, err
	}
	in.Kind = KindDirect
	// status-go negotiates the shared secret with an installation once it has sent us a
	// direct message of protocol version ≥ 1, as its bundle in this message says.
	if protocolVersionOf(pm.GetBundles(), inst) >= 1 {
		peer := crypto.CompressPubkey(from)
		// The bundle in this message admitted the peer, unless it was refused (MaxPeers,
		// every kept peer pinned): then no secret is recorded.
		if kept, err := r.usePeer(ctx, peer, false, false); err != nil || !kept {
			return in, err
		}
		if err := r.markAgreed(ctx, peer, inst); err != nil {
			return nil, err
		}
		if !r.cache.secretPeers[string(peer)] && !r.allowWork(peer, WorkSecret) {
			return in, nil // deferred (work.go): recorded by a later message, or our answer
		}
		isNew, err := r.addSecretPeer(ctx, peer)
		if err != nil {
			return nil, err
		}
		if isNew {
			if in.NewSecret, err = r.secretWith(from); err != nil {
				return nil, err
			}
		}
	}
	return in, nil
}

// checkDirect checks the shape of the copy we are about to decrypt before anything is
// stored: every key a valid compressed point, bundle ids of the right size.
func checkDirect(m *protobuf.DirectMessageProtocol) error {
	if h := m.GetX3DHHeader(); h != nil {
		if _, err := decompress(h.GetKey()); err != nil {
			return fmt.Errorf("x3dh ephemeral key: %w", err)
		}
		if len(h.GetId()) != compressedKeyLen {
			return fmt.Errorf("x3dh bundle id of %d bytes: %w", len(h.GetId()), ErrMalformed)
		}
	}
	if h := m.GetDRHeader(); h != nil {
		if _, err := decompress(h.GetKey()); err != nil {
			return fmt.Errorf("ratchet key: %w", err)
		}
		if len(h.GetId()) != compressedKeyLen {
			return fmt.Errorf("dr bundle id of %d bytes: %w", len(h.GetId()), ErrMalformed)
		}
	}
	if h := m.GetDHHeader(); h != nil {
		if _, err := decompress(h.GetKey()); err != nil {
			return fmt.Errorf("dh ephemeral key: %w", err)
		}
	}
	return nil
}

// protocolVersionOf is status-go's getProtocolVersion: the protocol version the first
// bundle gives the sender's installation, 0 if none.
func protocolVersionOf(bundles []*protobuf.Bundle, installationID string) uint32 {
	if installationID == "" {
		return 0
	}
	for _, b := range bundles {
		if b == nil || b.GetSignedPreKeys() == nil {
			continue
		}
		return b.GetSignedPreKeys()[installationID].GetProtocolVersion()
	}
	return 0
}

// decrypt decrypts our copy of a direct message into in. Caller holds r.mu.
func (r *Ratchet) decrypt(ctx context.Context, from *ecdsa.PublicKey, inst string, m *protobuf.DirectMessageProtocol, in *Incoming) error {
	dh := m.GetDRHeader()
	x := m.GetX3DHHeader()
	switch {
	case dh != nil:
		return r.decryptDR(ctx, from, inst, m, in)
	case x != nil:
		return fmt.Errorf("x3dh header without ratchet header: %w", ErrNoKeyHeader)
	case m.GetDHHeader() != nil:
		pt, err := r.decryptDH(m)
		if err != nil {
			return err
		}
		in.Payload, in.Mode = pt, ModeDH
		r.stats.dh.Add(1)
		return nil
	}
	return ErrNoKeyHeader
}

// decryptDH is status-go's DecryptWithDH: key = DH(IK_ours, EK), AES-256-GCM.
func (r *Ratchet) decryptDH(m *protobuf.DirectMessageProtocol) ([]byte, error) {
	ek, err := decompress(m.GetDHHeader().GetKey())
	if err != nil {
		return nil, err
	}
	key, err := dh(r.identity, ek)
	if err != nil {
		return nil, err
	}
	return openGCM(key, m.GetPayload())
}

// decryptDR decrypts a Double Ratchet copy, starting the session first when it carries an
// X3DH header for a session we do not have. The session and its new message keys are
// committed only when decryption succeeds. Caller holds r.mu.
func (r *Ratchet) decryptDR(ctx context.Context, from *ecdsa.PublicKey, inst string, m *protobuf.DirectMessageProtocol, in *Incoming) error {
	peer := crypto.CompressPubkey(from)
	h := m.GetDRHeader()
	// Touch, never admit: a peer has sessions and installations only if it was kept.
	if _, err := r.usePeer(ctx, peer, false, false); err != nil {
		return err
	}
	sessions, err := r.sessionsOf(ctx, peer, inst)
	if err != nil {
		return err
	}
	var s *Session
	var retire int64
	if x := m.GetX3DHHeader(); x != nil {
		if !bytes.Equal(x.GetId(), h.GetId()) {
			return fmt.Errorf("x3dh and ratchet headers name different bundles: %w", ErrMalformed)
		}
		for i := range sessions {
			c := &sessions[i]
			if c.Initiator || !bytes.Equal(c.BundleID, x.GetId()) {
				continue
			}
			if bytes.Equal(c.Ephemeral, x.GetKey()) {
				if c.Retired {
					return fmt.Errorf("x3dh header of a replaced session: %w", ErrReplay)
				}
				s = c
				break
			}
			if !c.Retired && retire == 0 {
				retire = c.ID // the peer started over: this one replaces c if it decrypts
			}
		}
		if s == nil {
			return r.acceptSession(ctx, from, peer, inst, m, retire, in)
		}
	} else {
		for i := range sessions {
			if c := &sessions[i]; !c.Retired && bytes.Equal(c.BundleID, h.GetId()) {
				s = c
				break
			}
		}
		if s == nil {
			return fmt.Errorf("session %x with installation %.40q: %w", h.GetId()[:4], inst, ErrSessionNotFound)
		}
	}
	msg := dr.Message{Header: dr.MessageHeader{DH: h.GetKey(), N: h.GetN(), PN: h.GetPn()}, Ciphertext: m.GetPayload()}
	unstored, err := r.precheck(ctx, s, msg.Header)
	if err != nil {
		return err
	}
	st := newStep(ctx, r.cfg.Store, s.ID, toDR(s.State))
	st.unstored = unstored
	sess, err := r.loadSession(st)
	if err != nil {
		return fmt.Errorf("load session: %w", err)
	}
	pt, err := sess.RatchetDecrypt(msg, nil)
	if err != nil {
		if errors.Is(err, ErrStore) {
			return err
		}
		return fmt.Errorf("ratchet decrypt (tampered, or replayed from an older chain): %w: %v", ErrDecrypt, err)
	}
	var dropped []byte
	st.saved.PrevDHr, dropped = prevChains(s.State, st.saved.DHr)
	u := SessionUpdate{
		Session: s.ID, State: *st.saved, Confirmed: true, Keys: st.keys,
		MaxKeys: st.maxKeys, DeleteUpTo: st.deleteUpTo, OldChain: dropped, OldChainsKept: r.cfg.OldChains,
	}
	if err := r.updateSession(ctx, peer, inst, u); err != nil {
		return err
	}
	in.Payload, in.Mode = pt, ModeDR
	in.Receipt = Receipt{session: s.ID, dh: bytes.Clone(h.GetKey()), n: h.GetN()}
	r.stats.dr.Add(1)
	return nil
}

// precheck classifies what the library would reject without telling why: a key already
// used and deleted (replay), or a skip beyond MaxSkip. A message whose key is stored
// (skipped, or not yet confirmed) always passes. It reports whether the message's key
// cannot be stored (the next one of the current chain or later), so that the library's
// lookup can be skipped.
func (r *Ratchet) precheck(ctx context.Context, s *Session, h dr.MessageHeader) (unstored bool, err error) {
	st := s.State
	maxSkip := uint64(r.cfg.MaxSkip)
	current := len(st.DHr) > 0 && bytes.Equal(h.DH, st.DHr)
	if current && h.N >= st.RecvN {
		// Keys are stored only for messages of the current chain below RecvN, or of
		// other chains: not this one.
		if uint64(h.N) > uint64(st.RecvN)+maxSkip {
			return true, fmt.Errorf("message %d of a chain at %d: %w", h.N, st.RecvN, ErrTooManySkipped)
		}
		return true, nil
	}
	if _, ok, err := r.cfg.Store.MessageKey(ctx, s.ID, h.DH, h.N); err != nil {
		return false, storeErr("read message key", err)
	} else if ok {
		return false, nil
	}
	if current {
		return false, fmt.Errorf("message %d of a chain at %d: %w", h.N, st.RecvN, ErrReplay)
	}
	if olderChain(st, h.DH) {
		return false, fmt.Errorf("message %d of an older chain: %w", h.N, ErrReplay)
	}
	if len(st.PrevDHr) >= maxPrevChains*compressedKeyLen {
		// Chains older than the 16 in the row are remembered by the store.
		if old, err := r.cfg.Store.OldChain(ctx, s.ID, h.DH); err != nil {
			return false, storeErr("read old chains", err)
		} else if old {
			return false, fmt.Errorf("message %d of an old chain: %w", h.N, ErrReplay)
		}
	}
	if uint64(h.PN) > uint64(st.RecvN)+maxSkip || uint64(h.N) > maxSkip {
		return false, fmt.Errorf("new chain at %d after %d (ours at %d): %w", h.N, h.PN, st.RecvN, ErrTooManySkipped)
	}
	return false, nil
}

// maxPrevChains bounds State.PrevDHr; older chains are the store's (Config.OldChains).
const maxPrevChains = 16

// prevChains returns old's PrevDHr, with old's remote ratchet key in front when the step
// moved to a new one (dhr), and the key that fell off its end, if any.
func prevChains(old State, dhr []byte) (prev, dropped []byte) {
	if len(old.DHr) != compressedKeyLen || bytes.Equal(old.DHr, dhr) {
		return old.PrevDHr, nil
	}
	out := append(bytes.Clone(old.DHr), old.PrevDHr...)
	if keep := maxPrevChains * compressedKeyLen; len(out) > keep {
		return out[:keep], out[keep : keep+compressedKeyLen]
	}
	return out, nil
}

// olderChain reports whether dh is the remote ratchet key of one of st's previous
// receiving chains.
func olderChain(st State, dh []byte) bool {
	for p := st.PrevDHr; len(p) >= compressedKeyLen; p = p[compressedKeyLen:] {
		if bytes.Equal(p[:compressedKeyLen], dh) {
			return true
		}
	}
	return false
}

// acceptSession runs X3DH as the responder for a message whose X3DH header names one of
// our signed prekeys, decrypts it on the new session, and stores the session only if that
// succeeds. Caller holds r.mu.
func (r *Ratchet) acceptSession(ctx context.Context, from *ecdsa.PublicKey, peer []byte, inst string, m *protobuf.DirectMessageProtocol, retire int64, in *Incoming) error {
	x, h := m.GetX3DHHeader(), m.GetDRHeader()
	// The cheap checks first (store reads, sizes): what fails them costs no budget and
	// is never deferred.
	p, ok, err := r.cfg.Store.PrekeyByPublic(ctx, r.owner, x.GetId())
	if err != nil {
		return storeErr("read prekey", err)
	}
	if !ok {
		return fmt.Errorf("x3dh header names prekey %x: %w", x.GetId()[:4], ErrUnknownPrekey)
	}
	if uint64(h.GetN()) > uint64(r.cfg.MaxSkip) || uint64(h.GetPn()) > uint64(r.cfg.MaxSkip) {
		return fmt.Errorf("first message %d after %d: %w", h.GetN(), h.GetPn(), ErrTooManySkipped)
	}
	devices, err := r.devicesOf(ctx, peer)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(devices, func(d Device) bool { return d.InstallationID == inst }) {
		return fmt.Errorf("installation %.40q: %w", inst, ErrUnknownInstallation)
	}
	if !r.allowWork(peer, WorkX3DH) {
		return fmt.Errorf("x3dh session from installation %.40q: %w", inst, ErrWorkRefused)
	}
	prekey, err := scalarKey(p.Private)
	if err != nil {
		return fmt.Errorf("stored prekey: %w: %w", ErrStore, err)
	}
	ek, err := decompress(x.GetKey())
	if err != nil {
		return err
	}
	sk, err := x3dhPassive(from, prekey, ek, r.identity)
	if err != nil {
		return err
	}
	msg := dr.Message{Header: dr.MessageHeader{DH: h.GetKey(), N: h.GetN(), PN: h.GetPn()}, Ciphertext: m.GetPayload()}
	st := newStep(ctx, r.cfg.Store, 0, nil)
	sess, err := r.responderSession(st, sk, dhPair{prv: p.Private, pub: p.Public})
	if err != nil {
		return fmt.Errorf("start session: %w", err)
	}
	pt, err := sess.RatchetDecrypt(msg, nil)
	if err != nil {
		return fmt.Errorf("ratchet decrypt of x3dh message: %w: %v", ErrDecrypt, err)
	}
	id, err := r.insertSession(ctx, NewSession{
		Session: Session{
			Peer: peer, InstallationID: inst, BundleID: p.Public, Ephemeral: bytes.Clone(x.GetKey()),
			SK: sk, Created: r.cfg.Clock(), State: *st.saved,
		},
		Keys: st.keys, Retire: retire, Keep: sessionsKept,
	})
	if err != nil {
		return err
	}
	if retire != 0 {
		r.log.Info("ratchet session replaced by a new x3dh", "peer", fmt.Sprintf("%x", peer[:6]), "installation", inst)
	}
	in.Payload, in.Mode = pt, ModeX3DH
	in.Receipt = Receipt{session: id, dh: bytes.Clone(h.GetKey()), n: h.GetN()}
	r.stats.x3dh.Add(1)
	return nil
}

// Processed deletes the message key of a processed message: until then it is kept so
// that a crash between decryption and processing loses nothing (the message decrypts
// again when re-delivered). A zero Receipt is a no-op.
func (r *Ratchet) Processed(ctx context.Context, rc Receipt) error {
	if rc.IsZero() {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.cfg.Store.DeleteMessageKey(ctx, rc.session, rc.dh, rc.n); err != nil {
		return storeErr("delete message key", err)
	}
	return nil
}

// bundleBack builds the answer to a direct message that has no copy for this
// installation: an empty DH message carrying our bundle, so the sender can address us
// next time (PROTOCOL.md §3.6). At most one per peer per BundleBackInterval. status-go
// v0.70.1 means to do the same, but its rate check is inverted and it never answers.
// Caller holds r.mu.
func (r *Ratchet) bundleBack(ctx context.Context, to *ecdsa.PublicKey) (*Outgoing, error) {
	now := r.cfg.Clock()
	id := string(crypto.CompressPubkey(to))
	if last, ok := r.bundleBackAt[id]; ok && now.Sub(last) < r.cfg.BundleBackInterval {
		return nil, nil
	}
	if !r.cache.secretPeers[id] && !r.allowWork([]byte(id), WorkSecret) {
		// Our answer would make the peer use the negotiated topic, whose key we would
		// then have to derive: not answered while the secret budget is spent.
		return nil, nil
	}
	if len(r.bundleBackAt) >= bundleBackEntries {
		for k, t := range r.bundleBackAt {
			if now.Sub(t) >= r.cfg.BundleBackInterval {
				delete(r.bundleBackAt, k)
			}
		}
		if len(r.bundleBackAt) >= bundleBackEntries {
			return nil, nil // flooded by distinct peers: answer none until entries expire
		}
	}
	dmp, err := r.encryptDH(to, nil)
	if err != nil {
		return nil, err
	}
	out, err := r.finish(ctx, to, []byte(id), map[string]*protobuf.DirectMessageProtocol{noInstallationID: dmp},
		[]Copy{{InstallationID: noInstallationID, Mode: ModeDH}})
	if err != nil {
		return nil, err
	}
	r.bundleBackAt[id] = now
	r.stats.bundleBacks.Add(1)
	return out, nil
}
