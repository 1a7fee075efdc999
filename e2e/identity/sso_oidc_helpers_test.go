package identity_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"golang.org/x/text/language"
)

// ssoOIDCProvider is a real OpenID provider (zitadel/oidc's op package
// with its example storage and login page) on a loopback port.
type ssoOIDCProvider struct {
	Issuer       string
	ClientID     string
	ClientSecret string
}

// ssoOIDCPassword is every IdP user's password.
const ssoOIDCPassword = "idp-password-1"

// ssoOIDCUsers keys the provider's users by id; each signs in with its
// email as username.
type ssoOIDCUsers map[string]*storage.User

func (u ssoOIDCUsers) GetUserByID(id string) *storage.User { return u[id] }
func (u ssoOIDCUsers) GetUserByUsername(name string) *storage.User {
	for _, v := range u {
		if v.Username == name {
			return v
		}
	}
	return nil
}
func (u ssoOIDCUsers) ExampleClientID() string { return storage.ServiceUserID }

// ssoStartOIDCProvider starts the provider with one web client whose
// redirect URI is the gateway's callback at publicURL, and users with
// these (verified) emails.
func ssoStartOIDCProvider(t *testing.T, publicURL string, emails []string) *ssoOIDCProvider {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + ln.Addr().String()
	users := ssoOIDCUsers{}
	for i, e := range emails {
		id := "idp-user-" + string(rune('a'+i))
		users[id] = &storage.User{ID: id, Username: e, Password: ssoOIDCPassword, FirstName: "Idp", LastName: "Person", Email: e,
			EmailVerified: true, PreferredLanguage: language.English}
	}
	p := &ssoOIDCProvider{Issuer: issuer, ClientID: "erpgate-e2e", ClientSecret: "e2e-client-secret-" + strings.Repeat("q", 20)}
	clients := map[string]*storage.Client{p.ClientID: storage.WebClient(p.ClientID, p.ClientSecret, publicURL+"/api/v1/auth/sso/callback")}
	router := exampleop.SetupServer(issuer, storage.NewStorageWithClients(users, clients), nil, false)
	srv := &http.Server{Handler: router, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return p
}

// ssoBrowser is a browser: a cookie jar, following redirects, recording
// each URL it was sent to; it stops at the hosted page (/login), whose
// URL (with the fragment) it keeps.
type ssoBrowser struct {
	client  *http.Client
	mu      sync.Mutex
	visited []string
}

func newSSOBrowser(t *testing.T) *ssoBrowser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	b := &ssoBrowser{}
	b.client = &http.Client{Jar: jar, Timeout: 60 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		b.mu.Lock()
		b.visited = append(b.visited, req.URL.String())
		b.mu.Unlock()
		if req.URL.Path == "/login" || len(via) > 15 {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	return b
}

type ssoPage struct {
	status int
	url    string // where the browser ended
	header http.Header
	body   []byte
}

func (b *ssoBrowser) get(t *testing.T, u string) ssoPage {
	t.Helper()
	resp, err := b.client.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	return ssoRead(t, resp)
}

func ssoRead(t *testing.T, resp *http.Response) ssoPage {
	t.Helper()
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return ssoPage{status: resp.StatusCode, url: resp.Request.URL.String(), header: resp.Header, body: body}
}

var ssoAuthRequestID = regexp.MustCompile(`name="id" value="([^"]+)"`)

// signIn goes from a start URL through the provider's login form as
// email, and returns where the flow ended and the callback URL it passed.
func (b *ssoBrowser) signIn(t *testing.T, p *ssoOIDCProvider, startURL, email string) (ssoPage, string) {
	t.Helper()
	form := b.get(t, startURL)
	if form.status != 200 || !strings.HasPrefix(form.url, p.Issuer+"/login/username") {
		t.Fatalf("start did not reach the provider's login page: %d %s %.300s", form.status, form.url, form.body)
	}
	m := ssoAuthRequestID.FindSubmatch(form.body)
	if m == nil {
		t.Fatalf("no auth request id in the login page: %.500s", form.body)
	}
	resp, err := b.client.PostForm(p.Issuer+"/login/username", url.Values{"id": {string(m[1])}, "username": {email}, "password": {ssoOIDCPassword}})
	if err != nil {
		t.Fatal(err)
	}
	end := ssoRead(t, resp)
	callback := ""
	b.mu.Lock()
	for _, v := range b.visited {
		if strings.Contains(v, "/api/v1/auth/sso/callback?") {
			callback = v
		}
	}
	b.mu.Unlock()
	if callback == "" {
		t.Fatalf("the provider never sent the browser to the callback: %d %s %.300s", end.status, end.url, end.body)
	}
	return end, callback
}

// ssoEnvelope decodes an envelope answer.
type ssoEnvelope struct {
	Success bool            `json:"success"`
	Data    json.RawMessage `json:"data"`
	Meta    struct {
		RequestID string `json:"request_id"`
	} `json:"meta"`
	Errors []struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field"`
	} `json:"errors"`
}

func ssoDecode(t *testing.T, b []byte) ssoEnvelope {
	t.Helper()
	var e ssoEnvelope
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("not an envelope: %.400s", b)
	}
	return e
}
