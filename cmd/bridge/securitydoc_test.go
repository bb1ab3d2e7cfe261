package main

import (
	"cmp"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/statusgate/statusgate/bridges"
	"github.com/statusgate/statusgate/bridges/api"
	"github.com/statusgate/statusgate/bridges/irc"
	"github.com/statusgate/statusgate/bridges/matrix"
	"github.com/statusgate/statusgate/bridges/slack"
	"github.com/statusgate/statusgate/core/chat"
	"github.com/statusgate/statusgate/core/gateway"
	"github.com/statusgate/statusgate/core/mailserver"
	"github.com/statusgate/statusgate/core/ratchet"
	"github.com/statusgate/statusgate/core/status"
	"github.com/statusgate/statusgate/core/whisper"
	"github.com/statusgate/statusgate/store"
)

// TestSecurityDoc_limitsMatchCode holds docs/security.md § Limits and defaults to the
// code (issue 15: "every limit with its default"). Every row of its tables must be
// listed here: a configuration key's default is read from the defaults `bridge run`
// applies to a configuration without it AND from config.example.yaml (the two must
// agree), an exported constant from its package, and each must appear, formatted as
// the doc writes numbers ("10,000", "256 MiB", "5 min"), in the row's default cell.
// Rows whose bound is an unexported literal of another package, or a policy without a
// number, are listed with where they were checked by hand, so that a new row must be
// placed in one list or the other.
func TestSecurityDoc_limitsMatchCode(t *testing.T) {
	rows := securityDocLimits(t)
	def, err := loadConfig(writeConfig(t, "data_dir: "+t.TempDir()+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	ex, err := loadConfig("") // the embedded config.example.yaml
	if err != nil {
		t.Fatal(err)
	}
	// same is the value of a configuration key after defaults, which config.example.yaml
	// must give too.
	same := func(key string, f func(c *Config) any) any {
		d, e := f(def), f(ex)
		if fmt.Sprint(d) != fmt.Sprint(e) {
			t.Errorf("%s: default %v, config.example.yaml %v", key, d, e)
		}
		return d
	}
	apiOf := func(c *Config) api.Config { return c.Connectors.API.Config }
	checked := map[string][]string{
		"`node.max_peers`": {fmtInt(same("node.max_peers", func(c *Config) any { return c.Node.MaxPeers }))},
		"shh status handshake (`whisper.Config.HandshakeTimeout`; not a setting, as the RLPx one before it)": {fmtSecs(whisper.DefaultHandshakeTimeout)},
		"`node.max_message_size`": {fmtSize(same("node.max_message_size", func(c *Config) any { return c.Node.MaxMessageSize })),
			"at most " + fmtSize(whisper.MaxMessageSize)},
		"`node.min_pow`": {fmtNum(same("node.min_pow", func(c *Config) any { return *c.Node.MinPoW }))},
		"signers remembered per node (`whisper.SignerCacheSize`)": {fmtInt(whisper.SignerCacheSize)},
		"envelope TTL (`whisper.Config.MaxTTL`)":                  {fmtSecs(time.Duration(whisper.DefaultMaxTTL) * time.Second)},
		"Status text":                                             {fmtInt(chat.MaxTextLength) + " characters"},
		"claimed timestamp (`status.MaxTimestampDrift`)":          {fmtMins(status.MaxTimestampDrift)},
		"Lamport clock of a received message":                     {fmt.Sprintf("now + %d days", chat.ClockCapAhead/(24*time.Hour))},
		"`mailserver.max_response_bytes`": {fmtSize(same("mailserver.max_response_bytes", func(c *Config) any { return c.Mailserver.MaxResponseBytes })),
			fmtSize(mailserver.DefaultMaxResponseBytes)},
		"`mailserver.max_limit`": {fmtInt(same("mailserver.max_limit", func(c *Config) any { return c.Mailserver.MaxLimit })) + " envelopes"},
		"`mailserver.requests_per_second`, `request_burst`": {
			fmtNum(same("mailserver.requests_per_second", func(c *Config) any { return c.Mailserver.RequestsPerSecond })) + "/s",
			fmtInt(same("mailserver.request_burst", func(c *Config) any { return c.Mailserver.RequestBurst })) + " per peer"},
		"`mailserver.global_requests_per_second`, `global_request_burst`": {
			fmtNum(same("mailserver.global_requests_per_second", func(c *Config) any { return c.Mailserver.GlobalRequestsPerSecond })) + "/s",
			", " + fmtInt(same("mailserver.global_request_burst", func(c *Config) any { return c.Mailserver.GlobalRequestBurst }))},
		"`mailserver.min_pow`": {fmtNum(same("mailserver.min_pow", func(c *Config) any { return *c.Mailserver.MinPoW })),
			fmtNum(mailserver.DefaultRequestPoW)},
		"`mailserver.retention_days`": {fmtInt(same("mailserver.retention_days", func(c *Config) any { return c.Mailserver.RetentionDays }))},
		"`mailserver.max_archive_bytes`": {fmtSize(same("mailserver.max_archive_bytes", func(c *Config) any { return c.Mailserver.MaxArchiveBytes })),
			fmtSize(mailserver.DefaultMaxArchiveBytes)},
		"canonical text of an event (`bridges.MaxTextLen`)": {fmtSize(bridges.MaxTextLen)},
		"`gateway.max_parts`":                               {fmtInt(same("gateway.max_parts", func(c *Config) any { return cmp.Or(c.Gateway.MaxParts, gateway.DefaultMaxParts) })) + " messages"},
		"`gateway.rate_limit.per_second`, `burst`": {
			fmtNum(same("gateway.rate_limit.per_second", func(c *Config) any { return cmp.Or(c.Gateway.RateLimit.PerSecond, gateway.DefaultRatePerSecond) })) + "/s",
			fmtInt(same("gateway.rate_limit.burst", func(c *Config) any { return cmp.Or(c.Gateway.RateLimit.Burst, gateway.DefaultRateBurst) })) + " per sender"},
		"`gateway.rate_limit.new_senders_per_minute`": {fmtInt(same("gateway.rate_limit.new_senders_per_minute", func(c *Config) any {
			return cmp.Or(c.Gateway.RateLimit.NewSendersPerMinute, gateway.DefaultNewSendersPerMin)
		})) + " per network"},
		"`gateway.rate_limit.max_senders`": {fmtInt(same("gateway.rate_limit.max_senders", func(c *Config) any {
			return cmp.Or(c.Gateway.RateLimit.MaxSenders, gateway.DefaultMaxSenders)
		})) + " buckets"},
		"`gateway.queue_limit`": {fmtInt(same("gateway.queue_limit", func(c *Config) any { return c.Gateway.QueueLimit })) + " pending"},
		"`gateway.max_attempts`, `retry_min`, `retry_max`, `attempt_timeout`": {
			fmtInt(same("gateway.max_attempts", func(c *Config) any { return c.Gateway.MaxAttempts })) + ", " +
				fmtSecs(same("gateway.retry_min", func(c *Config) any { return c.Gateway.RetryMin }).(time.Duration)) + ", " +
				fmtMins(same("gateway.retry_max", func(c *Config) any { return c.Gateway.RetryMax }).(time.Duration)) + ", " +
				fmtSecs(same("gateway.attempt_timeout", func(c *Config) any { return c.Gateway.AttemptTimeout }).(time.Duration))},
		"`gateway.ledger_retention_days`":    {fmtInt(same("gateway.ledger_retention_days", func(c *Config) any { return c.Gateway.LedgerRetentionDays }))},
		"`gateway.ledger_max_bytes`":         {fmtSize(same("gateway.ledger_max_bytes", func(c *Config) any { return c.Gateway.LedgerMaxBytes }))},
		"Matrix: `new_ghosts_per_minute`":    {fmtInt(matrix.DefaultNewGhostsPerMinute)},
		"Slack: `rate_per_channel`, `burst`": {fmtNum(slack.DefaultRatePerChannel) + "/s, " + fmtInt(slack.DefaultBurst)},
		"IRC: `flood_rate`, `flood_burst`, `queue_size`, `max_lines`": {fmt.Sprintf("%s lines/s, %d, %d, %d lines",
			fmtNum(irc.DefaultFloodRate), irc.DefaultFloodBurst, irc.DefaultQueueSize, irc.DefaultMaxLines)},
		"IRC: `ghosts.max`, `ghosts.idle_timeout` (formerly `puppets.`)": {fmtInt(irc.DefaultGhostsMax) + " connections, " + fmtMins(irc.DefaultGhostsIdleTimeout)},
		// The api's section leaves zeros to bridges/api: its Default constants are the
		// defaults, and config.example.yaml must not set other values.
		"api: `max_body_bytes`": {fmtSize(same("connectors.api.max_body_bytes", func(c *Config) any {
			return cmp.Or(apiOf(c).MaxBodyBytes, api.DefaultMaxBodyBytes)
		}))},
		"api: `replay`, `replay_bytes` per channel": {
			fmtInt(same("connectors.api.replay", func(c *Config) any { return cmp.Or(apiOf(c).Replay, api.DefaultReplay) })) + " events",
			fmtSize(same("connectors.api.replay_bytes", func(c *Config) any { return cmp.Or(apiOf(c).ReplayBytes, api.DefaultReplayBytes) }))},
		"api: `rate_limit.per_second`, `burst`": {
			fmtNum(same("connectors.api.rate_limit.per_second", func(c *Config) any { return cmp.Or(apiOf(c).RateLimit.PerSecond, api.DefaultRatePerSecond) })) + "/s",
			fmtInt(same("connectors.api.rate_limit.burst", func(c *Config) any { return cmp.Or(apiOf(c).RateLimit.Burst, api.DefaultRateBurst) })) + " for all"},
		"api: `rate_limit.user_per_second`, `user_burst`, `max_users`": {
			fmtNum(same("connectors.api.rate_limit.user_per_second", func(c *Config) any {
				return cmp.Or(apiOf(c).RateLimit.UserPerSecond, api.DefaultUserRatePerSecond)
			})) + "/s",
			fmtInt(same("connectors.api.rate_limit.user_burst", func(c *Config) any { return cmp.Or(apiOf(c).RateLimit.UserBurst, api.DefaultUserRateBurst) })) + " per user",
			fmtInt(same("connectors.api.rate_limit.max_users", func(c *Config) any { return cmp.Or(apiOf(c).RateLimit.MaxUsers, api.DefaultMaxUsers) })) + " buckets"},
		"api: `subscriber_buffer`": {fmtInt(same("connectors.api.subscriber_buffer", func(c *Config) any {
			return cmp.Or(apiOf(c).SubscriberBuffer, api.DefaultSubscriberBuffer)
		})) + " events"},
		"admin (`http.listen`)": {fmtSecs(adminLimits.readHeader) + " | " + fmtSecs(adminLimits.read) + " | " + fmtSecs(adminLimits.write) + " | " +
			fmtSecs(adminLimits.idle) + " | " + fmtSize(adminLimits.maxHeaderBytes)},
		"installations per identity (`ratchet.MaxInstallations`)":              {fmtInt(ratchet.MaxInstallations)},
		"message keys per session (`ratchet.DefaultMaxMessageKeysPerSession`)": {fmtInt(ratchet.DefaultMaxMessageKeysPerSession)},
		"keys one message may skip (`ratchet.DefaultMaxSkip`)":                 {fmtInt(ratchet.DefaultMaxSkip)},
		"a stored message key (`ratchet.DefaultMaxKeep`)":                      {fmtInt(ratchet.DefaultMaxKeep) + " newer keys"},
		"old chains per session (`ratchet.DefaultOldChains`)":                  {"+ " + fmtInt(ratchet.DefaultOldChains)},
		"peer identities per identity (`ratchet.DefaultMaxPeers`)":             {fmtInt(ratchet.DefaultMaxPeers)},
		"bundle-back answers (`ratchet.DefaultBundleBackInterval`)":            {fmt.Sprintf("per %d h", ratchet.DefaultBundleBackInterval/time.Hour)},
		"work one sender may cause (`ratchet.DefaultSenderWorkPerMinute`, `DefaultSenderWorkBurst`): X3DH sessions it starts, rows its bundles write": {
			fmtInt(ratchet.DefaultSenderWorkPerMinute) + " a minute, burst " + fmtInt(ratchet.DefaultSenderWorkBurst) + " per sender"},
		"our replaced signed prekeys (`ratchet.DefaultPrekeysKept`, `DefaultPrekeyRetention`; replaced at most every 24 h)": {
			"the newest " + fmtInt(ratchet.DefaultPrekeysKept) + " whatever their age",
			fmt.Sprintf("%d days after replaced", ratchet.DefaultPrekeyRetention/(24*time.Hour))},
		"X3DH messages kept while the work budgets are spent (`ratchet.DefaultDeferredMessages`, `DefaultDeferredBytes`, `DefaultDeferredPerSender`)": {
			fmtInt(ratchet.DefaultDeferredMessages) + " messages, " + fmtSize(ratchet.DefaultDeferredBytes) + "; " +
				fmtInt(ratchet.DefaultDeferredPerSender) + " messages and " +
				fmtSize(ratchet.DefaultDeferredBytes*ratchet.DefaultDeferredPerSender/ratchet.DefaultDeferredMessages) + " per sender"},
		"the same work, all senders (`ratchet.DefaultWorkPerMinute`, `DefaultWorkBurst`)": {
			fmtInt(ratchet.DefaultWorkPerMinute) + " a minute, burst " + fmtInt(ratchet.DefaultWorkBurst)},
		"new negotiated secrets, each a topic key to derive (PBKDF2) (`ratchet.DefaultNewSecretsPerMinute`, `DefaultNewSecretsBurst`)": {
			fmtInt(ratchet.DefaultNewSecretsPerMinute) + " a minute, burst " + fmtInt(ratchet.DefaultNewSecretsBurst)},
		"1:1 message ids remembered across restarts (`store.SeenMax`, `store.SeenRetention`)": {fmtInt(store.SeenMax) + " rows",
			fmt.Sprintf("%d days", store.SeenRetention/(24*time.Hour))},
		"`store.max_bytes` (SQLite only)": {fmt.Sprintf("%d: none", same("store.max_bytes", func(c *Config) any { return c.Store.MaxBytes }))},
	}
	// Checked by hand against the source (2026-12, issue 15 review): unexported
	// literals of other packages, and policies without a number.
	byHand := map[string]string{
		"RLPx and devp2p hello handshake (go-ethereum's `p2p`, fixed)":                    "go-ethereum p2p/transport.go handshakeTimeout = 5 * time.Second",
		"envelope pool (`whisper.Config.MaxPoolBytes`)":                                   "core/whisper/service.go withDefaults: 256 << 20; pool.go pooledOverhead = 256",
		"envelopes known per peer (`whisper.maxKnown`)":                                   "core/whisper/peer.go maxKnown = 1 << 16",
		"inbound per peer (`whisper.PeerLimits`)":                                         "core/whisper/peer.go PeerLimits.withDefaults: 100, 200, 4 << 20, 16 << 20",
		"outbound per peer (`whisper.PeerLimits.SendPacketsPerSecond`, eager forwarding)": "core/whisper/peer.go PeerLimits.withDefaults: 50, 20",
		"decrypt queue and subscription buffers (`whisper.Config.QueueSize`)":             "core/whisper/service.go withDefaults: 1024",
		"message ids remembered per chat (`status.Config.DedupeWindow`)":                  "core/status/status.go withDefaults: 10000",
		"concurrent requests":                              "core/mailserver/server.go ServerConfig.withDefaults: MaxConcurrentRequests 4, BusyTimeout 10 s (MaxTrackedPeers 1024)",
		"archive write queue":                              "core/mailserver/server.go ServerConfig.withDefaults: ArchiveQueue 4096",
		"ingest and mark writer queues":                    "core/gateway/committer.go commitQueue = 1024",
		"puppet keys cached for loop prevention":           "core/gateway/status.go oursLimit = 50_000",
		"edits and deletes":                                "policy: core/gateway/gateway.go mayChange",
		"Matrix: transaction body":                         "bridges/matrix/http.go maxTxnBody = 32 << 20",
		"Matrix: transaction IDs remembered":               "bridges/matrix/connector.go maxRecentTxns = 4096",
		"Matrix: ghosts named and given an avatar, cached": "bridges/matrix/connector.go maxGhosts = 8192",
		"Matrix: mautrix's appservice caches (an intent and a client per ghost, the state store's registrations and memberships)": "bridges/matrix/connector.go maxStateEntries = 16384",
		"Matrix: `formatted_body` converted":                      "bridges/matrix/convert.go maxHTMLLen = 64 << 10, maxHTMLDepth = 32",
		"Matrix: text sent (`Capabilities.MaxTextLen`)":           "bridges/matrix/connector.go Capabilities: MaxTextLen 24 << 10",
		"Slack: Events API body":                                  "bridges/slack/events_http.go maxEventBody = 1 << 20",
		"Slack: event IDs remembered":                             "bridges/slack/events_http.go recentEvents = 10000",
		"Slack: refused (unsigned, badly signed, stale) requests": "policy: bridges/slack events_http.go, one line a minute",
		"Matrix appservice":                                       "bridges/matrix/connector.go listenerLimits: 10 s, 60 s, 90 s, 2 min, 16 << 10",
		"Slack Events API":                                        "bridges/slack/events_http.go limits: 10 s, 30 s, 30 s, 2 min, 64 << 10",
		"api":                                                     "bridges/api/connector.go serverLimits: 10 s, 30 s, 45 s, 2 min, 16 << 10",
		"key files (node key, gateway secret, API and admin tokens, Matrix registration)": "keyfile: 0600 in 0700, fsynced (keyfile tests)",
		"the configuration file":             "keyfile.Replace 0600; security.go warns",
		"SQLite database, `-wal`, `-shm`":    "store/sqlite.go: 0600 (TestOpen_sqliteFilesPrivate)",
		"sessions per peer installation":     "core/ratchet/ratchet.go sessionsKept = 8 (TestRatchetStore: keep)",
		"negotiated-topic keys kept derived": "core/ratchet/work.go symKeyCacheEntries = 1024; workSenders = 4096",
	}
	for _, r := range rows {
		want, ok := checked[r.limit]
		if !ok {
			if _, ok := byHand[r.limit]; !ok {
				t.Errorf("docs/security.md limit %q (default %q) is checked neither here nor by hand: add it to one list", r.limit, r.def)
			}
			continue
		}
		delete(checked, r.limit)
		for _, w := range want {
			if !strings.Contains(r.def, w) {
				t.Errorf("docs/security.md limit %s: default %q does not say %q, which the code has", r.limit, r.def, w)
			}
		}
	}
	for limit := range checked {
		t.Errorf("limit %q is checked here but no longer in docs/security.md", limit)
	}
}

type docLimit struct{ limit, def string }

// securityDocLimits returns the rows of docs/security.md § Limits and defaults: the
// first cell and the rest (the HTTP listeners' table has its bounds in several cells,
// joined with " | ").
func securityDocLimits(t *testing.T) []docLimit {
	t.Helper()
	b, err := os.ReadFile("../../docs/security.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	start := strings.Index(doc, "\n## Limits and defaults\n")
	end := strings.Index(doc, "\n## What the gateway cannot prevent\n")
	if start < 0 || end < start {
		t.Fatal("docs/security.md: no § Limits and defaults before § What the gateway cannot prevent")
	}
	var rows []docLimit
	for _, line := range strings.Split(doc[start:end], "\n") {
		if !strings.HasPrefix(line, "| ") || strings.HasPrefix(line, "| limit |") || strings.HasPrefix(line, "| listener |") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "| "), " | ")
		if len(cells) < 3 {
			t.Fatalf("docs/security.md: row %q has fewer than 3 cells", line)
		}
		def := cells[1]
		if len(cells) > 4 { // the listeners' table: read header … header bytes
			def = strings.Join(cells[1:len(cells)-1], " | ")
		}
		rows = append(rows, docLimit{cells[0], def})
	}
	if len(rows) < 40 {
		t.Fatalf("docs/security.md: %d limit rows parsed, expected more", len(rows))
	}
	return rows
}

// fmtInt formats an integer as the doc does: 25, 1,024, 10,000.
func fmtInt(v any) string {
	s := fmt.Sprint(v)
	if len(s) <= 4 { // "4096" is written 4,096 too
		if len(s) == 4 {
			return s[:1] + "," + s[1:]
		}
		return s
	}
	var out []string
	for len(s) > 3 {
		out = append([]string{s[len(s)-3:]}, out...)
		s = s[:len(s)-3]
	}
	return strings.Join(append([]string{s}, out...), ",")
}

// fmtNum formats a float as the doc does: 0.001, 0.000002, 1, 2.
func fmtNum(v any) string {
	var f float64
	switch x := v.(type) {
	case float64:
		f = x
	case int:
		f = float64(x)
	default:
		return fmt.Sprint(v)
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// fmtSize formats a byte count that is a whole number of KiB, MiB or GiB: "256 MiB".
func fmtSize(v any) string {
	var b int64
	switch x := v.(type) {
	case int:
		b = int64(x)
	case int64:
		b = x
	case uint32:
		b = int64(x)
	default:
		return fmt.Sprint(v)
	}
	for _, u := range []struct {
		name string
		n    int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if b >= u.n && b%u.n == 0 {
			return fmt.Sprintf("%d %s", b/u.n, u.name)
		}
	}
	return fmtInt(b)
}

func fmtSecs(d time.Duration) string { return fmt.Sprintf("%d s", int(d/time.Second)) }
func fmtMins(d time.Duration) string { return fmt.Sprintf("%d min", int(d/time.Minute)) }
