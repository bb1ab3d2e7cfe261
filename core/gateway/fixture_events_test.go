package gateway

import (
	"time"

	"github.com/statusgate/statusgate/bridges"
)

// v1FixtureEvents are the events of testdata/ledger-v1.db, a SQLite ledger written by
// the gateway before the ledger body was versioned (bodies: json.Marshal of
// bridges.Event, Kind as its number). One of each Kind, with every field used. The file
// also holds a join (Kind 6) and a part (Kind 7) of api:carol, kinds the contract has
// since dropped (v1JoinPartRows). The file
// was made once at commit e7ad007 (store.IngestEvents of these events, each body
// json.Marshal(&ev) as gateway.ingest wrote it then, pending for "status:status" with
// Clock 1700000000000+i, or for "api:status"); it is kept as it is, never regenerated.
func v1FixtureEvents() []bridges.Event {
	at := time.Date(2026, 12, 5, 21, 4, 5, 123456789, time.FixedZone("CET", 3600))
	api := func(id string) bridges.RemoteMsgID { return bridges.RemoteMsgID("api:status/" + id) }
	return []bridges.Event{
		{Kind: bridges.KindMessage, Origin: bridges.Origin{Network: "api", Channel: "api:status", ID: api("m1")},
			Sender: bridges.Sender{ID: "api:alice", Name: "Alice ✓"}, Text: "hello **world** 👋\nline two", Time: at},
		{Kind: bridges.KindMessage, Origin: bridges.Origin{Network: "api", Channel: "api:status", ID: api("m2")},
			Sender: bridges.Sender{ID: "api:bob"}, Text: "an answer", ReplyTo: api("m1"), Time: at.Add(time.Second)},
		{Kind: bridges.KindAction, Origin: bridges.Origin{Network: "api", Channel: "api:status", ID: api("a1")},
			Sender: bridges.Sender{ID: "api:bob", Name: "Bob"}, Text: "waves", Time: at.Add(2 * time.Second)},
		{Kind: bridges.KindEdit, Origin: bridges.Origin{Network: "api", Channel: "api:status", ID: api("e1")},
			Sender: bridges.Sender{ID: "api:alice", Name: "Alice ✓"}, Text: "hello again", Target: api("m1"), Time: at.Add(3 * time.Second)},
		{Kind: bridges.KindDelete, Origin: bridges.Origin{Network: "api", Channel: "api:status", ID: api("d1")},
			Sender: bridges.Sender{ID: "api:alice"}, Target: api("m1"), Time: at.Add(4 * time.Second)},
		{Kind: bridges.KindReaction, Origin: bridges.Origin{Network: "api", Channel: "api:status", ID: api("r1")},
			Sender: bridges.Sender{ID: "api:bob"}, Target: api("m2"), Reaction: "👍", Time: at.Add(5 * time.Second)},
		{Kind: bridges.KindNotice, Origin: bridges.Origin{Network: "api", Channel: "api:status", ID: api("n1")},
			Sender: bridges.Sender{ID: "api:bot", Name: "bot", IsBridge: false}, Text: "maintenance at 10", Time: at.Add(8 * time.Second)},
		{Kind: bridges.KindMessage, Origin: bridges.Origin{Network: "status", Channel: "status:status", ID: "status:0xabc123"},
			Sender: bridges.Sender{ID: "status:0x04aa", Name: "Moral Overdue Bushviper"}, Text: "from Status", Time: at.Add(9 * time.Second)},
	}
}

// v1JoinPartRows is how many rows of testdata/ledger-v1.db hold a join or a part.
const v1JoinPartRows = 2
