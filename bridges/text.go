package bridges

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Canonical text.
//
// Event.Text is canonical text: a subset of CommonMark that every connector converts
// to and from its own format in its convert.go (Matrix HTML, IRC control codes, Slack
// mrkdwn, Status markdown). The subset is what all the bridged networks can show:
//
//	paragraphs         separated by a blank line
//	line breaks        a single "\n" is a hard line break (unlike CommonMark, where it
//	                   is a soft break); "\r" never appears
//	*emphasis*         also _emphasis_
//	**strong**         also __strong__
//	`code`             inline code; no markup inside
//	```lang            fenced code block, optional info string; no markup inside;
//	...                closed by ``` on its own line (or the end of the text)
//	```
//	> quote            block quote, one level, each line prefixed with "> "
//	<https://x.y/z>    autolink
//	[text](url)        inline link; text may hold emphasis, strong and code
//	\*                 backslash escape of any ASCII punctuation
//
// Everything else (headings, lists, tables, images, HTML, nested quotes, reference
// links) is not markup in canonical text: a connector that reads canonical text shows
// such characters literally, and one that writes canonical text from a richer format
// flattens such constructs to plain text (using Escape where needed). Text from a
// network without formatting (plain IRC) goes through Escape, so that "*" stays "*".
//
// This package only checks that a string can be canonical text (ValidText) and
// escapes plain text (Escape); it holds no converters.

// MaxTextLen is the longest canonical text, in bytes. It bounds memory and storage per
// event; a network's own, usually lower, limit is in Capabilities.MaxTextLen.
const MaxTextLen = 64 << 10

// ValidText returns nil if s can be canonical text: valid UTF-8, at most MaxTextLen
// bytes, and no control characters other than "\n" and "\t". Otherwise it returns an
// error wrapping ErrInvalidText. It does not check markup: any string passing it is
// acceptable, because unmatched markup is shown literally.
func ValidText(s string) error {
	if len(s) > MaxTextLen {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrInvalidText, len(s), MaxTextLen)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: not UTF-8", ErrInvalidText)
	}
	for i, r := range s {
		if IsControl(r) {
			return fmt.Errorf("%w: control character %U at byte %d", ErrInvalidText, r, i)
		}
	}
	return nil
}

// IsControl reports whether r is a control character canonical text may not hold:
// C0 (but "\n" and "\t"), DEL and C1. Connectors use it to clean text they convert.
func IsControl(r rune) bool {
	if r == '\n' || r == '\t' {
		return false
	}
	return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0)
}

// Truncate returns s cut to at most max bytes at a rune boundary (s itself when it
// fits), for text that must fit MaxTextLen or a network's limit.
func Truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// escaper backslash-escapes the characters that are markup in canonical text.
var escaper = strings.NewReplacer(
	`\`, `\\`, "*", `\*`, "_", `\_`, "`", "\\`",
	"[", `\[`, "]", `\]`, "<", `\<`, ">", `\>`,
)

// Escape returns plain text s as canonical text that shows exactly s: every character
// that is markup in canonical text gets a backslash. Connectors for networks without
// formatting call it on inbound text. It does not remove control characters; normalise
// line endings to "\n" first.
func Escape(s string) string { return escaper.Replace(s) }
