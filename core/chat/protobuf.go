package chat

import (
	"crypto/ecdsa"
	"fmt"

	"github.com/ethereum/go-ethereum/crypto"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	pb "github.com/statusgate/statusgate/core/chat/protobuf"
	"github.com/statusgate/statusgate/core/whisper"
)

// Protobuf payloads (§7.2, §7.3) and their signatures.

// Field numbers of the messages we read, for format detection and the wire-type check.
const (
	fieldAppSignature = 1
	fieldAppPayload   = 2
	fieldAppType      = 3

	fieldWrapperSignature = 4001
	fieldWrapperPayload   = 4002

	chatMessageLastField = 9 // ChatMessage uses 1..9
)

// signPayload signs keccak256(payload) with key: 65 bytes [R‖S‖V], V ∈ {0, 1},
// deterministic (RFC 6979), through signers (nil: remembered nowhere).
func signPayload(payload []byte, key *ecdsa.PrivateKey, signers *whisper.Signers) ([]byte, error) {
	if key == nil {
		return nil, fmt.Errorf("sign payload: %w", ErrNoAuthorKey)
	}
	sig, err := signers.Sign(crypto.Keccak256(payload), key)
	if err != nil {
		return nil, fmt.Errorf("sign payload: %w", err)
	}
	return sig, nil
}

// recoverSigner returns the key that signed keccak256(payload), through signers (nil:
// recovered every time).
func recoverSigner(sig, payload []byte, signers *whisper.Signers) (*ecdsa.PublicKey, error) {
	if len(sig) != crypto.SignatureLength {
		return nil, fmt.Errorf("recover signer: %d bytes, want %d: %w", len(sig), crypto.SignatureLength, ErrBadSignature)
	}
	if sig[crypto.RecoveryIDOffset] > 1 {
		return nil, fmt.Errorf("recover signer: V = %d, want 0 or 1: %w", sig[crypto.RecoveryIDOffset], ErrBadSignature)
	}
	pub, err := signers.Recover(crypto.Keccak256(payload), sig)
	if err != nil {
		return nil, fmt.Errorf("recover signer: %w: %v", ErrBadSignature, err)
	}
	return pub, nil
}

// unmarshalStrict parses b into msg and rejects a known field (number ≤ lastKnown, or
// one of extra) that arrived with the wrong wire type: the protobuf runtime would keep it
// as an unknown field and silently leave ours empty. Genuinely unknown fields (added by
// later clients) are allowed.
func unmarshalStrict(what string, b []byte, msg proto.Message, known func(protowire.Number) bool) error {
	if err := proto.Unmarshal(b, msg); err != nil {
		return fmt.Errorf("unmarshal %s: %w: %v", what, ErrMalformedProtobuf, err)
	}
	unknown := msg.ProtoReflect().GetUnknown()
	for len(unknown) > 0 {
		num, typ, n := protowire.ConsumeTag(unknown)
		if n < 0 {
			return fmt.Errorf("unmarshal %s: %w: %v", what, ErrMalformedProtobuf, protowire.ParseError(n))
		}
		if known(num) {
			return fmt.Errorf("unmarshal %s: %w: field %d has wire type %d", what, ErrMalformedProtobuf, num, typ)
		}
		m := protowire.ConsumeFieldValue(num, typ, unknown[n:])
		if m < 0 {
			return fmt.Errorf("unmarshal %s: %w: %v", what, ErrMalformedProtobuf, protowire.ParseError(m))
		}
		unknown = unknown[n+m:]
	}
	return nil
}

