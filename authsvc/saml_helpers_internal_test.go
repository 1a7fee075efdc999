package authsvc

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"html"
	"io"
	"math/big"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crewjam/saml/samlidp"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/erpgate/erpgate/authsvc/store"
)

// The package's SAML tests run the service's handler and a real SAML IdP
// (crewjam/saml's samlidp) on loopback servers, and a browser (an
// http.Client with a cookie jar) between them.

func init() {
	// What the ACS hands to ssoSignIn, answered as is (ssoSignIn itself,
	// the users and memberships, is the SSO work's and tested there and
	// end to end).
	samlSignIn = func(_ *Service, _ *call, conn store.SSOConnection, id ssoIdentity, returnTo string) (int, any, error) {
		return http.StatusOK, map[string]any{"connection": conn.ID, "subject": id.Subject, "email": id.Email, "name": id.Name, "return_to": returnTo}, nil
	}
}

// samlTestClock is the service's settable clock.
type samlTestClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *samlTestClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *samlTestClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type samlTestEnv struct {
	input *samlConnectionInput // of the next addConnection, when not by the IdP's metadata URL
	s     *Service
	clock *samlTestClock
	logs  *observer.ObservedLogs
	base  string
}

func samlNewEnv(t *testing.T, allowPrivate bool) *samlTestEnv {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String()
	core, logs := observer.New(zap.DebugLevel)
	clock := &samlTestClock{t: time.Now()}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := New(ctx, Config{PublicURL: base, SSOAllowPrivate: allowPrivate, IntrospectionSecret: "edge-secret-for-tests"},
		Deps{Logger: zap.New(core), Clock: clock, Hasher: NewArgon2idParams(1, 64, 1, 4)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	// The SSO work's start endpoint calls startSAML; here a test route in
	// its place does.
	mux.HandleFunc("GET /api/v1/auth/sso/{company}/start", func(w http.ResponseWriter, r *http.Request) {
		c := &call{w: w, r: r, ctx: r.Context(), ip: "127.0.0.1"}
		conn, err := s.store.GetSSOConnection(r.Context(), r.PathValue("company"), r.URL.Query().Get("connection"))
		if err != nil {
			s.fail(c, err)
			return
		}
		_, data, err := s.startSAML(c, conn, r.URL.Query().Get("return_to"))
		if err != nil {
			s.fail(c, err)
			return
		}
		switch d := data.(type) {
		case redirect:
			d.write(w)
		case rawDoc:
			d.write(w)
		default:
			t.Errorf("startSAML answered %T", data)
		}
	})
	mux.Handle("/", s.Handler(HTTPOptions{}))
	srv.Config.Handler = mux
	srv.Start()
	t.Cleanup(func() { srv.Close(); cancel(); _ = s.Close() })
	return &samlTestEnv{s: s, clock: clock, logs: logs, base: base}
}

// samlTestKey is a fresh IdP key and certificate.
func samlTestKey(t *testing.T) (*rsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "test idp"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return k, cert
}

type samlTestIdP struct {
	srv  *httptest.Server
	url  string // as the IdP names itself (its metadata's entity id is url + "/metadata")
	host string // where it listens
}

// samlStartIdP runs a samlidp. claimURL, when set, is the URL it names
// itself by (another IdP's: an impostor with its own key).
func samlStartIdP(t *testing.T, claimURL string) *samlTestIdP {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	self := "http://" + srv.Listener.Addr().String()
	if claimURL == "" {
		claimURL = self
	}
	u, _ := url.Parse(claimURL)
	key, cert := samlTestKey(t)
	idp, err := samlidp.New(samlidp.Options{URL: *u, Key: key, Certificate: cert, Store: &samlidp.MemoryStore{}, Logger: samlTLogger{t}})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = idp
	srv.Start()
	t.Cleanup(srv.Close)
	p := &samlTestIdP{srv: srv, url: claimURL, host: srv.Listener.Addr().String()}
	pw := "correct horse battery staple"
	body, _ := json.Marshal(map[string]any{"name": "alice", "password": pw, "email": "alice@acme.test", "common_name": "Alice Example"})
	p.put(t, "/users/alice", "application/json", string(body))
	return p
}

func (p *samlTestIdP) put(t *testing.T, path, ctype, body string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, "http://"+p.host+path, strings.NewReader(body))
	req.Header.Set("Content-Type", ctype)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("PUT %s at the IdP: %d %s", path, resp.StatusCode, b)
	}
}

