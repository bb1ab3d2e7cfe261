package interop

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/statusgate/statusgate/core/whisper"
)

// TestAcceptance_agreesWithGeth feeds the same envelopes to our Acceptance.Check and to
// geth v1.9.20's whisper.add (through send_raw) and compares the verdicts. Envelopes are
// dated a few seconds inside each boundary so clock drift between the two reads cannot
// flip a case.
func TestAcceptance_agreesWithGeth(t *testing.T) {
	ref := StartRefNode(t, RefNodeOptions{MinPoW: 0.001})
	status := whisper.TopicFromName("status")
	data := make([]byte, 300)
	for i := range data {
		data[i] = byte(i)
	}
	ours := &whisper.Acceptance{MinPoW: 0.001, PrevMinPoW: 0.001, Bloom: whisper.FullBloom(), PrevBloom: whisper.FullBloom()}
	cases := []struct {
		name    string
		sentOff int64 // created this many seconds from now
		ttl     uint32
		pow     float64
		geth    string // substring of geth's refusal; "" = accepted
		want    error  // ours; nil with ok=false means silent drop
		ok      bool
	}{
		{"fresh", 0, 15, 0.002, "", nil, true},
		{"future within allowance", 5, 15, 0.01, "", nil, true},
		{"future beyond allowance", 15, 15, 0.002, "future", whisper.ErrFromFuture, false},
		{"expired recently", -25, 15, 0.002, "failed to add", nil, false},
		{"very old", -60, 15, 0.002, "very old", whisper.ErrVeryOld, false},
		{"low PoW", 0, 15, 0, "low PoW", whisper.ErrPoWTooLow, false},
	}
	for _, tc := range cases {
		now := time.Now()
		e, err := whisper.NewEnvelope(uint32(now.Unix()+tc.sentOff)+tc.ttl, tc.ttl, status, data, 0)
		if err != nil {
			t.Fatal(err)
		}
		if tc.pow > 0 {
			if e, err = e.Seal(whisper.SealOptions{PoW: tc.pow, WorkTime: 5 * time.Second}); err != nil {
				t.Fatal(err)
			}
		} else {
			// An unsealed nonce has enough work by chance one time in eight: take the
			// first nonce that does not.
			for n := uint64(1); e.PoW() >= 0.001; n++ {
				if e, err = whisper.NewEnvelope(e.Expiry(), e.TTL(), status, data, n); err != nil {
					t.Fatal(err)
				}
			}
		}
		ok, err := ours.Check(e, now)
		if ok != tc.ok || (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%s: ours ok=%v err=%v", tc.name, ok, err)
		}
		gethErr := ref.SendRaw(e.Bytes())
		switch {
		case tc.geth == "" && gethErr != nil:
			t.Errorf("%s: geth refused: %v", tc.name, gethErr)
		case tc.geth != "" && (gethErr == nil || !strings.Contains(gethErr.Error(), tc.geth)):
			t.Errorf("%s: geth said %v, want %q", tc.name, gethErr, tc.geth)
		}
	}
}
