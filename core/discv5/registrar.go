package discv5

import (
	"math"
	"slices"
	"time"

	"github.com/ethereum/go-ethereum/common/mclock"
)

// The registrar's rules, geth's (p2p/discv5/topic.go): a registration lasts an hour
// (fallbackRegistrationExpiry); a ticket may be used from one second before to eleven
// seconds after its issue time plus its wait period (regTimeWindow 10 s plus a margin);
// the wait period of a topic follows a control loop that aims at one registration per
// 12 s (10 min / 50 entries), never below the minimum wait period (geth: one minute).
const (
	registrationTTL   = time.Hour
	regTimeWindow     = 10 // seconds
	wcTargetRegPeriod = 10 * time.Minute / 50
	wcTimeConst       = 10 * time.Minute
)

type regEntry struct {
	topic  Topic
	node   Node
	expire mclock.AbsTime
	seq    uint64 // FIFO order within the topic
}

type regTopic struct {
	entries      []*regEntry // oldest first
	lastIncoming mclock.AbsTime
	waitPeriod   time.Duration
}

type registrant struct {
	entries  map[Topic]*regEntry
	lastUsed uint32
}

// registrar is the topic table of the nodes that registered with us, owned by the loop.
// Its size is bounded by Limits: entries per topic (oldest evicted first), topics per
// node (oldest evicted), and entries in all (the oldest entry of the fullest topic is
// evicted).
type registrar struct {
	lim     Limits
	minWait time.Duration
	topics  map[Topic]*regTopic
	nodes   map[NodeID]*registrant
	total   int
	seq     uint64
	serial  uint32 // ticket serials: one counter for all nodes, so monotonic per node
	stats   *stats
}

func newRegistrar(lim Limits, minWait time.Duration, st *stats) *registrar {
	return &registrar{lim: lim, minWait: minWait, topics: map[Topic]*regTopic{}, nodes: map[NodeID]*registrant{}, stats: st}
}

func (r *registrar) nextWaitPeriod(t *regTopic, now mclock.AbsTime) time.Duration {
	period := now.Sub(t.lastIncoming)
	wp := time.Duration(float64(t.waitPeriod) * math.Exp((float64(wcTargetRegPeriod)-float64(period))/float64(wcTimeConst)))
	return max(wp, r.minWait)
}

// ticket returns a fresh serial and the wait period of each topic, in seconds.
func (r *registrar) ticket(topics []Topic) (serial uint32, waits []uint32) {
	r.serial++
	waits = make([]uint32, len(topics))
	for i, topic := range topics {
		wp := r.minWait
		if t := r.topics[topic]; t != nil && t.waitPeriod > wp {
			wp = t.waitPeriod
		}
		waits[i] = uint32((wp + time.Second - 1) / time.Second)
	}
	return r.serial, waits
}

// use applies a registration: the ticket (our own pong, already authenticated) is valid
// now, so node is added to (or refreshed in) the topic. It reports why not otherwise.
func (r *registrar) use(node Node, p *pong, topics []Topic, idx int, now mclock.AbsTime) dropReason {
	if len(topics) != len(p.WaitPeriods) {
		return dropBadTicket
	}
	topic := topics[idx]
	if len(topic) == 0 || len(topic) > r.lim.MaxTopicLength {
		return dropBadTopic
	}
	reg := r.nodes[node.ID]
	if reg != nil && p.TicketSerial < reg.lastUsed {
		return dropOldTicket // an older ticket than one already used: a replay
	}
	cur := int64(time.Duration(now) / time.Second)
	rel := cur - (int64(p.Expiration) + int64(p.WaitPeriods[idx]))
	if rel < -1 {
		return dropEarlyTicket
	}
	if rel > regTimeWindow+1 {
		return dropLateTicket
	}
	if reg == nil {
		reg = &registrant{entries: map[Topic]*regEntry{}}
		r.nodes[node.ID] = reg
	}
	reg.lastUsed = p.TicketSerial
	if e := reg.entries[topic]; e != nil {
		e.expire = now.Add(registrationTTL) // as geth: refresh without moving in the FIFO
		e.node = node
		return dropNone
	}
	if len(reg.entries) >= r.lim.MaxTopicsPerNode {
		var oldest *regEntry
		for _, e := range reg.entries {
			if oldest == nil || e.seq < oldest.seq {
				oldest = e
			}
		}
		r.remove(oldest)
		r.stats.drop(dropRegEvicted)
	}
	t := r.topics[topic]
	if t == nil {
		if len(r.topics) >= r.lim.MaxTopics {
			return dropTopicTableFull
		}
		t = &regTopic{waitPeriod: r.minWait}
		r.topics[topic] = t
	}
	if len(t.entries) >= r.lim.MaxEntriesPerTopic {
		r.remove(t.entries[0])
		r.stats.drop(dropRegEvicted)
	}
	if r.total >= r.lim.MaxEntries {
		r.evictFullest()
		r.stats.drop(dropRegEvicted)
	}
	r.seq++
	e := &regEntry{topic: topic, node: node, expire: now.Add(registrationTTL), seq: r.seq}
	t = r.topics[topic] // evictions may have deleted it
	if t == nil {
		t = &regTopic{waitPeriod: r.minWait}
		r.topics[topic] = t
	}
	t.entries = append(t.entries, e)
	if r.nodes[node.ID] == nil {
		r.nodes[node.ID] = reg
	}
	reg.entries[topic] = e
	r.total++
	t.waitPeriod = r.nextWaitPeriod(t, now)
	t.lastIncoming = now
	return dropNone
}

func (r *registrar) evictFullest() {
	var fullest *regTopic
	for _, t := range r.topics {
		if fullest == nil || len(t.entries) > len(fullest.entries) {
			fullest = t
		}
	}
	if fullest != nil && len(fullest.entries) > 0 {
		r.remove(fullest.entries[0])
	}
}

func (r *registrar) remove(e *regEntry) {
	if t := r.topics[e.topic]; t != nil {
		if i := slices.Index(t.entries, e); i >= 0 {
			t.entries = slices.Delete(t.entries, i, i+1)
			r.total--
		}
		if len(t.entries) == 0 {
			delete(r.topics, e.topic)
		}
	}
	if reg := r.nodes[e.node.ID]; reg != nil && reg.entries[e.topic] == e {
		delete(reg.entries, e.topic)
		if len(reg.entries) == 0 {
			delete(r.nodes, e.node.ID)
		}
	}
}

// expire drops the registrations that ran out.
func (r *registrar) expire(now mclock.AbsTime) {
	for _, t := range r.topics {
		for _, e := range slices.Clone(t.entries) {
			if e.expire <= now {
				r.remove(e)
			}
		}
	}
}

// entries returns up to n registered nodes of topic, newest first, leaving out skip.
func (r *registrar) entries(topic Topic, n int, skip NodeID, now mclock.AbsTime) []Node {
	t := r.topics[topic]
	if t == nil {
		return nil
	}
	var res []Node
	for i := len(t.entries) - 1; i >= 0 && len(res) < n; i-- {
		if e := t.entries[i]; e.expire > now && e.node.ID != skip {
			res = append(res, e.node)
		}
	}
	return res
}
