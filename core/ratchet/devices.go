package ratchet

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/statusgate/statusgate/core/ratchet/protobuf"
)

// currentPrekey returns our signed prekey, creating the first one, or a new version when
// the current one is older than BundleRefresh (PROTOCOL.md §5.2: 24 h). Sessions a peer
// started with an older prekey keep working for decryption; for encryption we then start
// fresh ones (status-go marks them expired the same way). Caller holds r.mu.
func (r *Ratchet) currentPrekey(ctx context.Context) (*Prekey, error) {
	now := r.cfg.Clock()
	if r.prekey != nil && now.Sub(r.prekey.Created) < r.cfg.BundleRefresh {
		return r.prekey, nil
	}
	if r.prekey == nil {
		ps, err := r.cfg.Store.Prekeys(ctx, r.owner)
		if err != nil {
			return nil, storeErr("read prekeys", err)
		}
		if len(ps) > 0 {
			r.prekey = &ps[0]
			if err := r.prunePrekeys(ctx, now); err != nil {
				return nil, err
			}
			if now.Sub(r.prekey.Created) < r.cfg.BundleRefresh {
				return r.prekey, nil
			}
		}
	}
	version := uint32(1)
	if r.prekey != nil {
		version = r.prekey.Version + 1
	}
	k, err := generateKey(r.cfg.Rand)
	if err != nil {
		return nil, err
	}
	p := Prekey{Public: crypto.CompressPubkey(&k.PublicKey), Private: crypto.FromECDSA(k), Version: version, Created: now}
	if err := r.cfg.Store.AddPrekey(ctx, r.owner, p); err != nil {
		return nil, storeErr("add prekey", err)
	}
	r.log.Info("ratchet signed prekey created", "version", version)
	r.prekey = &p
	if err := r.prunePrekeys(ctx, now); err != nil {
		return nil, err
	}
	return r.prekey, nil
}

// prunePrekeys deletes our signed prekeys beyond the newest PrekeysKept replaced ones
// that were replaced more than PrekeyRetention ago (Config.PrekeysKept says why).
// Caller holds r.mu.
func (r *Ratchet) prunePrekeys(ctx context.Context, now time.Time) error {
	if r.cfg.PrekeyRetention < 0 {
		return nil
	}
	n, err := r.cfg.Store.PrunePrekeys(ctx, r.owner, r.cfg.PrekeysKept, now.Add(-r.cfg.PrekeyRetention))
	if err != nil {
		return storeErr("prune prekeys", err)
	}
	if n > 0 {
		r.stats.prekeysPruned.Add(uint64(n))
		r.log.Info("ratchet signed prekeys deleted: beyond the newest kept and replaced longer ago than the retention",
			"count", n, "kept", r.cfg.PrekeysKept, "retention", r.cfg.PrekeyRetention)
	}
	return nil
}

// ourDevices returns our other enabled installations (at most MaxInstallations-1, most
// recently seen first), which our bundle lists and our messages to ourselves address.
// Caller holds r.mu.
func (r *Ratchet) ourDevices(ctx context.Context) ([]Device, error) {
	if r.ownLoaded {
		return r.ownDevices, nil
	}
	all, err := r.devicesOf(ctx, r.owner)
	if err != nil {
		return nil, err
	}
	var out []Device
	for _, d := range all {
		if d.Enabled && d.InstallationID != r.cfg.InstallationID && len(out) < MaxInstallations-1 {
			out = append(out, d)
		}
	}
	r.ownDevices, r.ownLoaded = out, true
	return out, nil
}

// bundle builds and signs our bundle: our signed prekey and those of our enabled other
// installations, timestamped now (status-go re-signs it each time it is attached).
// Caller holds r.mu.
func (r *Ratchet) bundle(ctx context.Context) (*protobuf.Bundle, error) {
	p, err := r.currentPrekey(ctx)
	if err != nil {
		return nil, err
	}
	now := r.cfg.Clock()
	if b := r.cache.bundle; b != nil && now.Sub(r.cache.bundleAt) < bundleResign && now.Sub(r.cache.bundleAt) >= 0 &&
		bytes.Equal(b.GetSignedPreKeys()[r.cfg.InstallationID].GetSignedPreKey(), p.Public) {
		return b, nil
	}
	others, err := r.ourDevices(ctx)
	if err != nil {
		return nil, err
	}
	b := &protobuf.Bundle{
		Identity: r.owner,
		SignedPreKeys: map[string]*protobuf.SignedPreKey{
			r.cfg.InstallationID: {SignedPreKey: p.Public, Version: p.Version, ProtocolVersion: protocolVersion},
		},
	}
	for _, d := range others {
		b.SignedPreKeys[d.InstallationID] = &protobuf.SignedPreKey{
			SignedPreKey: d.SignedPreKey, Version: d.PrekeyVersion, ProtocolVersion: d.ProtocolVersion,
		}
	}
	if err := signBundle(r.identity, b, now.UnixNano()); err != nil {
		return nil, err
	}
	r.cache.bundle, r.cache.bundleAt = b, now
	return b, nil
}

// Bundle returns our current bundle, signed now.
func (r *Ratchet) Bundle(ctx context.Context) (*protobuf.Bundle, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bundle(ctx)
}

