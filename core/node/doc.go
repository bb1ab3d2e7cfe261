// Package node runs a Status node's devp2p host: a go-ethereum p2p.Server carrying the
// shh/6 protocol of core/whisper, with a persistent node key, a listen address, static
// peers, bootnodes and trusted peers (mailservers) from configuration.
//
// It adapts p2p.Server's Start/Stop lifecycle to Run(ctx) and offers a small API to the
// layers above: Subscribe, Post, Peers, AddPeer and settings changes (PoW requirement,
// bloom filter). It knows nothing of Status payloads (core/chat) or bridges.
package node
