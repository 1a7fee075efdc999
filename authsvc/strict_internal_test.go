package authsvc

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/erpgate/erpgate/internal/tokenjson"
)

// TestVerifyStrictJSON: access and login tokens validly signed by the ring's
// key whose header or claims are ambiguous are refused (SECURITY.md,
// "Ambiguity"); encoding/json would have read each of them one way or
// another.
func TestVerifyStrictJSON(t *testing.T) {
	t.Parallel()
	s, k := testService(t)
	now := time.Now()
	hdr := func(typ string) string { return `{"alg":"EdDSA","kid":"` + k.kid + `","typ":"` + typ + `"}` }
	access := func(extra string) string {
		return fmt.Sprintf(`{"iss":%q,"aud":%q,"sub":"u1","sid":"s1","cid":"acme","exp":%d,"iat":%d,"nbf":%d,"jti":"j1","roles":["viewer"],"scope":"invoices:read","plan":"free"%s}`,
			s.cfg.Issuer, s.cfg.Audience, now.Add(time.Minute).Unix(), now.Unix(), now.Unix(), extra)
	}
	if c, err := s.verifyAccess(t.Context(), signRaw(k.priv, hdr(TypAccess), access(""))); err != nil || c.CompanyID != "acme" {
		t.Fatalf("hand-signed access token: %+v %v", c, err)
	}
	if _, err := s.verifyAccess(t.Context(), signRaw(k.priv, `{"typ":"at+jwt","alg":"EdDSA","kid":"`+k.kid+`","x5t":"abc"}`, access(`,"extra":{"a":[1]}`))); err != nil {
		t.Fatalf("unknown members: %v", err)
	}
	for _, tc := range []struct{ name, header, claims string }{
		{"cid and CID", hdr(TypAccess), access(`,"CID":"globex"`)},
		{"CID before cid", hdr(TypAccess), `{"CID":"globex",` + access("")[1:]},
		{"duplicate sub", hdr(TypAccess), access(`,"sub":"u2"`)},
		{"escaped duplicate cid", hdr(TypAccess), access(`,"c\u0069d":"globex"`)},
		{"cid a number", hdr(TypAccess), strings.Replace(access(""), `"cid":"acme"`, `"cid":123`, 1)},
		{"exp a string", hdr(TypAccess), strings.Replace(access(""), `"exp":`, `"exp":"1","x":`, 1)},
		{"exp a fraction", hdr(TypAccess), strings.Replace(access(""), `"exp":`, `"exp":1.5,"x":`, 1)},
		{"roles an object", hdr(TypAccess), strings.Replace(access(""), `"roles":["viewer"]`, `"roles":{"0":"viewer"}`, 1)},
		{"sub null", hdr(TypAccess), strings.Replace(access(""), `"sub":"u1"`, `"sub":null`, 1)},
		{"invalid UTF-8 in a claim", hdr(TypAccess), strings.Replace(access(""), `"plan":"free"`, "\"plan\":\"free\xff\"", 1)},
		{"invalid UTF-8 in cid", hdr(TypAccess), strings.Replace(access(""), `"cid":"acme"`, "\"cid\":\"ac\xe9me\"", 1)},
		{"lone surrogate", hdr(TypAccess), strings.Replace(access(""), `"plan":"free"`, `"plan":"\ud800"`, 1)},
		{"Exp instead of exp", hdr(TypAccess), strings.Replace(access(""), `"exp":`, `"Exp":`, 1)},
		{"ALG beside alg", `{"alg":"EdDSA","kid":"` + k.kid + `","typ":"at+jwt","ALG":"none"}`, access("")},
		{"Typ instead of typ", `{"alg":"EdDSA","kid":"` + k.kid + `","Typ":"at+jwt"}`, access("")},
		{"typ twice", `{"alg":"EdDSA","kid":"` + k.kid + `","typ":"at+jwt","typ":"at+jwt"}`, access("")},
		{"Crit", `{"alg":"EdDSA","kid":"` + k.kid + `","typ":"at+jwt","Crit":["exp"]}`, access("")},
		{"invalid UTF-8 in the header", "{\"alg\":\"EdDSA\",\"kid\":\"" + k.kid + "\",\"typ\":\"at+jwt\",\"x\":\"\xff\"}", access("")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := signRaw(k.priv, tc.header, tc.claims)
			if c, err := s.verifyAccess(t.Context(), tok); err == nil {
				t.Fatalf("accepted: %+v", c)
			}
		})
	}
	login := func(extra string) string {
		return fmt.Sprintf(`{"iss":%q,"sub":"u1","aud":%q,"exp":%d,"iat":%d,"jti":"j1","mfa":"pending"%s}`,
			s.cfg.Issuer, s.loginAudience(), now.Add(time.Minute).Unix(), now.Unix(), extra)
	}
	if _, err := s.verifyLogin(signRaw(k.priv, hdr(typLogin), login(""))); err != nil {
		t.Fatalf("hand-signed login token: %v", err)
	}
	for name, claims := range map[string]string{
		"mfa and MFA":   login(`,"MFA":"done"`),
		"mfa twice":     login(`,"mfa":"done"`),
		"mfa a boolean": strings.Replace(login(""), `"mfa":"pending"`, `"mfa":true`, 1),
	} {
		if _, err := s.verifyLogin(signRaw(k.priv, hdr(typLogin), claims)); err == nil {
			t.Errorf("login token %s: accepted", name)
		}
	}
}

// accessClaimsJSON reads AccessClaims strictly, as jwtverify reads them.
var accessClaimsJSON = tokenjson.MustCompile[AccessClaims]()

// TestOwnTokensDecodeStrictly: whatever this service writes into a token,
// the strict decoder reads back as encoding/json does.
func TestOwnTokensDecodeStrictly(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"", "plain", `quo"te`, "tab\tnl\nnul\x00", "é 日本 🙂", "bad utf8 \xff\xfe", "\u2028"} {
		c := AccessClaims{Issuer: v, Subject: v, Audience: v, ID: v, SessionID: v, CompanyID: v, Roles: []string{v}, Scope: v, Plan: v, ExpiresAt: 1}
		b := appendAccessClaims(nil, &c)
		var got, want AccessClaims
		if err := accessClaimsJSON.Decode(b, &got); err != nil {
			t.Fatalf("%q: %v", b, err)
		}
		if err := json.Unmarshal(b, &want); err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: strict %+v, encoding/json %+v (%v)", b, got, want, err)
		}
		lb, err := json.Marshal(loginClaims{Issuer: v, Subject: v, Audience: v, ID: v, MFA: v})
		if err != nil {
			t.Fatal(err)
		}
		var lc loginClaims
		if err := loginClaimsJSON.Decode(lb, &lc); err != nil {
			t.Fatalf("%s: %v", lb, err)
		}
	}
}
