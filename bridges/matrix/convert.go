package matrix

import (
	"encoding/xml"
	"errors"
	"html"
	"net/url"
	"strings"

	"maunium.net/go/mautrix/event"

	"github.com/statusgate/statusgate/bridges"
)

// Canonical text → Matrix.

// messageContent returns the m.room.message content for canonical text s: body is s
// rendered as plain text, formatted_body is s rendered as HTML in which every character
// of the text is escaped, so text from Status can never become markup.
func messageContent(k bridges.Kind, s string) *event.MessageEventContent {
	mt := event.MsgText
	switch k {
	case bridges.KindAction:
		mt = event.MsgEmote
	case bridges.KindNotice:
		mt = event.MsgNotice
	}
	body, formatted := canonicalToMatrix(s)
	return &event.MessageEventContent{MsgType: mt, Body: body, Format: event.FormatHTML, FormattedBody: formatted}
}

// canonicalToMatrix renders canonical text as (plain body, HTML formatted_body).
func canonicalToMatrix(s string) (plain, htm string) {
	s = sanitizeText(s)
	var p, h strings.Builder
	lines := strings.Split(s, "\n")
	var para []string
	flushPara := func() {
		if len(para) == 0 {
			return
		}
		h.WriteString("<p>")
		for i, l := range para {
			if i > 0 {
				h.WriteString("<br>")
				p.WriteByte('\n')
			}
			inline(l, &p, &h, 0)
		}
		h.WriteString("</p>")
		p.WriteString("\n\n")
		para = nil
	}
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		switch {
		case strings.HasPrefix(l, "```"):
			flushPara()
			lang := strings.TrimSpace(strings.TrimPrefix(l, "```"))
			var code []string
			for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
				code = append(code, lines[i])
			}
			body := strings.Join(code, "\n")
			h.WriteString("<pre><code")
			if lang != "" && !strings.ContainsAny(lang, " \t`") {
				h.WriteString(` class="language-` + html.EscapeString(lang) + `"`)
			}
			h.WriteString(">" + html.EscapeString(body) + "</code></pre>")
			p.WriteString(body + "\n\n")
		case l == ">" || strings.HasPrefix(l, "> "):
			flushPara()
			h.WriteString("<blockquote>")
			for first := true; i < len(lines) && (lines[i] == ">" || strings.HasPrefix(lines[i], "> ")); i++ {
				if !first {
					h.WriteString("<br>")
				}
				first = false
				p.WriteString("> ")
				inline(strings.TrimPrefix(strings.TrimPrefix(lines[i], ">"), " "), &p, &h, 0)
				p.WriteByte('\n')
			}
			i--
			h.WriteString("</blockquote>")
			p.WriteByte('\n')
		case strings.TrimSpace(l) == "":
			flushPara()
		default:
			para = append(para, l)
		}
	}
	flushPara()
	return strings.TrimRight(p.String(), "\n"), h.String()
}

// Bounds that keep inline linear: spans nest at most maxInlineDepth deep (deeper
// markup stays text), and an autolink <url> is at most maxAutolinkLen bytes.
const (
	maxInlineDepth = 16
	maxAutolinkLen = 4096
)