// HandleBundle verifies a bundle seen in a message signed by signer (the Whisper
// signature's key) and stores its installations: a bundle must be signed by its identity
// and its identity must be the signer. It returns the installations that were new. This
// is what Receive does with every bundle; call it directly for bundles met elsewhere.
func (r *Ratchet) HandleBundle(ctx context.Context, signer *ecdsa.PublicKey, b *protobuf.Bundle) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	added, _, err := r.handleBundle(ctx, signer, b)
	if err != nil {
		r.stats.countDrop(err)
		r.log.Debug("ratchet bundle dropped", "err", err)
	}
	return added, err
}

// handleBundle is HandleBundle under r.mu; refused reports that the work budget
// refused to store it (work.go).
func (r *Ratchet) handleBundle(ctx context.Context, signer *ecdsa.PublicKey, b *protobuf.Bundle) (added []string, refused bool, err error) {
	identity, err := VerifyBundle(b)
	if err != nil {
		return nil, false, err
	}
	if !sameKey(identity, signer) {
		return nil, false, fmt.Errorf("bundle of %x in a message signed by %x: %w",
			b.GetIdentity()[:4], crypto.CompressPubkey(signer)[:4], ErrBundleSigner)
	}
	r.stats.bundles.Add(1)
	ours := bytes.Equal(b.GetIdentity(), r.owner)
	// The rows a bundle makes us write are charged to the work budgets once (work.go):
	// admitting or refreshing the peer, saving its installations. A bundle that repeats
	// what we hold costs nothing. Our own identity's bundles are signed by our key.
	charged := ours
	charge := func() bool {
		if charged {
			return true
		}
		charged = true
		return r.allowWork(b.GetIdentity(), WorkBundle)
	}
	if !r.peerFresh(b.GetIdentity()) && !charge() {
		return nil, true, nil // verified, not stored: the sender's later bundles are
	}
	if kept, err := r.usePeer(ctx, b.GetIdentity(), false, true); err != nil || !kept {
		return nil, false, err // not kept: verified, not stored (MaxPeers, every kept peer pinned)
	}
	known, err := r.devicesOf(ctx, b.GetIdentity())
	if err != nil {
		return nil, false, err
	}
	for id, spk := range b.GetSignedPreKeys() {
		if ours && id == r.cfg.InstallationID {
			continue
		}
		var prev *Device
		for i := range known {
			if known[i].InstallationID == id {
				prev = &known[i]
			}
		}
		if prev != nil && prev.Timestamp >= b.GetTimestamp() {
			continue // an older or repeated bundle never replaces a newer one
		}
		if prev != nil && bytes.Equal(prev.SignedPreKey, spk.GetSignedPreKey()) && prev.PrekeyVersion == spk.GetVersion() &&
			prev.ProtocolVersion >= spk.GetProtocolVersion() && b.GetTimestamp()-prev.Timestamp < int64(deviceTouch) {
			continue // only newer by less than deviceTouch: not worth a write per message
		}
		d := Device{
			Identity:        b.GetIdentity(),
			InstallationID:  id,
			SignedPreKey:    spk.GetSignedPreKey(),
			PrekeyVersion:   spk.GetVersion(),
			ProtocolVersion: spk.GetProtocolVersion(),
			Timestamp:       b.GetTimestamp(),
			// A peer's installations are enabled; our own others must be enabled by
			// the user (status-go's pairing rule). SaveDevice keeps an existing flag.
			Enabled: !ours,
		}
		if prev != nil && prev.ProtocolVersion > d.ProtocolVersion {
			d.ProtocolVersion = prev.ProtocolVersion // status-go keeps the highest version seen
		}
		if !charge() {
			return added, true, nil
		}
		if err := r.saveDevice(ctx, d); err != nil {
			return nil, false, err
		}
		r.stats.devicesSaved.Add(1)
		if prev == nil {
			added = append(added, id)
			if len(known) >= MaxInstallations {
				r.stats.devicesEvicted.Add(1)
				r.log.Debug("ratchet installation evicted", "identity", fmt.Sprintf("%x", b.GetIdentity()[:4]))
			}
			known = append(known, d)
		}
	}
	if ours {
		r.ownLoaded, r.cache.bundle = false, nil
	}
	return added, false, nil
}

// Installations returns the known installations of identity (our own other installations
// for our own key), most recently seen first.
func (r *Ratchet) Installations(ctx context.Context, identity *ecdsa.PublicKey) ([]Device, error) {
	if !validPublic(identity) {
		return nil, fmt.Errorf("installations: %w", ErrInvalidKey)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.devicesOf(ctx, crypto.CompressPubkey(identity))
}

// SetInstallationEnabled enables or disables one of our own other installations (pairing):
// enabled ones are listed in our bundle and receive copies of what we send to ourselves.
func (r *Ratchet) SetInstallationEnabled(ctx context.Context, installationID string, enabled bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.cache.devices, string(r.owner))
	r.ownLoaded, r.cache.bundle = false, nil
	ok, err := r.cfg.Store.SetDeviceEnabled(ctx, r.owner, r.owner, installationID, enabled)
	if err != nil {
		return storeErr("enable installation", err)
	}
	if !ok {
		return fmt.Errorf("installation %q of our identity is unknown: %w", installationID, ErrConfig)
	}
	return nil
}
