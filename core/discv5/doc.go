// Package discv5 is go-ethereum v1.9.20's experimental p2p/discv5 topic discovery (the
// 2016–2019 "temporary discovery v5" protocol, not today's discv5/ENR), written anew and
// wire-compatible with it: Kademlia over UDP with ping/pong bonding, findnodeHash and
// neighbors, and topic advertisement by tickets — a registrar hands out a signed ticket in
// its pong, the registrant waits the ticket's period and sends it back in a topicRegister,
// and searchers ask nodes near a topic with topicQuery. Status nodes of 2019 registered
// "whisper" (every node) and "whispermail" (mailservers) this way.
//
// A Network owns one UDP socket (or a share of one, see Conn) and runs one event loop
// (Run) that owns all state: the node table, bonds, the registrar's topic table, the
// registrant's tickets and the searches. A reader goroutine decodes and authenticates
// packets (the signature recovery is the costly part) and hands them to the loop through
// a bounded queue. Everything a remote party can make us keep is bounded by Limits, and
// every packet we refuse is counted in Stats by reason.
//
// Where geth's behaviour is a choice of the node rather than the wire (how registrars are
// picked, how often a node is queried, how long a registration lasts), this package says
// so at the constant; the wire formats and the registrar's ticket rules follow geth.
package discv5
