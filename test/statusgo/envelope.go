package main

import (
	"encoding/hex"
	"sort"

	"github.com/golang/protobuf/proto"

	"github.com/status-im/status-go/protocol/encryption"
)

// Encryption modes reported for an envelope's payload, as the secure-transport layer
// (PROTOCOL.md §5) sees it from the outside. They are read off the ProtocolMessage
// headers, not from status-go's decryption, so a test can check what travelled.
const (
	modeBare        = "bare"        // not a ProtocolMessage: a bare ApplicationMetadataMessage (or anything else)
	modePublic      = "public"      // ProtocolMessage with public_message (field 102)
	modeDH          = "dh"          // direct message with a DH header (no forward secrecy)
	modeX3DH        = "x3dh"        // direct message with an X3DH header (and a DR header)
	modeDR          = "dr"          // direct message with a DR header only
	modeBundleOnly  = "bundle_only" // ProtocolMessage with bundles and no payload (contact code, bundle-back)
	modeNotForUs    = "not_for_us"  // direct message with no entry for our installation nor "none"
	modeUnknownDirs = "direct"      // direct message entry with no header we know
)

// envelopeInfo describes one Whisper message as status-go handed it to, or got it
// from, its Whisper service.
type envelopeInfo struct {
	Hash   string `json:"hash"`
	Topic  string `json:"topic"`
	Signer string `json:"signer,omitempty"` // 130 hex, uncompressed
	Dst    string `json:"dst,omitempty"`    // 130 hex: asymmetric (ECIES) to this key; "" = symmetric
	// Mode is one of the mode* constants; Entry names the direct_message entry it was
	// read from ("" for public/bare).
	Mode  string `json:"mode"`
	Entry string `json:"entry,omitempty"`
	// InstallationID is the sender's installation id (ProtocolMessage field 2).
	InstallationID string `json:"installation_id,omitempty"`
	// Entries are the direct_message entries (one per recipient installation, or
	// "none" for DH), sorted by key, each with its own mode.
	Entries []entryInfo `json:"entries,omitempty"`
	// Bundles are the attached bundles' identities and installation ids.
	Bundles []bundleInfo `json:"bundles,omitempty"`
	// BundleID is the DR header's id or the X3DH header's id (hex), when present.
	BundleID string `json:"bundle_id,omitempty"`
	// DR header counters, when present.
	N  uint32 `json:"n,omitempty"`
	PN uint32 `json:"pn,omitempty"`
	// Inner is the size of the public_message or direct payload.
	Inner int  `json:"inner"`
	P2P   bool `json:"p2p,omitempty"`
}

type entryInfo struct {
	Key      string `json:"key"`
	Mode     string `json:"mode"`
	BundleID string `json:"bundle_id,omitempty"`
	N        uint32 `json:"n,omitempty"`
	PN       uint32 `json:"pn,omitempty"`
}

type bundleInfo struct {
	Identity      string   `json:"identity"` // 66 hex, compressed
	Installations []string `json:"installations"`
	Timestamp     int64    `json:"timestamp"`
}

// classify reads the ProtocolMessage headers of payload. ours is the installation id
// whose entry counts (the recipient's); "" takes the first entry in key order.
func classify(payload []byte, ours string) envelopeInfo {
	var pm encryption.ProtocolMessage
	// As core/ratchet.DecodeProtocolMessage: a ProtocolMessage carries a bundle, a direct
	// or a public message. An installation id alone is not one: a bare
	// ApplicationMetadataMessage's payload (field 2) reads as one whenever it happens to
	// be valid UTF-8.
	if err := proto.Unmarshal(payload, &pm); err != nil || (len(pm.Bundles) == 0 && len(pm.DirectMessage) == 0 && pm.PublicMessage == nil) {
		return envelopeInfo{Mode: modeBare, Inner: len(payload)}
	}
	info := envelopeInfo{InstallationID: pm.InstallationId}
	for _, b := range pm.Bundles {
		bi := bundleInfo{Identity: hex.EncodeToString(b.GetIdentity()), Timestamp: b.GetTimestamp(), Installations: []string{}}
		for id := range b.GetSignedPreKeys() {
			bi.Installations = append(bi.Installations, id)
		}
		sort.Strings(bi.Installations)
		info.Bundles = append(info.Bundles, bi)
	}
	keys := make([]string, 0, len(pm.DirectMessage))
	for k := range pm.DirectMessage {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		info.Entries = append(info.Entries, readEntry(k, pm.DirectMessage[k]))
	}
	switch {
	case len(pm.PublicMessage) > 0:
		info.Mode, info.Inner = modePublic, len(pm.PublicMessage)
		return info
	case len(pm.DirectMessage) == 0:
		info.Mode = modeBundleOnly
		return info
	}
	entry := ""
	switch {
	case ours != "" && pm.DirectMessage[ours] != nil:
		entry = ours
	case pm.DirectMessage["none"] != nil:
		entry = "none"
	case ours == "":
		entry = keys[0]
	default:
		info.Mode = modeNotForUs
		return info
	}
	e := readEntry(entry, pm.DirectMessage[entry])
	info.Entry, info.Mode, info.BundleID, info.N, info.PN = entry, e.Mode, e.BundleID, e.N, e.PN
	info.Inner = len(pm.DirectMessage[entry].GetPayload())
	return info
}

// readEntry reads the headers of one direct_message entry.
func readEntry(key string, dm *encryption.DirectMessageProtocol) entryInfo {
	e := entryInfo{Key: key, Mode: modeUnknownDirs}
	switch {
	case dm.GetX3DHHeader() != nil:
		e.Mode, e.BundleID = modeX3DH, hex.EncodeToString(dm.GetX3DHHeader().GetId())
	case dm.GetDRHeader() != nil:
		e.Mode, e.BundleID = modeDR, hex.EncodeToString(dm.GetDRHeader().GetId())
	case dm.GetDHHeader() != nil:
		e.Mode = modeDH
	}
	if h := dm.GetDRHeader(); h != nil {
		e.N, e.PN = h.GetN(), h.GetPn()
	}
	return e
}
