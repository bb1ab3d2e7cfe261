package main

import (
	"crypto/ecdsa"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/status-im/status-go/eth-node/types"
	"github.com/status-im/status-go/whisper"
)

// Holding envelopes lets a test deliver the Messenger's messages out of order (skipped
// message keys) or late: while holding, every envelope the Messenger posts is sealed
// exactly as whisper's PublicWhisperAPI.Post seals it (same params, keys and PoW) and
// kept; "release" sends the kept envelopes with whisper's Send in the order asked.

// holdPost seals and keeps req when holding is on.
func (n *node) holdPost(req types.NewMessage) ([]byte, bool, error) {
	n.holdMu.Lock()
	defer n.holdMu.Unlock()
	if !n.holding {
		return nil, false, nil
	}
	env, err := n.seal(req)
	if err != nil {
		return nil, true, err
	}
	n.held = append(n.held, env)
	h := env.Hash()
	return h[:], true, nil
}

// seal is whisper's PublicWhisperAPI.Post up to, not including, the Send.
func (n *node) seal(req types.NewMessage) (*whisper.Envelope, error) {
	symKeyGiven, pubKeyGiven := req.SymKeyID != "", len(req.PublicKey) > 0
	if symKeyGiven == pubKeyGiven {
		return nil, errors.New("hold: want exactly one of a symmetric and an asymmetric key")
	}
	params := &whisper.MessageParams{TTL: req.TTL, Payload: req.Payload, Padding: req.Padding,
		WorkTime: req.PowTime, PoW: req.PowTarget, Topic: whisper.TopicType(req.Topic)}
	var err error
	if req.SigID != "" {
		if params.Src, err = n.shh.GetPrivateKey(req.SigID); err != nil {
			return nil, err
		}
	}
	if symKeyGiven {
		if params.KeySym, err = n.shh.GetSymKey(req.SymKeyID); err != nil {
			return nil, err
		}
	} else {
		var dst *ecdsa.PublicKey
		if dst, err = crypto.UnmarshalPubkey(req.PublicKey); err != nil {
			return nil, fmt.Errorf("hold: recipient key: %v", err)
		}
		params.Dst = dst
	}
	msg, err := whisper.NewSentMessage(params)
	if err != nil {
		return nil, err
	}
	return msg.Wrap(params, n.shh.GetCurrentTime())
}

func opHold(n *node, _ []byte) (map[string]any, error) {
	if n.waku != nil {
		return nil, errors.New("hold: Whisper only")
	}
	n.holdMu.Lock()
	defer n.holdMu.Unlock()
	n.holding = true
	return nil, nil
}

func opRelease(n *node, line []byte) (map[string]any, error) {
	var p struct {
		Order string `json:"order"`
	}
	if err := params(line, &p); err != nil {
		return nil, err
	}
	n.holdMu.Lock()
	held := n.held
	n.held, n.holding = nil, false
	n.holdMu.Unlock()
	switch p.Order {
	case "", "forward":
	case "reverse":
		for i, j := 0, len(held)-1; i < j; i, j = i+1, j-1 {
			held[i], held[j] = held[j], held[i]
		}
	default:
		return nil, fmt.Errorf("release: order %q (want forward or reverse)", p.Order)
	}
	hashes := make([]string, 0, len(held))
	for _, env := range held {
		if err := n.shh.Send(env); err != nil {
			return nil, fmt.Errorf("release: send %x: %v", env.Hash(), err)
		}
		h := env.Hash()
		hashes = append(hashes, hex.EncodeToString(h[:]))
	}
	return map[string]any{"released": len(held), "hashes": hashes}, nil
}
