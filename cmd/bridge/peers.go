package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/statusgate/statusgate/core/node"
	"github.com/statusgate/statusgate/core/whisper"
)

// peersReport is the body of the admin server's /peers and what `bridge peers` prints.
type peersReport struct {
	Peers     []peerReport    `json:"peers"`
	Discovery discoveryReport `json:"discovery"`
}

type peerReport struct {
	ID       string   `json:"id"`
	Name     string   `json:"name"`
	Addr     string   `json:"addr"`
	Protocol string   `json:"protocol"`
	Also     []string `json:"also,omitempty"`
	Trusted  bool     `json:"trusted,omitempty"`
	Light    bool     `json:"light,omitempty"`
}

type discoveryReport struct {
	On          bool                   `json:"on"`
	Searching   bool                   `json:"searching"`
	Table       int                    `json:"table"`
	Registered  []string               `json:"registered,omitempty"`
	Topics      map[string]topicReport `json:"topics,omitempty"`
	Mailservers []string               `json:"mailservers,omitempty"`
	Dropped     map[string]uint64      `json:"dropped,omitempty"`
}

type topicReport struct {
	Min       int    `json:"min"`
	Max       int    `json:"max"`
	Connected int    `json:"connected"`
	Pending   int    `json:"pending"`
	Mode      string `json:"mode"`
}

func reportPeers(nd *node.Node) peersReport {
	r := peersReport{Peers: []peerReport{}}
	for _, p := range nd.Peers() {
		r.Peers = append(r.Peers, peerInfoReport(p))
	}
	sort.Slice(r.Peers, func(i, j int) bool { return r.Peers[i].ID < r.Peers[j].ID })
	r.Discovery = reportDiscovery(nd)
	return r
}

func peerInfoReport(p whisper.PeerInfo) peerReport {
	return peerReport{ID: p.ID.String(), Name: p.Name, Addr: p.RemoteAddr, Protocol: p.Protocol, Also: p.Also, Trusted: p.Trusted,
		Light: p.LightNode}
}

func reportDiscovery(nd *node.Node) discoveryReport {
	st := nd.DiscoveryStatus()
	d := discoveryReport{On: st.On, Searching: st.Searching, Table: st.Table, Registered: st.Registered}
	if !st.On {
		return d
	}
	d.Topics = map[string]topicReport{}
	for _, t := range st.Topics {
		d.Topics[string(t.Topic)] = topicReport{Min: t.Limits.Min, Max: t.Limits.Max, Connected: t.Connected,
			Pending: t.Pending, Mode: string(t.Mode)}
	}
	d.Mailservers = nd.Mailservers()
	d.Dropped = st.Discv5.Drops
	return d
}

// discoveryCollector exports topic discovery and the peer pool to Prometheus.
type discoveryCollector struct{ nd *node.Node }

var (
	descTopicPeers = prometheus.NewDesc("statusgate_discovery_topic_peers",
		"Peers of a discovery topic kept by the peer pool (candidates for a cache-only topic).", []string{"topic"}, nil)
	descTopicMin = prometheus.NewDesc("statusgate_discovery_topic_min_peers", "The topic's minimum peers.", []string{"topic"}, nil)
	descTopicMax = prometheus.NewDesc("statusgate_discovery_topic_max_peers", "The topic's maximum peers.", []string{"topic"}, nil)
	descSearch   = prometheus.NewDesc("statusgate_discovery_search_mode",
		"1 for the topic's current search mode (fast, slow, paused).", []string{"topic", "mode"}, nil)
	descSearching = prometheus.NewDesc("statusgate_discovery_searching", "1 while any topic search runs, 0 when all are paused or discovery is off.", nil, nil)
	descTable     = prometheus.NewDesc("statusgate_discovery_table_nodes", "Nodes in the topic discovery table.", nil, nil)
	descDropped   = prometheus.NewDesc("statusgate_discovery_dropped_total", "Discovery input refused, by reason.", []string{"reason"}, nil)
)

func (c discoveryCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descTopicPeers, descTopicMin, descTopicMax, descSearch, descSearching, descTable, descDropped} {
		ch <- d
	}
}

func (c discoveryCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.nd.DiscoveryStatus()
	ch <- prometheus.MustNewConstMetric(descSearching, prometheus.GaugeValue, b2f(st.Searching))
	ch <- prometheus.MustNewConstMetric(descTable, prometheus.GaugeValue, float64(st.Table))
	for _, t := range st.Topics {
		name := string(t.Topic)
		count := t.Connected
		if t.CacheOnly {
			count = len(t.Candidates)
		}
		ch <- prometheus.MustNewConstMetric(descTopicPeers, prometheus.GaugeValue, float64(count), name)
		ch <- prometheus.MustNewConstMetric(descTopicMin, prometheus.GaugeValue, float64(t.Limits.Min), name)
		ch <- prometheus.MustNewConstMetric(descTopicMax, prometheus.GaugeValue, float64(t.Limits.Max), name)
		for _, m := range []string{"fast", "slow", "paused"} {
			ch <- prometheus.MustNewConstMetric(descSearch, prometheus.GaugeValue, b2f(string(t.Mode) == m), name, m)
		}
	}
	for reason, n := range st.Discv5.Drops {
		ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(n), reason)
	}
}

