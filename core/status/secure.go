package status

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"sync"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/statusgate/statusgate/core/ratchet"
	"github.com/statusgate/statusgate/core/whisper"
)

// The secure transport (core/ratchet) as the SDK uses it: the ProtocolMessage wrapping
// of public messages (PROTOCOL.md §7.3) here; 1:1 conversations in direct.go.

// Ratchets returns the secure transport of one of our identities, the same *Ratchet for
// the same key every time (one Ratchet per identity holds that identity's lock).
type Ratchets func(ctx context.Context, identity *ecdsa.PrivateKey) (*ratchet.Ratchet, error)

// StoreRatchets returns Ratchets over st: one Ratchet per identity, created on first use
// with base's settings and the installation id stored for that identity (created once,
// ratchet.LoadInstallationID), so a restart continues as the same installation.
func StoreRatchets(st ratchet.Store, base ratchet.Config) Ratchets {
	return NewRatchetPool(st, base).Get
}

// RatchetPool holds the Ratchets of our identities over one Store (see StoreRatchets),
// and sums their counters for metrics.
type RatchetPool struct {
	st   ratchet.Store
	base ratchet.Config

	mu    sync.Mutex
	byKey map[string]*ratchet.Ratchet
}

// NewRatchetPool returns an empty pool; it does no I/O.
func NewRatchetPool(st ratchet.Store, base ratchet.Config) *RatchetPool {
	return &RatchetPool{st: st, base: base, byKey: map[string]*ratchet.Ratchet{}}
}

// Get is Ratchets: the Ratchet of identity, created on first use.
func (p *RatchetPool) Get(ctx context.Context, identity *ecdsa.PrivateKey) (*ratchet.Ratchet, error) {
	if identity == nil {
		return nil, fmt.Errorf("ratchet: %w", ratchet.ErrInvalidKey)
	}
	k := string(crypto.CompressPubkey(&identity.PublicKey))
	p.mu.Lock()
	defer p.mu.Unlock()
	if r := p.byKey[k]; r != nil {
		return r, nil
	}
	inst, err := ratchet.LoadInstallationID(ctx, p.st, &identity.PublicKey, p.base.Rand)
	if err != nil {
		return nil, err
	}
	cfg := p.base
	cfg.Identity, cfg.InstallationID, cfg.Store = identity, inst, p.st
	r, err := ratchet.New(cfg)
	if err != nil {
		return nil, err
	}
	p.byKey[k] = r
	return r, nil
}

// Stats returns the sum of the pool's Ratchets' counters and how many Ratchets (our
// identities with a secure transport in use) there are.
func (p *RatchetPool) Stats() (sum ratchet.Stats, identities int) {
	p.mu.Lock()
	rs := make([]*ratchet.Ratchet, 0, len(p.byKey))
	for _, r := range p.byKey {
		rs = append(rs, r)
	}
	p.mu.Unlock()
	for _, r := range rs {
		sum = sum.Plus(r.Stats())
	}
	return sum, len(rs)
}

// errBadBundle wraps the bundle errors of a wrapped public message.
var errBadBundle = errors.New("bad bundle")

// unwrapPublic returns the public-chat payload of rm. A ProtocolMessage (status-go from
// mid-2020 on) gives its public_message, after its bundles were verified against the
// Whisper signer and, when the client has an Identity and Ratchets, stored for it (so a
// first 1:1 message to that author can use X3DH); its installation id is returned too.
// Anything else (a bare ApplicationMetadataMessage, Transit, the 4001/4002 wrapper) is
// returned as is. A ProtocolMessage without public_message (a direct message or a
// contact code on a public topic) is ErrUnsupportedPayload; a bundle that does not
// verify is errBadBundle: status-go drops both.
func (c *Client) unwrapPublic(ctx context.Context, rm *whisper.ReceivedMessage) (payload []byte, installation string, err error) {
	pm, err := ratchet.DecodeProtocolMessage(rm.Payload)
	if err != nil {
		return rm.Payload, "", nil // not a ProtocolMessage: the payload itself
	}
	if pm.PublicMessage == nil {
		return nil, "", fmt.Errorf("protocol message without public_message on a public topic: %w", errUnsupportedPayload)
	}
	// The bundles are checked against the Whisper signer: recovered now.
	src, err := rm.Signer()
	if err != nil {
		return nil, "", err
	}
	r, err := c.ownRatchet(ctx)
	if err != nil {
		c.log.Warn("status bundle not stored: no ratchet", "err", err)
	}
	if r == nil {
		for _, b := range pm.GetBundles() {
			id, err := ratchet.VerifyBundle(b)
			if err != nil {
				return nil, "", fmt.Errorf("%w: %w", errBadBundle, err)
			}
			if !id.Equal(src) {
				return nil, "", fmt.Errorf("%w: %w", errBadBundle, ratchet.ErrBundleSigner)
			}
			c.count(func(s *Stats) { s.BundlesVerified++ })
		}
		return pm.PublicMessage, pm.GetInstallationId(), nil
	}
	if _, err := r.ReceiveMessage(ctx, src, pm); err != nil {
		if !errors.Is(err, ratchet.ErrStore) {
			return nil, "", fmt.Errorf("%w: %w", errBadBundle, err)
		}
		// The message is good; only our copy of the bundle is lost.
		c.log.Warn("status bundle not stored", "err", err)
	}
	return pm.PublicMessage, pm.GetInstallationId(), nil
}

// ownRatchet is the Ratchet of Config.Identity, or nil when either is not configured.
func (c *Client) ownRatchet(ctx context.Context) (*ratchet.Ratchet, error) {
	if c.cfg.Identity == nil || c.cfg.Ratchets == nil {
		return nil, nil
	}
	return c.cfg.Ratchets(ctx, c.cfg.Identity)
}

// wrapPublic wraps payload in a ProtocolMessage with as's bundle (SendWrapped).
func (c *Client) wrapPublic(ctx context.Context, as *ecdsa.PrivateKey, payload []byte) ([]byte, error) {
	if c.cfg.Ratchets == nil {
		return nil, fmt.Errorf("wrapped send format: %w", ErrNoRatchets)
	}
	r, err := c.cfg.Ratchets(ctx, as)
	if err != nil {
		return nil, err
	}
	return r.WrapPublic(ctx, payload)
}