type samlTLogger struct{ t *testing.T }

func (l samlTLogger) Printf(f string, v ...any) { l.t.Logf("idp: "+f, v...) }
func (l samlTLogger) Print(v ...any)            { l.t.Log(v...) }
func (l samlTLogger) Println(v ...any)          { l.t.Log(v...) }
func (l samlTLogger) Fatal(v ...any)            { l.t.Log(v...) }
func (l samlTLogger) Fatalf(f string, v ...any) { l.t.Logf(f, v...) }
func (l samlTLogger) Fatalln(v ...any)          { l.t.Log(v...) }
func (l samlTLogger) Panic(v ...any)            { l.t.Log(v...) }
func (l samlTLogger) Panicf(f string, v ...any) { l.t.Logf(f, v...) }
func (l samlTLogger) Panicln(v ...any)          { l.t.Log(v...) }

type samlQuietLogger struct{}

func (samlQuietLogger) Printf(string, ...any) {}
func (samlQuietLogger) Print(...any)          {}
func (samlQuietLogger) Println(...any)        {}
func (samlQuietLogger) Fatal(...any)          {}
func (samlQuietLogger) Fatalf(string, ...any) {}
func (samlQuietLogger) Fatalln(...any)        {}
func (samlQuietLogger) Panic(...any)          {}
func (samlQuietLogger) Panicf(string, ...any) {}
func (samlQuietLogger) Panicln(...any)        {}

func samlTestID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// addConnection makes a SAML connection of company for the IdP's metadata
// and registers its SP at the IdP (by the metadata the service serves).
func (e *samlTestEnv) addConnection(t *testing.T, company string, idp *samlTestIdP) store.SSOConnection {
	return e.addConnectionWith(t, company, idp, func(md string) string { return md })
}

var samlEncryptionKey = regexp.MustCompile(`(?s)<KeyDescriptor use="encryption">.*?</KeyDescriptor>`)

// addPlainConnection registers the SP at the IdP without its encryption
// key: its assertions come in the clear.
func (e *samlTestEnv) addPlainConnection(t *testing.T, company string, idp *samlTestIdP) store.SSOConnection {
	return e.addConnectionWith(t, company, idp, func(md string) string { return samlEncryptionKey.ReplaceAllString(md, "") })
}

func (e *samlTestEnv) addConnectionWith(t *testing.T, company string, idp *samlTestIdP, edit func(string) string) store.SSOConnection {
	t.Helper()
	ctx := context.Background()
	now := e.clock.Now()
	if _, err := e.s.store.GetCompany(ctx, company); err != nil {
		if err := e.s.store.CreateCompany(ctx, store.Company{ID: company, Name: company, Plan: "free", CreatedAt: now}, store.Event{Time: now, Type: store.EventCompanyCreated}); err != nil {
			t.Fatal(err)
		}
	}
	conn := store.SSOConnection{ID: samlTestID(), CompanyID: company, Kind: store.SSOKindSAML, Name: "idp", JIT: true, DefaultRole: "member", CreatedAt: now}
	in := samlConnectionInput{MetadataURL: idp.url + "/metadata"}
	if e.input != nil {
		in = *e.input
	}
	if err := e.s.prepareSAMLConnection(ctx, &conn, in); err != nil {
		t.Fatal(err)
	}
	if err := e.s.store.CreateSSOConnection(ctx, conn, store.Event{Time: now, Type: "sso.connection_created"}); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(e.s.samlEntityID(conn))
	if err != nil {
		t.Fatal(err)
	}
	md, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("SP metadata: %d %s", resp.StatusCode, md)
	}
	idp.put(t, "/services/"+conn.ID, "application/samlmetadata+xml", edit(string(md)))
	return conn
}

func samlBrowser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