// inline renders one line of canonical inline markup into plain text p and HTML h, at
// nesting depth depth. Each call is linear in len(s): link brackets are matched in one
// pass (matchBrackets), every other delimiter search finds the next occurrence only.
func inline(s string, p, h *strings.Builder, depth int) {
	text := func(t string) { p.WriteString(t); h.WriteString(html.EscapeString(t)) }
	if depth >= maxInlineDepth {
		text(s)
		return
	}
	var closing []int // closing[i]: the ']' matching the '[' at i, computed on first use
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s) && isASCIIPunct(s[i+1]):
			text(s[i+1 : i+2])
			i += 2
		case c == '`':
			if j := strings.IndexByte(s[i+1:], '`'); j > 0 {
				code := s[i+1 : i+1+j]
				p.WriteString(code)
				h.WriteString("<code>" + html.EscapeString(code) + "</code>")
				i += j + 2
				continue
			}
			text("`")
			i++
		case c == '<':
			if j := strings.IndexByte(s[i:min(len(s), i+maxAutolinkLen)], '>'); j > 0 {
				if u := s[i+1 : i+j]; safeURL(u) && !strings.ContainsAny(u, " <") {
					p.WriteString(u)
					h.WriteString(`<a href="` + html.EscapeString(u) + `">` + html.EscapeString(u) + "</a>")
					i += j + 1
					continue
				}
			}
			text("<")
			i++
		case c == '[':
			if closing == nil {
				closing = matchBrackets(s)
			}
			if end, label, u, ok := parseLink(s[i:], closing[i]-i); ok {
				var lp strings.Builder
				h.WriteString(`<a href="` + html.EscapeString(u) + `">`)
				inline(label, &lp, h, depth+1)
				h.WriteString("</a>")
				p.WriteString(lp.String() + " (" + u + ")")
				i += end
				continue
			}
			text("[")
			i++
		case (c == '*' || c == '_') && i+1 < len(s) && s[i+1] == c:
			d := s[i : i+2]
			if j := strings.Index(s[i+2:], d); j > 0 {
				h.WriteString("<strong>")
				inline(s[i+2:i+2+j], p, h, depth+1)
				h.WriteString("</strong>")
				i += j + 4
				continue
			}
			text(d)
			i += 2
		case c == '*' || c == '_':
			if j := strings.IndexByte(s[i+1:], c); j > 0 && s[i+1] != ' ' {
				h.WriteString("<em>")
				inline(s[i+1:i+1+j], p, h, depth+1)
				h.WriteString("</em>")
				i += j + 2
				continue
			}
			text(s[i : i+1])
			i++
		default:
			j := i + 1
			for j < len(s) && strings.IndexByte("\\`<[*_", s[j]) < 0 {
				j++
			}
			text(s[i:j])
			i = j
		}
	}
}

// parseLink parses "[label](url)" at the start of s, whose '[' is closed by the ']' at
// index i (< 0: never closed).
func parseLink(s string, i int) (end int, label, u string, ok bool) {
	if i <= 0 || i+1 >= len(s) || s[i+1] != '(' {
		return 0, "", "", false
	}
	k := strings.IndexByte(s[i+2:], ')')
	if k < 0 {
		return 0, "", "", false
	}
	u = s[i+2 : i+2+k]
	if !safeURL(u) || strings.ContainsAny(u, " <>\"") {
		return 0, "", "", false
	}
	return i + 3 + k, s[1:i], u, true
}

// matchBrackets returns, for every '[' of s, the index of its balanced ']' (-1 if
// none), skipping the character after a backslash; other indexes hold -1. One pass:
// scanning s from each '[' instead made a line of n '[' cost n²/2.
func matchBrackets(s string) []int {
	m := make([]int, len(s))
	var open []int
	for i := 0; i < len(s); i++ {
		m[i] = -1
		switch s[i] {
		case '\\':
			if i+1 < len(s) {
				i++
				m[i] = -1
			}
		case '[':
			open = append(open, i)
		case ']':
			if n := len(open); n > 0 {
				m[open[n-1]] = i
				open = open[:n-1]
			}
		}
	}
	return m
}

// safeURL accepts absolute http, https, mailto and matrix URLs: nothing that a client
// could run (javascript:, data:).
func safeURL(u string) bool {
	pu, err := url.Parse(u)
	if err != nil {
		return false
	}
	switch strings.ToLower(pu.Scheme) {
	case "http", "https":
		return pu.Host != ""
	case "mailto", "matrix":
		return pu.Opaque != "" || pu.Path != ""
	}
	return false
}

func isASCIIPunct(c byte) bool {
	return '!' <= c && c <= '/' || ':' <= c && c <= '@' || '[' <= c && c <= '`' || '{' <= c && c <= '~'
}