// encodeWrapper wraps a Transit payload in StatusProtocolMessage signed by key (§7.2).
func encodeWrapper(payload []byte, key *ecdsa.PrivateKey, signers *whisper.Signers) ([]byte, error) {
	sig, err := signPayload(payload, key, signers)
	if err != nil {
		return nil, fmt.Errorf("encode wrapper: %w", err)
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(&pb.StatusProtocolMessage{Signature: sig, Payload: payload})
	if err != nil {
		return nil, fmt.Errorf("encode wrapper: %w", err)
	}
	return b, nil
}

// decodeWrapper opens a StatusProtocolMessage. The signer is nil when the signature is
// empty (§7.2: then the Whisper signer is the author); a present but invalid signature is
// an error.
func decodeWrapper(b []byte, signers *whisper.Signers) (payload []byte, signer *ecdsa.PublicKey, err error) {
	var w pb.StatusProtocolMessage
	if err := unmarshalStrict("status protocol message", b, &w, func(n protowire.Number) bool {
		return n == fieldWrapperSignature || n == fieldWrapperPayload
	}); err != nil {
		return nil, nil, err
	}
	if len(w.Signature) > 0 {
		if signer, err = recoverSigner(w.Signature, w.Payload, signers); err != nil {
			return nil, nil, fmt.Errorf("decode wrapper: %w", err)
		}
	}
	return w.Payload, signer, nil
}

// encodeProtobuf writes ApplicationMetadataMessage{sign(keccak256(ChatMessage)), ChatMessage,
// CHAT_MESSAGE}. m must have passed validate.
func encodeProtobuf(m *Message, key *ecdsa.PrivateKey, signers *whisper.Signers) ([]byte, error) {
	cm := &pb.ChatMessage{
		Clock:       m.Clock,
		Timestamp:   m.Timestamp,
		Text:        m.Text,
		ResponseTo:  m.ResponseTo,
		EnsName:     m.ENSName,
		ChatId:      m.ChatID,
		MessageType: pb.ChatMessage_MessageType(m.MessageType),
		ContentType: protoContentType(m.ContentType),
	}
	if m.ContentType == ContentSticker && m.Sticker != nil {
		cm.Payload = &pb.ChatMessage_Sticker{Sticker: &pb.StickerMessage{Hash: m.Sticker.Hash, Pack: m.Sticker.Pack}}
	}
	payload, err := proto.MarshalOptions{Deterministic: true}.Marshal(cm)
	if err != nil {
		return nil, fmt.Errorf("encode chat message: %w", err)
	}
	sig, err := signPayload(payload, key, signers)
	if err != nil {
		return nil, fmt.Errorf("encode application metadata: %w", err)
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(&pb.ApplicationMetadataMessage{
		Signature: sig,
		Payload:   payload,
		Type:      pb.ApplicationMetadataMessage_CHAT_MESSAGE,
	})
	if err != nil {
		return nil, fmt.Errorf("encode application metadata: %w", err)
	}
	return b, nil
}

// decodeProtobuf opens an ApplicationMetadataMessage carrying a ChatMessage and returns
// it with the signer (required here: status-go always signs).
func decodeProtobuf(b []byte, signers *whisper.Signers) (*Message, error) {
	var amm pb.ApplicationMetadataMessage
	if err := unmarshalStrict("application metadata", b, &amm, func(n protowire.Number) bool {
		return n >= fieldAppSignature && n <= fieldAppType
	}); err != nil {
		return nil, err
	}
	if amm.Type != pb.ApplicationMetadataMessage_CHAT_MESSAGE {
		return nil, &UnsupportedTypeError{Type: int32(amm.Type)}
	}
	signer, err := recoverSigner(amm.Signature, amm.Payload, signers)
	if err != nil {
		return nil, fmt.Errorf("decode application metadata: %w", err)
	}
	var cm pb.ChatMessage
	if err := unmarshalStrict("chat message", amm.Payload, &cm, func(n protowire.Number) bool {
		return n >= 1 && n <= chatMessageLastField
	}); err != nil {
		return nil, err
	}
	m := &Message{
		Clock:       cm.Clock,
		Timestamp:   cm.Timestamp,
		Text:        cm.Text,
		ResponseTo:  cm.ResponseTo,
		ENSName:     cm.EnsName,
		ChatID:      cm.ChatId,
		MessageType: MessageType(cm.MessageType),
		ContentType: contentTypeFromProto(cm.ContentType),
		Format:      FormatProtobuf,
		Signer:      signer,
	}
	if m.ContentType == ContentSticker {
		m.Sticker = &Sticker{}
		if st := cm.GetSticker(); st != nil {
			m.Sticker.Hash, m.Sticker.Pack = st.Hash, st.Pack
		}
	}
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("decode chat message: %w", err)
	}
	return m, nil
}

func protoContentType(c ContentType) pb.ChatMessage_ContentType {
	if c == ContentCommandRequest {
		return pb.ChatMessage_TRANSACTION_COMMAND
	}
	return pb.ChatMessage_ContentType(c)
}

// contentTypeFromProto maps the protobuf enum; values beyond TRANSACTION_COMMAND (open
// proto3 enum) become ContentUnknown, which validate rejects.
func contentTypeFromProto(c pb.ChatMessage_ContentType) ContentType {
	if c < pb.ChatMessage_UNKNOWN_CONTENT_TYPE || c > pb.ChatMessage_TRANSACTION_COMMAND {
		return ContentUnknown
	}
	return ContentType(c)
}

// appTypeName names an ApplicationMetadataMessage type number for error messages.
func appTypeName(t int32) string {
	if name, ok := pb.ApplicationMetadataMessage_Type_name[t]; ok {
		return name
	}
	return "unknown"
}
