package slack

import (
	"testing"
	"time"

	"github.com/statusgate/statusgate/bridges"
	"github.com/statusgate/statusgate/bridges/bridgestest"
	"github.com/statusgate/statusgate/test/slackfake"
)

// wait is the deadline of every wait in these tests.
const wait = 10 * time.Second

// Channel IDs of the fake workspace.
const (
	chGeneral = "C0GENERAL"
	chDev     = "C0DEV"
	chOther   = "C0OTHER" // exists on Slack, not served by the connector
)

// newFake starts a fake workspace with channels and users alice and bob.
func newFake(t testing.TB) *slackfake.Server {
	fake := slackfake.New(t, chGeneral, chDev, chOther)
	fake.AddUser("U0ALICE", "Alice")
	fake.AddUser("U0BOB", "Bob")
	return fake
}

func testConfig(fake *slackfake.Server) Config {
	return Config{
		BotToken: slackfake.BotToken, AppToken: slackfake.AppToken, APIURL: fake.APIURL(),
		Channels:       []string{chGeneral, chDev},
		RatePerChannel: 1000, Burst: 100, // tests of rate limiting set their own
	}
}

// running is a connector started by start.
type running struct {
	c    *Connector
	host *bridgestest.Host
	stop func() // cancels Run and waits for it to return
}

// start builds a connector from cfg, runs it in sessions as the gateway does
// (bridgestest.Start) until the test ends (or stop) and waits until it is connected,
// unless noWait.
func start(t *testing.T, cfg Config, noWait bool) *running {
	t.Helper()
	return startWith(t, cfg, noWait, nil)
}

// startWith is start with edit, if not nil, changing the connector before Run.
func startWith(t *testing.T, cfg Config, noWait bool, edit func(*Connector)) *running {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if edit != nil {
		edit(c)
	}
	host := bridgestest.NewHost(c.Name())
	host.Timeout = wait
	runner := bridgestest.Start(t, c, host)
	stop := func() {
		if err := runner.Stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	if !noWait {
		host.WaitState(t, bridges.StateConnected)
	}
	return &running{c: c, host: host, stop: stop}
}

func mustChannel(t *testing.T, ch string) bridges.ChannelID {
	t.Helper()
	id, err := channelID(DefaultName, ch)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func mustMsg(t *testing.T, ch, ts string) bridges.RemoteMsgID {
	t.Helper()
	id, err := msgID(DefaultName, ch, ts)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// statusOutbound is an Outbound as the gateway builds it for a Status message.
func statusOutbound(ch bridges.ChannelID, kind bridges.Kind, id, text string) bridges.Outbound {
	o := bridges.Origin{Network: "status", Channel: "status:#test", ID: bridges.RemoteMsgID("status:" + id)}
	return bridges.Outbound{
		Event: bridges.Event{
			Kind: kind, Origin: o, Text: text, Time: time.Now(),
			Sender: bridges.Sender{ID: "status:0x04abcdef", Name: "Carol"},
		},
		Channel: ch,
		Key:     bridges.IdempotencyKey(o, ch),
	}
}
