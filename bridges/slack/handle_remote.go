package slack

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"

	"github.com/statusgate/statusgate/bridges"
)

// Slack → gateway: Events API events, from Socket Mode envelopes (connector.go) or
// signed HTTP requests (events_http.go), become bridges.Events. Both transports share
// one path: eventOf converts, deliverOnce hands the event to the gateway and classifies
// the outcome; only what the transport then tells Slack differs (ack or not, 200 or
// 500). The Origin of an event depends only on the event itself (channel, ts, event
// ts), so an event Slack sends again is the same Origin and the gateway dedupes it.

// Bounds of the users.info cache.
const (
	userCacheSize = 4096
	userCacheTTL  = time.Hour
	userMissTTL   = time.Minute // an unknown user is asked again after this
)

// handleEnvelope delivers the events of one events_api envelope. It returns true when
// the envelope may be acknowledged: delivered, invalid for good, or of no interest.
// It returns false only when ctx ended before the gateway accepted the event.
func (c *Connector) handleEnvelope(ctx context.Context, h bridges.Host, ev socketmode.Event) bool {
	api, ok := ev.Data.(slackevents.EventsAPIEvent)
	if !ok {
		return true
	}
	out, ok := c.eventOf(ctx, api)
	if !ok {
		return true
	}
	delay := 100 * time.Millisecond
	for {
		err := c.deliverOnce(ctx, h, out)
		switch {
		case err == nil:
			return true
		case ctx.Err() != nil:
			return false
		}
		// Not persisted: retry (blocking the envelope stream is the backpressure).
		h.Logger().Warn("deliver failed; retrying", "chat", out.Origin.Channel, "msg_id", out.Origin.ID, "err", err, "retry_in", delay)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
		delay = min(delay*2, 5*time.Second)
	}
}

// eventOf returns the Event to deliver for an Events API event, whichever transport
// brought it; ok is false for events not relayed (not a message callback, other
// channels, housekeeping subtypes, empty text). It may call users.info.
func (c *Connector) eventOf(ctx context.Context, api slackevents.EventsAPIEvent) (bridges.Event, bool) {
	if api.Type != slackevents.CallbackEvent {
		return bridges.Event{}, false
	}
	msg, ok := api.InnerEvent.Data.(*slackevents.MessageEvent)
	if !ok || msg == nil {
		return bridges.Event{}, false
	}
	return c.convertMessage(ctx, msg)
}

// deliverOnce hands ev to the gateway once. It returns nil when the event may be
// acknowledged to Slack: accepted, or rejected for good (logged); any other error
// means the event was not persisted and must not be acknowledged.
func (c *Connector) deliverOnce(ctx context.Context, h bridges.Host, ev bridges.Event) error {
	err := h.Deliver(ctx, ev)
	switch {
	case err == nil:
		h.Logger().Debug("delivered", "chat", ev.Origin.Channel, "msg_id", ev.Origin.ID, "kind", ev.Kind)
		return nil
	case bridges.IsPermanent(err):
		h.Logger().Warn("event rejected by the gateway", "chat", ev.Origin.Channel, "msg_id", ev.Origin.ID, "err", err)
		return nil
	}
	return err
}

// convertMessage builds the Event for a Slack message event; ok is false for events
// not relayed (other channels, joins and other housekeeping subtypes, empty text).
func (c *Connector) convertMessage(ctx context.Context, m *slackevents.MessageEvent) (bridges.Event, bool) {
	if _, ok := c.channels[m.Channel]; !ok {
		return bridges.Event{}, false
	}
	self := c.self.Load()
	if self == nil {
		return bridges.Event{}, false
	}
	name := c.cfg.Name
	ch, err := channelID(name, m.Channel)
	if err != nil {
		return bridges.Event{}, false
	}
	ev := bridges.Event{Origin: bridges.Origin{Network: name, Channel: ch}, Time: tsTime(m.EventTimeStamp, m.TimeStamp)}
	res := resolveIn{ctx: ctx, c: c}

	switch m.SubType {
	case "", "me_message", "thread_broadcast", "bot_message", "file_share":
		ev.Kind = bridges.KindMessage
		if m.SubType == "me_message" {
			ev.Kind = bridges.KindAction
		}
		if m.BotID != "" && m.BotID != self.bot {
			ev.Kind = bridges.KindNotice // another app's post
		}
		ev.Origin.ID, err = msgID(name, m.Channel, m.TimeStamp)
		if err != nil {
			return bridges.Event{}, false
		}
		if m.ThreadTimeStamp != "" && m.ThreadTimeStamp != m.TimeStamp {
			ev.ReplyTo, _ = msgID(name, m.Channel, m.ThreadTimeStamp)
		}
		ev.Sender = c.sender(ctx, self, m.UserTeam, m.User, m.BotID, m.Username)
		ev.Text = fromMrkdwn(m.Text, res)
	case "message_changed":
		if m.Message == nil || m.PreviousMessage != nil && m.PreviousMessage.Text == m.Message.Text {
			return bridges.Event{}, false // an unfurl or other change that is not an edit
		}
		if e := m.Message.Edited; e != nil && e.User != "" && e.User != m.Message.User {
			// Slack lets only the author edit; an event saying otherwise is not relayed
			// (the gateway checks the author against the message it bridged, too).
			c.log.Load().Warn("edit by someone other than the author not relayed", "chat", m.Channel,
				"ts", m.Message.Timestamp, "author", m.Message.User, "editor", e.User)
			return bridges.Event{}, false
		}
		ev.Kind = bridges.KindEdit
		if ev.Target, err = msgID(name, m.Channel, m.Message.Timestamp); err != nil {
			return bridges.Event{}, false
		}
		if ev.Origin.ID, err = editID(name, m.Channel, m.Message.Timestamp, m.TimeStamp); err != nil {
			return bridges.Event{}, false
		}
		ev.Sender = c.sender(ctx, self, m.Message.Team, m.Message.User, m.Message.BotID, m.Message.Username)
		ev.Text = fromMrkdwn(m.Message.Text, res)
	case "message_deleted":
		ev.Kind = bridges.KindDelete
		if ev.Target, err = msgID(name, m.Channel, m.DeletedTimeStamp); err != nil {
			return bridges.Event{}, false
		}
		if ev.Origin.ID, err = deleteID(name, m.Channel, m.DeletedTimeStamp); err != nil {
			return bridges.Event{}, false
		}
		if p := m.PreviousMessage; p != nil {
			ev.Sender = c.sender(ctx, self, p.Team, p.User, p.BotID, p.Username)
		} else {
			ev.Sender = c.sender(ctx, self, "", "", "", "")
		}
	default:
		return bridges.Event{}, false
	}
	if ev.Kind != bridges.KindDelete && strings.TrimSpace(ev.Text) == "" {
		return bridges.Event{}, false // a file without a caption, say
	}
	return ev, true
}

