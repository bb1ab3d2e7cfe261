package chat

import (
	"errors"
	"math"
	"testing"
)

func TestEncode_errors(t *testing.T) {
	a := keyFrom(t, "alice")
	base := Message{Clock: 1, Timestamp: 1, Text: "x", ChatID: "status", MessageType: MessageTypePublicGroup, ContentType: ContentTextPlain}
	with := func(f func(*Message)) *Message { m := base; f(&m); return &m }
	cases := []struct {
		name   string
		m      *Message
		f      Format
		author bool
		want   error
	}{
		{"nil message", nil, FormatTransit, true, ErrInvalidMessage},
		{"zero message", &Message{}, FormatTransit, true, ErrInvalidMessage},
		{"unknown format", &base, FormatUnknown, true, ErrInvalidMessage},
		{"protobuf without key", &base, FormatProtobuf, false, ErrNoAuthorKey},
		{"wrapped without key", with(func(m *Message) { m.Wrapped = true }), FormatTransit, false, ErrNoAuthorKey},
		{"invalid utf-8", with(func(m *Message) { m.Text = "\xff" }), FormatProtobuf, true, ErrInvalidMessage},
		{"sticker without sticker", with(func(m *Message) { m.ContentType = ContentSticker }), FormatTransit, true, ErrInvalidMessage},
		{"system message", with(func(m *Message) { m.MessageType = MessageTypeSystemMessagePrivateGroup }), FormatTransit, true, ErrInvalidMessage},
		{"transit clock beyond int64", with(func(m *Message) { m.Clock = math.MaxInt64 + 1 }), FormatTransit, true, ErrInvalidMessage},
		{"text too long", with(func(m *Message) { m.Text = string(make([]rune, MaxTextLength+1)) }), FormatProtobuf, true, ErrTooLong},
		{"ens too long", with(func(m *Message) { m.ENSName = string(make([]byte, MaxFieldLength+1)) }), FormatTransit, true, ErrTooLong},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			key := a
			if !tc.author {
				key = nil
			}
			if _, err := Encode(tc.m, tc.f, key); !errors.Is(err, tc.want) {
				t.Errorf("Encode = %v, want %v", err, tc.want)
			}
		})
	}
	// The limits themselves are accepted.
	if _, err := Encode(with(func(m *Message) { m.Text = string(make([]rune, MaxTextLength)) }), FormatTransit, nil); err != nil {
		t.Errorf("text at MaxTextLength: %v", err)
	}
}

func TestParseSendFormat_values(t *testing.T) {
	cases := []struct {
		in   string
		want SendFormat
		ok   bool
	}{
		{"transit", SendTransit, true},
		{"protobuf", SendProtobuf, true},
		{"both", SendBoth, true},
		{" Both ", SendBoth, true},
		{"wrapped", SendWrapped, true},
		{"", 0, false},
		{"json", 0, false},
	}
	for _, tc := range cases {
		got, err := ParseSendFormat(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseSendFormat(%q) = %v, %v", tc.in, got, err)
		}
		if err != nil && !errors.Is(err, ErrInvalidSendFormat) {
			t.Errorf("ParseSendFormat(%q) error %v", tc.in, err)
		}
		if tc.ok {
			txt, err := got.MarshalText()
			var back SendFormat
			if err != nil || back.UnmarshalText(txt) != nil || back != got {
				t.Errorf("text round trip of %v: %s %v", got, txt, err)
			}
		}
	}
}

func TestEncodeFor_both(t *testing.T) {
	a := keyFrom(t, "alice")
	m := &Message{Clock: 7, Timestamp: 7, Text: "hi", ChatID: "status", MessageType: MessageTypePublicGroup, ContentType: ContentTextPlain}
	out, err := EncodeFor(m, SendBoth, a)
	if err != nil || len(out) != 2 {
		t.Fatalf("EncodeFor = %d payloads, %v", len(out), err)
	}
	for i, want := range []Format{FormatTransit, FormatProtobuf} {
		d, err := Decode(out[i])
		if err != nil || d.Message.Format != want || !sameMessage(d.Message, m) {
			t.Errorf("payload %d: %+v %v", i, d, err)
		}
	}
	if _, err := EncodeFor(m, 0, a); !errors.Is(err, ErrInvalidSendFormat) {
		t.Errorf("zero SendFormat: %v", err)
	}
}
