package slack

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/statusgate/statusgate/bridges"
)

// Gateway → Slack: Send, Edit and Redact.
//
// Rate limits: every call waits for its channel's token bucket (Config.RatePerChannel,
// Config.Burst) within ctx, so a busy channel blocks its outbox goroutine
// (backpressure) and nothing is dropped. A 429 answer records Retry-After for the
// channel and returns an error wrapping bridges.ErrTransient at once; the gateway
// retries the same Outbound, and that attempt (like any other call for the channel)
// first sleeps, within its ctx, until Retry-After has passed.
//
// Idempotency: chat.postMessage takes no client transaction ID. Each post carries
// Outbound.Key in its message metadata (event type metadataEvent). When an attempt
// ends without a clear answer from Slack (a timeout, a dropped connection: the post
// may have landed), the retry first looks for the key among the channel's latest
// historyScan messages (conversations.history) and returns the message found instead
// of posting again. This memory of uncertain keys lives in the process: a retry after
// a restart, or after more than historyScan newer messages, may post twice. A key whose
// post succeeded is remembered too (bridges.SentKeys, the latest maxUncertain): a
// second Send of it returns the first Receipt and posts nothing.

const (
	metadataEvent = "statusgate_relay"
	historyScan   = 50
	maxUncertain  = 10000
)

// Send posts out.Event to out.Channel with chat.postMessage, as out.Event.Sender
// (username and, with Config.IconURLBase, icon_url).
func (c *Connector) Send(ctx context.Context, out bridges.Outbound) (bridges.Receipt, error) {
	ch, err := c.destination(out.Channel)
	if err != nil {
		return bridges.Receipt{}, err
	}
	if r, ok := c.sent.Get(ch + " " + out.Key); ok && out.Key != "" {
		return r, nil // posted already: a retry after a lost answer
	}
	if found, ok := c.findUncertain(ctx, ch, out.Key); ok {
		return bridges.Receipt{ID: found}, nil
	}
	if err := c.wait(ctx, ch); err != nil {
		return bridges.Receipt{}, err
	}
	text := toMrkdwn(out.Event.Text)
	if out.Event.Kind == bridges.KindAction {
		text = "_" + escapeSlack(out.Event.Sender.Name) + " " + text + "_"
	}
	text = truncate(text, maxTextLen)
	opts := []slack.MsgOption{slack.MsgOptionText(text, false)}
	if name := out.Event.Sender.Name; name != "" {
		opts = append(opts, slack.MsgOptionUsername(name))
	}
	if c.cfg.IconURLBase != "" && out.Event.Sender.ID != "" {
		opts = append(opts, slack.MsgOptionIconURL(c.cfg.IconURLBase+url.PathEscape(string(out.Event.Sender.ID))))
	}
	if out.ReplyTo != "" {
		if rch, ts, ok := parseMsgID(c.cfg.Name, out.ReplyTo); ok && rch == ch {
			opts = append(opts, slack.MsgOptionTS(ts))
		}
	}
	if out.Key != "" {
		opts = append(opts, slack.MsgOptionMetadata(slack.SlackMetadata{
			EventType: metadataEvent, EventPayload: map[string]any{"key": out.Key},
		}))
	}
	_, ts, err := c.api.PostMessageContext(ctx, ch, opts...)
	if err != nil {
		if out.Key != "" && uncertain(err) {
			c.setUncertain(out.Key, true)
		}
		return bridges.Receipt{}, c.classify(ch, "post to", err)
	}
	c.setUncertain(out.Key, false)
	id, err := msgID(c.cfg.Name, ch, ts)
	if err != nil {
		return bridges.Receipt{}, bridges.Permanent(fmt.Errorf("post to %s: bad ts %q: %w", ch, ts, err))
	}
	if out.Key != "" {
		c.sent.Put(ch+" "+out.Key, bridges.Receipt{ID: id})
	}
	c.log.Load().Debug("sent", "chat", out.Channel, "msg_id", id)
	return bridges.Receipt{ID: id}, nil
}

// Edit replaces the text of out.Target with chat.update. Slack keeps the message's
// username and icon.
func (c *Connector) Edit(ctx context.Context, out bridges.Outbound) (bridges.Receipt, error) {
	ch, ts, err := c.target(out)
	if err != nil {
		return bridges.Receipt{}, err
	}
	if err := c.wait(ctx, ch); err != nil {
		return bridges.Receipt{}, err
	}
	text := truncate(toMrkdwn(out.Event.Text), maxTextLen)
	if _, _, _, err := c.api.UpdateMessageContext(ctx, ch, ts, slack.MsgOptionText(text, false)); err != nil {
		return bridges.Receipt{}, c.classify(ch, "update message in", err)
	}
	return bridges.Receipt{ID: out.Target}, nil
}

// Redact removes out.Target with chat.delete; a message already gone is success.
func (c *Connector) Redact(ctx context.Context, out bridges.Outbound) error {
	ch, ts, err := c.target(out)
	if err != nil {
		return err
	}
	if err := c.wait(ctx, ch); err != nil {
		return err
	}
	if _, _, err := c.api.DeleteMessageContext(ctx, ch, ts); err != nil {
		var se slack.SlackErrorResponse
		if errors.As(err, &se) && se.Err == "message_not_found" {
			return nil
		}
		return c.classify(ch, "delete message in", err)
	}
	return nil
}

