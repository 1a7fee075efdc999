// Package audit checks, against the running binary, that every refusal is
// audited: each refusal of the auth service adds exactly one record (with
// its reason and the client's address, never the secret sent), and a flood
// of bad credentials at the edge is counted exactly in Prometheus but
// reaches the audit trail only as sampled records and summaries whose
// counts add up.
package audit

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/stacktest"
	"github.com/erpgate/erpgate/internal/testenv"
)

const (
	sample         = 5
	masterKey      = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	clientAddress  = "127.0.0.1"
	refusedAtEdge  = "edge.credential_refused"
	edgeSummary    = "edge.credential_refused_summary"
	auditListLimit = 200
)

// start runs Caddyfile.example, embedded or on Postgres and Redis, with a
// short sampling interval.
func start(t *testing.T, external bool) *stacktest.Instance {
	t.Helper()
	env := map[string]string{
		"ERP_REFUSAL_AUDIT_SAMPLE":   strconv.Itoa(sample),
		"ERP_REFUSAL_AUDIT_INTERVAL": "1s",
		"ERP_MASTER_KEY":             masterKey,
	}
	if external {
		redisURL, prefix := testenv.Redis(t)
		env["ERP_POSTGRES_URL"], env["ERP_REDIS_URL"], env["ERP_KEY_PREFIX"] = testenv.Postgres(t), redisURL, prefix
	}
	return stacktest.Start(t, stacktest.Options{Env: env})
}

func modes(t *testing.T, fn func(t *testing.T, in *stacktest.Instance)) {
	for _, external := range []bool{false, true} {
		name := "embedded"
		if external {
			name = "postgres+redis"
		}
		t.Run(name, func(t *testing.T) { fn(t, start(t, external)) })
	}
}

type record struct {
	ID        int64             `json:"id"`
	Type      string            `json:"type"`
	ActorID   string            `json:"actor_id"`
	CompanyID string            `json:"company_id"`
	IP        string            `json:"ip"`
	RequestID string            `json:"request_id"`
	Details   map[string]string `json:"details"`
}

// trail is the audit trail as the platform admin sees it: the newest
// records (of the types, when given), their total, and the raw answer.
func trail(t *testing.T, in *stacktest.Instance, root string, types ...string) ([]record, int64, string) {
	t.Helper()
	url := in.URL + "/api/v1/admin/audit?limit=" + strconv.Itoa(auditListLimit)
	if len(types) > 0 {
		url += "&type=" + strings.Join(types, ",")
	}
	resp := httpt.Get(t, url, demoauth.Bearer(root))
	env := resp.Envelope(t)
	var recs []record
	if resp.StatusCode != 200 || json.Unmarshal(env.Data, &recs) != nil || env.Pagination == nil {
		t.Fatalf("audit: %d %s", resp.StatusCode, resp.Body)
	}
	return recs, env.Pagination.Total, string(resp.Body)
}

func post(t *testing.T, in *stacktest.Instance, path, bearer string, body any) *httpt.Response {
	t.Helper()
	h := map[string]string{}
	if bearer != "" {
		h["Authorization"] = "Bearer " + bearer
	}
	return httpt.Do(t, http.MethodPost, in.URL+path, httpt.JSON(t, body), h)
}

