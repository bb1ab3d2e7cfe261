package discv5

import "sync/atomic"

// dropReason names why a packet, a ticket, a registration or a found node was refused.
type dropReason int

const (
	dropNone           dropReason = iota
	dropBadPacket                 // too small, bad prefix, bad RLP, unknown type
	dropBadSignature              // the signature does not recover a key
	dropQueueFull                 // the loop's inbound queue was full
	dropExpired                   // ping/findnode/neighbors past its expiration
	dropUnsolicited               // a pong, neighbors or topicNodes nobody asked for
	dropUnbonded                  // a query from a node that has not proven its address
	dropWrongAddr                 // a packet from another address than the node's
	dropBadNode                   // a relayed node that is invalid or may not be relayed
	dropNodeLimit                 // the node records are full
	dropTooManyTopics             // a ping with more topics than Limits.MaxPingTopics
	dropBadTicket                 // a topicRegister whose ticket is not ours or inconsistent
	dropOldTicket                 // a ticket older than one the node already used
	dropEarlyTicket               // a ticket used before its wait period
	dropLateTicket                // a ticket used after its window
	dropBadTopic                  // an empty or too long topic
	dropTopicTableFull            // no room for another topic
	dropRegEvicted                // a registration evicted to make room
	dropTicketTooFar              // a ticket from a registrar whose wait exceeds MaxTicketWait
	dropFoundFull                 // a found node the searcher's channel had no room for
	dropSelf                      // a packet claiming our own key
	numDropReasons
)

var dropNames = [numDropReasons]string{
	"none", "bad_packet", "bad_signature", "queue_full", "expired", "unsolicited", "unbonded",
	"wrong_addr", "bad_node", "node_limit", "too_many_topics", "bad_ticket", "old_ticket",
	"early_ticket", "late_ticket", "bad_topic", "topic_table_full", "registration_evicted",
	"ticket_too_far", "found_full", "self",
}

func (d dropReason) String() string { return dropNames[d] }

type stats struct {
	in, out atomic.Uint64
	drops   [numDropReasons]atomic.Uint64
}

func (s *stats) drop(d dropReason) {
	if d != dropNone {
		s.drops[d].Add(1)
	}
}

// Stats is a snapshot of a Network's counters and state.
type Stats struct {
	PacketsIn, PacketsOut uint64
	// Drops counts refused input by reason (bad_packet, queue_full, early_ticket, …).
	Drops map[string]uint64
	// TableNodes is the number of bonded nodes in the Kademlia table; Nodes the node
	// records kept (bounded by Limits.MaxNodes).
	TableNodes, Nodes int
	// Registrations is how many registrations of other nodes we hold, per topic.
	Registrations map[Topic]int
	// Registered is, per topic we advertise, how many registrars we believe hold our
	// registration (the protocol has no acknowledgement), and Tickets how many tickets
	// wait for their period.
	Registered, Tickets map[Topic]int
	// Searches are the topics searched, with their current period.
	Searches map[Topic]string
}

// Dropped is the total of Drops.
func (s Stats) Dropped() uint64 {
	var n uint64
	for _, v := range s.Drops {
		n += v
	}
	return n
}
