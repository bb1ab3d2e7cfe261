package bridges

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
)

func TestKind_String(t *testing.T) {
	want := map[Kind]string{
		KindMessage: "message", KindAction: "action", KindEdit: "edit", KindDelete: "delete",
		KindReaction: "reaction", KindNotice: "notice",
		0: "Kind(0)", KindNotice + 1: "Kind(7)",
	}
	for k, s := range want {
		if got := k.String(); got != s {
			t.Errorf("Kind(%d).String() = %q, want %q", uint8(k), got, s)
		}
	}
}

func TestState_String(t *testing.T) {
	want := map[State]string{
		StateUnknown: "unknown", StateConnecting: "connecting", StateConnected: "connected",
		StateTransientDisconnect: "transient_disconnect", StateBadCredentials: "bad_credentials",
		StateBadCredentials + 1: "State(5)",
	}
	for s, name := range want {
		if got := s.String(); got != name {
			t.Errorf("State(%d).String() = %q, want %q", uint8(s), got, name)
		}
	}
}

func TestErrors_classification(t *testing.T) {
	cause := errors.New("room gone")
	perm := fmt.Errorf("send to matrix:!r: %w", Permanent(cause))
	trans := fmt.Errorf("send to irc:x: %w: %w", ErrTransient, errors.New("timeout"))
	unsup := fmt.Errorf("react: %w", ErrUnsupported)
	plain := errors.New("connection reset")

	if Permanent(nil) != nil {
		t.Error("Permanent(nil) != nil")
	}
	for _, tc := range []struct {
		name            string
		err             error
		permanent, tran bool
	}{
		{"nil", nil, false, false},
		{"permanent", perm, true, false},
		{"unsupported", unsup, true, false},
		{"transient", trans, false, true},
		{"unclassified", plain, false, true},
		{"permanent wins", fmt.Errorf("%w: %w", ErrTransient, Permanent(plain)), true, false},
	} {
		if got := IsPermanent(tc.err); got != tc.permanent {
			t.Errorf("%s: IsPermanent = %v", tc.name, got)
		}
		if got := IsTransient(tc.err); got != tc.tran {
			t.Errorf("%s: IsTransient = %v", tc.name, got)
		}
	}
	if !errors.Is(perm, cause) || !errors.Is(perm, ErrPermanent) {
		t.Error("Permanent loses its cause or its class")
	}
	var pe *PermanentError
	if !errors.As(perm, &pe) || pe.Err != cause {
		t.Errorf("errors.As(perm) = %v, %v", pe, pe != nil && pe.Err == cause)
	}
	if !errors.Is(unsup, ErrUnsupported) || !errors.Is(trans, ErrTransient) {
		t.Error("sentinel lost through wrapping")
	}
	if got, want := perm.Error(), "send to matrix:!r: permanent failure: room gone"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func validMessage() Event {
	return Event{
		Kind:   KindMessage,
		Origin: Origin{Network: "irc", Channel: "irc:libera/#status", ID: "irc:m1"},
		Sender: Sender{ID: "irc:libera/alice", Name: "alice"},
		Text:   "hi",
	}
}

func TestEvent_Validate(t *testing.T) {
	ok := []func(*Event){
		func(e *Event) {},
		func(e *Event) { e.ReplyTo = "irc:m0" },
		func(e *Event) { e.Kind = KindAction },
		func(e *Event) { e.Kind = KindNotice },
		func(e *Event) { e.Kind, e.Target, e.Text = KindEdit, "irc:m0", "fixed" },
		func(e *Event) { e.Kind, e.Target, e.Text = KindDelete, "irc:m0", "" },
		func(e *Event) { e.Kind, e.Target, e.Text, e.Reaction = KindReaction, "irc:m0", "", "👍" },
	}
	for i, mod := range ok {
		e := validMessage()
		mod(&e)
		if err := e.Validate(); err != nil {
			t.Errorf("ok case %d (%s): %v", i, e.Kind, err)
		}
	}
	bad := map[string]func(*Event){
		"zero kind":         func(e *Event) { e.Kind = 0 },
		"unknown kind":      func(e *Event) { e.Kind = 99 },
		"bad network":       func(e *Event) { e.Origin.Network = "IRC" },
		"no channel":        func(e *Event) { e.Origin.Channel = "" },
		"no origin ID":      func(e *Event) { e.Origin.ID = "" },
		"no sender":         func(e *Event) { e.Sender.ID = "" },
		"foreign channel":   func(e *Event) { e.Origin.Channel = "slack:C1" },
		"foreign reply":     func(e *Event) { e.ReplyTo = "matrix:$x" },
		"malformed target":  func(e *Event) { e.Kind, e.Target = KindEdit, "irc:" },
		"empty message":     func(e *Event) { e.Text = "" },
		"CR in text":        func(e *Event) { e.Text = "a\r\nb" },
		"edit no target":    func(e *Event) { e.Kind = KindEdit },
		"delete with text":  func(e *Event) { e.Kind, e.Target = KindDelete, "irc:m0" },
		"reaction no key":   func(e *Event) { e.Kind, e.Target, e.Text = KindReaction, "irc:m0", "" },
		"key on message":    func(e *Event) { e.Reaction = "👍" },
		"target on message": func(e *Event) { e.Target = "irc:m0" },
		"moderator edit":    func(e *Event) { e.Kind, e.Target, e.Sender.Moderator = KindEdit, "irc:m0", true },
		"reply on edit":     func(e *Event) { e.Kind, e.Target, e.ReplyTo = KindEdit, "irc:m0", "irc:m0" },
	}
	for name, mod := range bad {
		e := validMessage()
		mod(&e)
		if err := e.Validate(); !errors.Is(err, ErrInvalidEvent) {
			t.Errorf("%s: Validate = %v, want ErrInvalidEvent", name, err)
		}
	}
}

func TestIdempotencyKey_stableAndDistinct(t *testing.T) {
	o := validMessage().Origin
	k := IdempotencyKey(o, "matrix:!r:x")
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(k) {
		t.Fatalf("key %q is not 32 hex characters", k)
	}
	if k != IdempotencyKey(o, "matrix:!r:x") {
		t.Error("key not stable")
	}
	seen := map[string]bool{k: true}
	for _, tc := range []struct {
		o    Origin
		dest ChannelID
	}{
		{o, "matrix:!other:x"},
		{Origin{o.Network, o.Channel, "irc:m2"}, "matrix:!r:x"},
		{Origin{o.Network, "irc:libera/#other", o.ID}, "matrix:!r:x"},
		{Origin{"irc", "irc:a", "irc:bc"}, "matrix:!r:x"},
		{Origin{"irc", "irc:ab", "irc:c"}, "matrix:!r:x"}, // length prefixes keep these apart
	} {
		k := IdempotencyKey(tc.o, tc.dest)
		if seen[k] {
			t.Errorf("key collision for %+v → %s", tc.o, tc.dest)
		}
		seen[k] = true
	}
}

func TestValidText(t *testing.T) {
	for _, s := range []string{"", "plain", "a\nb", "tab\there", "**b** `c`\n```go\nx\n```", "héllo 👍"} {
		if err := ValidText(s); err != nil {
			t.Errorf("ValidText(%q) = %v", s, err)
		}
	}
	for _, s := range []string{"a\r\nb", "nul\x00", "\x1b[1m", "bad \xff", "c1 \u0085", strings.Repeat("x", MaxTextLen+1)} {
		if err := ValidText(s); !errors.Is(err, ErrInvalidText) {
			t.Errorf("ValidText(%.20q) = %v, want ErrInvalidText", s, err)
		}
	}
}

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		"plain text":        "plain text",
		"2*3 = 6":           `2\*3 = 6`,
		"snake_case":        `snake\_case`,
		"> not a quote":     `\> not a quote`,
		"[a](b) <c> `d` \\": "\\[a\\](b) \\<c\\> \\`d\\` \\\\",
	} {
		if got := Escape(in); got != want {
			t.Errorf("Escape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTruncateAndIsControl(t *testing.T) {
	for _, tc := range []struct {
		s    string
		max  int
		want string
	}{
		{"hello", 10, "hello"},
		{"hello", 5, "hello"},
		{"hello", 3, "hel"},
		{"aé€", 3, "aé"}, // é is 2 bytes: "aé" is 3
		{"aé€", 5, "aé"}, // € (3 bytes) does not fit after 3
		{"😀x", 3, ""},    // a 4-byte rune never split
		{"", 0, ""},
	} {
		if got := Truncate(tc.s, tc.max); got != tc.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tc.s, tc.max, got, tc.want)
		}
	}
	for r, want := range map[rune]bool{'\n': false, '\t': false, 'a': false, 0: true, '\r': true, 0x7f: true, 0x85: true, 0xa0: false, 'é': false} {
		if got := IsControl(r); got != want {
			t.Errorf("IsControl(%U) = %v, want %v", r, got, want)
		}
		if (ValidText(string(r)) != nil) != want {
			t.Errorf("ValidText and IsControl disagree on %U", r)
		}
	}
}