// protocolCollector exports the envelopes of each protocol (shh, waku) and those
// relayed between them to Prometheus.
type protocolCollector struct{ nd *node.Node }

var (
	descProtocolPeers = prometheus.NewDesc("statusgate_protocol_peers",
		"Connected peers by the protocol they exchange envelopes on.", []string{"protocol"}, nil)
	descProtocolReceived = prometheus.NewDesc("statusgate_envelopes_received_total",
		"New envelopes accepted from peers, by protocol.", []string{"protocol"}, nil)
	descProtocolSent = prometheus.NewDesc("statusgate_envelopes_sent_total",
		"Envelopes sent to peers, by protocol and where they came from (local, or the protocol they arrived on): "+
			"from another protocol than the one sent on, they were relayed between network generations.", []string{"protocol", "from"}, nil)
	descSignerRecoveries = prometheus.NewDesc("statusgate_signer_recoveries_total",
		"Signatures whose signer the node recovered (libsecp256k1), envelopes and Status payloads alike: "+
			"done, or answered by its cache of those it recovered or made (whisper.Signers).", []string{"how"}, nil)
)

func (c protocolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descProtocolPeers, descProtocolReceived, descProtocolSent, descSignerRecoveries} {
		ch <- d
	}
}

func (c protocolCollector) Collect(ch chan<- prometheus.Metric) {
	for _, p := range c.nd.Whisper().Stats().Protocols {
		ch <- prometheus.MustNewConstMetric(descProtocolPeers, prometheus.GaugeValue, float64(p.Peers), p.Name)
		ch <- prometheus.MustNewConstMetric(descProtocolReceived, prometheus.CounterValue, float64(p.Received), p.Name)
		for from, n := range p.SentFrom {
			ch <- prometheus.MustNewConstMetric(descProtocolSent, prometheus.CounterValue, float64(n), p.Name, from)
		}
	}
	sg := c.nd.Signers().Stats()
	ch <- prometheus.MustNewConstMetric(descSignerRecoveries, prometheus.CounterValue, float64(sg.Recovered), "recovered")
	ch <- prometheus.MustNewConstMetric(descSignerRecoveries, prometheus.CounterValue, float64(sg.Reused), "cached")
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// runPeers is `bridge peers`: it asks the running gateway's admin server (http.listen)
// for its peers and discovery state and prints them.
func runPeers(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("peers", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "configuration file (default: the embedded config.example.yaml)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, "bridge:", err)
		return exitConfig
	}
	if cfg.HTTP.Listen == "" {
		fmt.Fprintln(stderr, "bridge peers: http.listen is not set: the gateway serves its peers there")
		return exitConfig
	}
	host, port, err := net.SplitHostPort(cfg.HTTP.Listen)
	if err != nil {
		fmt.Fprintln(stderr, "bridge peers: http.listen:", err)
		return exitConfig
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(host, port)+"/peers", nil)
	if err != nil {
		fmt.Fprintln(stderr, "bridge peers:", err)
		return exitFail
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(stderr, "bridge peers: is the gateway running?", err)
		return exitFail
	}
	defer resp.Body.Close()
	var r peersReport
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(stderr, "bridge peers:", resp.Status)
		return exitFail
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&r); err != nil {
		fmt.Fprintln(stderr, "bridge peers: bad answer:", err)
		return exitFail
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(r)
		return exitOK
	}
	printPeers(stdout, r)
	return exitOK
}

func printPeers(w io.Writer, r peersReport) {
	fmt.Fprintf(w, "peers: %d\n", len(r.Peers))
	for _, p := range r.Peers {
		var flags []string
		if p.Trusted {
			flags = append(flags, "trusted")
		}
		if p.Light {
			flags = append(flags, "light")
		}
		proto := p.Protocol
		if len(p.Also) > 0 {
			proto += " (also " + strings.Join(p.Also, ", ") + ")"
		}
		fmt.Fprintf(w, "  %s %s %s %q %s\n", p.ID, p.Addr, proto, p.Name, strings.Join(flags, ","))
	}
	d := r.Discovery
	if !d.On {
		fmt.Fprintln(w, "topic discovery: off")
		return
	}
	state := "searching"
	if !d.Searching {
		state = "paused (every topic at its maximum)"
	}
	fmt.Fprintf(w, "topic discovery: %s, table %d nodes, advertising %s\n", state, d.Table, strings.Join(d.Registered, ", "))
	names := make([]string, 0, len(d.Topics))
	for t := range d.Topics {
		names = append(names, t)
	}
	sort.Strings(names)
	for _, t := range names {
		tr := d.Topics[t]
		fmt.Fprintf(w, "  %-12s %d connected (min %d, max %d), %d pending, search %s\n", t, tr.Connected, tr.Min, tr.Max, tr.Pending, tr.Mode)
	}
	if len(d.Mailservers) > 0 {
		fmt.Fprintf(w, "mailservers found: %d\n", len(d.Mailservers))
		for _, m := range d.Mailservers {
			fmt.Fprintf(w, "  %s\n", m)
		}
	}
}
