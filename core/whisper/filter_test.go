package whisper

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

func wrapFor(t testing.TB, topic Topic, p MessageParams) *Envelope {
	t.Helper()
	p.Topic, p.TTL, p.PoW, p.WorkTime = topic, 15, 0.002, 5*time.Second
	e, err := Wrap(&p)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestFilters_routeByTopicAndKey(t *testing.T) {
	fs := NewFilters()
	alice, bob, carol := keyOf(t, "alice"), keyOf(t, "bob"), keyOf(t, "carol")
	status, test := TopicFromName("status"), TopicFromName("test")
	kStatus, kOther := symKeyOf(t, "status"), symKeyOf(t, "other")

	idStatus, err := fs.Install(Filter{Topics: []Topic{status}, SymKey: kStatus})
	if err != nil {
		t.Fatal(err)
	}
	idStatus2, _ := fs.Install(Filter{Topics: []Topic{status, status}, SymKey: kStatus})
	idSameTopicOtherKey, _ := fs.Install(Filter{Topics: []Topic{status}, SymKey: kOther})
	idFromBob, _ := fs.Install(Filter{Topics: []Topic{status}, SymKey: kStatus, Src: &bob.PublicKey})
	idBob, _ := fs.Install(Filter{Topics: []Topic{test}, AsymKey: bob})
	idHighPoW, _ := fs.Install(Filter{Topics: []Topic{status}, SymKey: kStatus, PoW: 1e6})
	idP2P, _ := fs.Install(Filter{Topics: []Topic{status}, SymKey: kStatus, AllowP2P: true})

	env := wrapFor(t, status, MessageParams{Payload: []byte("hi"), KeySym: kStatus, Src: alice})
	got := ids(fs.Match(env, false))
	want := fmt.Sprint([]string{idStatus, idStatus2, idP2P})
	if got != want {
		t.Errorf("gossip match = %s, want %s (not %s %s %s)", got, want, idSameTopicOtherKey, idFromBob, idHighPoW)
	}
	if got := ids(fs.Match(env, true)); got != fmt.Sprint([]string{idP2P}) {
		t.Errorf("p2p match = %s, want only %s", got, idP2P)
	}
	ms := fs.Match(env, false)
	if ms[0].Message != ms[1].Message {
		t.Error("filters sharing a key must share one decryption")
	}

	fromBob := wrapFor(t, status, MessageParams{Payload: []byte("yo"), KeySym: kStatus, Src: bob})
	if got := ids(fs.Match(fromBob, false)); got != fmt.Sprint([]string{idStatus, idStatus2, idFromBob, idP2P}) {
		t.Errorf("match from bob = %s", got)
	}
	direct := wrapFor(t, test, MessageParams{Payload: []byte("dm"), Dst: &bob.PublicKey, Src: carol})
	if got := ids(fs.Match(direct, false)); got != fmt.Sprint([]string{idBob}) {
		t.Errorf("asym match = %s", got)
	}
	elsewhere := wrapFor(t, TopicFromName("nobody"), MessageParams{Payload: []byte("x"), KeySym: kStatus})
	if m := fs.Match(elsewhere, false); m != nil {
		t.Errorf("unsubscribed topic matched %v", m)
	}

	if b := fs.Bloom(); !b.Matches(&[]Bloom{status.Bloom()}[0]) || fs.Len() != 7 {
		t.Errorf("bloom/len after install: %d", fs.Len())
	}
	if err := fs.Uninstall(idStatus); err != nil {
		t.Fatal(err)
	}
	if err := fs.Uninstall(idStatus); !errorsIs(err, ErrUnknownFilter) {
		t.Errorf("double uninstall: %v", err)
	}
	if got := ids(fs.Match(env, false)); got != fmt.Sprint([]string{idStatus2, idP2P}) {
		t.Errorf("after uninstall = %s", got)
	}
	if err := fs.Uninstall(idBob); err != nil {
		t.Fatal(err)
	}
	if len(fs.Topics()) != 1 {
		t.Errorf("topics after removing the only test filter: %v", fs.Topics())
	}
}

func TestFilters_installRejects(t *testing.T) {
	fs := NewFilters()
	k := symKeyOf(t, "status")
	cases := []struct {
		f    Filter
		want error
	}{
		{Filter{SymKey: k}, ErrNoTopics},
		{Filter{Topics: []Topic{{1}}}, ErrNoKey},
		{Filter{Topics: []Topic{{1}}, SymKey: k, AsymKey: keyOf(t, "x")}, ErrNoKey},
	}
	for i, tc := range cases {
		if _, err := fs.Install(tc.f); !errorsIs(err, tc.want) {
			t.Errorf("case %d: %v, want %v", i, err, tc.want)
		}
	}
}

// TestFilters_concurrent runs Match against Install/Uninstall; run with -race.
func TestFilters_concurrent(t *testing.T) {
	fs := NewFilters()
	k := symKeyOf(t, "status")
	topic := TopicFromName("status")
	env := wrapFor(t, topic, MessageParams{Payload: []byte("hi"), KeySym: k})
	keep, _ := fs.Install(Filter{Topics: []Topic{topic}, SymKey: k})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := 0; i < 200; i++ {
			id, err := fs.Install(Filter{Topics: []Topic{topic, {byte(i)}}, SymKey: k})
			if err != nil {
				t.Error(err)
				return
			}
			if err := fs.Uninstall(id); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		for i := 0; i < 200; i++ {
			found := false
			for _, m := range fs.Match(env, false) {
				found = found || m.FilterID == keep
			}
			if !found {
				t.Error("the permanent filter missed a match")
				return
			}
		}
	}()
	wg.Wait()
}

func ids(ms []Match) string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.FilterID
	}
	return fmt.Sprint(out)
}
