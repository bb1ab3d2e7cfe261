package statusref

import (
	"crypto/ecdsa"
	"encoding/hex"
	"fmt"

	"github.com/ethereum/go-ethereum/crypto"
)

// Encryption modes of an envelope, read off its ProtocolMessage headers (PROTOCOL.md §5).
const (
	ModeBare       = "bare"        // not a ProtocolMessage (a bare ApplicationMetadataMessage, or anything else)
	ModePublic     = "public"      // ProtocolMessage with public_message (field 102)
	ModeDH         = "dh"          // direct message with a DH header
	ModeX3DH       = "x3dh"        // direct message with an X3DH header (and a DR header)
	ModeDR         = "dr"          // direct message with a DR header only
	ModeBundleOnly = "bundle_only" // bundles and no payload (contact code, bundle-back)
	ModeNotForUs   = "not_for_us"  // no direct_message entry for the receiving installation nor "none"
)

// Envelope is one Whisper message as status-go posted or retrieved it.
type Envelope struct {
	Hash  [32]byte
	Topic [4]byte
	// Signer is the Whisper signature's key (received envelopes only).
	Signer *ecdsa.PublicKey
	// Dst is the ECIES recipient; nil for a symmetric envelope.
	Dst *ecdsa.PublicKey
	// Mode is the mode of the entry for the receiving installation (received), or of
	// the first entry (sent); Entry names that entry ("none" for DH).
	Mode, Entry string
	// InstallationID is the sender's installation id (ProtocolMessage field 2).
	InstallationID string
	// Entries are all direct_message entries, sorted by key.
	Entries []Entry
	// Bundles are the attached bundles.
	Bundles []Bundle
	// BundleID, N and PN are read from the chosen entry's X3DH/DR header.
	BundleID []byte
	N, PN    uint32
	// Inner is the size of the public_message or of the chosen entry's payload.
	Inner int
	P2P   bool
}

// Entry is one direct_message entry.
type Entry struct {
	Key, Mode string
	BundleID  []byte
	N, PN     uint32
}

// Bundle is an attached X3DH bundle as seen on the wire.
type Bundle struct {
	Identity      *ecdsa.PublicKey
	Installations []string
	Timestamp     int64 // ns
}

// Message is a message the Messenger's RetrieveAll returned, with its envelope.
type Message struct {
	ID               [32]byte
	From             *ecdsa.PublicKey
	ChatID           string
	LocalChatID      string
	Text             string
	Clock            uint64
	Timestamp        uint64 // ms
	WhisperTimestamp uint64 // ms
	MessageType      string // protobuf enum name: ONE_TO_ONE, PUBLIC_GROUP, …
	ContentType      string // TEXT_PLAIN, …
	ResponseTo       string // hex without 0x, or ""
	Envelope         Envelope
}

// Installation is a device of this node's own identity.
type Installation struct {
	Identity       string `json:"identity"`
	InstallationID string `json:"installation_id"`
	Version        uint32 `json:"version"`
	Enabled        bool   `json:"enabled"`
	Timestamp      int64  `json:"timestamp"`
	Name           string `json:"name"`
	DeviceType     string `json:"device_type"`
}

// PeerEvent is a devp2p peer event of a node.
type PeerEvent struct {
	Event string `json:"event"` // "add" or "drop"
	ID    string `json:"id"`    // enode ID, hex
	Error string `json:"error"`
}

type wireEntry struct {
	Key      string `json:"key"`
	Mode     string `json:"mode"`
	BundleID string `json:"bundle_id"`
	N        uint32 `json:"n"`
	PN       uint32 `json:"pn"`
}

type wireBundle struct {
	Identity      string   `json:"identity"`
	Installations []string `json:"installations"`
	Timestamp     int64    `json:"timestamp"`
}

type wireEnvelope struct {
	Hash           string       `json:"hash"`
	Topic          string       `json:"topic"`
	Signer         string       `json:"signer"`
	Dst            string       `json:"dst"`
	Mode           string       `json:"mode"`
	Entry          string       `json:"entry"`
	InstallationID string       `json:"installation_id"`
	Entries        []wireEntry  `json:"entries"`
	Bundles        []wireBundle `json:"bundles"`
	BundleID       string       `json:"bundle_id"`
	N              uint32       `json:"n"`
	PN             uint32       `json:"pn"`
	Inner          int          `json:"inner"`
	P2P            bool         `json:"p2p"`
}

