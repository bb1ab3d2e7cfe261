package chat

import (
	"crypto/ecdsa"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Limits enforced on decode (ErrTooLong) and on encode.
const (
	// MaxTextLength is the longest Text accepted, in runes (Unicode code points). The
	// status-react input field of late 2019 capped messages at 4096 characters, so no
	// legitimate client sends more; the cap keeps a hostile peer from pushing megabyte
	// texts through the bridge (a Whisper envelope alone would allow 1 MiB).
	MaxTextLength = 4096
	// MaxFieldLength is the longest ChatID, ResponseTo, ENSName and sticker Hash
	// accepted, in bytes. The longest legitimate value is a group chat id (a UUID, '-'
	// and a 132-character "0x04…" key = 169 bytes).
	MaxFieldLength = 256
)

// Format is the payload generation a Message travelled in.
type Format uint8

const (
	// FormatUnknown is the zero value; Encode rejects it.
	FormatUnknown Format = iota
	// FormatTransit: late-2019 Transit JSON (§7.1), possibly inside the 4001/4002
	// wrapper (§7.2).
	FormatTransit
	// FormatProtobuf: ApplicationMetadataMessage + ChatMessage (§7.3).
	FormatProtobuf
)

func (f Format) String() string {
	switch f {
	case FormatTransit:
		return "transit"
	case FormatProtobuf:
		return "protobuf"
	}
	return fmt.Sprintf("format(%d)", uint8(f))
}

// MessageType says which kind of chat a message belongs to. The numeric values are the
// protobuf ChatMessage.MessageType values (§7.3).
type MessageType int32

const (
	MessageTypeUnknown MessageType = iota
	// OneToOne: Transit :user-message.
	MessageTypeOneToOne
	// PublicGroup: a public chat; Transit :public-group-user-message.
	MessageTypePublicGroup
	// PrivateGroup: a group chat; Transit :group-user-message.
	MessageTypePrivateGroup
	// SystemMessagePrivateGroup exists only locally in Status clients (Transit
	// :system-message); it is never sent and is rejected on decode.
	MessageTypeSystemMessagePrivateGroup
)

// String returns the Transit keyword name (without "~:").
func (t MessageType) String() string {
	switch t {
	case MessageTypeOneToOne:
		return "user-message"
	case MessageTypePublicGroup:
		return "public-group-user-message"
	case MessageTypePrivateGroup:
		return "group-user-message"
	case MessageTypeSystemMessagePrivateGroup:
		return "system-message"
	}
	return fmt.Sprintf("message-type(%d)", int32(t))
}

// sendable reports whether t may appear on the wire.
func (t MessageType) sendable() bool {
	return t == MessageTypeOneToOne || t == MessageTypePublicGroup || t == MessageTypePrivateGroup
}

func messageTypeFromKeyword(k string) (MessageType, bool) {
	for t := MessageTypeOneToOne; t <= MessageTypeSystemMessagePrivateGroup; t++ {
		if t.String() == k {
			return t, true
		}
	}
	return MessageTypeUnknown, false
}

// ContentType says how to render a message. Values up to ContentCommand are the protobuf
// ChatMessage.ContentType values (§7.3); ContentCommandRequest exists only in Transit
// and travels as TRANSACTION_COMMAND in protobuf.
type ContentType int32

const (
	ContentUnknown ContentType = iota
	// ContentTextPlain: Transit "text/plain".
	ContentTextPlain
	// ContentSticker: Transit "sticker"; Message.Sticker is set.
	ContentSticker
	// ContentStatus: Transit "status" (a status update post).
	ContentStatus
	// ContentEmoji: Transit "emoji".
	ContentEmoji
	// ContentCommand: Transit "command"; protobuf TRANSACTION_COMMAND (COMMAND in
	// v0.38/v0.39). Legacy command fields are not decoded.
	ContentCommand
	// ContentCommandRequest: Transit "command-request" (no protobuf value of its own).
	ContentCommandRequest
)

// String returns the Transit content-type string.
func (c ContentType) String() string {
	switch c {
	case ContentTextPlain:
		return "text/plain"
	case ContentSticker:
		return "sticker"
	case ContentStatus:
		return "status"
	case ContentEmoji:
		return "emoji"
	case ContentCommand:
		return "command"
	case ContentCommandRequest:
		return "command-request"
	}
	return fmt.Sprintf("content-type(%d)", int32(c))
}

// known reports whether c is one of the defined content types.
func (c ContentType) known() bool { return c >= ContentTextPlain && c <= ContentCommandRequest }

func contentTypeFromString(s string) (ContentType, bool) {
	for c := ContentTextPlain; c <= ContentCommandRequest; c++ {
		if c.String() == s {
			return c, true
		}
	}
	return ContentUnknown, false
}

// Sticker is the payload of a ContentSticker message.
type Sticker struct {
	// Hash is the sticker's content hash (an IPFS/Swarm content hash as hex).
	Hash string
	// Pack is the sticker pack id.
	Pack int32
}

// Message is one chat message, whichever generation it travels in. The zero value is not
// encodable: Encode needs ContentType, MessageType and, for stickers, Sticker.
type Message struct {
	// Clock is the chat's Lamport clock value (§7.4); orders messages with Less.
	Clock uint64
	// Timestamp is the sender's Unix time in milliseconds; display only.
	Timestamp uint64
	// Text is the message text (for stickers, the fallback text older clients show).
	Text string
	// ResponseTo is the id of the message replied to ("0x" + hex), or empty.
	ResponseTo string
	// ENSName is the sender's ENS name as claimed by the sender, or empty. Unverified.
	ENSName string
	// ChatID is the chat the sender says the message belongs to: the public chat name,
	// or a group chat id. For one-to-one messages receivers must ignore it and use the
	// signer's key (§7.1 chat id rules).
	ChatID      string
	MessageType MessageType
	ContentType ContentType
	// Sticker is set for ContentSticker and nil otherwise.
	Sticker *Sticker

	// Format is the generation the message came in (set by Decode; Encode takes the
	// format as an argument and ignores this field).
	Format Format
	// Wrapped reports a Transit payload inside the 4001/4002 StatusProtocolMessage
	// wrapper (§7.2). Decode sets it; Encode with FormatTransit wraps when it is true.
	Wrapped bool
	// Signer is the author recovered from the wrapper's or the ApplicationMetadataMessage's
	// signature, or nil (unwrapped Transit, or a wrapper without signature): then only
	// the Whisper signer tells who sent it.
	Signer *ecdsa.PublicKey
}

// validate checks the limits and enums shared by both formats. It is run on every decoded
// message and before every encode.
func (m *Message) validate() error {
	if n := utf8.RuneCountInString(m.Text); n > MaxTextLength {
		return fmt.Errorf("check text (%d runes > %d): %w", n, MaxTextLength, ErrTooLong)
	}
	for _, f := range [...]struct{ name, v string }{
		{"chat id", m.ChatID}, {"response-to", m.ResponseTo}, {"ens name", m.ENSName}, {"sticker hash", m.stickerHash()},
	} {
		if len(f.v) > MaxFieldLength {
			return fmt.Errorf("check %s (%d bytes > %d): %w", f.name, len(f.v), MaxFieldLength, ErrTooLong)
		}
	}
	if !m.MessageType.sendable() {
		return fmt.Errorf("check message type %v: %w", m.MessageType, ErrInvalidMessage)
	}
	if !m.ContentType.known() {
		return fmt.Errorf("check content type %v: %w", m.ContentType, ErrInvalidMessage)
	}
	if m.ContentType == ContentSticker && m.Sticker == nil {
		return fmt.Errorf("check sticker: content type sticker without sticker: %w", ErrInvalidMessage)
	}
	return nil
}

// validUTF8 reports whether every string field is valid UTF-8 (protobuf and Transit both
// require it; Encode refuses rather than silently substituting U+FFFD).
func (m *Message) validUTF8() bool {
	return utf8.ValidString(m.Text) && utf8.ValidString(m.ChatID) && utf8.ValidString(m.ResponseTo) &&
		utf8.ValidString(m.ENSName) && utf8.ValidString(m.stickerHash())
}

func (m *Message) stickerHash() string {
	if m.Sticker == nil {
		return ""
	}
	return m.Sticker.Hash
}

// SendFormat is the per-chat setting for which generation(s) to send in. The zero value
// is invalid: configuration must choose (see ParseSendFormat).
type SendFormat uint8

const (
	// SendTransit sends late-2019 Transit only (what 0.9.x/beta clients read).
	SendTransit SendFormat = iota + 1
	// SendProtobuf sends ApplicationMetadataMessage only (app 1.0+ reads only this).
	SendProtobuf
	// SendBoth sends two payloads, Transit first, so both generations see the message
	// (§7.6: the formats cannot be mixed in one payload).
	SendBoth
	// SendWrapped sends the ApplicationMetadataMessage inside a ProtocolMessage with the
	// sender's X3DH bundle (public_message, field 102), as status-go does from mid-2020
	// on (PROTOCOL.md §7.3), so that readers learn the bundle before a first 1:1
	// message. The wrapping is the secure transport's (core/ratchet); this package
	// encodes the inner payload, over which the message id is computed.
	SendWrapped
)

// ParseSendFormat parses a config value: "transit", "protobuf", "both" or "wrapped"
// (case-insensitive, surrounding space ignored).
func ParseSendFormat(s string) (SendFormat, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "transit":
		return SendTransit, nil
	case "protobuf":
		return SendProtobuf, nil
	case "both":
		return SendBoth, nil
	case "wrapped":
		return SendWrapped, nil
	}
	return 0, fmt.Errorf("parse send format %q (want transit, protobuf, both or wrapped): %w", s, ErrInvalidSendFormat)
}

