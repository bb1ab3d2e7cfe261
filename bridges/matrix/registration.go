package matrix

import (
	"crypto/rand"
	"encoding/hex"
	"regexp"

	"maunium.net/go/mautrix/appservice"
)

// GenerateRegistration returns cfg with fresh as_token and hs_token (32 random bytes
// each, hex) and the registration.yaml content for them, for the homeserver's
// app_service_api.config_files. The caller writes the tokens into the bridge config and
// the YAML next to the homeserver. Only the registration keys of cfg are checked
// (server_name, listen, url, bot_localpart, ghost_prefix, registration_id).
func GenerateRegistration(cfg Config) (yaml []byte, withTokens Config, err error) {
	cfg.ASToken, err = randomToken()
	if err != nil {
		return nil, Config{}, err
	}
	if cfg.HSToken, err = randomToken(); err != nil {
		return nil, Config{}, err
	}
	yaml, err = RegistrationYAML(cfg)
	return yaml, cfg, err
}

// RegistrationYAML returns the registration.yaml content for cfg's own tokens: id,
// url, as_token, hs_token, sender_localpart = bot_localpart, rate_limited false, and
// the exclusive namespaces @<ghost_prefix>.*:<server_name> (users) and
// #<ghost_prefix>.*:<server_name> (aliases).
func RegistrationYAML(cfg Config) ([]byte, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validateRegistration(); err != nil {
		return nil, err
	}
	if cfg.ASToken == "" || cfg.HSToken == "" || cfg.ASToken == cfg.HSToken {
		return nil, badKey("hs_token", "as_token and hs_token must be set and differ")
	}
	// rate_limited false: the homeserver does not rate-limit the bot and the ghosts. The
	// gateway bounds what reaches the homeserver itself (per-sender flood control at
	// ingest, Config.NewGhostsPerMinute, one ordered outbox per room), and the
	// homeserver's own limits are per user: with them, a burst of one busy Status user
	// would get M_LIMIT_EXCEEDED and sit in the room's outbox behind its retries.
	rateLimited := false
	reg := &appservice.Registration{
		ID: cfg.RegistrationID, URL: cfg.URL, AppToken: cfg.ASToken, ServerToken: cfg.HSToken,
		SenderLocalpart: cfg.BotLocalpart, RateLimited: &rateLimited,
	}
	ns := regexp.QuoteMeta(cfg.GhostPrefix) + ".*:" + regexp.QuoteMeta(cfg.ServerName)
	reg.Namespaces.UserIDs.Register(regexp.MustCompile("@"+ns), true)
	reg.Namespaces.RoomAliases.Register(regexp.MustCompile("#"+ns), true)
	s, err := reg.YAML()
	if err != nil {
		return nil, err
	}
	return []byte(s), nil
}

func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}
