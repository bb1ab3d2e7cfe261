package matrix

import (
	"strings"
	"testing"

	"github.com/statusgate/statusgate/bridges"
)

func TestHTMLToCanonical(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain", "plain"},
		{"<b>bold</b> and <strong>strong</strong>", "**bold** and **strong**"},
		{"<i>it</i> <em> em </em>", "*it*  *em*"},
		{"a<br>b<br/>c", "a\nb\nc"},
		{"<p>one</p><p>two</p>", "one\n\ntwo"},
		{"<code>a*b</code>", "`a*b`"},
		{"<pre><code class=\"language-go\">x := 1\n  y</code></pre>", "```\nx := 1\n  y\n```"},
		{"<blockquote>quoted<br>more</blockquote>after", "> quoted\n> more\n\nafter"},
		{`<a href="https://x.org/a">link</a>`, "[link](https://x.org/a)"},
		{`<a href="javascript:alert(1)">bad</a>`, "bad"},
		{"<script>alert(1)</script>", "alert(1)"},
		{"<img src=x onerror=alert(1)>text", ""}, // malformed: the caller uses the body
		{`<img src="x" onerror="alert(1)">text`, "text"},
		{"<mx-reply><blockquote>old</blockquote></mx-reply>new", "new"},
		{"1 * 2 _x_ [y]", `1 \* 2 \_x\_ \[y\]`},
		{"&lt;b&gt; &amp; &nbsp;x", `\<b\> & ` + "\u00a0x"},
		{"<ul><li>a</li><li>b</li></ul>", "• a\n• b"},
		{"<b>unclosed", "**unclosed**"},
		{"<b></b>x", "x"},
		{"<h1>Title</h1>text", "Title\n\ntext"},
	} {
		got := htmlToCanonical(tc.in)
		if got != tc.want {
			t.Errorf("htmlToCanonical(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if err := bridges.ValidText(got); err != nil {
			t.Errorf("%q: %v", tc.in, err)
		}
	}
}

func TestCanonicalToMatrix(t *testing.T) {
	for _, tc := range []struct{ in, plain, html string }{
		{"hi", "hi", "<p>hi</p>"},
		{"<script>alert(1)</script>", "<script>alert(1)</script>", "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>"},
		{"**b** *i* `c<d>`", "b i c<d>", "<p><strong>b</strong> <em>i</em> <code>c&lt;d&gt;</code></p>"},
		{`\*not\*`, "*not*", "<p>*not*</p>"},
		{"a\nb\n\nc", "a\nb\n\nc", "<p>a<br>b</p><p>c</p>"},
		{"> q\n> r\nx", "> q\n> r\n\nx", "<blockquote>q<br>r</blockquote><p>x</p>"},
		{"```go\n<x>\n```", "<x>", `<pre><code class="language-go">&lt;x&gt;</code></pre>`},
		{"<https://a.b/c>", "https://a.b/c", `<p><a href="https://a.b/c">https://a.b/c</a></p>`},
		{"[t](javascript:alert(1))", "[t](javascript:alert(1))", "<p>[t](javascript:alert(1))</p>"},
		{`[a "b"](https://x.y/?q="z")`, `[a "b"](https://x.y/?q="z")`, "<p>[a &#34;b&#34;](https://x.y/?q=&#34;z&#34;)</p>"},
		{"<img src=x onerror=alert(1)>", "<img src=x onerror=alert(1)>", "<p>&lt;img src=x onerror=alert(1)&gt;</p>"},
	} {
		p, h := canonicalToMatrix(tc.in)
		if p != tc.plain || h != tc.html {
			t.Errorf("canonicalToMatrix(%q) = %q, %q; want %q, %q", tc.in, p, h, tc.plain, tc.html)
		}
	}
}

// TestRoundTrip: canonical → HTML → canonical keeps the canonical subset.
func TestRoundTrip(t *testing.T) {
	for _, s := range []string{"**b** and *i*", "`code`", "> quote\n\nafter", "[link](https://x.org/)", `a \* b`, "line\nbreak"} {
		_, h := canonicalToMatrix(s)
		if got := htmlToCanonical(h); got != s {
			t.Errorf("%q → %q → %q", s, h, got)
		}
	}
}

// TestConvert_linear runs both converters on the input classes that used to blow up
// (nested <pre>/<code> re-escaped their child's output at every level: 2^depth; a line
// of '[' or '<' rescanned the rest of the line from each one: n²) at the 64 KiB event
// size. The output stays linear in the input; a regression shows as a test timeout.
func TestConvert_linear(t *testing.T) {
	const n = 64 << 10
	rep := func(s string) string { return strings.Repeat(s, n/len(s)) }
	for _, in := range []string{
		rep("<pre>x\n"), rep("<code>`"), rep("<pre><code>\\"), rep("<blockquote>x\n"), rep("<div>"),
		rep("<b><i>"), rep("</b>"), rep("<mx-reply>"), rep("<li>x"), rep("<a href='https://x'>"),
		rep("["), rep("<"), rep("[a](https://x)"), rep("**a"), rep("*_"), rep("> a\n"), rep("```\n"),
		rep("\\"), rep("&#x5b;"), "<b " + rep("a=b ") + ">",
	} {
		out := htmlToCanonical(in)
		if len(out) > 8*len(in)+64 {
			t.Errorf("htmlToCanonical(%.20q…): %d bytes from %d", in, len(out), len(in))
		}
		for _, s := range []string{in, out} {
			plain, htm := canonicalToMatrix(s)
			if len(plain) > 8*len(s)+64 || len(htm) > 16*len(s)+64 {
				t.Errorf("canonicalToMatrix(%.20q…): %d+%d bytes from %d", s, len(plain), len(htm), len(s))
			}
		}
	}
	if got := htmlToCanonical(strings.Repeat("x", maxHTMLLen+1)); got != "" {
		t.Errorf("formatted_body over %d bytes: %d bytes, want the plain-body fallback", maxHTMLLen, len(got))
	}
}