func (w wireEnvelope) decode() (Envelope, error) {
	e := Envelope{Mode: w.Mode, Entry: w.Entry, InstallationID: w.InstallationID, N: w.N, PN: w.PN, Inner: w.Inner, P2P: w.P2P}
	var d hexDecoder
	d.fixed("hash", w.Hash, e.Hash[:])
	d.fixed("topic", w.Topic, e.Topic[:])
	e.Signer = d.pub("signer", w.Signer)
	e.Dst = d.pub("dst", w.Dst)
	e.BundleID = d.bytes("bundle_id", w.BundleID)
	for _, we := range w.Entries {
		e.Entries = append(e.Entries, Entry{Key: we.Key, Mode: we.Mode, BundleID: d.bytes("bundle_id", we.BundleID), N: we.N, PN: we.PN})
	}
	for _, wb := range w.Bundles {
		e.Bundles = append(e.Bundles, Bundle{Identity: d.pub("identity", wb.Identity), Installations: wb.Installations, Timestamp: wb.Timestamp})
	}
	return e, d.err
}

type wireMessage struct {
	ID               string       `json:"id"`
	From             string       `json:"from"`
	ChatID           string       `json:"chat_id"`
	LocalChatID      string       `json:"local_chat_id"`
	Text             string       `json:"text"`
	Clock            uint64       `json:"clock"`
	Timestamp        uint64       `json:"timestamp"`
	WhisperTimestamp uint64       `json:"whisper_timestamp"`
	MessageType      string       `json:"message_type"`
	ContentType      string       `json:"content_type"`
	ResponseTo       string       `json:"response_to"`
	Envelope         wireEnvelope `json:"envelope"`
}

func (w wireMessage) decode() (Message, error) {
	m := Message{ChatID: w.ChatID, LocalChatID: w.LocalChatID, Text: w.Text, Clock: w.Clock, Timestamp: w.Timestamp,
		WhisperTimestamp: w.WhisperTimestamp, MessageType: w.MessageType, ContentType: w.ContentType, ResponseTo: w.ResponseTo}
	var d hexDecoder
	d.fixed("id", w.ID, m.ID[:])
	m.From = d.pub("from", w.From)
	if d.err != nil {
		return Message{}, d.err
	}
	if w.Envelope.Hash != "" {
		env, err := w.Envelope.decode()
		if err != nil {
			return Message{}, err
		}
		m.Envelope = env
	}
	return m, nil
}

// hexDecoder decodes reply fields, keeping the first error.
type hexDecoder struct {
	err error
}

// bytes decodes a variable-length field; "" gives nil.
func (d *hexDecoder) bytes(field, s string) []byte {
	if d.err != nil || s == "" {
		return nil
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		d.err = fmt.Errorf("field %s: %w", field, err)
		return nil
	}
	return b
}

// fixed decodes a field that must fill dst exactly.
func (d *hexDecoder) fixed(field, s string, dst []byte) {
	b := d.bytes(field, s)
	if d.err != nil {
		return
	}
	if len(b) != len(dst) {
		d.err = fmt.Errorf("field %s: want %d bytes, got %d", field, len(dst), len(b))
		return
	}
	copy(dst, b)
}

// pub decodes a public key, compressed (33 bytes) or uncompressed (65); "" gives nil.
func (d *hexDecoder) pub(field, s string) *ecdsa.PublicKey {
	b := d.bytes(field, s)
	if d.err != nil || b == nil {
		return nil
	}
	var k *ecdsa.PublicKey
	var err error
	if len(b) == 33 {
		k, err = crypto.DecompressPubkey(b)
	} else {
		k, err = crypto.UnmarshalPubkey(b)
	}
	if err != nil {
		d.err = fmt.Errorf("field %s: %w", field, err)
	}
	return k
}
