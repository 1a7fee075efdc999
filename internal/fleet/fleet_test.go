package fleet

import (
	"encoding/json"
	"testing"
)

func raw(s string) json.RawMessage { return json.RawMessage(s) }

func mapsOf(t *testing.T, backends, overrides map[string]string) Maps {
	t.Helper()
	b, o := map[string]json.RawMessage{}, map[string]json.RawMessage{}
	for k, v := range backends {
		b[k] = raw(v)
	}
	for k, v := range overrides {
		o[k] = raw(v)
	}
	m, err := MapsOf(b, o)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestCanonical(t *testing.T) {
	t.Parallel()
	a, err := Canonical(raw(`{ "b": 1, "a": {"y": 2.50, "x": [1, 2]} }`))
	if err != nil {
		t.Fatal(err)
	}
	if string(a) != `{"a":{"x":[1,2],"y":2.50},"b":1}` {
		t.Fatalf("canonical = %s", a)
	}
	if _, err := Canonical(raw(`{`)); err == nil {
		t.Fatal("broken JSON accepted")
	}
}

func TestOverlayAndChanges(t *testing.T) {
	t.Parallel()
	file := mapsOf(t, map[string]string{"invoices": `{"v":1}`, "ledger": `{"v":1}`}, map[string]string{"acme": `{"rate":"60/m"}`})
	stored := []Entry{
		{Key: Key{KindBackend, "gl"}, Value: raw(`{"v":9}`), Revision: 1},
		{Key: Key{KindBackend, "ledger"}, Value: nil, Revision: 2}, // deleted at run time
		{Key: Key{KindQuotaOverride, "acme"}, Value: raw(`{"rate":"5/m"}`), Revision: 3},
	}
	eff := Overlay(file, stored)
	want := mapsOf(t, map[string]string{"invoices": `{"v":1}`, "gl": `{"v":9}`}, map[string]string{"acme": `{"rate":"5/m"}`})
	if !eff.Equal(want) {
		t.Fatalf("overlay = %v", eff)
	}
	if len(file) != 3 {
		t.Fatal("overlay changed its base")
	}
	var k Known
	if fresh := k.Merge(stored); len(fresh) != 3 || k.Revision() != 3 {
		t.Fatalf("merge: %v %d", fresh, k.Revision())
	}
	if fresh := k.Merge(stored[:1]); len(fresh) != 0 {
		t.Fatal("an entry merged twice")
	}
	known := k.Snapshot()

	// the sync's own load (what is stored, with the same value) is no local change
	if c := Changes(file, eff, known, false); len(c) != 0 {
		t.Fatalf("the sync's own load seen as changes: %v", c)
	}
	// an admin changes gl and adds x, deletes invoices: three changes
	admin := Overlay(eff, []Entry{
		{Key: Key{KindBackend, "gl"}, Value: raw(`{"v":10}`)},
		{Key: Key{KindBackend, "x"}, Value: raw(`{"v":1}`)},
		{Key: Key{KindBackend, "invoices"}},
	})
	c := Changes(eff, admin, known, false)
	if len(c) != 3 || c[0].Name != "gl" || string(c[0].Value) != `{"v":10}` || c[1].Name != "invoices" || c[1].Value != nil || c[2].Name != "x" {
		t.Fatalf("changes = %+v", c)
	}
	// a file reload: keys the fleet stores are not changed by it, others are
	reload := mapsOf(t, map[string]string{"invoices": `{"v":2}`, "ledger": `{"v":1}`}, map[string]string{"acme": `{"rate":"60/m"}`})
	c = Changes(eff, Overlay(reload, k.Since(0)), known, true)
	if len(c) != 1 || c[0].Name != "invoices" || string(c[0].Value) != `{"v":2}` {
		t.Fatalf("file reload changes = %+v", c)
	}
	if s := k.Since(1); len(s) != 2 || s[0].Revision != 2 || s[1].Revision != 3 {
		t.Fatalf("since 1 = %+v", s)
	}
	b, o := eff.Split()
	if len(b) != 2 || len(o) != 1 || string(o["acme"]) != `{"rate":"5/m"}` {
		t.Fatalf("split = %v %v", b, o)
	}
}
