package chat

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error returned by this package wraps one of these (or is an
// *UnsupportedRecordError / *UnsupportedTypeError, which wrap ErrUnsupportedRecord /
// ErrUnsupportedType), so callers branch with errors.Is / errors.As.
var (
	// ErrInvalidChatName: a public chat name is empty, too long, has characters outside
	// [a-z0-9-], starts with '#', or is a public key.
	ErrInvalidChatName = errors.New("invalid public chat name")

	// ErrUnknownFormat: the payload is neither Transit JSON, a 4001/4002 wrapper, nor an
	// ApplicationMetadataMessage (see Decode for the detection rule).
	ErrUnknownFormat = errors.New("unknown payload format")
	// ErrMalformedTransit: the bytes are not valid Transit JSON, or a c4/c7 record has
	// the wrong shape or field types.
	ErrMalformedTransit = errors.New("malformed transit")
	// ErrUnsupportedRecord: well-formed Transit whose record tag is not a chat message
	// (c2, c3, c5, c6, g5, p1, p2, or an unknown tag). See UnsupportedRecordError.
	ErrUnsupportedRecord = errors.New("unsupported transit record")
	// ErrMalformedProtobuf: the bytes do not parse as the expected protobuf message, or a
	// known field arrives with the wrong wire type.
	ErrMalformedProtobuf = errors.New("malformed protobuf")
	// ErrUnsupportedType: an ApplicationMetadataMessage whose type is not CHAT_MESSAGE.
	// See UnsupportedTypeError.
	ErrUnsupportedType = errors.New("unsupported application message type")
	// ErrBadSignature: a wrapper or metadata signature is missing (where required), not
	// 65 bytes, or does not recover a public key.
	ErrBadSignature = errors.New("bad signature")
	// ErrTooLong: text is longer than MaxTextLength runes, or another string field is
	// longer than MaxFieldLength bytes.
	ErrTooLong = errors.New("field too long")
	// ErrInvalidMessage: a Message cannot be encoded as asked (unknown content or message
	// type, invalid UTF-8, clock beyond what the format carries, sticker missing, …), or a
	// decoded one carries values outside the protocol's enums.
	ErrInvalidMessage = errors.New("invalid message")
	// ErrNoAuthorKey: signing was required (protobuf, or a wrapped Transit message) but
	// no author key was given.
	ErrNoAuthorKey = errors.New("author key required")
	// ErrInvalidSendFormat: a send format string is not transit, protobuf, both or wrapped.
	ErrInvalidSendFormat = errors.New("invalid send format")
)

// UnsupportedRecordError reports a Transit record this package does not decode; Tag is
// the record tag without "~#" (e.g. "g5"). It wraps ErrUnsupportedRecord.
type UnsupportedRecordError struct{ Tag string }

func (e *UnsupportedRecordError) Error() string {
	return fmt.Sprintf("decode transit record %q: %v", e.Tag, ErrUnsupportedRecord)
}

// Unwrap returns ErrUnsupportedRecord.
func (e *UnsupportedRecordError) Unwrap() error { return ErrUnsupportedRecord }

// UnsupportedTypeError reports an ApplicationMetadataMessage type other than
// CHAT_MESSAGE; Type is the raw enum number. It wraps ErrUnsupportedType.
type UnsupportedTypeError struct{ Type int32 }

func (e *UnsupportedTypeError) Error() string {
	return fmt.Sprintf("decode application metadata type %d (%s): %v", e.Type, appTypeName(e.Type), ErrUnsupportedType)
}

// Unwrap returns ErrUnsupportedType.
func (e *UnsupportedTypeError) Unwrap() error { return ErrUnsupportedType }
