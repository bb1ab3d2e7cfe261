package mailserver

import (
	"crypto/ecdsa"
	"encoding/binary"
	"fmt"

	"github.com/ethereum/go-ethereum/rlp"

	"github.com/statusgate/statusgate/core/whisper"
)

// RequestForm says which of the three request encodings of §4 a request came in.
type RequestForm uint8

const (
	// FormPayload: an envelope whose payload is the RLP MessagesRequestPayload
	// [Lower, Upper, Bloom, Limit, Cursor, Batch] (status-go clients, REACT).
	FormPayload RequestForm = iota + 1
	// FormBinary: an envelope whose payload is lower(4) ‖ upper(4) [‖ bloom(64) [‖
	// limit(4) [‖ cursor]]] big-endian (geth v6's client and status-go's legacy form).
	FormBinary
	// FormStruct: the packet body is the RLP struct MessagesRequest [ID, From, To,
	// Limit, Cursor, Bloom] (status-go's Go client), no envelope.
	FormStruct
)

func (f RequestForm) String() string {
	switch f {
	case FormPayload:
		return "payload"
	case FormBinary:
		return "binary"
	case FormStruct:
		return "struct"
	}
	return "unknown"
}

// Request is a decoded history request.
type Request struct {
	ID           [32]byte // the request envelope's hash, or the struct's ID
	Form         RequestForm
	Lower, Upper uint32 // created-time bounds, inclusive; Upper 0 means now + 60 s
	Bloom        whisper.Bloom
	Limit        uint32 // 0 means the server's default
	Cursor       []byte // empty or CursorLength bytes
	Batch        bool   // several envelopes per code-127 packet
	Signer       *ecdsa.PublicKey
}

// messagesRequestPayload is status-go's MessagesRequestPayload; Batch is optional (SPEC
// lists five fields).
type messagesRequestPayload struct {
	Lower, Upper uint32
	Bloom        []byte
	Limit        uint32
	Cursor       []byte
	Batch        bool `rlp:"optional"`
}

// messagesRequest is status-go's MessagesRequest struct form.
type messagesRequest struct {
	ID     []byte
	From   uint32
	To     uint32
	Limit  uint32
	Cursor []byte
	Bloom  []byte
}

// maxStructLimit is status-go's bound on the struct form's Limit.
const maxStructLimit = 1000

// Keys are what a server opens request envelopes with.
type Keys struct {
	Sym  *whisper.SymKey   // from the mailserver password
	Asym *ecdsa.PrivateKey // the node key, for requests encrypted to it; may be nil
}

// DecodeRequest decodes a code-126 packet body in any of the three forms: first as an
// envelope (opened with keys, asymmetric first, and required to be signed and to meet
// minPoW), then as the MessagesRequest struct. The returned Request carries the ID to
// answer with even when err is not nil, if the body was an envelope.
func DecodeRequest(body []byte, keys Keys, minPoW float64) (*Request, error) {
	env, envErr := whisper.DecodeEnvelope(body)
	if envErr != nil {
		return decodeStruct(body, envErr)
	}
	req := &Request{ID: env.Hash()}
	if minPoW > 0 && env.PoW() < minPoW {
		return req, fmt.Errorf("request %x: %w: %g < %g", req.ID[:4], ErrRequestPoW, env.PoW(), minPoW)
	}
	var msg *whisper.ReceivedMessage
	var err error = ErrUndecryptable
	if keys.Asym != nil {
		msg, err = env.OpenAsymmetric(keys.Asym)
	}
	if err != nil && keys.Sym != nil {
		msg, err = env.OpenSymmetric(keys.Sym)
	}
	if err != nil {
		return req, fmt.Errorf("request %x: %w: %w", req.ID[:4], ErrUndecryptable, err)
	}
	if msg.Src == nil {
		return req, fmt.Errorf("request %x: %w", req.ID[:4], ErrUnsignedRequest)
	}
	req.Signer = msg.Src
	if err := req.parsePayload(msg.Payload); err != nil {
		return req, fmt.Errorf("request %x: %w", req.ID[:4], err)
	}
	return req, nil
}

func (r *Request) parsePayload(p []byte) error {
	var pl messagesRequestPayload
	if err := rlp.DecodeBytes(p, &pl); err == nil {
		r.Form, r.Lower, r.Upper, r.Limit, r.Batch = FormPayload, pl.Lower, pl.Upper, pl.Limit, pl.Batch
		if err := r.setBloom(pl.Bloom); err != nil {
			return err
		}
		return r.setCursor(pl.Cursor)
	}
	// The binary form. geth's client sends 8 or 72 bytes; status-go's legacy form adds a
	// limit and a cursor.
	r.Form = FormBinary
	switch n := len(p); {
	case n == 8:
		r.Bloom = whisper.FullBloom()
	case n == 72, n == 76, n >= 76+CursorLength && n <= 76+40:
		copy(r.Bloom[:], p[8:72])
		if n >= 76 {
			r.Limit = binary.BigEndian.Uint32(p[72:76])
		}
		if n > 76 {
			r.Cursor = append([]byte(nil), p[76:76+CursorLength]...)
		}
	default:
		return fmt.Errorf("%w: binary payload of %d bytes", ErrBadRequest, n)
	}
	r.Lower, r.Upper = binary.BigEndian.Uint32(p[0:4]), binary.BigEndian.Uint32(p[4:8])
	return nil
}

