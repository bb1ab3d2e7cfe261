package interop

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/p2p/enode"

	"github.com/statusgate/statusgate/core/node"
	"github.com/statusgate/statusgate/core/peers"
	"github.com/statusgate/statusgate/core/whisper"
)

// discNode is one of the twenty: ours (in process) or a geth v1.9.20 reference.
type discNode struct {
	name   string
	ours   *node.Node
	stop   context.CancelFunc
	done   chan error
	ref    *RefNode
	id     enode.ID
	sub    *whisper.Subscription // ours
	filter string                // geth's
	dead   bool
}

func (d *discNode) whisperPeers(t *testing.T) int {
	if d.ours != nil {
		return len(d.ours.Peers())
	}
	ids, err := d.ref.Peers()
	if err != nil {
		t.Fatal(err)
	}
	return len(ids)
}

// TestDiscoveryNetwork_twentyNodes: a bootnode (ours), 13 more of our nodes, 5 geth
// v1.9.20 reference nodes and a geth mailserver, each given only the bootnode. Ours run
// topic discovery with the peer pool (whisper {2, 2}, whispermail cache-only); the geth
// nodes run geth's discv5 as status-go does (register whisper, search whisper and dial
// the first two found, search whispermail). Every node reaches two Whisper peers (the
// times are logged as a distribution), every node finds the mailserver by whispermail, a
// message posted on one node reaches all twenty, and after five nodes of ours are
// killed our pools bring every survivor of ours back to two peers within the
// fast-search period (30 s) and a message again reaches every survivor.
// The five killed are those most of our pools dialled.
func TestDiscoveryNetwork_twentyNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("twenty nodes: not in -short")
	}
	topics := map[string]peers.Limits{node.TopicWhisper: {Min: 2, Max: 2}, node.TopicMailserver: {Min: 1, Max: 1}}
	startOurs := func(name string, boot []string, register []string) *discNode {
		nd, err := node.New(node.Config{ListenAddr: "127.0.0.1:0", BootNodes: boot,
			Discovery: node.DiscoveryConfig{Topics: topics, Register: register}}, mustKey(t, name))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		d := &discNode{name: name, ours: nd, stop: cancel, done: make(chan error, 1), id: nd.ID()}
		go func() { d.done <- nd.Run(ctx) }()
		t.Cleanup(func() { d.kill(t) })
		select {
		case <-nd.Ready():
		case err := <-d.done:
			t.Fatalf("%s: %v", name, err)
		}
		return d
	}
	start := time.Now()
	boot := startOurs("boot", nil, nil)
	bootURL := boot.ours.Enode()
	var all []*discNode
	all = append(all, boot)
	var mu sync.Mutex
	reached := map[string]time.Duration{}

	// The geth mailserver registers both topics.
	startRef := func(name string, mail bool) *discNode {
		opts := RefNodeOptions{}
		if mail {
			opts.MailserverPassword = "status-offline-inbox"
		}
		ref := StartRefNode(t, opts)
		if _, err := ref.Discv5Start(bootURL); err != nil {
			t.Fatal(err)
		}
		for _, tp := range []string{"whisper", "whispermail"}[:map[bool]int{false: 1, true: 2}[mail]] {
			if err := ref.RegisterTopic(tp); err != nil {
				t.Fatal(err)
			}
		}
		if err := ref.SearchTopic("whisper", time.Second, 2); err != nil {
			t.Fatal(err)
		}
		if err := ref.SearchTopic("whispermail", time.Second, 0); err != nil {
			t.Fatal(err)
		}
		return &discNode{name: name, ref: ref, id: refID(t, ref)}
	}
	ms := startRef("geth-mailserver", true)
	all = append(all, ms)
	for i := range 13 {
		all = append(all, startOurs(fmt.Sprint("ours-", i), []string{bootURL}, nil))
	}
	for i := range 5 {
		all = append(all, startRef(fmt.Sprint("geth-", i), false))
	}
	if len(all) != 20 {
		t.Fatalf("%d nodes", len(all))
	}
	setup := time.Since(start)

	// Every node reaches two Whisper peers.
	waitMin := func(nodes []*discNode, from time.Time, bound time.Duration) []time.Duration {
		var times []time.Duration
		deadline := from.Add(bound)
		for _, d := range nodes {
			for d.whisperPeers(t) < 2 {
				if time.Now().After(deadline) {
					st := ""
					if d.ours != nil {
						st = fmt.Sprintf("%+v", d.ours.DiscoveryStatus().Topics)
					}
					t.Fatalf("%s has %d Whisper peers %v after start %s", d.name, d.whisperPeers(t), bound, st)
				}
				time.Sleep(20 * time.Millisecond)
			}
			mu.Lock()
			if _, ok := reached[d.name]; !ok {
				reached[d.name] = time.Since(from)
			}
			times = append(times, time.Since(from))
			mu.Unlock()
		}
		return times
	}
	times := waitMin(all, start, 60*time.Second)
	t.Logf("20 nodes started in %v; time to 2 Whisper peers from the first start: %s", setup.Round(time.Millisecond), dist(times))

	// Every node finds the mailserver by whispermail. The deadline is the pool's design,
	// not a guess: a search runs fast (every 3 s) for FastModeTimeout (30 s), then slow
	// (every 30 s), so a node whose fast searches all came before the mailserver's
	// registration landed (its tickets wait longer on a loaded machine) finds it at the
	// next slow search: 30 s + 30 s, and a margin for the search itself.
	msURL := ""
	deadline := time.Now().Add(peers.DefaultFastModeTimeout + peers.DefaultSlowSync + 15*time.Second)
	for _, d := range all {
		if d == ms {
			continue
		}
		if d.ref != nil {
			d.ref.WaitFound(t, "whispermail", ms.id.String(), time.Until(deadline))
			continue
		}
		for !slices.ContainsFunc(d.ours.Mailservers(), func(u string) bool { return strings.Contains(u, mailPub(t, ms)) }) {
			if time.Now().After(deadline) {
				t.Fatalf("%s did not find the mailserver: %v", d.name, d.ours.Mailservers())
			}
			time.Sleep(20 * time.Millisecond)
		}
		msURL = d.ours.Mailservers()[0]
	}
	t.Logf("every node found the mailserver (%s) within %v", msURL, time.Since(start).Round(time.Millisecond))

	// A message posted on one node reaches all twenty.
	sym := mustSymKey(t, "status")
	topic := whisper.TopicFromName("status")
	for _, d := range all {
		if d.ours != nil {
			d.sub = subscribeOurs(t, d.ours, whisper.Filter{Topics: []whisper.Topic{topic}, SymKey: sym})
		} else {
			f, err := d.ref.Subscribe(topic, sym.Bytes(), nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			d.filter = f
		}
	}
	expectAll := func(text string) time.Duration {
		posted := time.Now()
		for _, d := range all {
			if d.dead {
				continue
			}
			if d.ours != nil {
				if m := next(t, d.sub); string(m.Payload) != text {
					t.Fatalf("%s got %q, want %q", d.name, m.Payload, text)
				}
				continue
			}
			if m := d.ref.WaitMessage(t, msgTimeout); string(m.Payload) != text {
				t.Fatalf("%s got %q, want %q", d.name, m.Payload, text)
			}
		}
		return time.Since(posted)
	}
	post(t, all[5].ours, &whisper.MessageParams{Topic: topic, KeySym: sym, Payload: []byte("hello twenty"), PoW: 0.002})
	t.Logf("a message from %s reached all 20 nodes in %v", all[5].name, expectAll("hello twenty").Round(time.Millisecond))

	// Kill five of ours (not the bootnode).
	var victims []*discNode
	for _, d := range all[1:] {
		if d.ours != nil {
			victims = append(victims, d)
		}
	}
	// The victims are those most of our pools dialled.
	dialledBy := map[enode.ID]int{}
	for _, d := range all {
		if d.ours == nil {
			continue
		}
		for _, ts := range d.ours.DiscoveryStatus().Topics {
			if ts.Topic == node.TopicWhisper {
				for _, id := range ts.Peers {
					dialledBy[id]++
				}
			}
		}
	}
	sort.SliceStable(victims, func(i, j int) bool { return dialledBy[victims[i].id] > dialledBy[victims[j].id] })
	victims = victims[:5]
	var killed []string
	killedAt := time.Now()
	for _, v := range victims {
		killed = append(killed, fmt.Sprintf("%s (%d peers, in %d pools)", v.name, v.whisperPeers(t), dialledBy[v.id]))
		v.kill(t)
	}
	t.Logf("killed %v", killed)
	var survivors []*discNode
	for _, d := range all {
		if d.ours != nil && !d.dead {
			survivors = append(survivors, d)
		}
	}
	// Our pools replace the lost peers within the fast-search period: every survivor
	// whose pool lost a peer it had dialled is back at two pool peers in time.
	poolPeers := func(d *discNode) int {
		for _, ts := range d.ours.DiscoveryStatus().Topics {
			if ts.Topic == node.TopicWhisper {
				return ts.Connected
			}
		}
		return 0
	}
	affected, back := map[string]bool{}, map[string]time.Duration{}
	var settled time.Time
	for ; ; time.Sleep(10 * time.Millisecond) {
		all2 := true
		for _, d := range survivors {
			if c := poolPeers(d); c < 2 {
				all2 = false
				affected[d.name] = true
				delete(back, d.name)
			} else if _, ok := back[d.name]; affected[d.name] && !ok {
				back[d.name] = time.Since(killedAt)
			}
		}
		switch {
		case time.Since(killedAt) > peers.DefaultFastModeTimeout:
			t.Fatalf("30 s after the kill some pools are below 2: affected %v, back %v", affected, back)
		case !all2:
			settled = time.Time{}
		case settled.IsZero():
			settled = time.Now()
		case time.Since(settled) > time.Second: // no late drop
			var rtimes []time.Duration
			for _, d := range back {
				rtimes = append(rtimes, d)
			}
			t.Logf("after the kill, %d of our %d survivors lost pool peers; each was back at 2 after: %s", len(affected), len(survivors), dist(rtimes))
			if len(affected) == 0 {
				t.Fatal("killing the five best-connected nodes affected no pool: the test proves nothing")
			}
		}
		if !settled.IsZero() && time.Since(settled) > time.Second {
			break
		}
	}
	waitMin(survivors, killedAt, peers.DefaultFastModeTimeout)
	post(t, all[0].ours, &whisper.MessageParams{Topic: topic, KeySym: sym, Payload: []byte("hello fifteen"), PoW: 0.002})
	t.Logf("a message from the bootnode reached all 15 survivors in %v", expectAll("hello fifteen").Round(time.Millisecond))
}

func (d *discNode) kill(t *testing.T) {
	if d.ours == nil || d.dead {
		return
	}
	d.dead = true
	d.stop()
	select {
	case err := <-d.done:
		if err != nil {
			t.Errorf("%s: %v", d.name, err)
		}
	case <-time.After(15 * time.Second):
		t.Errorf("%s did not stop", d.name)
	}
}

// mailPub is the mailserver's public key as in its enode URL.
func mailPub(t *testing.T, d *discNode) string {
	u, _, _ := strings.Cut(strings.TrimPrefix(d.ref.Enode(), "enode://"), "@")
	return u
}

// dist describes durations: n, min, median, p90, max.
func dist(ds []time.Duration) string {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return "none"
	}
	q := func(p float64) time.Duration { return s[int(p*float64(len(s)-1)+0.5)].Round(time.Millisecond) }
	return fmt.Sprintf("n=%d min %v, median %v, p90 %v, max %v", len(s), q(0), q(0.5), q(0.9), q(1))
}