func loginToken(t *testing.T, in *stacktest.Instance, email string) string {
	t.Helper()
	resp := post(t, in, "/api/v1/auth/login", "", map[string]string{"email": email, "password": demoauth.Password})
	var d struct {
		LoginToken string `json:"login_token"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(resp.Envelope(t).Data, &d) != nil || d.LoginToken == "" {
		t.Fatalf("login %s: %d %s", email, resp.StatusCode, resp.Body)
	}
	return d.LoginToken
}

func TestEveryRefusalIsAudited(t *testing.T) {
	t.Parallel()
	modes(t, func(t *testing.T, in *stacktest.Instance) {
		root := demoauth.Login(t, in.URL, "root@erpgate.local", "acme").Access
		bob := demoauth.Login(t, in.URL, "bob@globex.test", "globex")
		ended := demoauth.Login(t, in.URL, "bob@globex.test", "globex")
		if r := post(t, in, "/api/v1/auth/logout", ended.Access, map[string]any{}); r.StatusCode != 200 {
			t.Fatalf("logout: %d %s", r.StatusCode, r.Body)
		}
		// Bob turns TOTP on, for a failed second factor below.
		enroll := post(t, in, "/api/v1/auth/mfa/totp/enroll", bob.Access, map[string]any{})
		var en struct {
			Secret string `json:"secret"`
		}
		if enroll.StatusCode != 200 || json.Unmarshal(enroll.Envelope(t).Data, &en) != nil {
			t.Fatalf("enroll: %d %s", enroll.StatusCode, enroll.Body)
		}
		code := func() string {
			c, err := totp.GenerateCodeCustom(en.Secret, time.Now(), totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		if r := post(t, in, "/api/v1/auth/mfa/totp/confirm", bob.Access, map[string]string{"code": code()}); r.StatusCode != 200 {
			t.Fatalf("confirm: %d %s", r.StatusCode, r.Body)
		}
		// Alice's login token, spent once.
		spent := loginToken(t, in, "alice@acme.test")
		if r := post(t, in, "/api/v1/auth/select-company", "", map[string]string{"login_token": spent, "company_id": "acme"}); r.StatusCode != 200 {
			t.Fatalf("select-company: %d %s", r.StatusCode, r.Body)
		}
		aliceLT := loginToken(t, in, "alice@acme.test")
		bobLT := loginToken(t, in, "bob@globex.test") // MFA pending
		unknownRefresh := bob.Refresh[:len(bob.Refresh)-43] + strings.Repeat("Q", 43)
		garbage := "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJib2IifQ.c2lnbmF0dXJlLW9mLW5vLWtleS1hdC1hbGw"
		wrong := code()
		wrong = wrong[:5] + string('0'+(wrong[5]-'0'+5)%10)

		var secrets []string
		cases := []struct {
			name    string
			do      func() *httpt.Response
			sent    []string
			status  int
			typ     string
			reason  string
			company string
		}{
			{"select-company of a company that is not the user's", func() *httpt.Response {
				return post(t, in, "/api/v1/auth/select-company", "", map[string]string{"login_token": aliceLT, "company_id": "initech"})
			}, []string{aliceLT}, 403, "company.select_refused", "not_member", ""},
			{"select-company with a spent login token", func() *httpt.Response {
				return post(t, in, "/api/v1/auth/select-company", "", map[string]string{"login_token": spent, "company_id": "acme"})
			}, []string{spent}, 401, "login_token.replayed", "already_used", ""},
			{"switch-company to a company that is not the user's", func() *httpt.Response {
				return post(t, in, "/api/v1/auth/switch-company", bob.Access, map[string]string{"company_id": "acme"})
			}, []string{bob.Access}, 403, "company.switch_refused", "not_member", "globex"},
			{"refresh with an unknown refresh token", func() *httpt.Response {
				return post(t, in, "/api/v1/auth/refresh", "", map[string]string{"refresh_token": unknownRefresh})
			}, []string{unknownRefresh}, 401, "token.refresh_refused", "unknown", ""},
			{"refresh with the refresh token of an ended session", func() *httpt.Response {
				return post(t, in, "/api/v1/auth/refresh", "", map[string]string{"refresh_token": ended.Refresh})
			}, []string{ended.Refresh}, 401, "token.refresh_refused", "inactive", ""},
			{"an invalid bearer token at the auth service", func() *httpt.Response {
				return httpt.Get(t, in.URL+"/api/v1/auth/me", demoauth.Bearer(garbage))
			}, []string{garbage}, 401, "token.bearer_refused", "invalid", ""},
			{"a wrong second factor", func() *httpt.Response {
				return post(t, in, "/api/v1/auth/mfa/verify", "", map[string]string{"login_token": bobLT, "code": wrong})
			}, []string{bobLT, wrong}, 401, "mfa.failed", "wrong_code", ""},
			{"a second factor with a forged login token", func() *httpt.Response {
				return post(t, in, "/api/v1/auth/mfa/verify", "", map[string]string{"login_token": garbage + "x", "code": "123456"})
			}, []string{garbage + "x"}, 401, "mfa.failed", "invalid_login_token", ""},
		}
		for _, tc := range cases {
			_, before, _ := trail(t, in, root)
			resp := tc.do()
			if resp.StatusCode != tc.status {
				t.Fatalf("%s: %d %s, want %d", tc.name, resp.StatusCode, resp.Body, tc.status)
			}
			recs, after, _ := trail(t, in, root)
			if after != before+1 {
				t.Fatalf("%s: %d new audit records, want exactly 1", tc.name, after-before)
			}
			if r := recs[0]; r.Type != tc.typ || r.Details["reason"] != tc.reason || r.IP != clientAddress || r.CompanyID != tc.company || r.RequestID != resp.Header.Get("X-Request-ID") {
				t.Errorf("%s: record %+v, want type %s, reason %s, ip %s, company %q, request id %s", tc.name, r, tc.typ, tc.reason, clientAddress, tc.company, resp.Header.Get("X-Request-ID"))
			}
			secrets = append(secrets, tc.sent...)
		}
		_, _, raw := trail(t, in, root)
		for _, s := range append(secrets, demoauth.Password, en.Secret, bob.Refresh, masterKey) {
			if strings.Contains(raw, s) {
				t.Errorf("the audit answer holds a secret that was sent: %.24s…", s)
			}
		}
	})
}

var decisionLine = regexp.MustCompile(`(?m)^erpgate_auth_decisions_total\{outcome="unauthenticated",provider="jwt"\} (\S+)$`)

func refusedTokens(t *testing.T, in *stacktest.Instance) int64 {
	t.Helper()
	m := decisionLine.FindStringSubmatch(string(httpt.Get(t, in.AdminURL+"/metrics", nil).Body))
	if m == nil {
		return 0
	}
	f, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return int64(f)
}

// A flood of bad tokens on a proxied route: every one counted in
// Prometheus, the trail gets at most `sample` records per interval and
// a summary for the rest, and the counts add up.
func TestEdgeFloodIsSampled(t *testing.T) {
	t.Parallel()
	modes(t, func(t *testing.T, in *stacktest.Instance) {
		root := demoauth.Login(t, in.URL, "root@erpgate.local", "acme").Access
		const flood, workers = 500, 8
		before := refusedTokens(t, in)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var sent []string
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < flood; i += workers {
					tok := fmt.Sprintf("flood-%03d-not-a-token-s3cret", i)
					resp := httpt.Get(t, in.URL+"/api/v2/invoices?limit=1", demoauth.Bearer(tok))
					if resp.StatusCode != 401 {
						t.Errorf("bad token %d: %d %s", i, resp.StatusCode, resp.Body)
						return
					}
					mu.Lock()
					sent = append(sent, tok)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		if got := refusedTokens(t, in) - before; got != flood {
			t.Fatalf("Prometheus counted %d refused tokens, want %d", got, flood)
		}
		// An API key refused too: its record names the key's public prefix only.
		key := "erp_live_0123456789ab_" + strings.Repeat("k", 43)
		if resp := httpt.Get(t, in.URL+"/api/v2/invoices?limit=1", map[string]string{"X-API-Key": key}); resp.StatusCode != 401 {
			t.Fatalf("bad API key: %d %s", resp.StatusCode, resp.Body)
		}
		sent = append(sent, key[len("erp_live_0123456789ab_"):])

		// The summaries come when their windows end (1s); poll until the
		// counts reach the flood, and never past it.
		var singles, summaries, summarised int64
		var raw string
		deadline := time.Now().Add(30 * time.Second)
		for {
			var recs []record
			recs, _, raw = trail(t, in, root, refusedAtEdge, edgeSummary)
			singles, summaries, summarised = 0, 0, 0
			keyRecords := 0
			for _, r := range recs {
				if r.Details["provider"] == "api_key" {
					keyRecords++
					if r.Type != refusedAtEdge || r.Details["key_prefix"] != "0123456789ab" || r.Details["reason"] != "inactive" || r.IP != clientAddress {
						t.Fatalf("API key record %+v", r)
					}
					continue
				}
				if r.Details["provider"] != "jwt" || r.Details["reason"] != "malformed" {
					t.Fatalf("record %+v", r)
				}
				switch r.Type {
				case refusedAtEdge:
					singles++
					if r.IP != clientAddress || r.RequestID == "" {
						t.Fatalf("record %+v", r)
					}
				case edgeSummary:
					summaries++
					n, err := strconv.ParseInt(r.Details["count"], 10, 64)
					if err != nil {
						t.Fatalf("summary %+v", r)
					}
					summarised += n
				}
			}
			if keyRecords > 1 {
				t.Fatalf("%d records of the refused API key, want 1", keyRecords)
			}
			if singles+summarised > flood {
				t.Fatalf("%d single records + %d summarised > %d refusals", singles, summarised, flood)
			}
			if singles+summarised == flood && keyRecords == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after 30s: %d single records + %d summarised in %d summaries, want %d in all; %d records of the API key, want 1", singles, summarised, summaries, flood, keyRecords)
			}
			time.Sleep(200 * time.Millisecond)
		}
		// Each 1s window holds at most `sample` single records and one summary.
		if summaries == 0 || singles > sample*(summaries+1) || singles+summaries > 60 {
			t.Fatalf("%d single records and %d summaries for %d refusals: the trail is not sampled", singles, summaries, flood)
		}
		for _, s := range sent {
			if strings.Contains(raw, s) {
				t.Fatalf("the audit answer holds a credential that was sent: %s", s)
			}
		}
		t.Logf("%d refusals: %d single records, %d summaries", flood, singles, summaries)
	})
}
