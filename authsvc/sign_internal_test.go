package authsvc

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"
)

// The hand-written claims encoder writes what encoding/json writes.
// TestAppendAccessClaimsReadsBack: the hand-written encoding is valid JSON
// that encoding/json reads back as the claims (as it reads its own
// encoding of them: invalid UTF-8 becomes U+FFFD in both).
func TestAppendAccessClaimsReadsBack(t *testing.T) {
	odd := []string{"", "plain", `quo"te`, `back\slash`, "<script>&amp;", "tab\tnl\nnul\x00", "é ü 日本", "\u2028\u2029",
		"bad utf8 \xff\xfe", "del\x7f", "emoji 🙂", strings.Repeat("x", 300)}
	cases := []AccessClaims{
		{},
		{Issuer: "erpgate", Subject: "5f0c8f7e-3a57-4c55-9a3c-0c1a4e1d2b6f", Audience: "erpgate-api", ExpiresAt: 1772367300, IssuedAt: 1772366400,
			NotBefore: 1772366400, ID: "0b8e", SessionID: "s", CompanyID: "acme", Roles: []string{"admin", "viewer"}, Scope: "a:read b:write", Plan: "standard"},
		{Roles: []string{}, ExpiresAt: -1, IssuedAt: 1 << 62},
	}
	for i, s := range odd {
		cases = append(cases, AccessClaims{Issuer: s, Subject: odd[(i+1)%len(odd)], Audience: s, ID: s, SessionID: s, CompanyID: s,
			Roles: []string{s, odd[(i+2)%len(odd)]}, Scope: s, Plan: s, ExpiresAt: int64(i) * 1e9})
	}
	for _, c := range cases {
		std, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		var want, got AccessClaims
		if err := json.Unmarshal(std, &want); err != nil {
			t.Fatal(err)
		}
		b := appendAccessClaims(nil, &c)
		if !json.Valid(b) {
			t.Fatalf("appendAccessClaims(%+v) is not JSON: %s", c, b)
		}
		if err := json.Unmarshal(b, &got); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("appendAccessClaims(%+v)\n reads back %+v (%v)\nwant %+v", c, got, err, want)
		}
	}
}

