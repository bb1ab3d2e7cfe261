package main

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"
	_ "unsafe" // go:linkname

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/ethereum/go-ethereum/whisper/mailserver"
	"github.com/ethereum/go-ethereum/whisper/whisperv6"
)

// processRequest is geth's unexported (*mailserver.WMailServer).processRequest,
// the whole server side of a history request after validation: iterate the
// LevelDB keys [BE(lower)‖0…0, BE(upper+1)‖0…0), RLP-decode every envelope,
// BloomFilterMatch it against bloom and, with a nil peer ("used for test
// purposes" in geth), collect the matches instead of sending each with
// SendP2PDirect. Linking to it runs geth's own code rather than a copy.
//
//go:linkname processRequest github.com/ethereum/go-ethereum/whisper/mailserver.(*WMailServer).processRequest
func processRequest(s *mailserver.WMailServer, peer *whisperv6.Peer, lower, upper uint32, bloom []byte) []*whisperv6.Envelope

// countingMailServer is geth's WMailServer with call counters. It is what
// the node registers with shh.RegisterServer; both methods delegate
// unchanged.
type countingMailServer struct {
	ms       *mailserver.WMailServer
	dir      string
	archived atomic.Int64 // Archive calls (envelopes newly added to the pool)
	requests atomic.Int64 // DeliverMail calls (code-126 packets received)
}

// Archive implements whisperv6.MailServer.
func (c *countingMailServer) Archive(env *whisperv6.Envelope) {
	c.archived.Add(1)
	c.ms.Archive(env)
}

// DeliverMail implements whisperv6.MailServer.
func (c *countingMailServer) DeliverMail(p *whisperv6.Peer, req *whisperv6.Envelope) {
	c.requests.Add(1)
	c.ms.DeliverMail(p, req)
}

// newMailServer is geth's WMailServer.Init(shh, <fresh temp dir>, password,
// pow). close removes the database.
func newMailServer(w *whisperv6.Whisper, password string, pow float64) (*countingMailServer, error) {
	dir, err := os.MkdirTemp("", "whisper-ref-mail-")
	if err != nil {
		return nil, err
	}
	c := &countingMailServer{ms: new(mailserver.WMailServer), dir: dir}
	if err := c.ms.Init(w, dir, password, pow); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("mailserver init: %v", err)
	}
	return c, nil
}

func (c *countingMailServer) close() {
	c.ms.Close()
	os.RemoveAll(c.dir)
}

// mailserverStats answers "mailserver_stats".
func (n *node) mailserverStats() (map[string]any, error) {
	if n.mail == nil {
		return nil, errors.New("mailserver not enabled (start the node with -mailserver-password)")
	}
	return map[string]any{
		"archived": n.mail.archived.Load(),
		"requests": n.mail.requests.Load(),
	}, nil
}

// requestHistoryWork is cmd/wnode's WorkTime for mail requests.
const requestHistoryWork = 5

// requestHistory answers "request_history": it builds the request envelope
// as cmd/wnode's requestExpiredMessagesLoop does in v1.9.20 (payload
// BE(lower) ‖ BE(upper) [‖ bloom], zero topic, signed, AES-GCM with the
// password key, sealed for pow with WorkTime 5) and sends it with
// shh.RequestHistoricMessages, which also marks the peer trusted.
func (n *node) requestHistory(req *nodeRequest) (map[string]any, error) {
	var peerID enode.ID
	switch {
	case strings.HasPrefix(req.Peer, "enode://"):
		nd, err := enode.ParseV4(req.Peer)
		if err != nil {
			return nil, fmt.Errorf("peer: %v", err)
		}
		peerID = nd.ID()
	default:
		b, err := decodeFixed("peer", req.Peer, len(peerID))
		if err != nil {
			return nil, err
		}
		copy(peerID[:], b)
	}

	var key []byte
	switch {
	case req.Password != "" && req.SymKey != "":
		return nil, errors.New("give password or sym_key, not both")
	case req.Password != "":
		id, err := n.w.AddSymKeyFromPassword(req.Password)
		if err != nil {
			return nil, fmt.Errorf("password key: %v", err)
		}
		key, err = n.w.GetSymKey(id)
		n.w.DeleteSymKey(id)
		if err != nil {
			return nil, fmt.Errorf("password key: %v", err)
		}
	case req.SymKey != "":
		var err error
		if key, err = decodeHex("sym_key", req.SymKey); err != nil {
			return nil, err
		}
	default:
		return nil, errors.New("missing password or sym_key")
	}

	src := n.srv.PrivateKey
	if req.SrcPriv != "" {
		var err error
		if src, err = decodePriv("src_priv", req.SrcPriv); err != nil {
			return nil, err
		}
	}

	data := make([]byte, 8, 8+whisperv6.BloomFilterSize)
	binary.BigEndian.PutUint32(data, req.Lower)
	binary.BigEndian.PutUint32(data[4:], req.Upper)
	if req.Bloom != "" {
		bloom, err := decodeFixed("bloom", req.Bloom, whisperv6.BloomFilterSize)
		if err != nil {
			return nil, err
		}
		data = append(data, bloom...)
	}

	workTime := uint32(requestHistoryWork)
	if req.WorkTime != 0 {
		workTime = req.WorkTime
	}
	params := &whisperv6.MessageParams{
		TTL:      req.TTL, // 0: Wrap uses DefaultTTL (50), as wnode does
		PoW:      req.PoW,
		Payload:  data,
		KeySym:   key,
		Src:      src,
		WorkTime: workTime,
	}
	msg, err := whisperv6.NewSentMessage(params)
	if err != nil {
		return nil, fmt.Errorf("new sent message: %v", err)
	}
	env, err := msg.Wrap(params)
	if err != nil {
		return nil, fmt.Errorf("wrap: %v", err)
	}

	// whisper knows the peer only after the shh handshake: retry "could not
	// find peer" for up to trustRetry.
	deadline := time.Now().Add(trustRetry)
	for {
		err = n.w.RequestHistoricMessages(peerID[:], env)
		if err == nil || !strings.HasPrefix(err.Error(), "could not find peer") || time.Now().After(deadline) {
			break
		}
		time.Sleep(pollInterval)
	}
	if err != nil {
		return nil, fmt.Errorf("request historic messages: %v", err)
	}
	raw, err := rlp.EncodeToBytes(env)
	if err != nil {
		return nil, fmt.Errorf("encode envelope: %v", err)
	}
	return map[string]any{
		"hash":     hex.EncodeToString(env.Hash().Bytes()),
		"envelope": hex.EncodeToString(raw),
		"pow":      jsonFloat(env.PoW()),
		"signer":   hex.EncodeToString(crypto.FromECDSAPub(&src.PublicKey)),
	}, nil
}
