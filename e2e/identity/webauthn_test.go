// Package identity_test drives issue #17's sign-in methods through the
// running gateway binary.
package identity_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/stacktest"
	"github.com/erpgate/erpgate/internal/testenv"
)

// waInstance is a gateway whose public URL has a domain name (a relying
// party id cannot be an IP address): http://localhost:<port>, while the
// test talks to 127.0.0.1:<port>.
type waInstance struct {
	*stacktest.Instance
	origin, rpID string
	root         string // a platform admin's access token, to read the audit trail
}

func waStart(t *testing.T, env map[string]string) *waInstance {
	t.Helper()
	port := strconv.Itoa(stacktest.FreePort(t))
	all := map[string]string{"ERP_LISTEN": "127.0.0.1:" + port, "ERP_PUBLIC_URL": "http://localhost:" + port}
	for k, v := range env {
		all[k] = v
	}
	in := stacktest.Start(t, stacktest.Options{Config: stacktest.ExampleConfig(t), Env: all})
	w := &waInstance{Instance: in, origin: "http://localhost:" + port, rpID: "localhost"}
	w.root = demoauth.Login(t, in.URL, "root@erpgate.local", "acme").Access
	return w
}

func (w *waInstance) post(t *testing.T, path string, body any, access string) *httpt.Response {
	t.Helper()
	var h map[string]string
	if access != "" {
		h = demoauth.Bearer(access)
	}
	return httpt.Do(t, http.MethodPost, w.URL+path, httpt.JSON(t, body), h)
}

// waData decodes a successful answer's data into v.
func waData(t *testing.T, r *httpt.Response, status int, v any) {
	t.Helper()
	env := r.Envelope(t)
	if r.StatusCode != status || !env.Success {
		t.Fatalf("%s %s: %d (want %d) %s", r.Request.Method, r.Request.URL.Path, r.StatusCode, status, r.Body)
	}
	if v != nil {
		if err := json.Unmarshal(env.Data, v); err != nil {
			t.Fatalf("%s: %v: %s", r.Request.URL.Path, err, env.Data)
		}
	}
}

// waRefused checks a refusal: status and code, and that the message
// names no secret.
func waRefused(t *testing.T, r *httpt.Response, status int, code string) {
	t.Helper()
	env := r.Envelope(t)
	if r.StatusCode != status || env.Code() != code {
		t.Fatalf("%s %s: %d %s, want %d %s", r.Request.Method, r.Request.URL.Path, r.StatusCode, r.Body, status, code)
	}
}

type waBegun struct {
	Session string `json:"session"`
	Options struct {
		PublicKey waPublicKey `json:"publicKey"`
	} `json:"options"`
	ExpiresIn int `json:"expires_in"`
}

type waCredView struct {
	ID           string   `json:"id"`
	Name         string   `json:"name"`
	CredentialID string   `json:"credential_id"`
	AAGUID       string   `json:"aaguid"`
	Transports   []string `json:"transports"`
	SignCount    uint32   `json:"sign_count"`
	UserVerified bool     `json:"user_verified"`
	LastUsedAt   *string  `json:"last_used_at"`
}

type waLoginAnswer struct {
	LoginToken  string   `json:"login_token"`
	MFARequired bool     `json:"mfa_required"`
	MFAMethods  []string `json:"mfa_methods"`
	Method      string   `json:"method"`
	User        struct {
		Email string `json:"email"`
	} `json:"user"`
}

// waRegister registers a new software passkey for the access token's user.
func (w *waInstance) waRegister(t *testing.T, access, name string) (*waAuthenticator, waCredView) {
	t.Helper()
	var b waBegun
	waData(t, w.post(t, "/api/v1/auth/webauthn/register/begin", map[string]string{"name": name}, access), 200, &b)
	a := waNewAuthenticator(t, w.rpID, w.origin)
	var v waCredView
	waData(t, w.post(t, "/api/v1/auth/webauthn/register/finish", map[string]any{"session": b.Session, "credential": a.create(t, b.Options.PublicKey, waTamper{})}, access), 201, &v)
	return a, v
}

