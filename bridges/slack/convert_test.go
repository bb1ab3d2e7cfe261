package slack

import (
	"strings"
	"testing"

	"github.com/statusgate/statusgate/bridges"
)

func TestToMrkdwn_table(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain", "plain"},
		{"**strong** and __strong__", "*strong* and *strong*"},
		{"*em* and _em_", "_em_ and _em_"},
		{"***both***", "*_both_*"},
		{"`code *not* bold`", "`code *not* bold`"},
		{"`a<b&c`", "`a&lt;b&amp;c`"},
		{"a & b < c > d", "a &amp; b &lt; c &gt; d"},
		{"[the docs](https://x.y/a?b=1&c=2)", "<https://x.y/a?b=1&amp;c=2|the docs>"},
		{"[**bold** label](https://x.y)", "<https://x.y|bold label>"},
		{"<https://x.y/z>", "<https://x.y/z>"},
		{"<not a link>", "&lt;not a link&gt;"},
		{`\*literal\* \<x\>`, "*literal* &lt;x&gt;"},
		{"> quoted **text**\nnext", "> quoted *text*\nnext"},
		{"```go\nx := a < b && *p\n```\nafter", "```\nx := a &lt; b &amp;&amp; *p\n```\nafter"},
		{"2 * 3 * 4", "2 * 3 * 4"},
		{"unclosed **bold", "unclosed **bold"},
		{"snake_case_name", "snake_case_name"},
	} {
		if got := toMrkdwn(tc.in); got != tc.want {
			t.Errorf("toMrkdwn(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

type names map[string]string

func (n names) userName(id string) string { return n[id] }

func TestFromMrkdwn_table(t *testing.T) {
	r := names{"U0ALICE": "Alice", "U0STAR": "*star*"}
	for _, tc := range []struct{ in, want string }{
		{"plain", "plain"},
		{"*bold* _it_ ~strike~", "**bold** *it* ~strike~"},
		{"`code *x*` and ```block\n*x*```", "`code *x*` and \n```\nblock\n*x*\n```"},
		{"a &amp; b &lt; c &gt; d", `a & b \< c \> d`},
		{"hi <@U0ALICE> and <@U0NOBODY|bob> and <@U0GONE>", "hi @Alice and @bob and @U0GONE"},
		{"<@U0STAR>", `@\*star\*`},
		{"see <#C0123|general> <!here> <!subteam^S1|@team>", "see #general @here @team"},
		{"<https://x.y/a?b=1&amp;c=2|docs> <https://x.y>", "[docs](https://x.y/a?b=1&c=2) <https://x.y>"},
		{"<https://x.y/(a)|paren>", "paren (https://x.y/(a))"},
		{"&gt; quote\nnot &gt; quote", `> quote` + "\nnot \\> quote"},
		{"a_b_c 2*3*4", "a*b*c 2**3**4"},
		{"lone * star and [brackets] \\ back", `lone \* star and \[brackets\] \\ back`},
		{"line\r\nbreak\x00", "line\nbreak"},
	} {
		got := fromMrkdwn(tc.in, r)
		if got != tc.want {
			t.Errorf("fromMrkdwn(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if err := bridges.ValidText(got); err != nil {
			t.Errorf("fromMrkdwn(%q): %v", tc.in, err)
		}
	}
}

// Text written in Slack, read into canonical text and sent back, reads the same.
func TestMrkdwn_roundTrip(t *testing.T) {
	for _, in := range []string{
		"plain words", "*bold* and _italic_", "`x &lt; y`", "a &amp; b",
		"<https://x.y/z|label>", "<https://x.y/z>", "```\ncode\n```",
		// "&gt; quoted" comes back as "> quoted", which Slack shows the same.
	} {
		if got := toMrkdwn(fromMrkdwn(in, nil)); got != in {
			t.Errorf("round trip of %q gave %q", in, got)
		}
	}
}

func FuzzFromMrkdwn(f *testing.F) {
	for _, s := range []string{"*a* _b_ `c` ```d```", "<@U1|x> <#C1> <!here> <https://a.b|c>", "&gt; q &amp;&lt;", "\xff\x00*_*_"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := fromMrkdwn(s, names{"U1": "*x*"})
		if err := bridges.ValidText(out); err != nil {
			t.Fatalf("fromMrkdwn(%q) = %q: %v", s, out, err)
		}
	})
}

func FuzzToMrkdwn(f *testing.F) {
	for _, s := range []string{"**a** *b* `c`", "```go\nx\n```", "[t](https://x.y) <https://z>", `\* \< & > <`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if bridges.ValidText(s) != nil {
			return // the gateway only sends canonical text
		}
		out := toMrkdwn(s)
		// Every '<' and '>' left, but a quote marker, is one of our own link brackets:
		// balanced, in order.
		depth := 0
		for i := 0; i < len(out); i++ {
			if (i == 0 || out[i-1] == '\n') && strings.HasPrefix(out[i:], "> ") {
				i++
				continue
			}
			switch out[i] {
			case '<':
				depth++
			case '>':
				depth--
			}
			if depth < 0 || depth > 1 {
				t.Fatalf("toMrkdwn(%q) = %q: unbalanced angle brackets", s, out)
			}
		}
		if depth != 0 {
			t.Fatalf("toMrkdwn(%q) = %q: unclosed angle bracket", s, out)
		}
		// And reading it back gives canonical text.
		if err := bridges.ValidText(fromMrkdwn(out, nil)); err != nil {
			t.Fatalf("fromMrkdwn(toMrkdwn(%q)): %v", s, err)
		}
	})
}

func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"abcdefghij", 8, "abcde…"},
		{"ab&amp;cdef", 9, "ab…"},
		{"aéééé", 7, "aé…"},
	} {
		if got := truncate(tc.in, tc.n); got != tc.want || len(got) > tc.n {
			t.Errorf("truncate(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

// hostileCanonical are canonical texts of 64 KiB built to make a converter rescan:
// openers without closers, links and autolinks that never close, code spans that never
// end.
func hostileCanonical() []string {
	const n = 64 << 10
	rep := func(s string) string { return strings.Repeat(s, n/len(s)) }
	return []string{
		rep("*a "), rep("_a "), rep("**a "), rep("__a "), rep("*_"), rep("["), rep("[a]("), rep("<"), rep("<a:"),
		rep("`"), rep("a `"), rep("*`"), rep("\\*"), rep("**a*"), rep("[a](x:y") + ")", rep("<") + "x:y>",
		rep("*a _b "), rep("*a *"), rep("[x](https://a)"),
	}
}

// TestToMrkdwn_linear (issue 15 finding 9): converting any of the hostile texts
// examines at most a fixed multiple of its length (mrkdwnConv.steps counts every byte
// a search looks at). Before the fix 64 KiB of "*a " took 2.6 s: each unmatched "*"
// rescanned the rest of the line.
func TestToMrkdwn_linear(t *testing.T) {
	for _, in := range hostileCanonical() {
		var cv mrkdwnConv
		out := cv.convert(in)
		if limit := 64 * len(in); cv.steps > limit {
			t.Errorf("toMrkdwn(%.12q… %d bytes): %d steps, want ≤ %d", in, len(in), cv.steps, limit)
		}
		if len(out) > 8*len(in)+64 {
			t.Errorf("toMrkdwn(%.12q…): %d bytes from %d", in, len(out), len(in))
		}
	}
}

func BenchmarkToMrkdwn_hostile(b *testing.B) {
	in := strings.Repeat("*a ", (64<<10)/3)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		toMrkdwn(in)
	}
}
