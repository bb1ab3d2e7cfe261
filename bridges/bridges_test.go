package bridges_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/statusgate/statusgate/bridges"
)

// The example connector below shows the shape of a connector package in one file: the
// compile-time guards that list its surface, a constructor without I/O, Run that serves
// one session and reports state, Send and one capability (Editor). It is an example
// of the pattern, not a fake server: its "network" is an in-memory list of lines.
var (
	_ bridges.Connector = (*Connector)(nil)
	_ bridges.Editor    = (*Connector)(nil)
)

// Connector is an example connector for the network "memo".
type Connector struct {
	mu    sync.Mutex
	up    bool              // a session is connected
	lines map[string]string // local message ID → text, the whole "network"
	next  int
}

// New validates and builds; it does no I/O (STYLE.md rule 9).
func New() *Connector { return &Connector{lines: map[string]string{}} }

// Name implements bridges.Connector.
func (c *Connector) Name() string { return "memo" }

// Capabilities implements bridges.Connector.
func (c *Connector) Capabilities() bridges.Capabilities {
	return bridges.Capabilities{MaxTextLen: 400, EditWindow: 15 * time.Minute}
}

// Run implements bridges.Connector: one session. It "connects", delivers one inbound
// message and serves until ctx ends (nil) or the session fails (why).
func (c *Connector) Run(ctx context.Context, h bridges.Host) error {
	h.ReportState(bridges.StateConnecting, nil)
	c.setUp(true)
	defer c.setUp(false)
	h.ReportState(bridges.StateConnected, nil)
	ch, _ := bridges.NewChannelID("memo", "lobby")
	user, _ := bridges.NewRemoteUserID("memo", "u42")
	id, _ := bridges.NewRemoteMsgID("memo", "m0")
	ev := bridges.Event{
		Kind:   bridges.KindMessage,
		Origin: bridges.Origin{Network: c.Name(), Channel: ch, ID: id},
		Sender: bridges.Sender{ID: user, Name: "ada"},
		Text:   bridges.Escape("2*3 = 6"),
		Time:   time.Unix(0, 0),
	}
	if err := h.Deliver(ctx, ev); err != nil && !bridges.IsPermanent(err) && ctx.Err() == nil {
		// Not persisted: end the session; the next one re-reads it from the network.
		return fmt.Errorf("memo session: %w", err)
	}
	<-ctx.Done()
	return nil
}

func (c *Connector) setUp(up bool) {
	c.mu.Lock()
	c.up = up
	c.mu.Unlock()
}

// Send implements bridges.Connector.
func (c *Connector) Send(ctx context.Context, out bridges.Outbound) (bridges.Receipt, error) {
	if out.Channel.Network() != c.Name() {
		return bridges.Receipt{}, bridges.Permanent(fmt.Errorf("send to %s: foreign channel", out.Channel))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.up {
		return bridges.Receipt{}, fmt.Errorf("send to %s: %w: not connected", out.Channel, bridges.ErrTransient)
	}
	c.next++
	local := fmt.Sprintf("m%d", c.next)
	c.lines[local] = "<" + out.Event.Sender.Name + "> " + out.Event.Text
	id, err := bridges.NewRemoteMsgID(c.Name(), local)
	return bridges.Receipt{ID: id}, err
}

// Edit implements bridges.Editor.
func (c *Connector) Edit(ctx context.Context, out bridges.Outbound) (bridges.Receipt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.lines[out.Target.Local()]; !ok || out.Target.Network() != c.Name() {
		return bridges.Receipt{}, bridges.Permanent(fmt.Errorf("edit %s: no such message", out.Target))
	}
	c.lines[out.Target.Local()] = "<" + out.Event.Sender.Name + "> " + out.Event.Text
	return bridges.Receipt{ID: out.Target}, nil
}

// exampleHost is the smallest Host: it prints what it is given.
type exampleHost struct{ delivered chan<- struct{} }

func (h exampleHost) Deliver(ctx context.Context, ev bridges.Event) error {
	if err := ev.Validate(); err != nil {
		return bridges.Permanent(err)
	}
	fmt.Printf("deliver %s from %s in %s: %s\n", ev.Kind, ev.Sender.Name, ev.Origin.Channel, ev.Text)
	close(h.delivered) // the example goes on once the event is "persisted"
	return nil
}

func (h exampleHost) ReportState(s bridges.State, err error) { fmt.Println("state", s) }
func (h exampleHost) Logger() *slog.Logger                   { return slog.New(slog.DiscardHandler) }

// Example shows both directions through a connector, and how the gateway finds an
// optional capability by type assertion.
func Example() {
	var conn bridges.Connector = New()

	// Inbound: a session (Run, on the gateway's goroutine for the connector) delivers
	// events to the Host until ctx ends.
	ctx, cancel := context.WithCancel(context.Background())
	delivered := make(chan struct{})
	var session sync.WaitGroup
	session.Go(func() { _ = conn.Run(ctx, exampleHost{delivered: delivered}) })
	defer session.Wait()
	defer cancel()
	<-delivered

	// Outbound: a Status message posted to memo:lobby, then edited.
	lobby, _ := bridges.NewChannelID("memo", "lobby")
	statusChat, _ := bridges.NewChannelID("status", "statusgate-dev")
	origin := bridges.Origin{Network: "status", Channel: statusChat, ID: "status:0xabc"}
	msg := bridges.Event{Kind: bridges.KindMessage, Origin: origin, Text: "hello **all**",
		Sender: bridges.Sender{ID: "status:0x04aa", Name: "Brave Blue Whale"}}
	rcpt, err := conn.Send(ctx, bridges.Outbound{Event: msg, Channel: lobby,
		Key: bridges.IdempotencyKey(origin, lobby)})
	fmt.Println("sent", rcpt.ID, err)

	edit := msg
	edit.Kind, edit.Target, edit.Text = bridges.KindEdit, origin.ID, "hello **everyone**"
	edit.Origin.ID = "status:0xdef"
	out := bridges.Outbound{Event: edit, Channel: lobby, Target: rcpt.ID,
		Key: bridges.IdempotencyKey(edit.Origin, lobby)}
	if ed, ok := conn.(bridges.Editor); ok {
		rcpt, err = ed.Edit(ctx, out)
		fmt.Println("edited", rcpt.ID, err)
	}
	if _, ok := conn.(bridges.Reactor); !ok {
		fmt.Println("no reactions: the gateway degrades")
	}
	// Output:
	// state connecting
	// state connected
	// deliver message from ada in memo:lobby: 2\*3 = 6
	// sent memo:m1 <nil>
	// edited memo:m1 <nil>
	// no reactions: the gateway degrades
}