func (sf SendFormat) String() string {
	switch sf {
	case SendTransit:
		return "transit"
	case SendProtobuf:
		return "protobuf"
	case SendBoth:
		return "both"
	case SendWrapped:
		return "wrapped"
	}
	return fmt.Sprintf("send-format(%d)", uint8(sf))
}

// MarshalText implements encoding.TextMarshaler (for YAML/JSON config).
func (sf SendFormat) MarshalText() ([]byte, error) {
	if sf < SendTransit || sf > SendWrapped {
		return nil, fmt.Errorf("marshal send format %d: %w", uint8(sf), ErrInvalidSendFormat)
	}
	return []byte(sf.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseSendFormat.
func (sf *SendFormat) UnmarshalText(b []byte) error {
	v, err := ParseSendFormat(string(b))
	if err != nil {
		return err
	}
	*sf = v
	return nil
}

// Formats lists the payload formats to send, in sending order; nil for an invalid value.
func (sf SendFormat) Formats() []Format {
	switch sf {
	case SendTransit:
		return []Format{FormatTransit}
	case SendProtobuf:
		return []Format{FormatProtobuf}
	case SendBoth:
		return []Format{FormatTransit, FormatProtobuf}
	case SendWrapped:
		return []Format{FormatProtobuf}
	}
	return nil
}

// Wrapped reports whether each payload must go out inside a ProtocolMessage with the
// sender's bundle (SendWrapped).
func (sf SendFormat) Wrapped() bool { return sf == SendWrapped }
