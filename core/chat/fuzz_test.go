package chat

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// seedAll adds every golden payload and the bad-input shapes to the corpus.
func seedAll(f *testing.F, glob string) {
	files, _ := filepath.Glob(filepath.Join("testdata", glob))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	for _, s := range []string{`["~#c4"]`, `["^ ","k"]`, `["^ ",[1],2]`, `["~c"]`, `["~#g5",[]]`, `[`, ``} {
		f.Add([]byte(s))
	}
}

// checkRoundTrip: whatever Decode accepts must re-encode in its own format and decode to
// the same message.
func checkRoundTrip(t *testing.T, data []byte) {
	d, err := Decode(data)
	if err != nil {
		return
	}
	if d.Message.Format == FormatTransit && d.Message.Clock > 1<<63-1 {
		t.Fatalf("transit clock beyond int64 accepted: %d", d.Message.Clock)
	}
	key := keyFrom(t, "alice")
	out, err := Encode(d.Message, d.Message.Format, key)
	if err != nil {
		t.Fatalf("re-encode %+v: %v", d.Message, err)
	}
	d2, err := Decode(out)
	if err != nil {
		t.Fatalf("decode re-encoded %q: %v", out, err)
	}
	if !sameMessage(d.Message, d2.Message) {
		t.Fatalf("round trip changed the message:\n%+v\n%+v", d.Message, d2.Message)
	}
}

func FuzzDecodeTransit(f *testing.F) {
	seedAll(f, "transit/*.transit")
	f.Fuzz(func(t *testing.T, data []byte) {
		if !isTransit(data) {
			data = append([]byte{'['}, data...)
		}
		checkRoundTrip(t, data)
	})
}

func FuzzDecodeProtobuf(f *testing.F) {
	seedAll(f, "*/*.bin")
	f.Fuzz(func(t *testing.T, data []byte) {
		if isTransit(data) {
			return
		}
		checkRoundTrip(t, data)
	})
}

// FuzzParseID: ResponseTo comes from the network. ParseID never panics, and what it
// accepts prints back to the same id.
func FuzzParseID(f *testing.F) {
	f.Add("0x" + strings.Repeat("ab", 32))
	f.Add(strings.Repeat("AB", 32))
	f.Add("0x12")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseID(s)
		if err != nil {
			return
		}
		back, err := ParseID(id.String())
		if err != nil || back != id {
			t.Fatalf("%q → %s → %v %v", s, id, back, err)
		}
		if !strings.EqualFold(strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X"), id.String()[2:]) {
			t.Fatalf("%q parsed as %s", s, id)
		}
	})
}