// sender builds the Sender of a message by user (or, for an app's post, bot). Our own
// bot's posts get IsBridge, so the gateway drops them (loop prevention).
func (c *Connector) sender(ctx context.Context, self *identity, team, user, bot, username string) bridges.Sender {
	if team == "" {
		team = self.team
	}
	var s bridges.Sender
	switch {
	case bot != "" && bot == self.bot, user != "" && user == self.user:
		s.ID, _ = userID(c.cfg.Name, self.team, self.user)
		s.Name, s.IsBridge = username, true
	case user != "":
		s.ID, _ = userID(c.cfg.Name, team, user)
		s.Name = c.userName(ctx, user)
	case bot != "":
		s.ID, _ = userID(c.cfg.Name, team, bot)
		s.Name = username
	default: // Slack itself
		s.ID, _ = userID(c.cfg.Name, team, "USLACKBOT")
		s.Name = "Slackbot"
	}
	return s
}

// userName returns the display name of user, from the cache or users.info; "" when
// Slack does not say (the gateway then shows the ID).
func (c *Connector) userName(ctx context.Context, user string) string {
	if name, ok := c.users.get(user, c.now()); ok {
		return name
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	u, err := c.api.GetUserInfoContext(ctx, user)
	if err != nil {
		c.log.Load().Debug("users.info failed", "user", user, "err", err)
		c.users.put(user, "", c.now().Add(userMissTTL))
		return ""
	}
	name := u.Profile.DisplayName
	if name == "" {
		name = u.Profile.RealName
	}
	if name == "" {
		name = u.Name
	}
	c.users.put(user, name, c.now().Add(userCacheTTL))
	return name
}

// resolveIn resolves mentions inside one inbound message.
type resolveIn struct {
	ctx context.Context
	c   *Connector
}

func (r resolveIn) userName(id string) string {
	if !validSlackID(id) {
		return ""
	}
	return r.c.userName(r.ctx, id)
}

// tsTime parses the first valid Slack ts ("1795423259.000100") of tss.
func tsTime(tss ...string) time.Time {
	for _, ts := range tss {
		sec, frac, _ := strings.Cut(ts, ".")
		s, err := strconv.ParseInt(sec, 10, 64)
		if err != nil {
			continue
		}
		us, _ := strconv.ParseInt((frac + "000000")[:6], 10, 64)
		return time.Unix(s, us*1000).UTC()
	}
	return time.Time{}
}

// userCache is a bounded map of display names with expiry. When full, it evicts an
// arbitrary entry: the cache only saves users.info calls.
type userCache struct {
	mu   sync.Mutex
	max  int
	ttl  time.Duration
	byID map[string]cachedName
}

type cachedName struct {
	name    string
	expires time.Time
}

func newUserCache(max int, ttl time.Duration) *userCache {
	return &userCache{max: max, ttl: ttl, byID: make(map[string]cachedName)}
}

func (u *userCache) get(id string, now time.Time) (string, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	e, ok := u.byID[id]
	if !ok || now.After(e.expires) {
		return "", false
	}
	return e.name, true
}

func (u *userCache) put(id, name string, expires time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if _, ok := u.byID[id]; !ok && len(u.byID) >= u.max {
		for k := range u.byID { // evict one arbitrary entry
			delete(u.byID, k)
			break
		}
	}
	u.byID[id] = cachedName{name, expires}
}

func (u *userCache) len() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.byID)
}