// sanitizeText makes any string valid canonical text: invalid UTF-8 and control
// characters other than "\n" and "\t" become U+FFFD ("\r\n" and "\r" become "\n"),
// and it is cut at MaxTextLen on a rune boundary.
func sanitizeText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\t':
			return r
		case r == '\r':
			return '\n'
		case bridges.IsControl(r):
			return '\uFFFD'
		}
		return r
	}, s)
	return bridges.Truncate(s, bridges.MaxTextLen)
}

// plainToCanonical turns a plain body into canonical text showing exactly it.
func plainToCanonical(s string) string {
	return tidy(bridges.Escape(sanitizeText(s)))
}

// Matrix HTML → canonical text.

// Bounds of htmlToCanonical. A Matrix event is at most 64 KiB, so a longer
// formatted_body cannot come from a homeserver; 32 levels is deeper than any client
// nests.
const (
	maxHTMLLen    = 64 << 10
	maxHTMLTokens = 100000
	maxHTMLDepth  = 32
)

// frame is an open element while reading HTML.
type frame struct {
	tag  string
	href string
	b    strings.Builder
}

// htmlToCanonical converts Matrix formatted_body HTML to canonical text. Only the
// canonical subset survives as markup (strong/b, em/i, code, pre, blockquote, a with a
// safe URL, br, paragraphs); every other element is flattened to its text, mx-reply is
// dropped, and all text is escaped. Malformed HTML is read as far as possible
// (non-strict, HTML auto-close and entities, elements left open at the end closed); on
// a syntax error mid-way it returns "", and the caller falls back to the plain body.
// The result is always valid canonical text.
//
// The work is linear in len(src): input over maxHTMLLen is refused (""), at most
// maxHTMLTokens tokens are read, elements nest at most maxHTMLDepth deep (deeper ones
// are flattened to their text), and elements inside pre or code are flattened too, so
// verbatim text is escaped exactly once (nested <pre> or <code> used to re-escape their
// child's output at every level: 2^depth growth, the FuzzHTMLToCanonical stall).
func htmlToCanonical(src string) string {
	if len(src) > maxHTMLLen {
		return ""
	}
	d := xml.NewDecoder(strings.NewReader(strings.ToValidUTF8(src, "\uFFFD")))
	d.Strict, d.AutoClose, d.Entity = false, xml.HTMLAutoClose, xml.HTMLEntity
	stack := []*frame{{tag: "#root"}}
	top := func() *frame { return stack[len(stack)-1] }
	skip, pre, code := 0, 0, 0
	closeTop := func() {
		f := top()
		stack = stack[:len(stack)-1]
		inner := f.b.String()
		out := top()
		switch f.tag {
		case "mx-reply":
			return
		case "b", "strong":
			out.b.WriteString(wrapInline(inner, "**"))
		case "i", "em":
			out.b.WriteString(wrapInline(inner, "*"))
		case "code":
			code--
			if pre == 0 {
				out.b.WriteString(inlineCode(inner))
			} else {
				out.b.WriteString(inner)
			}
		case "pre":
			pre--
			code := strings.Trim(inner, "\n")
			if code != "" && !strings.Contains(code, "```") {
				out.b.WriteString("\n\n```\n" + code + "\n```\n\n")
			} else {
				out.b.WriteString("\n\n" + bridges.Escape(code) + "\n\n")
			}
		case "a":
			t := strings.TrimSpace(inner)
			switch {
			case f.href == "" || !safeURL(f.href) || strings.ContainsAny(f.href, " <>()\"\n"):
				out.b.WriteString(inner)
			case t == "":
				out.b.WriteString("<" + f.href + ">")
			default:
				out.b.WriteString("[" + strings.ReplaceAll(inner, "\n", " ") + "](" + f.href + ")")
			}
		case "blockquote":
			var q strings.Builder
			for _, l := range strings.Split(strings.TrimSpace(tidy(inner)), "\n") {
				l = strings.TrimLeft(l, "> ")
				q.WriteString("> " + l + "\n")
			}
			out.b.WriteString("\n\n" + q.String() + "\n")
		case "p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "table", "tr", "hr":
			out.b.WriteString("\n\n" + inner + "\n\n")
		case "li":
			out.b.WriteString("\n• " + strings.TrimSpace(inner))
		default:
			out.b.WriteString(inner)
		}
	}
	for n := 0; n < maxHTMLTokens; n++ {
		tok, err := d.Token()
		if err != nil {
			var se *xml.SyntaxError
			if errors.As(err, &se) && !strings.Contains(se.Msg, "unexpected EOF") {
				return "" // malformed mid-way: the caller uses the plain body
			}
			break // the end, possibly with elements left open: close them below
		}
		switch t := tok.(type) {
		case xml.StartElement:
			tag := strings.ToLower(t.Name.Local)
			if skip > 0 || tag == "mx-reply" {
				skip++
				continue
			}
			if tag == "br" {
				top().b.WriteString("\n")
				continue
			}
			if len(stack) > maxHTMLDepth || pre > 0 || code > 0 {
				continue // too deep, or inside verbatim text: flatten to the text
			}
			f := &frame{tag: tag}
			for _, a := range t.Attr {
				if strings.ToLower(a.Name.Local) == "href" {
					f.href = strings.TrimSpace(a.Value)
				}
			}
			switch tag {
			case "pre":
				pre++
			case "code":
				code++
			}
			stack = append(stack, f)
		case xml.EndElement:
			if skip > 0 {
				skip--
				continue
			}
			tag := strings.ToLower(t.Name.Local)
			if tag == "br" {
				continue
			}
			// close up to the matching element; an unmatched end tag is ignored
			for i := len(stack) - 1; i > 0; i-- {
				if stack[i].tag == tag {
					for len(stack) > i {
						closeTop()
					}
					break
				}
			}
		case xml.CharData:
			if skip > 0 {
				continue
			}
			s := string(t)
			if pre > 0 {
				top().b.WriteString(s)
			} else if code > 0 {
				top().b.WriteString(collapseSpace(s))
			} else {
				top().b.WriteString(bridges.Escape(collapseSpace(s)))
			}
		}
	}
	for len(stack) > 1 {
		closeTop()
	}
	return tidy(sanitizeText(stack[0].b.String()))
}

