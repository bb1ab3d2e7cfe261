package statusref

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"
)

// WakuOptions run the reference on status-go's Waku (statusgo-ref -waku …), as a
// status-go node with WakuConfig.Enabled builds it.
type WakuOptions struct {
	// Enabled runs Waku instead of Whisper.
	Enabled bool
	// Light is WakuConfig.LightClient (an empty bloom filter at start).
	Light bool
	// Full is WakuConfig.FullNode (a full bloom filter, no topic interest).
	Full bool
	// BloomMode is WakuConfig.BloomFilterMode (a bloom filter instead of topic interest).
	BloomMode bool
	// Confirmations sends message responses (code 12).
	Confirmations bool
	// PacketLimit and BytesLimit turn status-go's rate limiter on: per second, per peer
	// ID and per IP. Tolerance is RateLimitTolerance: exceeded limits before status-go
	// drops the peer (0: never).
	PacketLimit, BytesLimit, Tolerance int64
}

func (w WakuOptions) args() []string {
	if !w.Enabled {
		return nil
	}
	args := []string{"-waku"}
	for _, f := range []struct {
		on   bool
		flag string
	}{{w.Light, "-waku-light"}, {w.Full, "-waku-full"}, {w.BloomMode, "-waku-bloom"}, {w.Confirmations, "-waku-confirmations"}} {
		if f.on {
			args = append(args, f.flag)
		}
	}
	for _, f := range []struct {
		v    int64
		flag string
	}{{w.PacketLimit, "-waku-packet-limit"}, {w.BytesLimit, "-waku-bytes-limit"}, {w.Tolerance, "-waku-rate-tolerance"}} {
		if f.v != 0 {
			args = append(args, f.flag, strconv.FormatInt(f.v, 10))
		}
	}
	return args
}

// WakuEvent is an envelope event of status-go's Waku with a peer: "envelope.sent" (its
// broadcast sent the envelope to Peer) or "envelope.received" (Peer sent it; reported
// whether status-go accepted it or not).
type WakuEvent struct {
	Event string
	Hash  [32]byte
	Topic [4]byte
	Peer  string // enode ID, hex
}

func (n *Node) dispatchWaku(line []byte) {
	var w struct {
		Event string `json:"event"`
		Hash  string `json:"hash"`
		Topic string `json:"topic"`
		Peer  string `json:"peer"`
	}
	if err := json.Unmarshal(line, &w); err != nil {
		n.problem(fmt.Sprintf("bad waku event %q: %v", line, err))
		return
	}
	ev := WakuEvent{Event: w.Event, Peer: w.Peer}
	h, err1 := hex.DecodeString(w.Hash)
	t, err2 := hex.DecodeString(w.Topic)
	if err1 != nil || err2 != nil || len(h) != 32 || len(t) != 4 {
		n.problem(fmt.Sprintf("bad waku event %q", line))
		return
	}
	ev.Hash, ev.Topic = [32]byte(h), [4]byte(t)
	select {
	case n.wakuEvents <- ev:
	default:
		n.dropped("waku")
	}
}

// WakuEvents delivers the Waku envelope events (buffered 4096; dropped and counted when
// full). Only with Waku.Enabled.
func (n *Node) WakuEvents() <-chan WakuEvent { return n.wakuEvents }

// WaitWakuEvent returns the next Waku event for which match holds, discarding others,
// failing tb after timeout.
func (n *Node) WaitWakuEvent(tb testing.TB, timeout time.Duration, match func(WakuEvent) bool) WakuEvent {
	tb.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case ev := <-n.wakuEvents:
			if match(ev) {
				return ev
			}
		case <-deadline:
			tb.Fatalf("statusgo-ref: no matching Waku event within %v", timeout)
			return WakuEvent{}
		}
	}
}

// Post seals an envelope with status-go's Waku (symmetric, the key of password, on
// topic, at PoW pow, TTL ttl) and sends it; it returns its hash and PoW.
func (n *Node) Post(topic [4]byte, password string, payload []byte, pow float64, ttl uint32) ([32]byte, float64, error) {
	var out struct {
		Hash string  `json:"hash"`
		PoW  float64 `json:"pow"`
	}
	if err := n.call("post", map[string]any{"topic": hex.EncodeToString(topic[:]), "password": password,
		"payload": hex.EncodeToString(payload), "pow": pow, "ttl": ttl}, &out); err != nil {
		return [32]byte{}, 0, err
	}
	h, err := hex.DecodeString(out.Hash)
	if err != nil || len(h) != 32 {
		return [32]byte{}, 0, fmt.Errorf("post: bad hash %q", out.Hash)
	}
	return [32]byte(h), out.PoW, nil
}

// Metrics returns status-go's Waku Prometheus counters, keyed by name and sorted labels
// ("waku_rate_limits_exceeded_total{type=peer_id}").
func (n *Node) Metrics() (map[string]float64, error) {
	var out struct {
		Metrics map[string]float64 `json:"metrics"`
	}
	if err := n.call("metrics", nil, &out); err != nil {
		return nil, err
	}
	return out.Metrics, nil
}
