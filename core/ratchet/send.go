package ratchet

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"fmt"

	"github.com/ethereum/go-ethereum/crypto"
	"google.golang.org/protobuf/proto"

	"github.com/statusgate/statusgate/core/ratchet/protobuf"
	"github.com/statusgate/statusgate/core/whisper"
)

// Mode is how one copy of a direct message was encrypted.
type Mode int

const (
	// ModeDH: ephemeral Diffie-Hellman with the recipient's identity key, no forward
	// secrecy; used when no bundle of the recipient is known.
	ModeDH Mode = iota + 1
	// ModeX3DH: the message that started a session from a bundle (it also carries the
	// first Double Ratchet message).
	ModeX3DH
	// ModeDR: a Double Ratchet message on an established session.
	ModeDR
)

func (m Mode) String() string {
	switch m {
	case ModeDH:
		return "dh"
	case ModeX3DH:
		return "x3dh"
	case ModeDR:
		return "dr"
	}
	return fmt.Sprintf("mode(%d)", int(m))
}

// Copy is one installation's copy of an outgoing direct message.
type Copy struct {
	// InstallationID is the recipient installation, or "none" for the DH copy that any
	// installation of the recipient can read.
	InstallationID string
	Mode           Mode
}

// Envelope says how to send a ProtocolMessage over Whisper (PROTOCOL.md §3.4): exactly
// one of SymKey (negotiated or contact-code topic) and Dst (partitioned topic, ECIES to
// the recipient) is set. Sign the envelope with the identity key: receivers take the
// Whisper signer as the sender.
type Envelope struct {
	TopicName string
	Topic     whisper.Topic
	SymKey    *whisper.SymKey
	Dst       *ecdsa.PublicKey
}

// Outgoing is an encrypted message ready for Whisper.
type Outgoing struct {
	Recipient *ecdsa.PublicKey
	// Message is the ProtocolMessage; Payload its encoding, the Whisper payload.
	Message *protobuf.ProtocolMessage
	Payload []byte
	// Copies lists the installations addressed, in Message.DirectMessage order.
	Copies   []Copy
	Envelope Envelope
	// Agreed reports that every addressed installation has confirmed the negotiated
	// secret, so Envelope is the negotiated topic.
	Agreed bool
	// NewSecret is set the first time we hold a negotiated secret with the recipient:
	// listen on its topic from now on (status-go does before sending, so that the answer,
	// which may already use it, is heard).
	NewSecret *Secret
	// Evicted lists the negotiated secrets of peers forgotten to keep MaxPeers: stop
	// listening on their topics.
	Evicted []*Secret
}

