package identity_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/stacktest"
	"github.com/erpgate/erpgate/internal/testenv"
)

// msgMasterKey seals keys, phone numbers and codes (test only).
const msgMasterKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

// The SMS provider's credential and the SMTP server's: neither may reach a log.
const (
	msgSMSAccount  = "AC5f3e0c"
	msgSMSSecret   = "sms-auth-token-7d1c4b9e2a"
	msgSMSFrom     = "+15550100000"
	msgSMTPUser    = "erpgate-mailer"
	msgSMTPSecret  = "smtp-password-3f9a1e7c"
	msgPassword    = "correct horse battery staple 17"
	msgCompany     = "acme"
	msgSMSEndpoint = "/2010-04-01/Accounts/" + msgSMSAccount + "/Messages.json"
)

// msgSMS is a receiving SMS provider: it records every form it accepts
// (with basic auth), and answers 401 to any other credential.
type msgSMS struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []url.Values
	bad int
}

func msgStartSMS(t *testing.T) *msgSMS {
	p := &msgSMS{}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		if r.Method != http.MethodPost || r.URL.Path != msgSMSEndpoint || !ok || user != msgSMSAccount || pass != msgSMSSecret ||
			r.URL.Query().Get("from") != "" || r.ParseForm() != nil {
			p.mu.Lock()
			p.bad++
			p.mu.Unlock()
			http.Error(w, `{"message":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		p.mu.Lock()
		p.got = append(p.got, r.PostForm)
		p.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"sid":"SM1","status":"queued"}`))
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// url is the provider URL the gateway is given.
func (p *msgSMS) url() string {
	u, _ := url.Parse(p.srv.URL + msgSMSEndpoint)
	u.User = url.UserPassword(msgSMSAccount, msgSMSSecret)
	u.RawQuery = url.Values{"from": {msgSMSFrom}}.Encode()
	return u.String()
}

// to are the messages sent to a number, oldest first.
func (p *msgSMS) to(number string) []url.Values {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []url.Values
	for _, f := range p.got {
		if f.Get("To") == number {
			out = append(out, f)
		}
	}
	return out
}

var msgCodeRE = regexp.MustCompile(`\b([0-9]{6})\b`)

// msgStack is one gateway on Postgres + Redis + NATS, sending mail to
// mailpit (with SMTP credentials) and SMS to the receiving provider.
type msgStack struct {
	in   *stacktest.Instance
	mp   *testenv.Mailpit
	sms  *msgSMS
	root string // a platform admin's access token
}

func msgStart(t *testing.T) *msgStack {
	t.Helper()
	smtpURL, err := url.Parse(testenv.SMTPURL(t))
	if err != nil {
		t.Fatal(err)
	}
	smtpURL.User = url.UserPassword(msgSMTPUser, msgSMTPSecret)
	st := &msgStack{mp: testenv.NewMailpit(t), sms: msgStartSMS(t)}
	redisURL, prefix := testenv.Redis(t)
	env := map[string]string{
		"ERP_POSTGRES_URL": testenv.Postgres(t), "ERP_REDIS_URL": redisURL, "ERP_KEY_PREFIX": prefix,
		"ERP_NATS_URL": testenv.NATSURL(t), "ERP_MASTER_KEY": msgMasterKey,
		"ERP_SMTP_URL": smtpURL.String(), "ERP_SMTP_FROM": "erpgate tests <no-reply@erpgate.test>",
		"ERP_SMS_URL": st.sms.url(),
	}
	st.in = stacktest.Start(t, stacktest.Options{Config: stacktest.ExampleConfig(t), Env: env})
	st.root = demoauth.Login(t, st.in.URL, "root@erpgate.local", msgCompany).Access
	return st
}

// msgAnswer is a decoded envelope answer.
type msgAnswer struct {
	status int
	header http.Header
	env    *httpt.Envelope
	data   map[string]any
	raw    string
}

func (a msgAnswer) str(k string) string { s, _ := a.data[k].(string); return s }
func (a msgAnswer) code() string        { return a.env.Code() }

func (st *msgStack) call(t *testing.T, method, path, bearer string, body any) msgAnswer {
	t.Helper()
	var b []byte
	if body != nil {
		b = httpt.JSON(t, body)
	}
	h := map[string]string{}
	if bearer != "" {
		h["Authorization"] = "Bearer " + bearer
	}
	r := httpt.Do(t, method, st.in.URL+path, b, h)
	a := msgAnswer{status: r.StatusCode, header: r.Header, env: r.Envelope(t), raw: string(r.Body)}
	_ = json.Unmarshal(a.env.Data, &a.data)
	return a
}

func (st *msgStack) want(t *testing.T, a msgAnswer, status int, code string) {
	t.Helper()
	if a.status != status || a.code() != code {
		t.Fatalf("answer %d %q, want %d %q: %s", a.status, a.code(), status, code, a.raw)
	}
}

// user creates an acme member with a unique address and a password.
func (st *msgStack) user(t *testing.T) (id, email string) {
	t.Helper()
	email = strings.ReplaceAll(testenv.Name(), "_", "-") + "@acme.test"
	a := st.call(t, http.MethodPost, "/api/v1/admin/users", st.root, map[string]any{"email": email, "password": msgPassword})
	st.want(t, a, http.StatusCreated, "")
	id = a.str("id")
	a = st.call(t, http.MethodPut, "/api/v1/admin/memberships/"+msgCompany+"/"+id, st.root, map[string]any{"roles": []string{"viewer"}})
	if a.status != http.StatusOK && a.status != http.StatusCreated {
		t.Fatalf("membership: %d %s", a.status, a.raw)
	}
	return id, email
}

// passwordLogin logs in with the password: the login answer.
func (st *msgStack) passwordLogin(t *testing.T, email string) msgAnswer {
	t.Helper()
	a := st.call(t, http.MethodPost, "/api/v1/auth/login", "", map[string]any{"email": email, "password": msgPassword})
	st.want(t, a, http.StatusOK, "")
	return a
}

// selectCompany turns a completed login token into an access token.
func (st *msgStack) selectCompany(t *testing.T, loginToken string) string {
	t.Helper()
	a := st.call(t, http.MethodPost, "/api/v1/auth/select-company", "", map[string]any{"login_token": loginToken, "company_id": msgCompany})
	st.want(t, a, http.StatusOK, "")
	if a.str("access_token") == "" {
		t.Fatalf("no access token: %s", a.raw)
	}
	return a.str("access_token")
}

// access logs the user in with the password and answers an access token
// (the user has no second factor yet).
func (st *msgStack) access(t *testing.T, email string) string {
	t.Helper()
	a := st.passwordLogin(t, email)
	if a.data["mfa_required"] != false {
		t.Fatalf("a user without factors was asked for one: %s", a.raw)
	}
	return st.selectCompany(t, a.str("login_token"))
}

// mailCode is the 6-digit code of the newest of n mails to the address.
func (st *msgStack) mailCode(t *testing.T, email string, n int) string {
	t.Helper()
	m := st.mp.WaitFor(t, email, n)
	c := msgCodeRE.FindStringSubmatch(m.Text)
	if c == nil {
		t.Fatalf("no code in the mail %q: %q", m.Subject, m.Text)
	}
	if !strings.Contains(m.HTML, c[1]) {
		t.Fatalf("the HTML part lacks the code: %q", m.HTML)
	}
	return c[1]
}

// smsCode is the code of the newest of n messages to the number.
func (st *msgStack) smsCode(t *testing.T, number string, n int) string {
	t.Helper()
	got := st.sms.to(number)
	if len(got) < n {
		t.Fatalf("%s received %d SMS, want %d", number, len(got), n)
	}
	f := got[len(got)-1]
	if f.Get("From") != msgSMSFrom {
		t.Fatalf("SMS From = %q, want %q", f.Get("From"), msgSMSFrom)
	}
	c := msgCodeRE.FindStringSubmatch(f.Get("Body"))
	if c == nil {
		t.Fatalf("no code in the SMS %q", f.Get("Body"))
	}
	return c[1]
}
