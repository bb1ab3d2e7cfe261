package chat

import (
	"crypto/ecdsa"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/statusgate/statusgate/core/whisper"
)

// Decoded is the result of Decode.
type Decoded struct {
	// Message is the decoded message; Message.Format and Message.Wrapped say how it came.
	Message *Message
	// Author is the key recovered from the 4001/4002 wrapper's or the
	// ApplicationMetadataMessage's signature (= Message.Signer). It is nil for bare
	// Transit and for a wrapper without signature: then the Whisper signer is the
	// author, and the message id must be computed with it (§7.5).
	Author *ecdsa.PublicKey
	// Tag is the Transit record tag ("c4" or "c7"); empty for protobuf.
	Tag string
}

// Decode decodes one chat payload (the Whisper message payload of a public chat, or the
// plaintext of the secure-transport layer) in whichever generation it came.
//
// Format detection, decided once from the bytes and never by trial and error:
//
//  1. First byte '[' → Transit JSON. A protobuf message cannot start with 0x5b: that is
//     field 11 with wire type 3 (start group), which none of the messages here has. A
//     leading JSON white-space byte is not accepted, because '\n' (0x0a) is also the tag
//     of ApplicationMetadataMessage.signature; no Transit writer emits white space.
//  2. Otherwise the bytes must scan as a protobuf field sequence (tags, lengths and
//     values well-formed to the end). If the top-level fields include 4001 or 4002 and
//     none of 1–3 → StatusProtocolMessage wrapper, whose payload must in turn be Transit
//     ('['; the transitional v0.36.1–v0.37 builds that put protobuf inside the wrapper
//     are not supported). If they include one of 1–3 and neither 4001 nor 4002 →
//     ApplicationMetadataMessage. Both or neither → ErrUnknownFormat.
//
// An empty payload, bytes that are neither, and every decoding failure are errors
// wrapping a sentinel of errors.go; Decode never panics. The message must also pass the
// limits (MaxTextLength, MaxFieldLength: ErrTooLong) and carry a sendable message type
// and a known content type (ErrInvalidMessage).
//
// Decode is a pure function, safe for concurrent use; it does not compute the message id
// (MessageID needs the author, which may come from Whisper).
func Decode(payload []byte) (*Decoded, error) { return Codec{}.Decode(payload) }

// Codec is Decode, Encode and EncodeFor with a signer cache: the wrapper's and the
// ApplicationMetadataMessage's signatures are recovered through Signers, and those
// Encode makes are remembered in it, so that a payload decoded again (our own post read
// back, a mailserver's copy of one that came live) costs no recovery. The zero Codec
// recovers every time, as the package functions do. Safe for concurrent use.
type Codec struct {
	// Signers is the cache (core/status uses its node's: whisper.Service.Signers).
	Signers *whisper.Signers
}

// Decode is the package's Decode, recovering through c.Signers.
func (c Codec) Decode(payload []byte) (*Decoded, error) {
	if isTransit(payload) {
		m, tag, err := decodeTransit(payload)
		if err != nil {
			return nil, err
		}
		return &Decoded{Message: m, Tag: tag}, nil
	}
	wrapper, app, err := scanTopLevel(payload)
	if err != nil {
		return nil, err
	}
	switch {
	case wrapper && !app:
		inner, signer, err := decodeWrapper(payload, c.Signers)
		if err != nil {
			return nil, err
		}
		if !isTransit(inner) {
			return nil, fmt.Errorf("decode wrapper: payload is not Transit (protobuf inside 4001/4002 is the unsupported v0.36.1–v0.37 format): %w", ErrUnknownFormat)
		}
		m, tag, err := decodeTransit(inner)
		if err != nil {
			return nil, fmt.Errorf("decode wrapped payload: %w", err)
		}
		m.Wrapped, m.Signer = true, signer
		return &Decoded{Message: m, Author: signer, Tag: tag}, nil
	case app && !wrapper:
		m, err := decodeProtobuf(payload, c.Signers)
		if err != nil {
			return nil, err
		}
		return &Decoded{Message: m, Author: m.Signer}, nil
	}
	return nil, fmt.Errorf("detect payload format: fields of both the 4001/4002 wrapper and ApplicationMetadataMessage: %w", ErrUnknownFormat)
}