// wrapInline puts inner between delimiters d, moving surrounding spaces outside, or
// returns inner alone when it is blank.
func wrapInline(inner, d string) string {
	t := strings.TrimSpace(inner)
	if t == "" || strings.Contains(t, "\n") {
		return inner
	}
	lead := inner[:strings.Index(inner, t)]
	trail := inner[len(lead)+len(t):]
	return lead + d + t + d + trail
}

// inlineCode renders raw text as `code`, or as escaped text when it holds a backtick
// or a line break (canonical code spans cannot).
func inlineCode(raw string) string {
	if raw == "" || strings.ContainsAny(raw, "`\n") || strings.TrimSpace(raw) == "" {
		return bridges.Escape(raw)
	}
	return "`" + raw + "`"
}

// collapseSpace turns runs of HTML white space into one space.
func collapseSpace(s string) string {
	var b strings.Builder
	space := false
	for _, r := range s {
		if r == ' ' || r == '\n' || r == '\t' || r == '\r' || r == '\f' {
			if !space {
				b.WriteByte(' ')
			}
			space = true
			continue
		}
		space = false
		b.WriteRune(r)
	}
	return b.String()
}

// tidy trims trailing spaces of lines, leading spaces, leading and trailing blank
// lines, and runs of more than one blank line; fenced code blocks stay verbatim.
func tidy(s string) string {
	lines := strings.Split(s, "\n")
	var out []string
	blank, fence := 0, false
	for _, l := range lines {
		if fence {
			out = append(out, l)
			if strings.TrimSpace(l) == "```" {
				fence = false
			}
			continue
		}
		l = strings.TrimRight(l, " \t")
		if strings.TrimSpace(l) == "" {
			blank++
			continue
		}
		if len(out) > 0 && blank > 0 {
			out = append(out, "")
		}
		blank = 0
		l = strings.TrimLeft(l, " ")
		if strings.HasPrefix(l, "```") {
			fence = true
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}
