package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/statusgate/statusgate/core/node"
	"github.com/statusgate/statusgate/core/peers"
)

// TestRun_topicDiscovery: the gateway given only a bootnode finds a Whisper peer by topic
// discovery, and /peers, `bridge peers`, /readyz and /metrics show it per topic; the
// gateway's mailserver advertises "whispermail", which the other node finds.
// discoveryBound is how long a topic search may take by the pool's design: fast mode
// (every 3 s) for its whole timeout, then one slow search, and a margin for the search
// itself; a node whose fast searches all ran before the other's registration landed
// (tickets wait longer on a loaded machine) finds it at its next slow search.
const discoveryBound = peers.DefaultFastModeTimeout + peers.DefaultSlowSync + 15*time.Second

func TestRun_topicDiscovery(t *testing.T) {
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	other, err := node.New(node.Config{ListenAddr: "127.0.0.1:0", Discovery: node.DiscoveryConfig{
		Topics: map[string]peers.Limits{node.TopicWhisper: {Min: 1, Max: 1}, node.TopicMailserver: {Min: 1, Max: 1}}}}, key)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- other.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	<-other.Ready()

	dir := filepath.Join(t.TempDir(), "data")
	admin, apiAddr := freeAddr(t), freeAddr(t)
	p := writeConfig(t, "data_dir: "+dir+`
node:
  listen_addr: 127.0.0.1:0
  bootnodes: ["`+other.Enode()+`"]
  discovery:
    topics: {whisper: {min: 1, max: 1}}
gateway:
  routes:
    - chat: status
      channels:
        - channel: api:status
http:
  listen: `+admin+`
connectors:
  api:
    enabled: true
    listen: `+apiAddr+`
`)
	r := startRoute(t, p, dir, admin, apiAddr, startupTimeout)
	defer r.stop(t)

	var rep peersReport
	deadline := time.Now().Add(discoveryBound)
	for {
		_, body := httpGet(t, "http://"+admin+"/peers")
		if err := json.Unmarshal([]byte(body), &rep); err != nil {
			t.Fatalf("/peers: %v: %s", err, body)
		}
		if rep.Discovery.Topics["whisper"].Connected == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no whisper peer by discovery: %s", body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !rep.Discovery.On || len(rep.Peers) != 1 || strings.Join(rep.Discovery.Registered, ",") != "whisper,whispermail" {
		t.Fatalf("report %+v", rep)
	}
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"peers", "-config", p}, nil, &out, &errOut); code != exitOK {
		t.Fatalf("bridge peers: %d %s", code, errOut.String())
	}
	for _, want := range []string{"peers: 1", "topic discovery: ", "advertising whisper, whispermail", "whisper      1 connected (min 1, max 1)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("bridge peers output lacks %q:\n%s", want, out.String())
		}
	}
	if _, body := httpGet(t, "http://"+admin+"/readyz"); !strings.Contains(body, `"discovery"`) {
		t.Errorf("/readyz: %s", body)
	}
	_, metrics := httpGet(t, "http://"+admin+"/metrics")
	for _, want := range []string{`statusgate_discovery_topic_peers{topic="whisper"} 1`, `statusgate_discovery_topic_min_peers{topic="whisper"} 1`, "statusgate_discovery_table_nodes"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// The other node finds our mailserver by its topic.
	deadline = time.Now().Add(discoveryBound)
	for len(other.Mailservers()) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("our mailserver not found: %+v", other.DiscoveryStatus())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestRun_historyFromDiscoveredMailserver: a gateway whose configuration names no
// mailserver, given only a bootnode, finds our mailserver node by "whispermail" and
// catches its route's chat up from it.
func TestRun_historyFromDiscoveredMailserver(t *testing.T) {
	const n = 20
	ms := startHistoryMailserver(t, n, node.DiscoveryConfig{Topics: map[string]peers.Limits{node.TopicWhisper: {Min: 1, Max: 1}},
		Register: []string{node.TopicWhisper, node.TopicMailserver}})
	dir := filepath.Join(t.TempDir(), "data")
	admin, apiAddr := freeAddr(t), freeAddr(t)
	p := writeConfig(t, "data_dir: "+dir+`
node:
  listen_addr: 127.0.0.1:0
  bootnodes: ["`+ms.Enode()+`"]
  discovery:
    topics: {whispermail: {min: 1, max: 3}}
mailserver: {enabled: false}
gateway:
  routes:
    - chat: status
      channels:
        - channel: api:status
http:
  listen: `+admin+`
connectors:
  api:
    enabled: true
    listen: `+apiAddr+`
`)
	r := startRoute(t, p, dir, admin, apiAddr, startupTimeout)
	defer r.stop(t)
	want := fmt.Sprintf("envelopes=%d", n)
	// Finding the mailserver is a topic search (discoveryBound); the catch-up of n
	// envelopes from it then takes a second or two: 30 s is its margin on a loaded machine.
	deadline := time.Now().Add(discoveryBound + 30*time.Second)
	for !strings.Contains(r.logs.String(), want) || !strings.Contains(r.logs.String(), "done=true") {
		if time.Now().After(deadline) {
			t.Fatalf("no catch-up of %d envelopes from the discovered mailserver:\n%s", n, r.logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