func (w *waInstance) begin(t *testing.T, body map[string]string) waBegun {
	t.Helper()
	var b waBegun
	waData(t, w.post(t, "/api/v1/auth/webauthn/login/begin", body, ""), 200, &b)
	return b
}

func (w *waInstance) finish(t *testing.T, b waBegun, cred map[string]any) *httpt.Response {
	t.Helper()
	return w.post(t, "/api/v1/auth/webauthn/login/finish", map[string]any{"session": b.Session, "credential": cred}, "")
}

type waAuditRecord struct {
	Type      string            `json:"type"`
	ActorID   string            `json:"actor_id"`
	SubjectID string            `json:"subject_id"`
	Details   map[string]string `json:"details"`
}

// audit is the trail's records of a type.
func (w *waInstance) audit(t *testing.T, typ string) []waAuditRecord {
	t.Helper()
	var out []waAuditRecord
	waData(t, httpt.Get(t, w.URL+"/api/v1/admin/audit?limit=100&type="+typ, demoauth.Bearer(w.root)), 200, &out)
	return out
}

// auditReasons are the reasons of the webauthn.failed records.
func (w *waInstance) auditReasons(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, r := range w.audit(t, "webauthn.failed") {
		out = append(out, r.Details["reason"])
	}
	return out
}

func (w *waInstance) selectCompany(t *testing.T, loginToken, company string) string {
	t.Helper()
	var tok struct {
		Access string `json:"access_token"`
	}
	waData(t, w.post(t, "/api/v1/auth/select-company", map[string]string{"login_token": loginToken, "company_id": company}, ""), 200, &tok)
	return tok.Access
}

func TestWebAuthnPasskeys(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{"memory", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{}
			if backend == "postgres" {
				redisURL, prefix := testenv.Redis(t)
				env = map[string]string{"ERP_POSTGRES_URL": testenv.Postgres(t), "ERP_REDIS_URL": redisURL, "ERP_KEY_PREFIX": prefix}
			}
			waPasskeyFlows(t, waStart(t, env))
		})
	}
}

