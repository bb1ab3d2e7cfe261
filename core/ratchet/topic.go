package ratchet

import (
	"crypto/ecdsa"
	"encoding/hex"
	"math/big"
	"strconv"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/statusgate/statusgate/core/whisper"
)

// Topic names of the 1:1 transport (PROTOCOL.md §3.2, status-go protocol/transport/
// topic.go). The Whisper topic is the first 4 bytes of keccak256 of the name.
const (
	// DiscoveryTopicName is the generic discovery topic (0xf8946aac), asymmetric. Clients
	// of late 2019 sent first messages here when the recipient's bundle was unknown;
	// status-go v0.70.1 no longer listens on it.
	DiscoveryTopicName = "contact-discovery"
	// partitions is the number of partitioned topics.
	partitions = 5000
)

var bigPartitions = big.NewInt(partitions)

// PartitionedTopicName is "contact-discovery-" + decimal(P.X mod 5000): the asymmetric
// topic every 1:1 message to P uses until the shared secret is agreed.
func PartitionedTopicName(pub *ecdsa.PublicKey) string {
	p := new(big.Int).Mod(pub.X, bigPartitions)
	return DiscoveryTopicName + "-" + strconv.FormatInt(p.Int64(), 10)
}

// PersonalDiscoveryTopicName is "contact-discovery-" + hex of the 65-byte key, the
// personal asymmetric topic status-go still listens on.
func PersonalDiscoveryTopicName(pub *ecdsa.PublicKey) string {
	return DiscoveryTopicName + "-" + hex.EncodeToString(crypto.FromECDSAPub(pub))
}

// ContactCodeTopicName is "0x" + hex of the 65-byte key + "-contact-code": the symmetric
// topic (key = PBKDF2 of the same string) where P advertises its bundle every 6 hours.
func ContactCodeTopicName(pub *ecdsa.PublicKey) string {
	return "0x" + hex.EncodeToString(crypto.FromECDSAPub(pub)) + "-contact-code"
}

// NegotiatedTopicName is the lowercase hex of a negotiated secret: the symmetric topic
// (key = PBKDF2 of the same string) of an agreed 1:1 conversation.
func NegotiatedTopicName(secret []byte) string { return hex.EncodeToString(secret) }

// Filter is a Whisper filter a caller installs to receive 1:1 traffic: asymmetric ones
// open with the identity key, symmetric ones with SymKey.
type Filter struct {
	TopicName string
	Topic     whisper.Topic
	// Asymmetric filters decrypt with the identity key the Ratchet serves.
	Asymmetric bool
	// SymKey is set on symmetric filters.
	SymKey *whisper.SymKey
}
