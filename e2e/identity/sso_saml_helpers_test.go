package identity_test

import (
	"bytes"
	"compress/flate"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/crewjam/saml/logger"
	"github.com/crewjam/saml/samlidp"
	"github.com/jonboulle/clockwork"
	dsig "github.com/russellhaering/goxmldsig"
)

// A real SAML identity provider (crewjam/saml's samlidp, its in-memory
// store and login form) on a loopback port, and a browser (a cookie jar,
// no automatic redirects) that goes between it and the gateway.

const samlIdPPassword = "idp-password-1"

// samlIdPKey is an IdP's signing key and certificate.
type samlIdPKey struct {
	key  *rsa.PrivateKey
	cert *x509.Certificate
}

func samlNewIdPKey(t *testing.T) samlIdPKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "e2e saml idp"},
		NotBefore: time.Now().Add(-24 * time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return samlIdPKey{key: k, cert: cert}
}

// samlIdP is a running samlidp. url is the URL it names itself by (its
// entity id is url + "/metadata"); host is where it listens: an impostor
// claims another IdP's url.
type samlIdP struct {
	url  string
	host string
}

type samlQuiet struct{}

func (samlQuiet) Printf(string, ...any) {}
func (samlQuiet) Print(...any)          {}
func (samlQuiet) Println(...any)        {}
func (samlQuiet) Fatal(...any)          {}
func (samlQuiet) Fatalf(string, ...any) {}
func (samlQuiet) Fatalln(...any)        {}
func (samlQuiet) Panic(...any)          {}
func (samlQuiet) Panicf(string, ...any) {}
func (samlQuiet) Panicln(...any)        {}

var _ logger.Interface = samlQuiet{}

// samlStartIdP runs an IdP with key, named claimURL ("" = its own), its
// clock skewed by skew, with users of these emails (user name: the part
// before @).
func samlStartIdP(t *testing.T, claimURL string, key samlIdPKey, skew time.Duration, emails ...string) *samlIdP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host := ln.Addr().String()
	if claimURL == "" {
		claimURL = "http://" + host
	}
	u, _ := url.Parse(claimURL)
	opts := samlidp.Options{URL: *u, Key: key.key, Certificate: key.cert, Store: &samlidp.MemoryStore{}, Logger: samlQuiet{}}
	if skew != 0 {
		opts.Clock = dsig.NewFakeClock(clockwork.NewFakeClockAt(time.Now().Add(skew)))
	}
	idp, err := samlidp.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: idp, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	p := &samlIdP{url: claimURL, host: host}
	for _, e := range emails {
		name, _, _ := strings.Cut(e, "@")
		body, _ := json.Marshal(map[string]any{"name": name, "password": samlIdPPassword, "email": e, "common_name": "Person " + name})
		p.put(t, "/users/"+name, "application/json", body)
	}
	return p
}

func (p *samlIdP) put(t *testing.T, path, ctype string, body []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, "http://"+p.host+path, bytes.NewReader(body))
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

var samlEncryptionKey = regexp.MustCompile(`(?s)<KeyDescriptor use="encryption">.*?</KeyDescriptor>`)

// register gives the IdP an SP's metadata (as the gateway serves it);
// clear: without the SP's encryption key, so its assertions come unencrypted.
func (p *samlIdP) register(t *testing.T, id string, metadata []byte, clear bool) {
	t.Helper()
	if clear {
		metadata = samlEncryptionKey.ReplaceAll(metadata, nil)
	}
	p.put(t, "/services/"+id, "application/samlmetadata+xml", metadata)
}

// rehost sends a URL to where the IdP listens (for an impostor).
func (p *samlIdP) rehost(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = p.host
	return u.String()
}

func samlNewBrowser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 60 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// samlRead reads an answer: samlRead(t)(client.Get(…)).
func samlRead(t *testing.T) func(*http.Response, error) (int, http.Header, []byte) {
	return func(resp *http.Response, err error) (int, http.Header, []byte) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, resp.Header, b
	}
}

// samlStart starts a sign-in: the IdP URL (with the AuthnRequest) the
// gateway sends the browser to.
func samlStart(t *testing.T, b *http.Client, startURL string) string {
	t.Helper()
	st, h, body := samlRead(t)(b.Get(startURL))
	if st != http.StatusFound || h.Get("Location") == "" {
		t.Fatalf("start: %d %s", st, body)
	}
	return h.Get("Location")
}

var (
	samlFormAction = regexp.MustCompile(`<form method="post" action="([^"]*)"`)
	samlFormInput  = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)"`)
)

func samlForm(t *testing.T, page []byte) (string, url.Values) {
	t.Helper()
	m := samlFormAction.FindSubmatch(page)
	if m == nil {
		t.Fatalf("no form in %.500s", page)
	}
	v := url.Values{}
	for _, in := range samlFormInput.FindAllSubmatch(page, -1) {
		v.Set(html.UnescapeString(string(in[1])), html.UnescapeString(string(in[2])))
	}
	return html.UnescapeString(string(m[1])), v
}

// samlAtIdP takes the browser from the IdP URL through its login form as
// user, to the IdP's auto-posting form: its action and fields
// (SAMLResponse, RelayState).
func samlAtIdP(t *testing.T, b *http.Client, idp *samlIdP, location, user string) (string, url.Values) {
	t.Helper()
	st, _, page := samlRead(t)(b.Get(idp.rehost(t, location)))
	if st != 200 {
		t.Fatalf("IdP sso: %d %.300s", st, page)
	}
	action, form := samlForm(t, page)
	if form.Get("SAMLResponse") == "" {
		form.Set("user", user)
		form.Set("password", samlIdPPassword)
		st, _, page = samlRead(t)(b.PostForm(idp.rehost(t, action), form))
		if st != 200 {
			t.Fatalf("IdP login: %d %.300s", st, page)
		}
		action, form = samlForm(t, page)
	}
	if form.Get("SAMLResponse") == "" || form.Get("RelayState") == "" {
		t.Fatalf("the IdP answered no SAMLResponse: %.500s", page)
	}
	return action, form
}

// samlSwapIssuer rewrites the AuthnRequest of an IdP URL (HTTP-Redirect
// binding, unsigned) to name another SP as its issuer: the IdP then
// answers that SP's audience for this request's id.
func samlSwapIssuer(t *testing.T, location, from, to string) string {
	t.Helper()
	u, err := url.Parse(location)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	raw, err := base64.StdEncoding.DecodeString(q.Get("SAMLRequest"))
	if err != nil {
		t.Fatal(err)
	}
	xml, err := io.ReadAll(flate.NewReader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	esc := func(s string) string { return strings.ReplaceAll(s, "&", "&amp;") }
	swapped := strings.Replace(string(xml), ">"+esc(from)+"<", ">"+esc(to)+"<", 1)
	if swapped == string(xml) {
		t.Fatalf("no issuer %s in %s", from, xml)
	}
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.DefaultCompression)
	_, _ = w.Write([]byte(swapped))
	_ = w.Close()
	q.Set("SAMLRequest", base64.StdEncoding.EncodeToString(buf.Bytes()))
	u.RawQuery = q.Encode()
	return u.String()
}