func waPasskeyFlows(t *testing.T, w *waInstance) {
	alice := demoauth.Login(t, w.URL, "alice@acme.test", "acme").Access
	bob := demoauth.Login(t, w.URL, "bob@globex.test", "globex").Access

	// Registration: the options are go-webauthn's, for this relying party.
	var b waBegun
	waData(t, w.post(t, "/api/v1/auth/webauthn/register/begin", map[string]string{"name": "Laptop"}, alice), 200, &b)
	pk := b.Options.PublicKey
	if pk.RP.ID != "localhost" || pk.RP.Name != "erpgate" || pk.User.Name != "alice@acme.test" || pk.Challenge == "" ||
		pk.AuthSelection.ResidentKey != "preferred" || pk.AuthSelection.UserVerification != "preferred" || pk.Attestation != "none" ||
		len(pk.ExcludeCredentials) != 0 || b.ExpiresIn != 300 || b.Session == "" {
		t.Fatalf("creation options: %+v", b)
	}
	aliceKey := waNewAuthenticator(t, w.rpID, w.origin)
	reg := map[string]any{"session": b.Session, "credential": aliceKey.create(t, pk, waTamper{})}
	var aliceCred waCredView
	waData(t, w.post(t, "/api/v1/auth/webauthn/register/finish", reg, alice), 201, &aliceCred)
	if aliceCred.Name != "Laptop" || aliceCred.CredentialID != waB64(aliceKey.credID) || aliceCred.AAGUID != "00000000-0000-0000-0000-000000000000" ||
		!slices.Equal(aliceCred.Transports, []string{"hybrid", "internal"}) || !aliceCred.UserVerified || aliceCred.LastUsedAt != nil {
		t.Fatalf("registered: %+v", aliceCred)
	}
	// The registration session is spent; another user can't finish it.
	waRefused(t, w.post(t, "/api/v1/auth/webauthn/register/finish", reg, alice), 422, "VALIDATION_FAILED")
	waData(t, w.post(t, "/api/v1/auth/webauthn/register/begin", map[string]string{}, alice), 200, &b)
	if len(b.Options.PublicKey.ExcludeCredentials) != 1 || b.Options.PublicKey.ExcludeCredentials[0].ID != aliceCred.CredentialID {
		t.Fatalf("existing passkeys are not excluded: %+v", b.Options.PublicKey.ExcludeCredentials)
	}
	waRefused(t, w.post(t, "/api/v1/auth/webauthn/register/finish", map[string]any{"session": b.Session,
		"credential": waNewAuthenticator(t, w.rpID, w.origin).create(t, b.Options.PublicKey, waTamper{})}, bob), 422, "VALIDATION_FAILED")
	// A registration from another origin is refused.
	waData(t, w.post(t, "/api/v1/auth/webauthn/register/begin", map[string]string{}, alice), 200, &b)
	waRefused(t, w.post(t, "/api/v1/auth/webauthn/register/finish", map[string]any{"session": b.Session,
		"credential": waNewAuthenticator(t, w.rpID, w.origin).create(t, b.Options.PublicKey, waTamper{origin: "http://evil.localhost"})}, alice), 422, "VALIDATION_FAILED")
	// Without a bearer: 401.
	waRefused(t, w.post(t, "/api/v1/auth/webauthn/register/begin", map[string]string{}, ""), 401, "UNAUTHENTICATED")
	bobKey, bobCred := w.waRegister(t, bob, "")
	if bobCred.Name != "Passkey" {
		t.Fatalf("default name: %q", bobCred.Name)
	}

	t.Run("passwordless login", func(t *testing.T) {
		b := w.begin(t, map[string]string{})
		if b.Options.PublicKey.RPID != "localhost" || len(b.Options.PublicKey.AllowCredentials) != 0 || b.Options.PublicKey.UserVerification != "preferred" {
			t.Fatalf("discoverable options: %+v", b.Options.PublicKey)
		}
		var ans waLoginAnswer
		waData(t, w.finish(t, b, aliceKey.get(t, b.Options.PublicKey, waTamper{})), 200, &ans)
		if ans.MFARequired || ans.User.Email != "alice@acme.test" || ans.LoginToken == "" {
			t.Fatalf("passkey login: %+v", ans)
		}
		access := w.selectCompany(t, ans.LoginToken, "acme")
		var me struct {
			User struct {
				Email string `json:"email"`
			} `json:"user"`
		}
		waData(t, httpt.Get(t, w.URL+"/api/v1/auth/me", demoauth.Bearer(access)), 200, &me)
		if me.User.Email != "alice@acme.test" {
			t.Fatalf("me: %+v", me)
		}
		// By address: the user's passkeys are offered.
		b = w.begin(t, map[string]string{"email": "alice@acme.test"})
		if len(b.Options.PublicKey.AllowCredentials) != 1 || b.Options.PublicKey.AllowCredentials[0].ID != aliceCred.CredentialID {
			t.Fatalf("options by address: %+v", b.Options.PublicKey.AllowCredentials)
		}
		waData(t, w.finish(t, b, aliceKey.get(t, b.Options.PublicKey, waTamper{})), 200, &ans)
		// Without user verification the passkey is one factor: with
		// another factor enrolled (the passkey itself) a second is asked.
		aliceKey.uv = false
		b = w.begin(t, map[string]string{})
		waData(t, w.finish(t, b, aliceKey.get(t, b.Options.PublicKey, waTamper{})), 200, &ans)
		aliceKey.uv = true
		if !ans.MFARequired {
			t.Fatalf("a passkey without user verification skipped the second factor: %+v", ans)
		}
		var list []waCredView
		waData(t, httpt.Get(t, w.URL+"/api/v1/auth/webauthn/credentials", demoauth.Bearer(alice)), 200, &list)
		if len(list) != 1 || list[0].SignCount != aliceKey.count || list[0].LastUsedAt == nil {
			t.Fatalf("after logins: %+v (counter %d)", list, aliceKey.count)
		}
	})

	t.Run("second factor", func(t *testing.T) {
		var ans waLoginAnswer
		waData(t, w.post(t, "/api/v1/auth/login", map[string]string{"email": "alice@acme.test", "password": demoauth.Password}, ""), 200, &ans)
		if !ans.MFARequired || !slices.Contains(ans.MFAMethods, "webauthn") {
			t.Fatalf("password login with a passkey: %+v", ans)
		}
		pending := ans.LoginToken
		b := w.begin(t, map[string]string{"login_token": pending})
		if len(b.Options.PublicKey.AllowCredentials) != 1 || b.Options.PublicKey.AllowCredentials[0].ID != aliceCred.CredentialID {
			t.Fatalf("second-factor options: %+v", b.Options.PublicKey)
		}
		// Bob's passkey does not complete alice's login.
		waRefused(t, w.finish(t, b, bobKey.get(t, b.Options.PublicKey, waTamper{})), 401, "UNAUTHENTICATED")
		b = w.begin(t, map[string]string{"login_token": pending})
		good := aliceKey.get(t, b.Options.PublicKey, waTamper{})
		var done waLoginAnswer
		waData(t, w.finish(t, b, good), 200, &done)
		if done.MFARequired || done.Method != "webauthn" || done.LoginToken == "" {
			t.Fatalf("second factor: %+v", done)
		}
		w.selectCompany(t, done.LoginToken, "acme")
		// The same assertion again: the session is spent.
		waRefused(t, w.finish(t, b, good), 401, "UNAUTHENTICATED")
		// A new ceremony for the spent login token: refused.
		b = w.begin(t, map[string]string{"login_token": pending})
		waRefused(t, w.finish(t, b, aliceKey.get(t, b.Options.PublicKey, waTamper{})), 401, "TOKEN_REVOKED")
		if !slices.Contains(w.auditReasons(t), "session_replayed") {
			t.Fatalf("the replay is not audited: %v", w.auditReasons(t))
		}
	})

	t.Run("forged assertions", func(t *testing.T) {
		cases := []struct {
			name   string
			tm     waTamper
			reason string
		}{
			{"wrong origin", waTamper{origin: "http://localhost.evil.test"}, "verification_failed"},
			{"wrong RP id", waTamper{rpID: "evil.test"}, "verification_failed"},
			{"another challenge", waTamper{challenge: waB64([]byte("0123456789abcdef0123456789abcdef"))}, "verification_failed"},
			{"a create as a get", waTamper{typ: "webauthn.create"}, "verification_failed"},
			{"bad signature", waTamper{badSig: true}, "verification_failed"},
		}
		for _, tc := range cases {
			before := len(w.audit(t, "webauthn.failed"))
			b := w.begin(t, map[string]string{})
			r := w.finish(t, b, aliceKey.get(t, b.Options.PublicKey, tc.tm))
			waRefused(t, r, 401, "UNAUTHENTICATED")
			if strings.Contains(string(r.Body), "origin") || strings.Contains(string(r.Body), "alice") {
				t.Fatalf("%s: the refusal says too much: %s", tc.name, r.Body)
			}
			recs := w.audit(t, "webauthn.failed") // newest first
			if len(recs) != before+1 || recs[0].Details["reason"] != tc.reason || recs[0].Details["credential"] != aliceCred.ID {
				t.Fatalf("%s: audited %+v", tc.name, recs[0])
			}
		}
		// An unknown credential, and a session from nowhere.
		b := w.begin(t, map[string]string{})
		waRefused(t, w.finish(t, b, waNewAuthenticator(t, w.rpID, w.origin).get(t, b.Options.PublicKey, waTamper{})), 401, "UNAUTHENTICATED")
		b = w.begin(t, map[string]string{})
		b.Session = waB64([]byte(strings.Repeat("x", 80)))
		waRefused(t, w.finish(t, b, aliceKey.get(t, b.Options.PublicKey, waTamper{})), 401, "UNAUTHENTICATED")
		// By address, another user's passkey.
		b = w.begin(t, map[string]string{"email": "alice@acme.test"})
		waRefused(t, w.finish(t, b, bobKey.get(t, b.Options.PublicKey, waTamper{})), 401, "UNAUTHENTICATED")
		reasons := w.auditReasons(t)
		for _, want := range []string{"verification_failed", "unknown_credential", "invalid_session", "wrong_user"} {
			if !slices.Contains(reasons, want) {
				t.Fatalf("no webauthn.failed with reason %s: %v", want, reasons)
			}
		}
		// The genuine passkey still signs in.
		b = w.begin(t, map[string]string{})
		waData(t, w.finish(t, b, aliceKey.get(t, b.Options.PublicKey, waTamper{})), 200, nil)
	})

	t.Run("counter regression", func(t *testing.T) {
		b := w.begin(t, map[string]string{})
		aliceKey.count -= 3 // a clone, behind the original
		waRefused(t, w.finish(t, b, aliceKey.get(t, b.Options.PublicKey, waTamper{})), 401, "UNAUTHENTICATED")
		recs := w.audit(t, "webauthn.counter_regression")
		if len(recs) != 1 || recs[0].Details["credential"] != aliceCred.ID || recs[0].ActorID == "" {
			t.Fatalf("counter regression records: %+v", recs)
		}
		// The original, ahead, still signs in.
		aliceKey.count += 5
		b = w.begin(t, map[string]string{})
		waData(t, w.finish(t, b, aliceKey.get(t, b.Options.PublicKey, waTamper{})), 200, nil)
	})

	t.Run("unknown address looks known", func(t *testing.T) {
		known := w.begin(t, map[string]string{"email": "alice@acme.test"})
		unknown := w.begin(t, map[string]string{"email": "nobody@acme.test"})
		again := w.begin(t, map[string]string{"email": "nobody@acme.test"})
		shape := func(b waBegun) string {
			pk := b.Options.PublicKey
			var parts []string
			for _, d := range pk.AllowCredentials {
				parts = append(parts, d.Type, strconv.Itoa(len(waUnB64(t, d.ID))), strings.Join(d.Transports, ","))
			}
			return strings.Join(append(parts, pk.RPID, pk.UserVerification, strconv.Itoa(pk.Timeout), strconv.Itoa(len(pk.Challenge))), "|")
		}
		if shape(known) != shape(unknown) {
			t.Fatalf("an unknown address is told apart:\n%s\n%s", shape(known), shape(unknown))
		}
		if unknown.Options.PublicKey.AllowCredentials[0].ID != again.Options.PublicKey.AllowCredentials[0].ID {
			t.Fatal("an unknown address's credential changes from call to call (a real one does not)")
		}
		// Its ceremony fails like any other.
		waRefused(t, w.finish(t, unknown, waNewAuthenticator(t, w.rpID, w.origin).get(t, unknown.Options.PublicKey, waTamper{})), 401, "UNAUTHENTICATED")
	})

	t.Run("malformed input", func(t *testing.T) {
		b := w.begin(t, map[string]string{})
		waRefused(t, w.post(t, "/api/v1/auth/webauthn/login/finish", map[string]any{"session": b.Session, "credential": map[string]any{"id": 1}}, ""), 422, "VALIDATION_FAILED")
		waRefused(t, w.post(t, "/api/v1/auth/webauthn/login/finish", map[string]any{"session": b.Session}, ""), 422, "VALIDATION_FAILED")
		waRefused(t, w.post(t, "/api/v1/auth/webauthn/login/finish", map[string]any{"credential": aliceKey.get(t, b.Options.PublicKey, waTamper{})}, ""), 422, "VALIDATION_FAILED")
		waRefused(t, w.post(t, "/api/v1/auth/webauthn/login/begin", map[string]any{"email": "not an address"}, ""), 422, "VALIDATION_FAILED")
		waRefused(t, w.post(t, "/api/v1/auth/webauthn/login/begin", map[string]any{"login_token": "nope"}, ""), 401, "UNAUTHENTICATED")
		waRefused(t, w.post(t, "/api/v1/auth/webauthn/register/begin", map[string]any{"name": strings.Repeat("n", 65)}, alice), 422, "VALIDATION_FAILED")
		waRefused(t, w.post(t, "/api/v1/auth/webauthn/login/begin", map[string]any{"unknown": 1}, ""), 400, "BAD_REQUEST")
	})

	t.Run("disabled user", func(t *testing.T) {
		b := w.begin(t, map[string]string{})
		var ans struct {
			User struct {
				ID string `json:"id"`
			} `json:"user"`
		}
		waData(t, w.finish(t, b, bobKey.get(t, b.Options.PublicKey, waTamper{})), 200, &ans)
		r := httpt.Do(t, http.MethodPatch, w.URL+"/api/v1/admin/users/"+ans.User.ID, httpt.JSON(t, map[string]bool{"disabled": true}), demoauth.Bearer(w.root))
		waData(t, r, 200, nil)
		b = w.begin(t, map[string]string{})
		waRefused(t, w.finish(t, b, bobKey.get(t, b.Options.PublicKey, waTamper{})), 401, "UNAUTHENTICATED")
		if reasons := w.auditReasons(t); reasons[0] != "user_disabled" {
			t.Fatalf("disabled user's passkey: audited %v", reasons)
		}
		// By address, a disabled user's passkeys are not offered: decoys.
		b = w.begin(t, map[string]string{"email": "bob@globex.test"})
		if len(b.Options.PublicKey.AllowCredentials) != 1 || b.Options.PublicKey.AllowCredentials[0].ID == bobCred.CredentialID {
			t.Fatalf("a disabled user's passkeys are offered: %+v", b.Options.PublicKey.AllowCredentials)
		}
		waData(t, httpt.Do(t, http.MethodPatch, w.URL+"/api/v1/admin/users/"+ans.User.ID, httpt.JSON(t, map[string]bool{"disabled": false}), demoauth.Bearer(w.root)), 200, nil)
		// Disabling ended bob's sessions; with his passkey he signs in again.
		b = w.begin(t, map[string]string{})
		var again waLoginAnswer
		waData(t, w.finish(t, b, bobKey.get(t, b.Options.PublicKey, waTamper{})), 200, &again)
		bob = w.selectCompany(t, again.LoginToken, "globex")
	})

	t.Run("list and delete", func(t *testing.T) {
		var list []waCredView
		waData(t, httpt.Get(t, w.URL+"/api/v1/auth/webauthn/credentials", demoauth.Bearer(bob)), 200, &list)
		if len(list) != 1 || list[0].ID != bobCred.ID {
			t.Fatalf("bob's passkeys: %+v", list)
		}
		r := httpt.Do(t, http.MethodDelete, w.URL+"/api/v1/auth/webauthn/credentials/"+aliceCred.ID, nil, demoauth.Bearer(bob))
		waRefused(t, r, 404, "NOT_FOUND")
		waRefused(t, httpt.Do(t, http.MethodDelete, w.URL+"/api/v1/auth/webauthn/credentials/not-an-id", nil, demoauth.Bearer(bob)), 404, "NOT_FOUND")
		waRefused(t, httpt.Get(t, w.URL+"/api/v1/auth/webauthn/credentials", nil), 401, "UNAUTHENTICATED")
		waData(t, httpt.Do(t, http.MethodDelete, w.URL+"/api/v1/auth/webauthn/credentials/"+aliceCred.ID, nil, demoauth.Bearer(alice)), 200, nil)
		waData(t, httpt.Get(t, w.URL+"/api/v1/auth/webauthn/credentials", demoauth.Bearer(alice)), 200, &list)
		if len(list) != 0 {
			t.Fatalf("after delete: %+v", list)
		}
		if recs := w.audit(t, "webauthn.removed"); len(recs) != 1 || recs[0].SubjectID != aliceCred.ID {
			t.Fatalf("removal records: %+v", recs)
		}
		if recs := w.audit(t, "webauthn.registered"); len(recs) != 2 {
			t.Fatalf("registration records: %+v", recs)
		}
		// The deleted passkey signs in no more; the password login asks no
		// second factor again.
		b := w.begin(t, map[string]string{})
		waRefused(t, w.finish(t, b, aliceKey.get(t, b.Options.PublicKey, waTamper{})), 401, "UNAUTHENTICATED")
		var ans waLoginAnswer
		waData(t, w.post(t, "/api/v1/auth/login", map[string]string{"email": "alice@acme.test", "password": demoauth.Password}, ""), 200, &ans)
		if ans.MFARequired {
			t.Fatalf("second factor still asked: %+v", ans)
		}
	})
}
