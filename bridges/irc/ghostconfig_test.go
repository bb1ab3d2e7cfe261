package irc

import (
	"errors"
	"testing"
	"time"
)

// TestConfig_puppetsIsGhosts: the former key puppets is read as ghosts, with a
// deprecation; both at once are refused.
func TestConfig_puppetsIsGhosts(t *testing.T) {
	old := Config{Server: "irc.example.org:6697", Nick: "sg", Channels: []ChannelConfig{{Name: "#a"}},
		Puppets: &GhostsConfig{Enabled: true, Max: 3, IdleTimeout: time.Minute}}
	if err := old.Validate(); err != nil {
		t.Fatal(err)
	}
	if g := old.withDefaults().Ghosts; !g.Enabled || g.Max != 3 || g.IdleTimeout != time.Minute || g.NickSuffix != DefaultGhostsNickSuffix {
		t.Errorf("puppets read as ghosts %+v", g)
	}
	if d := old.Deprecated(); len(d) != 1 {
		t.Errorf("deprecations %q", d)
	}
	both := old
	both.Ghosts = GhostsConfig{Enabled: true}
	if err := both.Validate(); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("puppets and ghosts: %v", err)
	}
	if d := (Config{}).Deprecated(); d != nil {
		t.Errorf("deprecations of a new config: %q", d)
	}
}
