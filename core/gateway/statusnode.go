package gateway

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"time"

	"github.com/statusgate/statusgate/core/status"
)

// StatusOver runs the gateway's Status side on a core/status client: the real network
// (a node's Whisper service, with its mailserver catch-up configured on the client).
func StatusOver(c *status.Client) StatusNet { return statusClient{c} }

// Status holds as many characters in one message as the gateway assumes.
var _ = [1]struct{}{}[status.MaxTextLength-StatusMaxTextLen]

type statusClient struct{ c *status.Client }

// Join joins with OmitLocal: the node posts only as the gateway's puppets, so its own
// posts are left out before decryption instead of being decrypted, their signers
// recovered (three per message across both payloads) and then dropped as ours.
func (s statusClient) Join(ctx context.Context, name string) (StatusChat, error) {
	ch, err := s.c.Join(ctx, name, status.JoinOptions{OmitLocal: true})
	if err != nil {
		return nil, err
	}
	return statusChat{ch}, nil
}

type statusChat struct{ ch *status.Chat }

func (s statusChat) Next(ctx context.Context) (StatusMessage, bool) {
	select {
	case m, ok := <-s.ch.Messages():
		if !ok {
			return StatusMessage{}, false
		}
		return StatusMessage{ID: m.ID.String(), TwinID: m.TwinID.String(), AuthorKey: m.AuthorKey, Alias: m.Alias,
			Text: m.Text, ResponseTo: m.ResponseTo, Sticker: m.Sticker != nil, Timestamp: m.Timestamp, Sent: m.Sent}, true
	case <-ctx.Done():
		return StatusMessage{}, false
	}
}

func (s statusChat) NextClocks(t time.Time, n int) uint64 { return s.ch.NextClocks(t, n) }
func (s statusChat) RestoreClock(last uint64)             { s.ch.RestoreClock(last) }
func (s statusChat) Leave()                               { s.ch.Leave() }

func (s statusChat) TwinOf(id string) (string, bool) {
	twin, ok := s.ch.TwinOf(id)
	if !ok {
		return "", false
	}
	return twin.String(), true
}

func (s statusChat) Post(ctx context.Context, p StatusPost, key *ecdsa.PrivateKey) (StatusPosted, error) {
	msg := status.Outgoing{Text: p.Text, ResponseTo: p.ResponseTo, Clock: p.Clock, Timestamp: p.Timestamp}
	ids, err := s.ch.SendMessage(ctx, msg, key)
	if errors.Is(err, status.ErrUnsendable) {
		return StatusPosted{}, fmt.Errorf("%w: %w", ErrStatusUnsendable, err)
	}
	if err != nil {
		return StatusPosted{}, err
	}
	out := StatusPosted{IDs: make([]string, len(ids))}
	for i, id := range ids {
		out.IDs[i] = id.String()
	}
	if p.Clock != 0 {
		out.TwinID = msg.TwinID(&key.PublicKey).String()
	}
	return out, nil
}
