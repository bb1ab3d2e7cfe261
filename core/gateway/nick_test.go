package gateway

import (
	"strings"
	"testing"
)

// expandNick matches strings.NewReplacer on the three placeholders, which it replaced:
// one pass, left to right, values never expanded again, other braces kept.
func TestExpandNickMatchesReplacer(t *testing.T) {
	values := [][3]string{
		{"alice", "irc", "#status"},
		{"{network}", "{nick}", "{channel}"}, // values that look like placeholders
		{"", "", ""},
		{"bob{", "matrix", "!room:example.org"},
	}
	formats := []string{
		"<{nick}> ", "<{nick}@{network}> ", "[{channel}] {nick}: ", "", "no placeholders",
		"{nick}{nick}", "{{nick}}", "{nick", "{", "}{", "{unknown} {nick}", "{network}{channel}{nick}",
		"{ni{nick}ck}", "ünïcode {nick} ✓",
	}
	for _, v := range values {
		r := strings.NewReplacer("{nick}", v[0], "{network}", v[1], "{channel}", v[2])
		for _, f := range formats {
			if got, want := expandNick(f, v[0], v[1], v[2]), r.Replace(f); got != want {
				t.Errorf("expandNick(%q, %q) = %q, want %q", f, v, got, want)
			}
		}
	}
}

func FuzzExpandNick(f *testing.F) {
	f.Add("<{nick}@{network}> ", "alice", "irc", "#status")
	f.Add("{{nick}}{", "{channel}", "", "x")
	f.Fuzz(func(t *testing.T, format, nick, network, channel string) {
		want := strings.NewReplacer("{nick}", nick, "{network}", network, "{channel}", channel).Replace(format)
		if got := expandNick(format, nick, network, channel); got != want {
			t.Fatalf("expandNick(%q, %q, %q, %q) = %q, want %q", format, nick, network, channel, got, want)
		}
	})
}