// scanTopLevel walks the protobuf fields of b and reports which family they belong to.
func scanTopLevel(b []byte) (wrapper, app bool, err error) {
	if len(b) == 0 {
		return false, false, fmt.Errorf("detect payload format: empty payload: %w", ErrUnknownFormat)
	}
	for rest := b; len(rest) > 0; {
		num, typ, n := protowire.ConsumeTag(rest)
		if n < 0 {
			return false, false, fmt.Errorf("detect payload format: not Transit and not protobuf (%v): %w", protowire.ParseError(n), ErrUnknownFormat)
		}
		m := protowire.ConsumeFieldValue(num, typ, rest[n:])
		if m < 0 {
			return false, false, fmt.Errorf("detect payload format: not Transit and not protobuf (%v): %w", protowire.ParseError(m), ErrUnknownFormat)
		}
		rest = rest[n+m:]
		switch {
		case num == fieldWrapperSignature || num == fieldWrapperPayload:
			wrapper = true
		case num >= fieldAppSignature && num <= fieldAppType:
			app = true
		}
	}
	if !wrapper && !app {
		return false, false, fmt.Errorf("detect payload format: protobuf without wrapper or metadata fields: %w", ErrUnknownFormat)
	}
	return wrapper, app, nil
}

// Encode writes m in format f:
//
//   - FormatTransit: a c4 record exactly as late-2019 status-react wrote it (§7.1); if
//     m.Wrapped, inside a StatusProtocolMessage signed by author (§7.2), else author is
//     not used and may be nil.
//   - FormatProtobuf: ApplicationMetadataMessage{signature, ChatMessage, CHAT_MESSAGE}
//     signed by author (required).
//
// Signatures are deterministic (RFC 6979), so equal inputs give equal bytes. m.Format
// and m.Signer are ignored. Errors wrap ErrInvalidMessage, ErrTooLong or ErrNoAuthorKey.
func Encode(m *Message, f Format, author *ecdsa.PrivateKey) ([]byte, error) {
	return Codec{}.Encode(m, f, author)
}

// Encode is the package's Encode, its signatures remembered in c.Signers.
func (c Codec) Encode(m *Message, f Format, author *ecdsa.PrivateKey) ([]byte, error) {
	if m == nil {
		return nil, fmt.Errorf("encode message: nil: %w", ErrInvalidMessage)
	}
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("encode message: %w", err)
	}
	if !m.validUTF8() {
		return nil, fmt.Errorf("encode message: a field is not valid UTF-8: %w", ErrInvalidMessage)
	}
	switch f {
	case FormatTransit:
		b, err := encodeTransit(m)
		if err != nil || !m.Wrapped {
			return b, err
		}
		return encodeWrapper(b, author, c.Signers)
	case FormatProtobuf:
		if author == nil {
			return nil, fmt.Errorf("encode protobuf: %w", ErrNoAuthorKey)
		}
		return encodeProtobuf(m, author, c.Signers)
	}
	return nil, fmt.Errorf("encode message in %v: %w", f, ErrInvalidMessage)
}

// EncodeFor writes m in every format sf asks for, in sending order (SendBoth: Transit
// then protobuf). Each payload is a separate Whisper message with its own message id.
func EncodeFor(m *Message, sf SendFormat, author *ecdsa.PrivateKey) ([][]byte, error) {
	return Codec{}.EncodeFor(m, sf, author)
}

// EncodeFor is the package's EncodeFor, its signatures remembered in c.Signers.
func (c Codec) EncodeFor(m *Message, sf SendFormat, author *ecdsa.PrivateKey) ([][]byte, error) {
	formats := sf.Formats()
	if formats == nil {
		return nil, fmt.Errorf("encode for %v: %w", sf, ErrInvalidSendFormat)
	}
	out := make([][]byte, 0, len(formats))
	for _, f := range formats {
		b, err := c.Encode(m, f, author)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}