// truncate cuts s to at most n bytes at a rune boundary, ending in "…", and never
// inside an entity such as "&amp;". The gateway splits long texts at
// Capabilities.MaxTextLen first; this only catches what escaping made longer.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	if amp := strings.LastIndexByte(s[:cut], '&'); amp >= 0 && amp > cut-5 && !strings.Contains(s[amp:cut], ";") {
		cut = amp
	}
	return s[:cut] + "…"
}

// destination returns the Slack channel of ch, or a permanent error if it is not one
// of Config.Channels; a transient one while Run is not running.
func (c *Connector) destination(ch bridges.ChannelID) (string, error) {
	id, ok := parseChannelID(c.cfg.Name, ch)
	if _, served := c.channels[id]; !ok || !served {
		return "", bridges.Permanent(fmt.Errorf("slack: channel %s is not served by this connector", ch))
	}
	if !c.running.Load() || c.self.Load() == nil {
		return "", fmt.Errorf("send to %s: %w: not connected", ch, bridges.ErrTransient)
	}
	return id, nil
}

// target returns the channel and ts of out.Target, which must be in out.Channel.
func (c *Connector) target(out bridges.Outbound) (string, string, error) {
	ch, err := c.destination(out.Channel)
	if err != nil {
		return "", "", err
	}
	tch, ts, ok := parseMsgID(c.cfg.Name, out.Target)
	if !ok || tch != ch {
		return "", "", bridges.Permanent(fmt.Errorf("slack: target %q is not a message of %s", out.Target, out.Channel))
	}
	return ch, ts, nil
}

// wait blocks until ch may take another call: after its last Retry-After, then on its
// token bucket. It returns ctx's error wrapped as transient if ctx ends first.
func (c *Connector) wait(ctx context.Context, ch string) error {
	c.mu.Lock()
	until := c.notBefore[ch]
	c.mu.Unlock()
	if d := until.Sub(c.now()); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("wait for %s Retry-After: %w: %w", ch, bridges.ErrTransient, ctx.Err())
		case <-t.C:
		}
	}
	if err := c.channels[ch].Wait(ctx); err != nil {
		return fmt.Errorf("wait for %s rate limit: %w: %w", ch, bridges.ErrTransient, err)
	}
	return nil
}

// permanentErrors are Slack error codes that no retry fixes.
var permanentErrors = map[string]bool{
	"channel_not_found": true, "not_in_channel": true, "is_archived": true, "msg_too_long": true,
	"no_text": true, "message_not_found": true, "cant_update_message": true, "cant_delete_message": true,
	"edit_window_closed": true, "restricted_action": true, "thread_not_found": true, "invalid_blocks": true,
	"missing_scope": true, "not_allowed_token_type": true, "invalid_metadata_format": true,
}

// classify wraps a Web API error: a 429 records Retry-After for ch and is transient;
// Slack's permanent error codes are permanent; everything else is transient.
func (c *Connector) classify(ch, verb string, err error) error {
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		c.mu.Lock()
		c.notBefore[ch] = c.now().Add(rl.RetryAfter)
		c.mu.Unlock()
		c.log.Load().Warn("slack rate limit", "chat", ch, "retry_after", rl.RetryAfter)
		return fmt.Errorf("%s %s: %w: rate limited, retry after %s", verb, ch, bridges.ErrTransient, rl.RetryAfter)
	}
	var se slack.SlackErrorResponse
	if errors.As(err, &se) && permanentErrors[se.Err] {
		return bridges.Permanent(fmt.Errorf("%s %s: %w", verb, ch, err))
	}
	return fmt.Errorf("%s %s: %w: %w", verb, ch, bridges.ErrTransient, err)
}

// uncertain reports whether a failed post may still have landed: no answer from Slack
// at all (as opposed to an error answer or a 429).
func uncertain(err error) bool {
	var rl *slack.RateLimitedError
	var se slack.SlackErrorResponse
	var sc slack.StatusCodeError
	return !errors.As(err, &rl) && !errors.As(err, &se) && !errors.As(err, &sc)
}

func (c *Connector) setUncertain(key string, on bool) {
	if key == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !on {
		delete(c.uncertain, key)
		return
	}
	if len(c.uncertain) >= maxUncertain {
		for k := range c.uncertain { // evict one: its retry may then post twice
			delete(c.uncertain, k)
			break
		}
	}
	c.uncertain[key] = true
}

// findUncertain looks for our post carrying key among the latest messages of ch, when
// an earlier attempt for key ended without an answer. ok is false when there is
// nothing to look for or it was not found (a failed look-up counts as not found).
func (c *Connector) findUncertain(ctx context.Context, ch, key string) (bridges.RemoteMsgID, bool) {
	c.mu.Lock()
	look := key != "" && c.uncertain[key]
	c.mu.Unlock()
	if !look {
		return "", false
	}
	self := c.self.Load()
	hist, err := c.api.GetConversationHistoryContext(ctx, &slack.GetConversationHistoryParameters{
		ChannelID: ch, Limit: historyScan, IncludeAllMetadata: true,
	})
	if err != nil {
		c.log.Load().Debug("history look-up for a retried post failed", "chat", ch, "err", err)
		return "", false
	}
	for _, m := range hist.Messages {
		if m.BotID != self.bot || m.Metadata.EventType != metadataEvent {
			continue
		}
		if k, _ := m.Metadata.EventPayload["key"].(string); k == key {
			id, err := msgID(c.cfg.Name, ch, m.Timestamp)
			if err != nil {
				return "", false
			}
			c.setUncertain(key, false)
			c.log.Load().Info("retried post had landed; not posting again", "chat", ch, "msg_id", id)
			return id, true
		}
	}
	return "", false
}
