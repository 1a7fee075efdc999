package identity_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/stacktest"
)

// devicesConfig is Caddyfile.example with the loopback trusted as a proxy
// (so a test's X-Forwarded-For is the client address the binary sees: a
// login from another network) and extra lines in the authsvc block.
func devicesConfig(t *testing.T, authsvcLines string) string {
	t.Helper()
	s := stacktest.ExampleConfig(t)
	const servers = "\tservers {\n"
	if !strings.Contains(s, servers) {
		t.Fatal("Caddyfile.example has no global servers block")
	}
	s = strings.Replace(s, servers, servers+"\t\ttrusted_proxies static 127.0.0.1/8\n", 1)
	if authsvcLines != "" {
		const anchor = "\t\tauthsvc {\n"
		if !strings.Contains(s, anchor) {
			t.Fatal("Caddyfile.example has no authsvc block")
		}
		s = strings.Replace(s, anchor, anchor+authsvcLines, 1)
	}
	return s
}

// devicesLogin is a login's answer.
type devicesLogin struct {
	Status      int
	Code        string
	LoginToken  string   `json:"login_token"`
	MFARequired bool     `json:"mfa_required"`
	MFAMethods  []string `json:"mfa_methods"`
	Raw         string
}

// devicesDo is httpt.Do through client (nil: httpt's).
func devicesDo(t *testing.T, client *http.Client, method, url string, body any, header map[string]string) *httpt.Response {
	t.Helper()
	if client == nil {
		var b []byte
		if body != nil {
			b = httpt.JSON(t, body)
		}
		return httpt.Do(t, method, url, b, header)
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(httpt.JSON(t, body))
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return &httpt.Response{Response: resp, Body: b}
}

// devicesPassword logs email in with password (and a device token when
// not empty), from the client address xff when not empty.
func devicesPassword(t *testing.T, client *http.Client, base, email, password, deviceToken, xff string) devicesLogin {
	t.Helper()
	body := map[string]string{"email": email, "password": password}
	if deviceToken != "" {
		body["device_token"] = deviceToken
	}
	h := map[string]string{}
	if xff != "" {
		h["X-Forwarded-For"] = xff
	}
	resp := devicesDo(t, client, http.MethodPost, base+"/api/v1/auth/login", body, h)
	env := resp.Envelope(t)
	out := devicesLogin{Status: resp.StatusCode, Code: env.Code(), Raw: string(resp.Body)}
	if resp.StatusCode == 200 {
		if err := json.Unmarshal(env.Data, &out); err != nil || out.LoginToken == "" {
			t.Fatalf("login %s: %s", email, resp.Body)
		}
	}
	return out
}

// devicesEnrollTOTP turns TOTP on for the holder of access and returns its
// secret and recovery codes (each second factor below spends one: a TOTP
// code can't be used twice).
func devicesEnrollTOTP(t *testing.T, base, access string) (string, []string) {
	t.Helper()
	r := httpt.Do(t, http.MethodPost, base+"/api/v1/auth/mfa/totp/enroll", nil, demoauth.Bearer(access))
	var en struct {
		Secret string `json:"secret"`
	}
	if env := r.Envelope(t); r.StatusCode != 200 || json.Unmarshal(env.Data, &en) != nil || en.Secret == "" {
		t.Fatalf("enroll: %d %s", r.StatusCode, r.Body)
	}
	code, err := totp.GenerateCodeCustom(en.Secret, time.Now(), totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	r = httpt.Do(t, http.MethodPost, base+"/api/v1/auth/mfa/totp/confirm", httpt.JSON(t, map[string]string{"code": code}), demoauth.Bearer(access))
	var conf struct {
		RecoveryCodes []string `json:"recovery_codes"`
	}
	if env := r.Envelope(t); r.StatusCode != 200 || json.Unmarshal(env.Data, &conf) != nil || len(conf.RecoveryCodes) < 4 {
		t.Fatalf("confirm: %d %s", r.StatusCode, r.Body)
	}
	return en.Secret, conf.RecoveryCodes
}

// devicesView is a trusted device as the API shows it.
type devicesView struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	IP         string    `json:"ip"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	Current    bool      `json:"current"`
	Token      string    `json:"token"`
}

// devicesVerify completes a pending login with a code, trusting the device
// when trust; it returns the done login token, the device (when trusted)
// and the response.
func devicesVerify(t *testing.T, client *http.Client, base, loginToken, code string, trust bool) (string, devicesView, *httpt.Response) {
	t.Helper()
	r := devicesDo(t, client, http.MethodPost, base+"/api/v1/auth/mfa/verify",
		map[string]any{"login_token": loginToken, "code": code, "trust_device": trust}, nil)
	var out struct {
		LoginToken  string       `json:"login_token"`
		MFARequired bool         `json:"mfa_required"`
		Device      *devicesView `json:"device"`
	}
	env := r.Envelope(t)
	if r.StatusCode != 200 || json.Unmarshal(env.Data, &out) != nil || out.LoginToken == "" || out.MFARequired {
		t.Fatalf("mfa/verify: %d %s", r.StatusCode, r.Body)
	}
	if trust != (out.Device != nil) {
		t.Fatalf("mfa/verify with trust_device=%v answered device %+v", trust, out.Device)
	}
	var d devicesView
	if out.Device != nil {
		d = *out.Device
	}
	return out.LoginToken, d, r
}

// devicesSelect selects company with a done login token: the access token.
func devicesSelect(t *testing.T, base, loginToken, company string) string {
	t.Helper()
	r := httpt.Do(t, http.MethodPost, base+"/api/v1/auth/select-company", httpt.JSON(t, map[string]string{"login_token": loginToken, "company_id": company}), nil)
	var tok struct {
		Access string `json:"access_token"`
	}
	if env := r.Envelope(t); r.StatusCode != 200 || json.Unmarshal(env.Data, &tok) != nil || tok.Access == "" {
		t.Fatalf("select-company: %d %s", r.StatusCode, r.Body)
	}
	return tok.Access
}

// devicesList is GET /devices with access.
func devicesList(t *testing.T, client *http.Client, base, access string) []devicesView {
	t.Helper()
	r := devicesDo(t, client, http.MethodGet, base+"/api/v1/auth/devices", nil, demoauth.Bearer(access))
	var out []devicesView
	if env := r.Envelope(t); r.StatusCode != 200 || json.Unmarshal(env.Data, &out) != nil {
		t.Fatalf("GET /devices: %d %s", r.StatusCode, r.Body)
	}
	if strings.Contains(string(r.Body), `"token"`) || strings.Contains(string(r.Body), "erd_") {
		t.Fatalf("GET /devices shows a credential: %s", r.Body)
	}
	return out
}

// devicesJar is a client with a cookie jar (a browser's cookies).
func devicesJar(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 60 * time.Second}
}
