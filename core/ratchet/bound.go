package ratchet

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"fmt"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
)

// The bound on the peer identities a Ratchet keeps state about (Config.MaxPeers). Every
// row a peer can make us store hangs off its identity and is capped per identity (3
// installations, 8 sessions per installation, MaxMessageKeysPerSession keys and
// OldChains old chains per session); this bounds the number of identities. The Store
// keeps one row per peer with its last use and whether it is pinned, and evicts in the
// same transaction that admits (Store.UsePeer), so the bound holds across restarts and
// on both backends.
//
// Where a peer is admitted (may be given rows):
//   - a verified bundle of a remote identity (handleBundle), whatever message carried it
//     (direct, public, contact code);
//   - a direct message of protocol version ≥ 1, before its negotiated secret is recorded;
//   - Encrypt, EncryptDH and Pin: the local user's conversation, pinned.
//
// Where a peer is only touched (its last use refreshed, never admitted): a Double Ratchet
// or X3DH message (its sessions and installations exist only if it was admitted), and
// the bundle-back answer (its secret is recorded only for a kept peer). Our own identity
// is never counted: its other installations are bounded by MaxInstallations.

// peerTouch is how often a kept peer's last use is written: the LRU order is exact to a
// minute, and a busy conversation costs no write per message.
const peerTouch = time.Minute

// peerMark is the last UsePeer result for a peer.
type peerMark struct {
	at     time.Time
	pinned bool
}

// usePeer is Store.UsePeer with the Ratchet's bound, skipped when the peer was used
// less than peerTouch ago (and is already pinned if pin). It reports whether the peer
// is kept; the peers it evicted are forgotten (caches, secrets reported as Evicted).
// Caller holds r.mu.
func (r *Ratchet) usePeer(ctx context.Context, peer []byte, pin, admit bool) (bool, error) {
	if bytes.Equal(peer, r.owner) {
		return true, nil
	}
	now := r.cfg.Clock()
	k := string(peer)
	if m, ok := r.peers[k]; ok && (m.pinned || !pin) {
		if age := now.Sub(m.at); age >= 0 && age < peerTouch {
			return true, nil
		}
	}
	a, err := r.cfg.Store.UsePeer(ctx, r.owner, peer, PeerUse{At: now, Pin: pin, Admit: admit, Max: r.cfg.MaxPeers})
	if err != nil {
		return false, storeErr("use peer", err)
	}
	for _, v := range a.Evicted {
		r.forget(v)
	}
	if !a.Admitted {
		delete(r.peers, k)
		if admit {
			r.stats.peersRefused.Add(1)
			r.log.Debug("ratchet peer not kept: every kept peer is pinned", "peer", fmt.Sprintf("%x", peer[:min(len(peer), 6)]))
		}
		return false, nil
	}
	pinned := pin
	if m, ok := r.peers[k]; ok && m.pinned {
		pinned = true
	}
	putBounded(r.peers, k, peerMark{at: now, pinned: pinned})
	return true, nil
}

// peerFresh reports whether usePeer would skip the Store for peer (not pinning).
// Caller holds r.mu.
func (r *Ratchet) peerFresh(peer []byte) bool {
	if bytes.Equal(peer, r.owner) {
		return true
	}
	m, ok := r.peers[string(peer)]
	age := r.cfg.Clock().Sub(m.at)
	return ok && age >= 0 && age < peerTouch
}

// forget drops everything cached about an evicted peer and queues its negotiated
// secret, so that the caller stops listening on its topic. Caller holds r.mu.
func (r *Ratchet) forget(peer []byte) {
	k := string(peer)
	delete(r.cache.devices, k)
	delete(r.cache.agreed, k)
	delete(r.cache.secretPeers, k)
	delete(r.peers, k)
	delete(r.bundleBackAt, k)
	for sk := range r.cache.sessions {
		if strings.HasPrefix(sk, k+"\x00") {
			delete(r.cache.sessions, sk)
		}
	}
	r.stats.peersEvicted.Add(1)
	r.log.Info("ratchet peer evicted: least recently used of the kept peers", "peer", fmt.Sprintf("%x", peer[:min(len(peer), 6)]),
		"max_peers", r.cfg.MaxPeers)
	pub, err := decompress(peer)
	if err != nil {
		return // not written by us
	}
	s, err := r.secretWith(pub)
	delete(r.secrets, k)
	if err != nil {
		return
	}
	if len(r.evicted) >= cacheEntries {
		r.evicted = r.evicted[1:] // nobody collects them: the oldest listener stays
	}
	r.evicted = append(r.evicted, s)
}

// takeEvicted returns and clears the secrets of the peers evicted since the last call.
// Caller holds r.mu.
func (r *Ratchet) takeEvicted() []*Secret {
	out := r.evicted
	r.evicted = nil
	return out
}

// Pin marks peer as a conversation the local user opened: its state is kept (admitted
// beyond MaxPeers if need be) and never evicted.
func (r *Ratchet) Pin(ctx context.Context, peer *ecdsa.PublicKey) error {
	if !validPublic(peer) {
		return fmt.Errorf("pin: %w", ErrInvalidKey)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	_, err := r.usePeer(ctx, crypto.CompressPubkey(peer), true, true)
	return err
}