func decodeStruct(body []byte, envErr error) (*Request, error) {
	var mr messagesRequest
	if err := rlp.DecodeBytes(body, &mr); err != nil {
		return nil, fmt.Errorf("%w: neither an envelope (%v) nor a MessagesRequest (%v)", ErrBadRequest, envErr, err)
	}
	if len(mr.ID) != 32 {
		return nil, fmt.Errorf("%w: MessagesRequest ID of %d bytes", ErrBadRequest, len(mr.ID))
	}
	r := &Request{Form: FormStruct, Lower: mr.From, Upper: mr.To, Limit: mr.Limit, Batch: true}
	copy(r.ID[:], mr.ID)
	if len(mr.Bloom) == 0 {
		return r, fmt.Errorf("%w: MessagesRequest without bloom", ErrBadRequest)
	}
	if mr.Limit > maxStructLimit {
		return r, fmt.Errorf("%w: MessagesRequest limit %d > %d", ErrBadRequest, mr.Limit, maxStructLimit)
	}
	if err := r.setBloom(mr.Bloom); err != nil {
		return r, err
	}
	return r, r.setCursor(mr.Cursor)
}

func (r *Request) setBloom(b []byte) error {
	bl, err := whisper.BloomFromBytes(b)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	r.Bloom = bl
	return nil
}

func (r *Request) setCursor(c []byte) error {
	if len(c) != 0 && len(c) != CursorLength {
		return fmt.Errorf("%w: %d bytes, want 0 or %d", ErrCursor, len(c), CursorLength)
	}
	if len(c) > 0 {
		r.Cursor = append([]byte(nil), c...)
	}
	return nil
}

// EncodePayload is the RLP MessagesRequestPayload a client puts in its request envelope.
func EncodePayload(lower, upper uint32, bloom whisper.Bloom, limit uint32, cursor []byte, batch bool) ([]byte, error) {
	return rlp.EncodeToBytes(&messagesRequestPayload{Lower: lower, Upper: upper, Bloom: bloom[:], Limit: limit,
		Cursor: append([]byte{}, cursor...), Batch: batch})
}

// Completion is a code-125 request-complete packet.
type Completion struct {
	RequestID    [32]byte
	LastEnvelope [32]byte
	Cursor       []byte // empty: no more results
	Error        string // set for the ERROR= form
}

// Encode returns the packet body: one RLP byte string (§4.4).
func (c *Completion) Encode() []byte {
	var raw []byte
	if c.Error != "" {
		raw = append(append([]byte("ERROR="), c.RequestID[:]...), c.Error...)
	} else {
		raw = append(append(append(raw, c.RequestID[:]...), c.LastEnvelope[:]...), c.Cursor...)
	}
	b, _ := rlp.EncodeToBytes(raw) // a byte string always encodes
	return b
}

// DecodeCompletion parses a code-125 body: 32, 64 or 100 bytes, or the ERROR= form.
func DecodeCompletion(body []byte) (*Completion, error) {
	var raw []byte
	if err := rlp.DecodeBytes(body, &raw); err != nil {
		return nil, fmt.Errorf("%w: completion: %w", ErrBadRequest, err)
	}
	c := &Completion{}
	if len(raw) >= 6+32 && string(raw[:6]) == "ERROR=" {
		copy(c.RequestID[:], raw[6:38])
		c.Error = string(raw[38:])
		if c.Error == "" {
			c.Error = "unspecified error"
		}
		return c, nil
	}
	switch len(raw) {
	case 32, 64, 64 + CursorLength:
	default:
		return nil, fmt.Errorf("%w: completion of %d bytes", ErrBadRequest, len(raw))
	}
	copy(c.RequestID[:], raw[:32])
	if len(raw) >= 64 {
		copy(c.LastEnvelope[:], raw[32:64])
	}
	if len(raw) > 64 {
		c.Cursor = append([]byte(nil), raw[64:]...)
	}
	return c, nil
}

// peekRequest finds the ID a refused request is answered with, without opening it: the
// envelope's hash, or the struct form's ID. nil when the body has none.
func peekRequest(body []byte) *Request {
	if env, err := whisper.DecodeEnvelope(body); err == nil {
		return &Request{ID: env.Hash()}
	}
	var mr messagesRequest
	if err := rlp.DecodeBytes(body, &mr); err == nil && len(mr.ID) == 32 {
		return &Request{ID: [32]byte(mr.ID), Form: FormStruct}
	}
	return nil
}
