package authsvc

import (
	"context"
	"testing"
)

// TestArgon2idDummy: the dummy hash is well-formed with the hasher's own
// parameters (so verifying against it costs a real verification) and no
// password matches it.
func TestArgon2idDummy(t *testing.T) {
	t.Parallel()
	a := NewArgon2idParams(1, 64, 1, 1)
	d := a.Dummy()
	h, err := parsePHC(d)
	if err != nil {
		t.Fatalf("dummy %q: %v", d, err)
	}
	if h.m != a.Params.Memory || h.t != a.Params.Time || h.p != a.Params.Threads || len(h.key) != int(Argon2KeyLen) {
		t.Fatalf("dummy parameters m=%d t=%d p=%d keylen=%d, want the hasher's", h.m, h.t, h.p, len(h.key))
	}
	if d == a.Dummy() {
		t.Fatal("two dummies are equal: salt and key must be random")
	}
	for _, pw := range []string{"", "erpgate-demo", "password"} {
		if ok, err := a.Verify(context.Background(), pw, d); err != nil || ok {
			t.Fatalf("Verify(%q, dummy) = %v, %v; want false, nil", pw, ok, err)
		}
	}
}
