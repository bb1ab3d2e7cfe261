package chat

import (
	"crypto/ecdsa"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/ethereum/go-ethereum/crypto"
)

// ID is a Status message id (§7.5).
type ID [32]byte

// MessageID returns keccak256(author's 65-byte uncompressed public key ‖ payload), where
// payload is exactly the bytes handed to Whisper (or to the secure-transport layer): the
// Transit bytes, the wrapper bytes when wrapped, or the ApplicationMetadataMessage bytes.
// author is the wrapper/metadata signer if there is one (Decoded.Author), else the
// Whisper signer. status-react computed the same as sha3(from + rawPayloadHex).
//
// A payload sent in both formats has two ids. A nil or incomplete author key is
// ErrNoAuthorKey: an id without its author would collide across senders.
func MessageID(author *ecdsa.PublicKey, payload []byte) (ID, error) {
	pub := crypto.FromECDSAPub(author)
	if len(pub) != 65 {
		return ID{}, fmt.Errorf("compute message id: %w", ErrNoAuthorKey)
	}
	return ID(crypto.Keccak256Hash(pub, payload)), nil
}

// String returns "0x" + lowercase hex, the form status-react used (and ResponseTo holds).
func (id ID) String() string { return "0x" + hex.EncodeToString(id[:]) }

// ParseID reads an id in the form String writes ("0x" + 64 hex digits, either case; the
// "0x" is optional), as ResponseTo carries it.
func ParseID(s string) (ID, error) {
	h := strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	var id ID
	if len(h) != 2*len(id) {
		return ID{}, fmt.Errorf("message id %q: want 64 hex digits", s)
	}
	if _, err := hex.Decode(id[:], []byte(h)); err != nil {
		return ID{}, fmt.Errorf("message id %q: %w", s, err)
	}
	return id, nil
}
