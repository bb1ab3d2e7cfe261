package bridges

import (
	"errors"
	"strings"
	"testing"
)

func TestIDs_roundTrip(t *testing.T) {
	cases := []struct{ network, local string }{
		{"matrix", "!abc:example.org"}, // local may hold ':'
		{"irc", "libera/#status"},
		{"slack", "T0123/C0456"},
		{"a", "é"},
		{"libera-chat_2", strings.Repeat("x", MaxLocalIDLen)},
	}
	for _, tc := range cases {
		ch, err := NewChannelID(tc.network, tc.local)
		if err != nil {
			t.Fatalf("NewChannelID(%q, %q): %v", tc.network, tc.local, err)
		}
		u, err := NewRemoteUserID(tc.network, tc.local)
		if err != nil {
			t.Fatalf("NewRemoteUserID: %v", err)
		}
		m, err := NewRemoteMsgID(tc.network, tc.local)
		if err != nil {
			t.Fatalf("NewRemoteMsgID: %v", err)
		}
		for _, got := range [][3]string{
			{ch.Network(), ch.Local(), ch.String()},
			{u.Network(), u.Local(), u.String()},
			{m.Network(), m.Local(), m.String()},
		} {
			if got[0] != tc.network || got[1] != tc.local || got[2] != tc.network+":"+tc.local {
				t.Errorf("round trip of (%q, %q) = %q", tc.network, tc.local, got)
			}
		}
		if ch.Validate() != nil || u.Validate() != nil || m.Validate() != nil {
			t.Errorf("Validate rejects built ID %q", ch)
		}
	}
}

func TestIDs_rejectBadInput(t *testing.T) {
	cases := []struct{ name, network, local string }{
		{"empty network", "", "x"},
		{"empty local", "irc", ""},
		{"upper-case network", "IRC", "x"},
		{"network starts with digit", "1rc", "x"},
		{"colon in network", "ir:c", "x"},
		{"long network", strings.Repeat("n", MaxNetworkLen+1), "x"},
		{"long local", "irc", strings.Repeat("x", MaxLocalIDLen+1)},
		{"newline in local", "irc", "a\nb"},
		{"NUL in local", "irc", "a\x00b"},
		{"C1 control in local", "irc", "a\u0085b"},
		{"invalid UTF-8", "irc", "a\xffb"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewChannelID(tc.network, tc.local); !errors.Is(err, ErrInvalidID) {
				t.Errorf("NewChannelID err = %v, want ErrInvalidID", err)
			}
			if _, err := NewRemoteUserID(tc.network, tc.local); !errors.Is(err, ErrInvalidID) {
				t.Errorf("NewRemoteUserID err = %v, want ErrInvalidID", err)
			}
			if _, err := NewRemoteMsgID(tc.network, tc.local); !errors.Is(err, ErrInvalidID) {
				t.Errorf("NewRemoteMsgID err = %v, want ErrInvalidID", err)
			}
			raw := tc.network + ":" + tc.local
			if strings.Contains(tc.network, ":") {
				return // raw is a valid ID of another network ("ir" + "c:x")
			}
			if err := ChannelID(raw).Validate(); !errors.Is(err, ErrInvalidID) {
				t.Errorf("Validate(%q) = %v, want ErrInvalidID", raw, err)
			}
			if n, l := RemoteMsgID(raw).Network(), RemoteMsgID(raw).Local(); n != "" || l != "" {
				t.Errorf("accessors of invalid %q = (%q, %q), want empty", raw, n, l)
			}
		})
	}
	for _, raw := range []string{"", "nocolon", ":x", "irc:"} {
		if err := RemoteUserID(raw).Validate(); !errors.Is(err, ErrInvalidID) {
			t.Errorf("Validate(%q) = %v, want ErrInvalidID", raw, err)
		}
	}
}
