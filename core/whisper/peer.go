package whisper

import (
	"fmt"
	"io"

	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/rlp"
)

// maxStatusSize bounds the handshake packet: six items fit in under 200 bytes, so a peer
// sending more is not speaking shh/6.
const maxStatusSize = 1024

// HandshakePolicy holds what our side decides about a peer's handshake.
type HandshakePolicy struct {
	// LightNode is our own light flag, sent in our status.
	LightNode bool
	// RestrictLightPeers refuses a light peer when we are light too (geth's default true,
	// status-go's false).
	RestrictLightPeers bool
}

// Handshake sends ours and reads the peer's status concurrently, as geth does, and
// waits for its own send before returning (p2p bounds a write with its frame deadline).
// The peer's first packet must be the status; anything else, an oversize or malformed
// status, or a light peer we refuse is an error wrapping ErrHandshake, after which the
// caller disconnects.
func Handshake(rw p2p.MsgReadWriter, ours Status, policy HandshakePolicy) (Status, error) {
	ours.LightNode = policy.LightNode
	body, err := EncodeStatus(ours)
	if err != nil {
		return Status{}, err
	}
	sent := make(chan error, 1)
	go func() { sent <- p2p.Send(rw, statusCode, rlp.RawValue(body)) }()

	theirs, readErr := readStatus(rw)
	if err := <-sent; err != nil && readErr == nil {
		readErr = fmt.Errorf("send status: %w", err)
	}
	if readErr != nil {
		return Status{}, readErr
	}
	if theirs.LightNode && policy.LightNode && policy.RestrictLightPeers {
		return Status{}, fmt.Errorf("handshake: %w: both sides are light nodes", ErrHandshake)
	}
	return theirs, nil
}

func readStatus(rw p2p.MsgReadWriter) (Status, error) {
	msg, err := rw.ReadMsg()
	if err != nil {
		return Status{}, fmt.Errorf("read status: %w", err)
	}
	defer msg.Discard()
	if msg.Code != statusCode {
		return Status{}, fmt.Errorf("handshake: %w: packet code %d before status", ErrHandshake, msg.Code)
	}
	if msg.Size > maxStatusSize {
		return Status{}, fmt.Errorf("handshake: %w: status of %d bytes", ErrHandshake, msg.Size)
	}
	body := make([]byte, msg.Size)
	if _, err := io.ReadFull(msg.Payload, body); err != nil {
		return Status{}, fmt.Errorf("read status: %w", err)
	}
	return DecodeStatus(body)
}
