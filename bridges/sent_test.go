package bridges_test

import (
	"testing"

	"github.com/statusgate/statusgate/bridges"
)

func TestSentKeys(t *testing.T) {
	s := bridges.NewSentKeys(2)
	if _, ok := s.Get("a"); ok {
		t.Fatal("empty memory holds a")
	}
	s.Put("a", bridges.Receipt{ID: "x:1"})
	s.Put("b", bridges.Receipt{ID: "x:2"})
	if r, ok := s.Get("a"); !ok || r.ID != "x:1" {
		t.Fatalf("a: %v %v", r, ok)
	}
	s.Put("c", bridges.Receipt{ID: "x:3"}) // forgets the oldest put, a
	if _, ok := s.Get("a"); ok {
		t.Error("a kept beyond 2 keys")
	}
	for k, want := range map[string]bridges.RemoteMsgID{"b": "x:2", "c": "x:3"} {
		if r, ok := s.Get(k); !ok || r.ID != want {
			t.Errorf("%s: %v %v", k, r, ok)
		}
	}
	s.Put("", bridges.Receipt{ID: "x:4"})
	if _, ok := s.Get(""); ok {
		t.Error("an empty key is remembered")
	}
	var zero *bridges.SentKeys
	zero.Put("a", bridges.Receipt{})
	if _, ok := zero.Get("a"); ok {
		t.Error("nil memory holds a")
	}
}
