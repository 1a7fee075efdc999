package statuses

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	gjwt "github.com/golang-jwt/jwt/v5"

	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/faultproxy"
	"github.com/erpgate/erpgate/internal/stacktest"
)

// issuer is a test token issuer publishing its keys at /jwks.json.
type issuer struct {
	mu   sync.Mutex
	keys map[string]ed25519.PrivateKey // kid → key, all published
}

func (is *issuer) publish(kid string) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	is.mu.Lock()
	is.keys[kid] = priv
	is.mu.Unlock()
}

func (is *issuer) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	is.mu.Lock()
	var keys []map[string]string
	for kid, priv := range is.keys {
		keys = append(keys, map[string]string{"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": kid,
			"x": base64.RawURLEncoding.EncodeToString(priv.Public().(ed25519.PublicKey))})
	}
	is.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"keys": keys})
}

func (is *issuer) token(t *testing.T, kid string) string {
	t.Helper()
	is.mu.Lock()
	priv := is.keys[kid]
	is.mu.Unlock()
	now := time.Now()
	tok := gjwt.NewWithClaims(gjwt.SigningMethodEdDSA, gjwt.MapClaims{
		"iss": "https://issuer.test", "aud": "erpgate-test", "sub": "u1", "sid": "s1", "cid": "acme",
		"scope": "invoices:read", "iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
	})
	tok.Header["kid"], tok.Header["typ"] = kid, "at+jwt"
	s, err := tok.SignedString(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestJWKSDropsAfterStart: a remote edge (erp_jwt with jwks_url) keeps
// verifying tokens of the keys it fetched while the JWKS is cut; a token
// of a key published meanwhile cannot be checked: 503 with Retry-After,
// not 401. Restored, that token verifies.
func TestJWKSDropsAfterStart(t *testing.T) {
	t.Parallel()
	is := &issuer{keys: map[string]ed25519.PrivateKey{}}
	is.publish("k1")
	srv := httptest.NewServer(is)
	t.Cleanup(srv.Close)
	p := faultproxy.Start(t, strings.TrimPrefix(srv.URL, "http://"))
	in := stacktest.Start(t, stacktest.Options{Config: `{
	admin {$ERP_ADMIN}
}
http://{$ERP_LISTEN} {
	erp_envelope
	handle /api/* {
		erp_auth {
			jwks_url http://` + p.Addr() + `/jwks.json
			issuer https://issuer.test
			audience erpgate-test
			min_refetch 100ms
			negative_ttl 100ms
			api_keys off
			require invoices:read
		}
		respond "ok" 200
	}
	handle_errors {
		erp_envelope
	}
}
`})
	old := check{"edge: JWT of a fetched key", get(in.URL, "/api/x", demoauth.Bearer(is.token(t, "k1")))}
	expectWorks(t, old)

	p.Cut()
	is.publish("k2")
	fresh := check{"edge: JWT of a key published while the JWKS is cut", get(in.URL, "/api/x", demoauth.Bearer(is.token(t, "k2")))}
	expectUnavailable(t, fresh)
	expectStatus(t, fresh, http.StatusServiceUnavailable) // the remembered unknown kid too
	r := old.do(t)
	if r.StatusCode != 200 {
		t.Errorf("%s while the JWKS is cut: %d %s", old.name, r.StatusCode, r.Body)
	}

	p.Restore()
	expectWorks(t, fresh)
}
