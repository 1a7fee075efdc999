package cursor

import (
	"bytes"
	"strings"
	"testing"
)

func codec(t testing.TB, b byte) *Codec {
	c, err := New(bytes.Repeat([]byte{b}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRoundTripAndRefusals(t *testing.T) {
	a, other := codec(t, 1), codec(t, 2)
	q := QueryHash("invoices", "v1", "status:eq:paid", "-id", "50")
	tok := Token{Company: "acme", Query: q, Kind: "keyset", Pos: "inv_0042"}
	s := a.Seal(tok)
	if got, err := codec(t, 1).Open(s, "acme", q); err != nil || got != tok {
		t.Fatalf("another instance, same key: %+v %v", got, err)
	}
	if _, err := a.Open(s, "globex", q); err != ErrOtherCompany {
		t.Errorf("other company: %v", err)
	}
	if _, err := a.Open(s, "acme", QueryHash("invoices", "v1", "status:eq:paid", "-id", "51")); err != ErrOtherQuery {
		t.Errorf("other query: %v", err)
	}
	if _, err := other.Open(s, "acme", q); err != ErrSignature {
		t.Errorf("other key: %v", err)
	}
	p, m, _ := strings.Cut(s, ".")
	tampered := a.Seal(Token{Company: "acme", Query: q, Kind: "keyset", Pos: "inv_9999"})
	tp, _, _ := strings.Cut(tampered, ".")
	if _, err := a.Open(tp+"."+m, "acme", q); err != ErrSignature {
		t.Errorf("tampered payload: %v", err)
	}
	for _, bad := range []string{"", "abc", p + ".!!", strings.Repeat("a", MaxLen+1)} {
		if _, err := a.Open(bad, "acme", q); err != ErrMalformed {
			t.Errorf("%.20q: %v", bad, err)
		}
	}
	if _, err := New(make([]byte, 16)); err == nil {
		t.Error("short key accepted")
	}
	if QueryHash("a", "bc") == QueryHash("ab", "c") {
		t.Error("query parts collide")
	}
}

func BenchmarkOpen(b *testing.B) {
	c := codec(b, 1)
	q := QueryHash("invoices", "v1", "", "-id", "50")
	s := c.Seal(Token{Company: "acme", Query: q, Kind: "offset", Pos: "150"})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Open(s, "acme", q); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSeal(b *testing.B) {
	c := codec(b, 1)
	q := QueryHash("invoices", "v1", "", "-id", "50")
	tok := Token{Company: "acme", Query: q, Kind: "keyset", Pos: `"inv_acme_0042"`}
	b.ReportAllocs()
	for b.Loop() {
		if s := c.Seal(tok); s == "" {
			b.Fatal("empty")
		}
	}
}

func TestTokenFormat(t *testing.T) {
	tok := Token{Company: "acme", Query: "q", Kind: "skiptoken", Pos: strings.Repeat("x", 300)}
	b := appendToken(nil, &tok)
	var got Token
	if !readToken(b, &got) || got != tok {
		t.Fatalf("%+v", got)
	}
	for i := range len(b) {
		if readToken(b[:i], &got) {
			t.Fatalf("truncated at %d read", i)
		}
	}
	if readToken(append(b, 0), &got) {
		t.Fatal("trailing byte read")
	}
	if readToken(append([]byte{2}, b[1:]...), &got) {
		t.Fatal("another version read")
	}
}
