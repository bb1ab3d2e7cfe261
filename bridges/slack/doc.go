// Package slack is the Slack connector: it relays between the gateway and the channels
// of one Slack workspace, as one Slack app.
//
// Transport: Socket Mode (slack-go's socketmode client over the app-level xapp- token)
// receives message events; the Web API over the bot xoxb- token posts. Run checks the
// bot token with auth.test, reports StateBadCredentials and retries every few minutes
// when Slack rejects a token, and otherwise keeps a Socket Mode connection up,
// reconnecting with backoff. Every envelope is acknowledged only after Host.Deliver
// accepted its event, so an envelope lost to a restart is re-sent by Slack.
//
// Slack → gateway: plain messages, thread replies (ReplyTo the thread root, also for
// "also send to channel"), /me messages (KindAction), edits (message_changed →
// KindEdit) and deletes (message_deleted → KindDelete), with mrkdwn converted to
// canonical text and mentions resolved through users.info (cached, bounded). Posts of
// our own bot carry Sender.IsBridge so that the gateway drops them.
//
// Gateway → Slack: chat.postMessage with the Status author's name as username and,
// when Config.IconURLBase is set, an icon_url per author (needs chat:write.customize);
// threads through thread_ts; edits through chat.update and deletes through
// chat.delete. Rate limiting, 429 handling and idempotency: handle_gateway.go.
//
// IDs: id.go. Text conversion: convert.go.
//
// The package imports only the standard library, bridges, slack-go and
// golang.org/x/time/rate. Its tests run against test/slackfake, a stateful fake of the
// Web API and Socket Mode: Slack is a hosted service and cannot run here.
package slack