// Encrypt encrypts payload for every known installation of to (at most
// MaxInstallations, most recently seen first; our own installation skipped when to is
// ourselves): on an established session with the Double Ratchet, else with X3DH from the
// installation's bundle. With no installation known it falls back to DH mode (to's
// identity key). Our bundle is attached. Every ratchet step is committed before Encrypt
// returns, so a message key is never used twice, even across a crash.
func (r *Ratchet) Encrypt(ctx context.Context, to *ecdsa.PublicKey, payload []byte) (*Outgoing, error) {
	if !validPublic(to) {
		return nil, fmt.Errorf("encrypt: recipient: %w", ErrInvalidKey)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	peer := crypto.CompressPubkey(to)
	if _, err := r.usePeer(ctx, peer, true, true); err != nil { // the user's conversation: pinned
		return nil, err
	}
	devices, err := r.recipientDevices(ctx, peer)
	if err != nil {
		return nil, err
	}
	dm := map[string]*protobuf.DirectMessageProtocol{}
	var copies []Copy
	for _, d := range devices {
		dmp, mode, err := r.encryptFor(ctx, to, peer, d, payload)
		if err != nil {
			return nil, fmt.Errorf("encrypt for installation %q: %w", d.InstallationID, err)
		}
		dm[d.InstallationID] = dmp
		copies = append(copies, Copy{InstallationID: d.InstallationID, Mode: mode})
	}
	if len(dm) == 0 {
		if bytes.Equal(peer, r.owner) {
			return nil, fmt.Errorf("encrypt to ourselves: %w", ErrNoInstallations)
		}
		dmp, err := r.encryptDH(to, payload)
		if err != nil {
			return nil, err
		}
		dm[noInstallationID] = dmp
		copies = append(copies, Copy{InstallationID: noInstallationID, Mode: ModeDH})
	}
	return r.finish(ctx, to, peer, dm, copies)
}

// EncryptDH encrypts payload in DH mode only (status-go's BuildDHMessage): any
// installation of to can read it, none keeps forward secrecy. Pairing and bundle-back
// answers use it.
func (r *Ratchet) EncryptDH(ctx context.Context, to *ecdsa.PublicKey, payload []byte) (*Outgoing, error) {
	if !validPublic(to) {
		return nil, fmt.Errorf("encrypt: recipient: %w", ErrInvalidKey)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.usePeer(ctx, crypto.CompressPubkey(to), true, true); err != nil {
		return nil, err
	}
	dmp, err := r.encryptDH(to, payload)
	if err != nil {
		return nil, err
	}
	dm := map[string]*protobuf.DirectMessageProtocol{noInstallationID: dmp}
	return r.finish(ctx, to, crypto.CompressPubkey(to), dm, []Copy{{InstallationID: noInstallationID, Mode: ModeDH}})
}

// recipientDevices returns the enabled installations of peer we encrypt for. Caller
// holds r.mu.
func (r *Ratchet) recipientDevices(ctx context.Context, peer []byte) ([]Device, error) {
	if bytes.Equal(peer, r.owner) {
		return r.ourDevices(ctx)
	}
	all, err := r.devicesOf(ctx, peer)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, d := range all {
		if d.Enabled && len(d.SignedPreKey) == compressedKeyLen && len(out) < MaxInstallations {
			out = append(out, d)
		}
	}
	return out, nil
}

// encryptFor encrypts one copy for installation d of to. Caller holds r.mu.
func (r *Ratchet) encryptFor(ctx context.Context, to *ecdsa.PublicKey, peer []byte, d Device, payload []byte) (*protobuf.DirectMessageProtocol, Mode, error) {
	s, err := r.sendingSession(ctx, peer, d)
	if err != nil {
		return nil, 0, err
	}
	if s == nil {
		return r.startSession(ctx, to, peer, d, payload)
	}
	st := newStep(ctx, r.cfg.Store, s.ID, toDR(s.State))
	sess, err := r.loadSession(st)
	if err != nil {
		return nil, 0, fmt.Errorf("load session: %w", err)
	}
	msg, err := sess.RatchetEncrypt(payload, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("ratchet encrypt: %w", err)
	}
	st.saved.PrevDHr = s.State.PrevDHr // ours, not the library's: sending leaves it alone
	if err := r.updateSession(ctx, peer, d.InstallationID, SessionUpdate{
		Session: s.ID, State: *st.saved, Confirmed: s.Confirmed, DeleteUpTo: -1,
	}); err != nil {
		return nil, 0, err
	}
	dmp := &protobuf.DirectMessageProtocol{
		DRHeader: &protobuf.DRHeader{Key: msg.Header.DH, N: msg.Header.N, Pn: msg.Header.PN, Id: s.BundleID},
		Payload:  msg.Ciphertext,
	}
	if s.Initiator && !s.Confirmed {
		// Until the peer answers, every message repeats the X3DH header: the first one may
		// have been lost (PROTOCOL.md §5.3).
		dmp.X3DHHeader = &protobuf.X3DHHeader{Key: s.Ephemeral, Id: s.BundleID}
	}
	r.stats.sentDR.Add(1)
	return dmp, ModeDR, nil
}

// sendingSession picks the session to encrypt with for installation d: the newest that is
// not retired and whose bundle is still current: a session we started with d's current
// signed prekey, or one d started with our current one. When either side refreshes its
// prekey, the old sessions stop being used for sending (as in status-go) and a new X3DH
// runs; they still decrypt what arrives late. Caller holds r.mu.
func (r *Ratchet) sendingSession(ctx context.Context, peer []byte, d Device) (*Session, error) {
	ss, err := r.sessionsOf(ctx, peer, d.InstallationID)
	if err != nil {
		return nil, err
	}
	if len(ss) == 0 {
		return nil, nil
	}
	p, err := r.currentPrekey(ctx)
	if err != nil {
		return nil, err
	}
	for i := range ss {
		s := &ss[i]
		if s.Retired {
			continue
		}
		if s.Initiator && bytes.Equal(s.BundleID, d.SignedPreKey) || !s.Initiator && bytes.Equal(s.BundleID, p.Public) {
			return s, nil
		}
	}
	return nil, nil
}

// startSession runs X3DH as the initiator with d's signed prekey and encrypts the first
// Double Ratchet message. Caller holds r.mu.
func (r *Ratchet) startSession(ctx context.Context, to *ecdsa.PublicKey, peer []byte, d Device, payload []byte) (*protobuf.DirectMessageProtocol, Mode, error) {
	theirPrekey, err := decompress(d.SignedPreKey)
	if err != nil {
		return nil, 0, fmt.Errorf("stored signed prekey: %w", err)
	}
	ek, err := generateKey(r.cfg.Rand)
	if err != nil {
		return nil, 0, err
	}
	sk, err := x3dhActive(r.identity, theirPrekey, to, ek)
	if err != nil {
		return nil, 0, err
	}
	st := newStep(ctx, r.cfg.Store, 0, nil)
	sess, err := r.initiatorSession(st, sk, d.SignedPreKey)
	if err != nil {
		return nil, 0, fmt.Errorf("start session: %w", err)
	}
	msg, err := sess.RatchetEncrypt(payload, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("ratchet encrypt: %w", err)
	}
	ekPub := crypto.CompressPubkey(&ek.PublicKey)
	if _, err := r.insertSession(ctx, NewSession{
		Session: Session{
			Peer: peer, InstallationID: d.InstallationID, BundleID: d.SignedPreKey, Ephemeral: ekPub,
			Initiator: true, SK: sk, Created: r.cfg.Clock(), State: *st.saved,
		},
		Keep: sessionsKept,
	}); err != nil {
		return nil, 0, err
	}
	r.stats.sentX3DH.Add(1)
	return &protobuf.DirectMessageProtocol{
		X3DHHeader: &protobuf.X3DHHeader{Key: ekPub, Id: d.SignedPreKey},
		DRHeader:   &protobuf.DRHeader{Key: msg.Header.DH, N: msg.Header.N, Pn: msg.Header.PN, Id: d.SignedPreKey},
		Payload:    msg.Ciphertext,
	}, ModeX3DH, nil
}

// encryptDH is status-go's encryptWithDH: key = DH(EK, IK_recipient), AES-256-GCM.
func (r *Ratchet) encryptDH(to *ecdsa.PublicKey, payload []byte) (*protobuf.DirectMessageProtocol, error) {
	ek, err := generateKey(r.cfg.Rand)
	if err != nil {
		return nil, err
	}
	key, err := dh(ek, to)
	if err != nil {
		return nil, err
	}
	ct, err := sealGCM(r.cfg.Rand, key, payload)
	if err != nil {
		return nil, err
	}
	r.stats.sentDH.Add(1)
	return &protobuf.DirectMessageProtocol{
		DHHeader: &protobuf.DHHeader{Key: crypto.CompressPubkey(&ek.PublicKey)},
		Payload:  ct,
	}, nil
}

// finish wraps the copies with our installation id and bundle, records the negotiated
// secret and picks the topic (PROTOCOL.md §3.4 as status-go v0.70.1 does it: the
// negotiated topic once agreed with every addressed installation, else the recipient's
// partitioned topic; v0.70.1 no longer listens on the generic discovery topic). Caller
// holds r.mu.
func (r *Ratchet) finish(ctx context.Context, to *ecdsa.PublicKey, peer []byte, dm map[string]*protobuf.DirectMessageProtocol, copies []Copy) (*Outgoing, error) {
	b, err := r.bundle(ctx)
	if err != nil {
		return nil, err
	}
	pm := &protobuf.ProtocolMessage{InstallationId: r.cfg.InstallationID, Bundles: []*protobuf.Bundle{b}, DirectMessage: dm}
	enc, err := proto.Marshal(pm)
	if err != nil {
		return nil, fmt.Errorf("encode protocol message: %w", err)
	}
	out := &Outgoing{Recipient: to, Message: pm, Payload: enc, Copies: copies}
	secret, err := r.secretWith(to)
	if err != nil {
		return nil, err
	}
	// The secret is recorded for a kept peer only: Encrypt kept (pinned) it; a
	// bundle-back to a peer that is not kept records nothing.
	kept, err := r.usePeer(ctx, peer, false, false)
	if err != nil {
		return nil, err
	}
	if kept {
		isNew, err := r.addSecretPeer(ctx, peer)
		if err != nil {
			return nil, err
		}
		if isNew {
			out.NewSecret = secret
		}
	}
	out.Evicted = r.takeEvicted()
	var ids []string
	for id := range dm {
		if id != noInstallationID {
			ids = append(ids, id)
		}
	}
	if out.Agreed, err = r.agreedWith(ctx, peer, ids); err != nil {
		return nil, err
	}
	if out.Agreed {
		k, err := secret.SymKey()
		if err != nil {
			return nil, err
		}
		out.Envelope = Envelope{TopicName: secret.TopicName, Topic: secret.Topic, SymKey: k}
	} else {
		name := PartitionedTopicName(to)
		out.Envelope = Envelope{TopicName: name, Topic: whisper.TopicFromName(name), Dst: to}
	}
	return out, nil
}

// secretWith returns the negotiated secret with peer, cached. Caller holds r.mu.
func (r *Ratchet) secretWith(peer *ecdsa.PublicKey) (*Secret, error) {
	id := string(crypto.CompressPubkey(peer))
	if s, ok := r.secrets[id]; ok {
		return s, nil
	}
	k, err := dh(r.identity, peer)
	if err != nil {
		return nil, err
	}
	if len(r.secrets) >= secretCacheEntries {
		clear(r.secrets) // a cache: recomputing costs one scalar multiplication
	}
	s := newSecret(peer, k, r.symKeys)
	r.secrets[id] = s
	return s, nil
}

// Secrets returns the negotiated secrets to listen on: every peer we exchanged direct
// messages with (status-go loads the same set at start).
func (r *Ratchet) Secrets(ctx context.Context) ([]*Secret, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	peers, err := r.cfg.Store.SecretPeers(ctx, r.owner)
	if err != nil {
		return nil, storeErr("read negotiated secrets", err)
	}
	kept, err := r.cfg.Store.SecretTopicKeys(ctx, r.owner)
	if err != nil {
		return nil, storeErr("read negotiated topic keys", err)
	}
	out := make([]*Secret, 0, len(peers))
	for _, p := range peers {
		pub, err := decompress(p)
		if err != nil {
			continue // not written by us; skip rather than fail every start
		}
		s, err := r.secretWith(pub)
		if err != nil {
			return nil, err
		}
		putBounded(r.cache.secretPeers, string(p), true)
		// The topic keys were derived once (PBKDF2) and kept: a start with thousands of
		// negotiated topics derives only the ones never kept (recorded by an earlier
		// version, or since the last start).
		if k, ok := kept[string(p)]; ok {
			// A Secret of its own: the cached one may be in a caller's hands.
			if own := newSecret(pub, s.Key, nil); own.useKey(k) {
				out = append(out, own)
				continue
			}
		}
		k, err := s.SymKey()
		if err != nil {
			return nil, err
		}
		if err := r.cfg.Store.SetSecretTopicKey(ctx, r.owner, p, k.Bytes()); err != nil {
			return nil, storeErr("keep negotiated topic key", err)
		}
		out = append(out, s)
	}
	return out, nil
}

// WrapPublic wraps a public-chat payload the way status-go does from mid-2020 on:
// ProtocolMessage{installation_id, bundles: [our bundle], public_message: payload}, so
// that readers learn our bundle. It returns the Whisper payload.
func (r *Ratchet) WrapPublic(ctx context.Context, payload []byte) ([]byte, error) {
	r.mu.Lock()
	b, err := r.bundle(ctx)
	r.mu.Unlock()
	if err != nil {
		return nil, err
	}
	enc, err := proto.Marshal(&protobuf.ProtocolMessage{
		InstallationId: r.cfg.InstallationID, Bundles: []*protobuf.Bundle{b}, PublicMessage: payload,
	})
	if err != nil {
		return nil, fmt.Errorf("encode public protocol message: %w", err)
	}
	return enc, nil
}
