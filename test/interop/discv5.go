package interop

import (
	"testing"
	"time"
)

// FoundEvent is a node that the reference's discv5 search found, reported once per node
// and topic.
type FoundEvent struct {
	Topic string `json:"topic"`
	Enode string `json:"enode"`
	ID    string `json:"id"` // enode ID, hex
}

// Found delivers the reference's discv5 search results (buffered, 1024).
func (n *RefNode) Found() <-chan FoundEvent { return n.found }

// Discv5Start starts geth v1.9.20's p2p/discv5 on the node's listen port (UDP), as
// status-go v0.70.1 does, with bootnodes as fallback nodes, and returns the node's
// discv5 URL.
func (n *RefNode) Discv5Start(bootnodes ...string) (string, error) {
	if bootnodes == nil {
		bootnodes = []string{}
	}
	var out struct {
		Enode string `json:"enode"`
	}
	if err := n.call("discv5_start", map[string]any{"bootnodes": bootnodes}, &out); err != nil {
		return "", err
	}
	return out.Enode, nil
}

// RegisterTopic advertises topic (geth's Network.RegisterTopic) until UnregisterTopic.
func (n *RefNode) RegisterTopic(topic string) error {
	return n.call("register_topic", map[string]any{"topic": topic}, nil)
}

// UnregisterTopic stops advertising topic.
func (n *RefNode) UnregisterTopic(topic string) error {
	return n.call("unregister_topic", map[string]any{"topic": topic}, nil)
}

// SearchTopic searches topic every period (geth's Network.SearchTopic); each node found
// is reported once on Found, and the first maxDial are dialled.
func (n *RefNode) SearchTopic(topic string, period time.Duration, maxDial int) error {
	return n.call("search_topic", map[string]any{"topic": topic, "period_ms": period.Milliseconds(), "max_dial": maxDial}, nil)
}

// StopSearch ends the search of topic.
func (n *RefNode) StopSearch(topic string) error {
	return n.call("stop_search", map[string]any{"topic": topic}, nil)
}

// Discv5Stats are the reference's discv5 table (node IDs as 128 hex, from
// ReadRandomNodes) and the nodes found per searched topic.
type Discv5Stats struct {
	Table []string            `json:"table"`
	Found map[string][]string `json:"found"`
}

// Discv5Stats returns the reference's table and findings.
func (n *RefNode) Discv5Stats() (Discv5Stats, error) {
	var out Discv5Stats
	err := n.call("discv5_stats", nil, &out)
	return out, err
}

// WaitFound waits for the reference to find the node with enode ID id for topic.
func (n *RefNode) WaitFound(tb testing.TB, topic, id string, timeout time.Duration) FoundEvent {
	tb.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case ev := <-n.found:
			if ev.Topic == topic && ev.ID == id {
				return ev
			}
		case <-deadline:
			st, _ := n.Discv5Stats()
			tb.Fatalf("whisper-ref: %s not found for %q within %v (table %d nodes, found %v)", id, topic, timeout, len(st.Table), st.Found)
			return FoundEvent{}
		}
	}
}
