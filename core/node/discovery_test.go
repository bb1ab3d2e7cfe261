package node

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/statusgate/statusgate/core/peers"
)

var whisperTopics = map[string]peers.Limits{TopicWhisper: {Min: 2, Max: 2}}

// Four nodes given only a bootnode (itself one of them) each reach their two Whisper
// peers through topic discovery and the peer pool, and report it.
func TestNode_topicDiscoveryReachesMinPeers(t *testing.T) {
	boot := start(t, Config{ZeroPoW: true, Discovery: DiscoveryConfig{Topics: whisperTopics}})
	var nodes []*running
	for range 3 {
		nodes = append(nodes, start(t, Config{ZeroPoW: true, BootNodes: []string{boot.Enode()},
			Discovery: DiscoveryConfig{Topics: whisperTopics}}))
	}
	// The pool searches fast (every 3 s) for FastModeTimeout, then every SlowSync: a node
	// whose fast searches all ran before the others' registrations landed (tickets wait
	// longer on a loaded machine) finds them at its next slow search.
	ctx, cancel := context.WithTimeout(context.Background(), discoveryBound)
	defer cancel()
	for i, n := range nodes {
		if err := n.WaitPeers(ctx, 2); err != nil {
			t.Fatalf("node %d: %v (status %+v)", i, err, n.DiscoveryStatus())
		}
	}
	st := nodes[0].DiscoveryStatus()
	if !st.On || len(st.Topics) != 1 || st.Topics[0].Topic != TopicWhisper || st.Topics[0].Limits.Min != 2 ||
		len(st.Registered) != 1 || st.Registered[0] != TopicWhisper || st.Table == 0 {
		t.Fatalf("status %+v", st)
	}
}

// discoveryBound is how long a topic search may take by the pool's design: fast mode
// for its whole timeout, then one slow search, and a margin for the search itself.
const discoveryBound = peers.DefaultFastModeTimeout + peers.DefaultSlowSync + 15*time.Second

// A mailserver advertising "whispermail" is a candidate of a node searching it.
func TestNode_mailserverCandidates(t *testing.T) {
	boot := start(t, Config{ZeroPoW: true, Discovery: DiscoveryConfig{Topics: whisperTopics}})
	ms := start(t, Config{ZeroPoW: true, BootNodes: []string{boot.Enode()},
		Discovery: DiscoveryConfig{Topics: whisperTopics, Register: []string{TopicWhisper, TopicMailserver}}})
	client := start(t, Config{ZeroPoW: true, BootNodes: []string{boot.Enode()},
		Discovery: DiscoveryConfig{Topics: map[string]peers.Limits{TopicWhisper: {Min: 2, Max: 2}, TopicMailserver: {Min: 1, Max: 3}}}})
	deadline := time.Now().Add(discoveryBound)
	for {
		if c := client.Mailservers(); len(c) > 0 {
			if !strings.HasPrefix(c[0], strings.Split(ms.Enode(), "?")[0]) {
				t.Fatalf("candidates %v, want %s", c, ms.Enode())
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no mailserver candidate: %+v", client.DiscoveryStatus())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestDiscoveryConfig_yaml(t *testing.T) {
	var c struct {
		D DiscoveryConfig `yaml:"discovery"`
	}
	if err := yaml.Unmarshal([]byte("discovery: true"), &c); err != nil || !c.D.V4 || c.D.TopicsOn() {
		t.Fatalf("old form: %+v %v", c.D, err)
	}
	c.D = DiscoveryConfig{}
	src := "discovery:\n  topics:\n    whisper: {min: 2, max: 3}\n  register: [whisper, whispermail]\n  limits: {max_nodes: 100}\n"
	if err := yaml.Unmarshal([]byte(src), &c); err != nil {
		t.Fatal(err)
	}
	if c.D.Topics["whisper"] != (peers.Limits{Min: 2, Max: 3}) || len(c.D.Register) != 2 || c.D.Limits.MaxNodes != 100 || c.D.Validate() != nil {
		t.Fatalf("%+v", c.D)
	}
	for _, bad := range []DiscoveryConfig{
		{Topics: map[string]peers.Limits{"whisper": {Min: 3, Max: 2}}},
		{Topics: map[string]peers.Limits{"": {}}},
		{Rendezvous: []string{"/ip4/1.2.3.4/tcp/30703/ethv4/16Uiu2"}},
	} {
		if bad.Validate() == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// v4 and topic discovery share the listen port's UDP socket: a v4-only node and a
// topic-only node, both given the shared node as bootnode, each find it and connect.
func TestNode_v4AndTopicsShareTheSocket(t *testing.T) {
	shared := start(t, Config{ZeroPoW: true, Discovery: DiscoveryConfig{V4: true, Topics: whisperTopics}})
	v4 := start(t, Config{ZeroPoW: true, BootNodes: []string{shared.Enode()}, Discovery: DiscoveryConfig{V4: true}})
	topics := start(t, Config{ZeroPoW: true, BootNodes: []string{shared.Enode()}, Discovery: DiscoveryConfig{Topics: whisperTopics}})
	ctx, cancel := context.WithTimeout(context.Background(), discoveryBound) // the topic node finds shared by a topic search
	defer cancel()
	for _, n := range []*running{v4, topics} {
		if err := n.WaitPeers(ctx, 1); err != nil {
			t.Fatal(err)
		}
	}
	if st := shared.DiscoveryStatus(); !st.On || st.Table == 0 {
		t.Fatalf("shared node's topic discovery: %+v", st)
	}
	if st := topics.DiscoveryStatus(); st.Topics[0].Connected != 1 || st.Topics[0].Peers[0] != shared.ID() {
		t.Fatalf("topic node: %+v", st.Topics)
	}
}

// Stopping nodes with topic discovery (alone, and sharing the socket with v4) leaves no
// goroutine behind: the reader, the loops, the forwarders and v4 all stop.
func TestNode_discoveryShutdownLeavesNoGoroutines(t *testing.T) {
	base := runtime.NumGoroutine()
	a := start(t, Config{ZeroPoW: true, Discovery: DiscoveryConfig{V4: true, Topics: whisperTopics}})
	b := start(t, Config{ZeroPoW: true, BootNodes: []string{a.Enode()}, Discovery: DiscoveryConfig{Topics: whisperTopics}})
	ctx, cancel := context.WithTimeout(context.Background(), discoveryBound) // b finds a by a topic search
	defer cancel()
	if err := b.WaitPeers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	a.stop(t)
	b.stop(t)
	if st := a.DiscoveryStatus(); st.On {
		t.Errorf("stopped node reports discovery %+v", st)
	}
	waitGoroutines(t, base)
}