func TestSignJWT(t *testing.T) {
	s, k := testService(t)
	now := time.Now()
	tok, err := s.issueAccess("u1", "s1", "acme", "standard", []string{RoleViewer}, now)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %q", tok)
	}
	hdr, err := base64.RawURLEncoding.Strict().DecodeString(parts[0])
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"alg":"EdDSA","kid":"` + k.kid + `","typ":"at+jwt"}`; string(hdr) != want {
		t.Fatalf("header %s, want %s", hdr, want)
	}
	// An independent implementation (jwx) verifies it, with the key's alg.
	payload, err := jws.Verify([]byte(tok), jws.WithKey(jwa.EdDSA(), k.pub))
	if err != nil {
		t.Fatalf("jwx: %v", err)
	}
	var c AccessClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	if c.Subject != "u1" || c.SessionID != "s1" || c.CompanyID != "acme" || c.Scope != scopeString([]string{RoleViewer}) ||
		c.ExpiresAt != now.Add(s.cfg.AccessTTL).Unix() || c.ID == "" {
		t.Fatalf("claims %+v", c)
	}
	got, err := s.verifyAccess(t.Context(), tok)
	if err != nil || got.Subject != "u1" {
		t.Fatalf("verifyAccess: %+v, %v", got, err)
	}
	// A login token is not an access token, and the other way round.
	lt, err := s.issueLogin("u1", "none", nil, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.verifyAccess(t.Context(), lt); err == nil {
		t.Fatal("login token accepted as access token")
	}
	if _, err := s.verifyLogin(tok); err == nil {
		t.Fatal("access token accepted as login token")
	}
	if _, err := s.verifyLogin(lt); err != nil {
		t.Fatalf("verifyLogin: %v", err)
	}
	if _, err := signJWT(k, "JWT", []byte("{}")); err == nil {
		t.Fatal("signed with an unknown typ")
	}
	if _, err := signJWT(ringKey{kid: k.kid, pub: k.pub, hdr: k.hdr}, TypAccess, []byte("{}")); err == nil {
		t.Fatal("signed without a private key")
	}
}

// signRaw signs header.payload (both given as JSON) with priv, the way any
// EdDSA signer would.
func signRaw(priv ed25519.PrivateKey, header, payload string) string {
	in := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString([]byte(payload))
	return in + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(priv, []byte(in)))
}

func TestVerifyJWT(t *testing.T) {
	s, k := testService(t)
	ring := s.keys.ring.Load()
	payload := `{"sub":"u1"}`
	ok := func(name, tok string) {
		t.Helper()
		got, err := ring.verifyJWT(tok, TypAccess)
		if err != nil || string(got) != payload {
			t.Errorf("%s: refused (%v): %s", name, err, tok)
		}
	}
	bad := func(name, tok string) {
		t.Helper()
		if _, err := ring.verifyJWT(tok, TypAccess); err == nil {
			t.Errorf("%s: accepted: %s", name, tok)
		}
	}
	good, err := signJWT(k, TypAccess, []byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	ok("own token", good)
	// Headers serialised otherwise (another signer, members reordered or
	// spaced) are decoded and checked member by member.
	ok("reordered header", signRaw(k.priv, `{"typ":"at+jwt","kid":"`+k.kid+`","alg":"EdDSA"}`, payload))
	ok("spaced header", signRaw(k.priv, `{ "alg": "EdDSA", "kid": "`+k.kid+`", "typ": "at+jwt" }`, payload))
	jwxHdr := jws.NewHeaders()
	_ = jwxHdr.Set(jws.KeyIDKey, k.kid)
	_ = jwxHdr.Set(jws.TypeKey, TypAccess)
	jwxTok, err := jws.Sign([]byte(payload), jws.WithKey(jwa.EdDSA(), k.priv, jws.WithProtectedHeaders(jwxHdr)))
	if err != nil {
		t.Fatal(err)
	}
	ok("jwx-signed token", string(jwxTok))

	_, other, _ := ed25519.GenerateKey(rand.Reader)
	hp := strings.SplitN(good, ".", 3)
	bad("login typ", signRaw(k.priv, `{"alg":"EdDSA","kid":"`+k.kid+`","typ":"erp-login+jwt"}`, payload))
	bad("no typ", signRaw(k.priv, `{"alg":"EdDSA","kid":"`+k.kid+`"}`, payload))
	bad("alg none", signRaw(k.priv, `{"alg":"none","kid":"`+k.kid+`","typ":"at+jwt"}`, payload))
	bad("alg none, no signature", hp[0]+"."+hp[1]+".")
	bad("alg HS256", signRaw(k.priv, `{"alg":"HS256","kid":"`+k.kid+`","typ":"at+jwt"}`, payload))
	bad("unknown kid", signRaw(k.priv, `{"alg":"EdDSA","kid":"nope","typ":"at+jwt"}`, payload))
	bad("no kid", signRaw(k.priv, `{"alg":"EdDSA","typ":"at+jwt"}`, payload))
	bad("crit", signRaw(k.priv, `{"alg":"EdDSA","kid":"`+k.kid+`","typ":"at+jwt","crit":["exp"],"exp":1}`, payload))
	bad("b64", signRaw(k.priv, `{"alg":"EdDSA","kid":"`+k.kid+`","typ":"at+jwt","b64":true}`, payload))
	bad("header not an object", signRaw(k.priv, `["EdDSA"]`, payload))
	bad("header not JSON", signRaw(k.priv, `alg=EdDSA`, payload))
	bad("typ not a string", signRaw(k.priv, `{"alg":"EdDSA","kid":"`+k.kid+`","typ":["at+jwt"]}`, payload))
	bad("other key", signRaw(other, `{"alg":"EdDSA","kid":"`+k.kid+`","typ":"at+jwt"}`, payload))
	bad("payload swapped", hp[0]+"."+base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"u2"}`))+"."+hp[2])
	bad("signature flipped", hp[0]+"."+hp[1]+"."+flip(hp[2]))
	bad("signature short", hp[0]+"."+hp[1]+"."+hp[2][:len(hp[2])-2])
	bad("signature padded", hp[0]+"."+hp[1]+"."+hp[2]+"==")
	if std := strings.NewReplacer("-", "+", "_", "/").Replace(hp[2]); std != hp[2] {
		bad("signature std base64", hp[0]+"."+hp[1]+"."+std)
	}
	bad("fourth part", good+".x")
	bad("two parts", hp[0]+"."+hp[1])
	bad("one part", hp[0])
	bad("empty header", "."+hp[1]+"."+hp[2])
	bad("empty", "")
	bad("too long", signRaw(k.priv, `{"alg":"EdDSA","kid":"`+k.kid+`","typ":"at+jwt"}`, `{"sub":"`+strings.Repeat("x", 8<<10)+`"}`))
	// The last character of the signature carries 4 padding bits: a
	// non-zero one is another encoding of the same bytes, refused.
	last := hp[2][len(hp[2])-1]
	idx := strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", last)
	alt := "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[idx|1]
	if alt != last {
		bad("non-canonical signature", hp[0]+"."+hp[1]+"."+hp[2][:len(hp[2])-1]+string(alt))
	}
}

func flip(s string) string {
	b := []byte(s)
	if b[0] == 'A' {
		b[0] = 'B'
	} else {
		b[0] = 'A'
	}
	return string(b)
}

func TestScopeString(t *testing.T) {
	sets := [][]string{nil, {}, {RoleOwner}, {RoleViewer}, {RoleSales, RoleAccountant}, {RoleAccountant, RoleSales}, {"unknown"}, {RoleViewer, "unknown", RoleViewer}}
	for _, roles := range sets {
		for range 2 { // cached the second time
			if got, want := scopeString(roles), strings.Join(scopesForReference(roles), " "); got != want {
				t.Errorf("scopeString(%v) = %q, want %q", roles, got, want)
			}
		}
		if got, want := strings.Join(ScopesFor(roles), " "), strings.Join(scopesForReference(roles), " "); got != want {
			t.Errorf("ScopesFor(%v) = %q, want %q", roles, got, want)
		}
	}
}

// scopesForReference is the role → scope table read the obvious way.
func scopesForReference(roles []string) []string {
	set := map[string]bool{}
	for _, r := range roles {
		for backend, access := range roleScopes[r] {
			if strings.Contains(access, "r") {
				set[backend+":read"] = true
			}
			if strings.Contains(access, "w") {
				set[backend+":write"] = true
			}
		}
	}
	out := []string{}
	for _, b := range []string{"customers", "inventory", "invoices", "journal", "ledger", "products", "webhooks"} {
		for _, a := range []string{":read", ":write"} {
			if set[b+a] {
				out = append(out, b+a)
			}
		}
	}
	return out
}
