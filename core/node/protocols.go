package node

import (
	"fmt"
	"slices"
	"sort"

	"github.com/ethereum/go-ethereum/p2p"

	"github.com/statusgate/statusgate/core/waku"
	"github.com/statusgate/statusgate/core/whisper"
)

// The protocols a node speaks (node.protocols).
const (
	// ProtocolShh is Whisper v6, shh/6: geth v1.9.20 and the Status clients of 2019.
	ProtocolShh = "shh"
	// ProtocolWaku is Waku, waku/1 (and waku/0 for peers that offer only it): the
	// Status clients and mailservers from mid-2020 on.
	ProtocolWaku = "waku"
)

// DefaultProtocols is both generations: the node carries envelopes between them.
var DefaultProtocols = []string{ProtocolShh, ProtocolWaku}

// Limits are one protocol's per-peer limits (node.limits.shh, node.limits.waku); zero
// fields take whisper.PeerLimits' defaults. The inbound ones are advertised to Waku
// peers (options 4 and 6).
type Limits struct {
	// PacketsPerSecond and PacketBurst bound the packets a peer may send us; more are
	// dropped and counted. Defaults 100 and 200.
	PacketsPerSecond float64 `yaml:"packets_per_second"`
	PacketBurst      int     `yaml:"packet_burst"`
	// BytesPerSecond and ByteBurst bound the bytes a peer may send us. Defaults 4 MiB/s
	// and 16 MiB (at least the max message size).
	BytesPerSecond float64 `yaml:"bytes_per_second"`
	ByteBurst      int     `yaml:"byte_burst"`
	// SendPacketsPerSecond and SendPacketBurst bound the envelope packets eager
	// forwarding sends a peer (lowered to what the peer advertises). Defaults 50 and 20.
	SendPacketsPerSecond float64 `yaml:"send_packets_per_second"`
	SendPacketBurst      int     `yaml:"send_packet_burst"`
}

// PeerLimits is l as whisper's.
func (l Limits) PeerLimits() whisper.PeerLimits {
	return whisper.PeerLimits{PacketsPerSecond: l.PacketsPerSecond, PacketBurst: l.PacketBurst, BytesPerSecond: l.BytesPerSecond,
		ByteBurst: l.ByteBurst, SendPacketsPerSecond: l.SendPacketsPerSecond, SendPacketBurst: l.SendPacketBurst}
}

// validateProtocols checks node.protocols, node.limits and node.waku.
func validateProtocols(protocols []string, limits map[string]Limits, w waku.Config) error {
	if len(protocols) == 0 {
		return fmt.Errorf("protocols: empty (want %q, %q or both)", ProtocolShh, ProtocolWaku)
	}
	for i, p := range protocols {
		if p != ProtocolShh && p != ProtocolWaku {
			return fmt.Errorf("protocols[%d]: %q (want %q or %q)", i, p, ProtocolShh, ProtocolWaku)
		}
		if slices.Index(protocols, p) != i {
			return fmt.Errorf("protocols[%d]: %q repeated", i, p)
		}
	}
	names := make([]string, 0, len(limits))
	for name := range limits {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if name != ProtocolShh && name != ProtocolWaku {
			return fmt.Errorf("limits.%s: not a protocol (want %q or %q)", name, ProtocolShh, ProtocolWaku)
		}
		if err := limits[name].PeerLimits().Validate(); err != nil {
			return fmt.Errorf("limits.%s: %w", name, err)
		}
	}
	return w.Validate()
}

// protocols registers the node's wires with its service and returns their p2p
// protocols. Waku gossips when a node speaks both with us (the higher preference):
// its topic interest is exact.
func (n *Node) protocols() []p2p.Protocol {
	var out []p2p.Protocol
	for _, name := range n.cfg.Protocols {
		switch name {
		case ProtocolShh:
			l := n.cfg.Whisper.Limits
			if pl, ok := n.cfg.Limits[ProtocolShh]; ok {
				l = pl.PeerLimits()
			}
			out = append(out, n.shh.Protocol(whisper.ShhWire(), whisper.WireConfig{Limits: l}))
		case ProtocolWaku:
			l := n.cfg.Whisper.Limits
			if pl, ok := n.cfg.Limits[ProtocolWaku]; ok {
				l = pl.PeerLimits()
			}
			out = append(out, waku.Protocols(n.shh, n.cfg.Waku, whisper.WireConfig{Limits: l, Preference: 1})...)
		}
	}
	return out
}
