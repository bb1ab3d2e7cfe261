package ratchet

import (
	"crypto/ecdsa"
	"fmt"
	"slices"
	"strconv"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/statusgate/statusgate/core/ratchet/protobuf"
)

// Limits on what a bundle may hold. status-go lists at most 3 installations (its own and
// up to 2 paired) and uses GUIDs (36 characters) as installation ids.
const (
	// MaxInstallations is the most installations kept per identity (ours and each peer's),
	// and the most a bundle may list.
	MaxInstallations = 3
	// maxInstallationIDLen bounds an installation id (a GUID is 36 bytes).
	maxInstallationIDLen = 128
	// noInstallationID keys the DH-mode entry of direct_message; no installation may use it.
	noInstallationID = "none"
	// protocolVersion is the version we advertise in our signed prekey (1 since 2019:
	// partitioned topics and shared-secret negotiation).
	protocolVersion = 1
)

// signatureMaterial is status-go's buildSignatureMaterial (PROTOCOL.md §5.2): for each
// installation id in Go string order, id ‖ signed prekey ‖ decimal version; then the
// decimal timestamp unless it is 0.
func signatureMaterial(b *protobuf.Bundle) []byte {
	spks := b.GetSignedPreKeys()
	ids := make([]string, 0, len(spks))
	for id := range spks {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var m []byte
	for _, id := range ids {
		spk := spks[id]
		m = append(m, id...)
		m = append(m, spk.GetSignedPreKey()...)
		m = strconv.AppendUint(m, uint64(spk.GetVersion()), 10)
	}
	if ts := b.GetTimestamp(); ts != 0 {
		m = strconv.AppendInt(m, ts, 10)
	}
	return m
}

// signBundle sets the bundle's timestamp and signs it with the identity key.
func signBundle(identity *ecdsa.PrivateKey, b *protobuf.Bundle, timestampNs int64) error {
	b.Timestamp = timestampNs
	sig, err := crypto.Sign(crypto.Keccak256(signatureMaterial(b)), identity)
	if err != nil {
		return fmt.Errorf("sign bundle: %w", err)
	}
	b.Signature = sig
	return nil
}

// VerifyBundle checks a bundle's shape (a valid compressed identity key, at most
// MaxInstallations installations with valid ids and signed prekeys, a 65-byte signature)
// and that its signature recovers to its identity key, and returns that key. The checks
// that cost nothing come before the signature recovery.
func VerifyBundle(b *protobuf.Bundle) (*ecdsa.PublicKey, error) {
	if b == nil {
		return nil, fmt.Errorf("nil bundle: %w", ErrMalformed)
	}
	if n := len(b.GetSignedPreKeys()); n > MaxInstallations {
		return nil, fmt.Errorf("bundle lists %d installations: %w", n, ErrTooManyInstallations)
	}
	if len(b.GetSignature()) != signatureLen {
		return nil, fmt.Errorf("bundle signature of %d bytes: %w", len(b.GetSignature()), ErrMalformed)
	}
	identity, err := decompress(b.GetIdentity())
	if err != nil {
		return nil, fmt.Errorf("bundle identity: %w", err)
	}
	for id, spk := range b.GetSignedPreKeys() {
		if err := validInstallationID(id); err != nil {
			return nil, fmt.Errorf("bundle: %w", err)
		}
		if spk == nil {
			return nil, fmt.Errorf("bundle installation %q without signed prekey: %w", id, ErrMalformed)
		}
		if _, err := decompress(spk.GetSignedPreKey()); err != nil {
			return nil, fmt.Errorf("bundle installation %q signed prekey: %w", id, err)
		}
	}
	signer, err := crypto.SigToPub(crypto.Keccak256(signatureMaterial(b)), b.GetSignature())
	if err != nil {
		return nil, fmt.Errorf("recover bundle signer: %w", ErrBundleSignature)
	}
	if !sameKey(signer, identity) {
		return nil, fmt.Errorf("bundle of %x signed by another key: %w", b.GetIdentity()[:4], ErrBundleSignature)
	}
	return identity, nil
}

func validInstallationID(id string) error {
	if id == "" || len(id) > maxInstallationIDLen || id == noInstallationID {
		return fmt.Errorf("installation id %.32q: %w", id, ErrMalformed)
	}
	return nil
}