var (
	samlFormAction = regexp.MustCompile(`<form method="post" action="([^"]*)"`)
	samlFormInput  = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)"`)
)

// samlForm reads the one form of an HTML page: its action and hidden fields.
func samlForm(t *testing.T, page string) (string, url.Values) {
	t.Helper()
	m := samlFormAction.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no form in %q", page)
	}
	v := url.Values{}
	for _, in := range samlFormInput.FindAllStringSubmatch(page, -1) {
		v.Set(html.UnescapeString(in[1]), html.UnescapeString(in[2]))
	}
	return html.UnescapeString(m[1]), v
}

// rehost sends a URL of the IdP named claim to where idp listens.
func samlRehost(t *testing.T, raw string, idp *samlTestIdP) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = idp.host
	return u.String()
}

// samlGoToIdP follows a started sign-in to the IdP: alice logs in there
// and the IdP answers with its auto-posting form to the ACS, whose action
// and fields (SAMLResponse, RelayState) are returned.
func samlGoToIdP(t *testing.T, b *http.Client, location string, idp *samlTestIdP) (string, url.Values) {
	t.Helper()
	resp, err := b.Get(samlRehost(t, location, idp))
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("IdP sso: %d %s", resp.StatusCode, page)
	}
	action, form := samlForm(t, string(page))
	if form.Get("SAMLResponse") != "" { // signed in at the IdP already
		return action, form
	}
	form.Set("user", "alice")
	form.Set("password", "correct horse battery staple")
	resp, err = b.PostForm(samlRehost(t, action, idp), form)
	if err != nil {
		t.Fatal(err)
	}
	page, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("IdP login: %d %s", resp.StatusCode, page)
	}
	action, form = samlForm(t, string(page))
	if form.Get("SAMLResponse") == "" {
		t.Fatalf("the IdP answered no SAMLResponse: %s", page)
	}
	return action, form
}

// samlStart starts a sign-in in the browser: the IdP URL it is sent to.
func (e *samlTestEnv) samlStart(t *testing.T, b *http.Client, conn store.SSOConnection) string {
	t.Helper()
	resp, err := b.Get(e.base + "/api/v1/auth/sso/" + conn.CompanyID + "/start?connection=" + conn.ID + "&return_to=/login")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("start: %d %s", resp.StatusCode, body)
	}
	return resp.Header.Get("Location")
}

type samlAnswer struct {
	status   int
	location string
	body     map[string]any
	raw      string
}

func (e *samlTestEnv) postACS(t *testing.T, b *http.Client, form url.Values) samlAnswer {
	t.Helper()
	resp, err := b.PostForm(e.base+samlACSPath, form)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	a := samlAnswer{status: resp.StatusCode, location: resp.Header.Get("Location"), raw: string(raw)}
	_ = json.Unmarshal(raw, &a.body)
	return a
}

// refusedFor checks a refusal — a 401 envelope, or, once the RelayState
// opened, the redirect to its return_to (/login) with #sso_error — and
// that the last sso.refused record names reason.
func (e *samlTestEnv) refusedFor(t *testing.T, a samlAnswer, reason string) {
	t.Helper()
	switch {
	case a.status == http.StatusUnauthorized && strings.Contains(a.raw, `"UNAUTHENTICATED"`):
	case a.status == http.StatusFound && strings.HasPrefix(a.location, e.base+"/login#sso_error="):
	default:
		t.Fatalf("want 401 UNAUTHENTICATED or a redirect to /login, got %d %s %s", a.status, a.location, a.raw)
	}
	if strings.Contains(a.raw, "Assertion") || strings.Contains(a.raw, "xml") {
		t.Fatalf("the refusal says too much: %s", a.raw)
	}
	evs, _, err := e.s.store.ListAudit(context.Background(), store.AuditFilter{Types: []string{store.EventSSORefused}}, store.Page{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) == 0 {
		t.Fatalf("no sso.refused record (want reason %s)", reason)
	}
	last := evs[0] // newest first
	if last.Details["reason"] != reason || last.Details["sso_kind"] != "saml" {
		t.Fatalf("last refusal %v, want reason %s", last.Details, reason)
	}
}
