package matrix

import (
	"strings"
	"testing"

	"github.com/statusgate/statusgate/bridges"
)

// FuzzHTMLToCanonical feeds arbitrary formatted_body HTML through the inbound
// converter: no panic, and the output is always valid canonical text that renders
// back to HTML without a raw '<' from the text.
func FuzzHTMLToCanonical(f *testing.F) {
	for _, s := range []string{"<b>x</b>", "<pre><code>a\n```\n</code></pre>", "<a href='https://x'>y", "<mx-reply>", "&amp;&#0;&#xD800;", "<blockquote><blockquote>x", "\x00\r\n<br>", "<code>`</code>", "<pre><pre><code><code>\\`"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := htmlToCanonical(in)
		if err := bridges.ValidText(out); err != nil {
			t.Fatalf("htmlToCanonical(%q) = %q: %v", in, out, err)
		}
		if len(out) > 8*len(in)+64 { // linear: nested verbatim elements once grew 2^depth
			t.Fatalf("htmlToCanonical(%q): %d bytes from %d", in, len(out), len(in))
		}
		_, h := canonicalToMatrix(out)
		if strings.Contains(h, "<script") || strings.Contains(h, "<img") {
			t.Fatalf("markup leaked: %q → %q", in, h)
		}
	})
}

// FuzzCanonicalToMatrix: any canonical text renders without panic and without an
// element outside the emitted set.
func FuzzCanonicalToMatrix(f *testing.F) {
	for _, s := range []string{"**a**", "[x](https://y)", "<https://z>", "```\n<b>", "> q", "\\", "*_`[<"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		_, h := canonicalToMatrix(in)
		for _, tag := range []string{"<script", "<img", "<iframe", "<style", "javascript:"} {
			if strings.Contains(strings.ToLower(h), tag) {
				t.Fatalf("%q → %q holds %s", in, h, tag)
			}
		}
	})
}
