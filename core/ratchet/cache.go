package ratchet

import (
	"context"
	"slices"
	"time"

	"github.com/statusgate/statusgate/core/ratchet/protobuf"
)

const (
	// cacheEntries bounds each map of the cache; a full map is cleared (it is a cache:
	// the Store has everything).
	cacheEntries = 4096
	// bundleResign is how long a signed bundle is reused before it is signed again with
	// a new timestamp. status-go re-signs at every message; a bundle whose only change is
	// a newer timestamp changes nothing for its readers but the order of installations,
	// which a minute does not disturb, and each re-signature costs a signature here and a
	// row update at every reader.
	bundleResign = time.Minute
	// deviceTouch: a bundle that repeats what we stored for an installation, only newer,
	// updates the stored timestamp at most this often.
	deviceTouch = time.Minute
)

// cache holds what the Ratchet read from or wrote to the Store for its owner, so that the
// hot paths do not read the same rows at every message. It relies on the Ratchet being
// the only writer of its owner's rows (one Ratchet per identity per Store at a time). An
// entry is dropped when a Store call about it fails. Guarded by Ratchet.mu.
type cache struct {
	devices     map[string][]Device // compressed identity → Store.Devices
	sessions    map[string][]Session
	agreed      map[string]map[string]bool // peer → installations that agreed
	secretPeers map[string]bool
	bundle      *protobuf.Bundle
	bundleAt    time.Time
}

func newCache() cache {
	return cache{devices: map[string][]Device{}, sessions: map[string][]Session{}, agreed: map[string]map[string]bool{}, secretPeers: map[string]bool{}}
}

func putBounded[V any](m map[string]V, k string, v V) {
	if _, ok := m[k]; !ok && len(m) >= cacheEntries {
		clear(m)
	}
	m[k] = v
}

func sessionKey(peer []byte, inst string) string { return string(peer) + "\x00" + inst }

// devicesOf is Store.Devices, cached. The result is the caller's to modify.
func (r *Ratchet) devicesOf(ctx context.Context, identity []byte) ([]Device, error) {
	if ds, ok := r.cache.devices[string(identity)]; ok {
		return slices.Clone(ds), nil
	}
	ds, err := r.cfg.Store.Devices(ctx, r.owner, identity)
	if err != nil {
		return nil, storeErr("read installations", err)
	}
	putBounded(r.cache.devices, string(identity), ds)
	return slices.Clone(ds), nil
}

// saveDevice is Store.SaveDevice; it drops the identity's cached installations.
func (r *Ratchet) saveDevice(ctx context.Context, d Device) error {
	delete(r.cache.devices, string(d.Identity))
	if err := r.cfg.Store.SaveDevice(ctx, r.owner, d, MaxInstallations); err != nil {
		return storeErr("save installation", err)
	}
	return nil
}

// sessionsOf is Store.Sessions, cached. The result is the caller's to modify.
func (r *Ratchet) sessionsOf(ctx context.Context, peer []byte, inst string) ([]Session, error) {
	k := sessionKey(peer, inst)
	if ss, ok := r.cache.sessions[k]; ok {
		return slices.Clone(ss), nil
	}
	ss, err := r.cfg.Store.Sessions(ctx, r.owner, peer, inst)
	if err != nil {
		return nil, storeErr("read sessions", err)
	}
	putBounded(r.cache.sessions, k, ss)
	return slices.Clone(ss), nil
}

// updateSession is Store.UpdateSession; the cached session follows it.
func (r *Ratchet) updateSession(ctx context.Context, peer []byte, inst string, u SessionUpdate) error {
	k := sessionKey(peer, inst)
	if err := r.cfg.Store.UpdateSession(ctx, r.owner, u); err != nil {
		delete(r.cache.sessions, k)
		return storeErr("update session", err)
	}
	if ss, ok := r.cache.sessions[k]; ok {
		for i := range ss {
			if ss[i].ID == u.Session {
				ss[i].State, ss[i].Confirmed = u.State, u.Confirmed
			}
		}
	}
	return nil
}

// insertSession is Store.InsertSession; the installation's sessions are read again next
// time (retirement and the keep limit changed them).
func (r *Ratchet) insertSession(ctx context.Context, n NewSession) (int64, error) {
	k := sessionKey(n.Session.Peer, n.Session.InstallationID)
	if ss, ok := r.cache.sessions[k]; ok && len(ss) < n.Keep {
		n.Keep = 0 // the new one leaves them within the limit: nothing to delete
	}
	delete(r.cache.sessions, k)
	id, err := r.cfg.Store.InsertSession(ctx, r.owner, n)
	if err != nil {
		return 0, storeErr("insert session", err)
	}
	return id, nil
}

// agreedWith reports whether every one of ids confirmed the negotiated secret with peer.
func (r *Ratchet) agreedWith(ctx context.Context, peer []byte, ids []string) (bool, error) {
	set, ok := r.cache.agreed[string(peer)]
	if !ok {
		list, err := r.cfg.Store.Agreed(ctx, r.owner, peer)
		if err != nil {
			return false, storeErr("read agreed installations", err)
		}
		set = map[string]bool{}
		for _, id := range list {
			set[id] = true
		}
		putBounded(r.cache.agreed, string(peer), set)
	}
	for _, id := range ids {
		if !set[id] {
			return false, nil
		}
	}
	return len(ids) > 0, nil
}

// markAgreed is Store.MarkAgreed, skipped when already recorded.
func (r *Ratchet) markAgreed(ctx context.Context, peer []byte, inst string) error {
	if set, ok := r.cache.agreed[string(peer)]; ok && set[inst] {
		return nil
	}
	if _, err := r.cfg.Store.MarkAgreed(ctx, r.owner, peer, inst); err != nil {
		return storeErr("mark agreed", err)
	}
	if set, ok := r.cache.agreed[string(peer)]; ok {
		set[inst] = true
	}
	return nil
}

// addSecretPeer is Store.AddSecretPeer, skipped when already recorded; it reports
// whether the peer is new.
func (r *Ratchet) addSecretPeer(ctx context.Context, peer []byte) (bool, error) {
	if r.cache.secretPeers[string(peer)] {
		return false, nil
	}
	isNew, err := r.cfg.Store.AddSecretPeer(ctx, r.owner, peer)
	if err != nil {
		return false, storeErr("record negotiated secret", err)
	}
	putBounded(r.cache.secretPeers, string(peer), true)
	return isNew, nil
}
