package ratchet

import (
	"errors"
	"reflect"
	"sync/atomic"
)

// Stats counts what the Ratchet did and dropped since it was created. Drops are counted by
// the sentinel error they wrap (errors.go).
type Stats struct {
	// Drops of received messages, by reason.
	NotProtocolMessage   uint64
	Malformed            uint64
	BundleSignature      uint64
	BundleSigner         uint64
	TooManyInstallations uint64
	TooManyBundles       uint64
	UnknownPrekey        uint64
	UnknownInstallation  uint64
	SessionNotFound      uint64
	Replay               uint64
	TooManySkipped       uint64
	Decrypt              uint64
	NoKeyHeader          uint64
	// StoreErrors counts operations that failed in the Store (nothing was committed).
	StoreErrors uint64

	// Received messages by kind.
	ReceivedPublic uint64
	ReceivedDH     uint64
	ReceivedX3DH   uint64 // sessions started by a peer (we responded)
	ReceivedDR     uint64
	// BundlesReceived: bundles verified (in any message, or given to HandleBundle).
	BundlesReceived uint64
	// BundlesOnly: messages with bundles and no payload (contact codes).
	BundlesOnly uint64
	// NotForUs: direct messages without a copy for this installation.
	NotForUs uint64
	// Own: our own messages seen again (no copy for ourselves).
	Own uint64
	// BundleBacks: bundle-back answers built for NotForUs messages.
	BundleBacks uint64

	// Sent copies by mode.
	SentDH   uint64
	SentX3DH uint64 // sessions we started
	SentDR   uint64

	// DevicesSaved counts installations stored or updated from bundles;
	// DevicesEvicted those removed beyond MaxInstallations per identity.
	DevicesSaved   uint64
	DevicesEvicted uint64
	// PeersEvicted counts peer identities forgotten, with all their state, to keep
	// MaxPeers (least recently used, never pinned); PeersRefused the remote identities
	// whose state was not stored because every kept peer is pinned.
	PeersEvicted uint64
	PeersRefused uint64

	// Work refused by the budgets (work.go): X3DH messages dropped (ErrWorkRefused),
	// bundles verified and not stored, new negotiated secrets deferred (not recorded,
	// their topic key not derived).
	RefusedX3DH     uint64
	RefusedBundles  uint64
	DeferredSecrets uint64
	// Deferred counts X3DH messages kept because the work budgets refused them
	// (defer.go), DeferredRetried those a Retry then processed (delivered, or dropped
	// under their reason), DeferredDropped those dropped by the queue's overflow policy
	// (drop-oldest-of-the-largest-sender) or too large to keep; DeferredQueued is how
	// many are kept now (a gauge).
	Deferred        uint64
	DeferredRetried uint64
	DeferredDropped uint64
	DeferredQueued  uint64
	// PrekeysPruned counts our signed prekeys deleted (beyond PrekeysKept and
	// PrekeyRetention).
	PrekeysPruned uint64
	// TopicKeysDerived counts negotiated-topic keys derived (PBKDF2), whoever asked.
	TopicKeysDerived uint64
}

type counters struct {
	drops    [len(dropReasons)]atomic.Uint64
	storeErr atomic.Uint64

	public, dh, x3dh, dr, bundlesOnly, notForUs, own, bundleBacks atomic.Uint64
	sentDH, sentX3DH, sentDR                                      atomic.Uint64
	devicesSaved, devicesEvicted                                  atomic.Uint64
	peersEvicted, peersRefused                                    atomic.Uint64
	refused                                                       [numWork]atomic.Uint64
	topicKeys, bundles, prekeysPruned                             atomic.Uint64
	deferred, deferredRetried, deferredDropped                    atomic.Uint64
}

// dropReasons are the sentinels counted as drops, in Stats order.
var dropReasons = [...]error{
	ErrNotProtocolMessage, ErrMalformed, ErrBundleSignature, ErrBundleSigner,
	ErrTooManyInstallations, ErrTooManyBundles, ErrUnknownPrekey, ErrSessionNotFound,
	ErrReplay, ErrTooManySkipped, ErrDecrypt, ErrNoKeyHeader, ErrUnknownInstallation,
}

// countDrop counts err under its reason and reports the reason's name ("" if err is a
// store failure or unknown).
func (c *counters) countDrop(err error) {
	if errors.Is(err, ErrStore) {
		c.storeErr.Add(1)
		return
	}
	if errors.Is(err, ErrWorkRefused) {
		return // counted by the budget (RefusedX3DH)
	}
	for i, reason := range dropReasons {
		if errors.Is(err, reason) {
			c.drops[i].Add(1)
			return
		}
	}
	c.drops[1].Add(1) // anything else from a peer is malformed input
}

// Stats returns a snapshot of the counters.
func (r *Ratchet) Stats() Stats {
	c := &r.stats
	d := func(i int) uint64 { return c.drops[i].Load() }
	return Stats{
		NotProtocolMessage: d(0), Malformed: d(1), BundleSignature: d(2), BundleSigner: d(3),
		TooManyInstallations: d(4), TooManyBundles: d(5), UnknownPrekey: d(6), SessionNotFound: d(7),
		Replay: d(8), TooManySkipped: d(9), Decrypt: d(10), NoKeyHeader: d(11), UnknownInstallation: d(12),
		StoreErrors:    c.storeErr.Load(),
		ReceivedPublic: c.public.Load(), ReceivedDH: c.dh.Load(), ReceivedX3DH: c.x3dh.Load(), ReceivedDR: c.dr.Load(),
		BundlesOnly: c.bundlesOnly.Load(), NotForUs: c.notForUs.Load(), Own: c.own.Load(), BundleBacks: c.bundleBacks.Load(),
		SentDH: c.sentDH.Load(), SentX3DH: c.sentX3DH.Load(), SentDR: c.sentDR.Load(),
		DevicesSaved: c.devicesSaved.Load(), DevicesEvicted: c.devicesEvicted.Load(),
		PeersEvicted: c.peersEvicted.Load(), PeersRefused: c.peersRefused.Load(),
		RefusedX3DH: c.refused[WorkX3DH].Load(), RefusedBundles: c.refused[WorkBundle].Load(), DeferredSecrets: c.refused[WorkSecret].Load(),
		Deferred: c.deferred.Load(), DeferredRetried: c.deferredRetried.Load(), DeferredDropped: c.deferredDropped.Load(),
		DeferredQueued:   uint64(max(r.deferred.queued.Load(), 0)),
		TopicKeysDerived: c.topicKeys.Load(), BundlesReceived: c.bundles.Load(), PrekeysPruned: c.prekeysPruned.Load(),
	}
}

// Plus returns the field-wise sum of s and o (the Stats of several identities' Ratchets).
func (s Stats) Plus(o Stats) Stats {
	a, b := reflect.ValueOf(&s).Elem(), reflect.ValueOf(o)
	for i := range a.NumField() {
		a.Field(i).SetUint(a.Field(i).Uint() + b.Field(i).Uint())
	}
	return s
}
