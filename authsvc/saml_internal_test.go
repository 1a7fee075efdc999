package authsvc

import (
	"context"
	"encoding/base64"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/crewjam/saml"

	"github.com/erpgate/erpgate/authsvc/store"
	"github.com/erpgate/erpgate/contract"
)

// A sign-in through a real IdP: the ACS hands ssoSignIn alice's NameID,
// email and name with the flow's return_to; the same SAMLResponse posted
// again is refused (the assertion id is spent), as is the flow's
// RelayState with another assertion for it.
func TestSAMLSignInAndReplay(t *testing.T) {
	t.Parallel()
	e := samlNewEnv(t, true)
	idp := samlStartIdP(t, "")
	conn := e.addConnection(t, "acme", idp)
	b := samlBrowser()
	loc := e.samlStart(t, b, conn)
	u, _ := url.Parse(loc)
	if u.Query().Get("SAMLRequest") == "" || !strings.HasPrefix(u.Query().Get("RelayState"), samlRelayPfx) {
		t.Fatalf("start sends the browser to %s", loc)
	}
	action, form := samlGoToIdP(t, b, loc, idp)
	if action != e.base+samlACSPath {
		t.Fatalf("the IdP posts to %s", action)
	}
	a := e.postACS(t, b, form)
	if a.status != 200 {
		t.Fatalf("ACS: %d %s", a.status, a.raw)
	}
	d, _ := a.body["data"].(map[string]any)
	if d["email"] != "alice@acme.test" || d["subject"] != "alice@acme.test" || d["name"] != "Alice Example" || d["return_to"] != "/login" || d["connection"] != conn.ID {
		t.Fatalf("ssoSignIn got %v", d)
	}
	// replayed as is
	e.refusedFor(t, e.postACS(t, b, form), ReasonSAMLReplayed)

	// Nothing secret in the logs: not the Response, the RelayState, the SP key.
	key, err := e.s.sealer.Open(samlKeyKID, conn.SealedSPKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, entry := range e.logs.All() {
		line := entry.Message
		for k, v := range entry.ContextMap() {
			line += " " + k + "=" + strings.TrimSpace(strings.ReplaceAll(strings.ReplaceAll(fmtAny(v), "\n", ""), " ", ""))
		}
		for _, secret := range []string{form.Get("SAMLResponse")[:40], form.Get("RelayState")[:40], base64.StdEncoding.EncodeToString(key)[:40], "alice@acme.test"} {
			if strings.Contains(line, secret) {
				t.Fatalf("a log line holds a secret: %s", line)
			}
		}
	}
}

func fmtAny(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return ""
}

// An assertion used after its time (the service's clock moved on by five
// minutes; the flow itself is still open) is refused.
func TestSAMLExpiredAssertion(t *testing.T) {
	t.Parallel()
	e := samlNewEnv(t, true)
	idp := samlStartIdP(t, "")
	conn := e.addConnection(t, "acme", idp)
	b := samlBrowser()
	_, form := samlGoToIdP(t, b, e.samlStart(t, b, conn), idp)
	e.clock.Add(5 * time.Minute)
	e.refusedFor(t, e.postACS(t, b, form), ReasonSAMLExpired)
	// and the flow, after ten minutes
	e.clock.Add(6 * time.Minute)
	e.refusedFor(t, e.postACS(t, b, form), ReasonSAMLStateExpiry)
}

// An impostor IdP that names itself as the real one (same entity id, same
// URLs) but signs with its own key is refused.
func TestSAMLSignatureByAnotherKey(t *testing.T) {
	t.Parallel()
	e := samlNewEnv(t, true)
	idp := samlStartIdP(t, "")
	conn := e.addConnection(t, "acme", idp)
	impostor := samlStartIdP(t, idp.url)
	md, err := http.Get(e.s.samlEntityID(conn))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(md.Body)
	md.Body.Close()
	impostor.put(t, "/services/"+conn.ID, "application/samlmetadata+xml", string(body))
	b := samlBrowser()
	_, form := samlGoToIdP(t, b, e.samlStart(t, b, conn), impostor)
	e.refusedFor(t, e.postACS(t, b, form), ReasonSAMLSignature)
}

// An assertion the IdP issued to another SP (another company's connection
// to the same IdP), even for this flow's request id, is refused.
func TestSAMLAudienceOfAnotherSP(t *testing.T) {
	t.Parallel()
	e := samlNewEnv(t, true)
	idp := samlStartIdP(t, "")
	acme := e.addConnection(t, "acme", idp)
	// in the clear: an assertion encrypted for globex would not even
	// decrypt at acme's SP (saml_decrypt)
	globex := e.addPlainConnection(t, "globex", idp)
	b := samlBrowser()
	loc := e.samlStart(t, b, acme)
	relay, _ := url.Parse(loc)
	flow, reason := e.s.samlOpenRelay(relay.Query().Get("RelayState"))
	if reason != "" {
		t.Fatal(reason)
	}
	// globex's SP asks for acme's request id
	sp, err := e.s.samlSP(context.Background(), globex, true)
	if err != nil {
		t.Fatal(err)
	}
	req, err := sp.MakeAuthenticationRequest(sp.GetSSOBindingLocation(saml.HTTPRedirectBinding), saml.HTTPRedirectBinding, saml.HTTPPostBinding)
	if err != nil {
		t.Fatal(err)
	}
	req.ID = flow.Request
	u, err := req.Redirect(relay.Query().Get("RelayState"), sp)
	if err != nil {
		t.Fatal(err)
	}
	_, form := samlGoToIdP(t, b, u.String(), idp)
	e.refusedFor(t, e.postACS(t, b, form), ReasonSAMLAudience)
}

// The RelayState binds the answer to the flow and the browser: a forged or
// missing one, another browser's, another flow's (InResponseTo), a
// connection deleted since: refused. Malformed posts too.
func TestSAMLRelayStateAndRequest(t *testing.T) {
	t.Parallel()
	e := samlNewEnv(t, true)
	idp := samlStartIdP(t, "")
	conn := e.addConnection(t, "acme", idp)
	b := samlBrowser()
	_, form1 := samlGoToIdP(t, b, e.samlStart(t, b, conn), idp)
	loc2 := e.samlStart(t, b, conn)
	u2, _ := url.Parse(loc2)

	// forged, missing
	for _, relay := range []string{"", "s1.AAAA", "garbage", samlRelayPfx + base64.RawURLEncoding.EncodeToString(make([]byte, 80))} {
		f := url.Values{"SAMLResponse": {form1.Get("SAMLResponse")}, "RelayState": {relay}}
		e.refusedFor(t, e.postACS(t, b, f), ReasonSAMLState)
	}
	// another browser (no erp_saml cookie, or its own)
	other := samlBrowser()
	e.refusedFor(t, e.postACS(t, other, form1), ReasonSAMLBrowser)
	e.samlStart(t, other, conn)
	e.refusedFor(t, e.postACS(t, other, form1), ReasonSAMLBrowser)
	// flow 1's answer with flow 2's RelayState
	f := url.Values{"SAMLResponse": {form1.Get("SAMLResponse")}, "RelayState": {u2.Query().Get("RelayState")}}
	e.refusedFor(t, e.postACS(t, b, f), ReasonSAMLRequest)
	// malformed
	e.refusedFor(t, e.postACS(t, b, url.Values{"RelayState": {form1.Get("RelayState")}}), ReasonSAMLMalformed)
	e.refusedFor(t, e.postACS(t, b, url.Values{"SAMLResponse": {"%%%"}, "RelayState": {form1.Get("RelayState")}}), ReasonSAMLMalformed)
	e.refusedFor(t, e.postACS(t, b, url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString([]byte("<x"))}, "RelayState": {form1.Get("RelayState")}}), ReasonSAMLMalformed)
	e.refusedFor(t, e.postACS(t, b, url.Values{"SAMLart": {"AAQAAA"}, "SAMLResponse": {"x"}, "RelayState": {form1.Get("RelayState")}}), ReasonSAMLMalformed)
	big := url.Values{"SAMLResponse": {strings.Repeat("A", samlMaxForm)}, "RelayState": {form1.Get("RelayState")}}
	if a := e.postACS(t, b, big); a.status != http.StatusRequestEntityTooLarge {
		t.Fatalf("a huge form: %d %s", a.status, a.raw)
	}
	// the first flow still completes (two tabs of one browser)
	if a := e.postACS(t, b, form1); a.status != 200 {
		t.Fatalf("flow 1: %d %s", a.status, a.raw)
	}
	// the connection deleted since the start
	_, form3 := samlGoToIdP(t, b, e.samlStart(t, b, conn), idp)
	if err := e.s.store.DeleteSSOConnection(context.Background(), conn.CompanyID, conn.ID, store.Event{Time: e.clock.Now(), Type: "sso.connection_deleted"}); err != nil {
		t.Fatal(err)
	}
	e.refusedFor(t, e.postACS(t, b, form3), ReasonSAMLConnection)
}

// The SP metadata: the entity id, the ACS (HTTP-POST), the certificate;
// never the key. Unknown connections are 404.
func TestSAMLMetadata(t *testing.T) {
	t.Parallel()
	e := samlNewEnv(t, true)
	idp := samlStartIdP(t, "")
	conn := e.addConnection(t, "acme", idp)
	resp, err := http.Get(e.s.samlEntityID(conn))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	md := string(body)
	if resp.Header.Get("Content-Type") != "application/samlmetadata+xml" {
		t.Fatalf("content type %q", resp.Header.Get("Content-Type"))
	}
	ed := &saml.EntityDescriptor{}
	if err := xml.Unmarshal(body, ed); err != nil {
		t.Fatal(err)
	}
	if ed.EntityID != e.s.samlEntityID(conn) || len(ed.SPSSODescriptors) != 1 {
		t.Fatalf("metadata %s", md)
	}
	acs := ed.SPSSODescriptors[0].AssertionConsumerServices
	if len(acs) != 1 || acs[0].Binding != saml.HTTPPostBinding || acs[0].Location != e.base+samlACSPath {
		t.Fatalf("ACS %+v", acs)
	}
	if !strings.Contains(md, base64.StdEncoding.EncodeToString(conn.SPCert)[:60]) || strings.Contains(md, "PRIVATE") {
		t.Fatalf("metadata %s", md)
	}
	for q, want := range map[string]int{"": 422, "?connection=" + conn.ID: 422, "?company=acme": 422,
		"?company=acme&connection=" + samlTestID(): 404, "?company=globex&connection=" + conn.ID: 404} {
		resp, err := http.Get(e.base + samlMetadataPath + q)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("%s: %d, want %d", q, resp.StatusCode, want)
		}
	}
}

// Connections refuse metadata that can't serve, and outbound fetches to
// private addresses unless allowed.
func TestSAMLPrepareRefusals(t *testing.T) {
	t.Parallel()
	idp := samlStartIdP(t, "")
	strict := samlNewEnv(t, false)
	e := samlNewEnv(t, true)
	resp, err := http.Get(idp.url + "/metadata")
	if err != nil {
		t.Fatal(err)
	}
	good, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	noCert := strings.NewReplacer("<KeyDescriptor", "<Ignored", "</KeyDescriptor>", "</Ignored>").Replace(string(good))
	noSSO := strings.ReplaceAll(string(good), "SingleSignOnService", "ArtifactResolutionService")
	// Any other server answering something else than metadata.
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			_, _ = w.Write([]byte(strings.Repeat("<x>", samlMaxMetadata)))
			return
		}
		http.Redirect(w, r, idp.url+"/metadata", http.StatusFound)
	}))
	t.Cleanup(other.Close)
	for _, c := range []struct {
		env   *samlTestEnv
		in    samlConnectionInput
		field string
	}{
		{e, samlConnectionInput{}, "saml.metadata_url"},
		{e, samlConnectionInput{MetadataURL: idp.url + "/metadata", MetadataXML: string(good)}, "saml"},
		{e, samlConnectionInput{MetadataXML: "<html/>"}, "saml.metadata_xml"},
		{e, samlConnectionInput{MetadataXML: noCert}, "saml.metadata_xml"},
		{e, samlConnectionInput{MetadataXML: noSSO}, "saml.metadata_xml"},
		{e, samlConnectionInput{MetadataURL: "ftp://example.com/md"}, "saml.metadata_url"},
		{e, samlConnectionInput{MetadataURL: "https://user:pw@example.com/md"}, "saml.metadata_url"},
		{e, samlConnectionInput{MetadataURL: other.URL + "/redirect"}, "saml.metadata_url"},
		{e, samlConnectionInput{MetadataURL: other.URL + "/big"}, "saml.metadata_url"},
		{e, samlConnectionInput{MetadataXML: string(good), Attributes: map[string]string{"role": "x"}}, "saml.attributes"},
		{strict, samlConnectionInput{MetadataURL: idp.url + "/metadata"}, "saml.metadata_url"},                      // http
		{strict, samlConnectionInput{MetadataURL: "https://" + idp.host + "/metadata"}, "saml.metadata_url"},        // loopback
		{strict, samlConnectionInput{MetadataURL: "https://169.254.169.254/latest/meta-data"}, "saml.metadata_url"}, // link-local
		{strict, samlConnectionInput{MetadataXML: string(good)}, "saml.metadata_xml"},                               // an http IdP
	} {
		var conn store.SSOConnection
		err := c.env.s.prepareSAMLConnection(context.Background(), &conn, c.in)
		ce, ok := contract.AsError(err)
		if !ok || ce.Status != 422 || ce.Field != c.field {
			t.Fatalf("%+v: %v", c.in.MetadataURL+c.in.MetadataXML[:min(len(c.in.MetadataXML), 40)], err)
		}
		if conn.SealedSPKey != nil {
			t.Fatal("a refused connection got a key")
		}
	}
	// accepted inline, with attribute names
	var conn store.SSOConnection
	if err := e.s.prepareSAMLConnection(context.Background(), &conn, samlConnectionInput{MetadataXML: string(good), Attributes: map[string]string{"email": "mail"}}); err != nil {
		t.Fatal(err)
	}
	if conn.Claims["email"] != "mail" || len(conn.SPCert) == 0 || len(conn.SealedSPKey) == 0 || string(conn.IdPMetadataXML) != strings.TrimSpace(string(good)) {
		t.Fatalf("%+v", conn)
	}
	if strings.Contains(string(conn.SealedSPKey), "PRIVATE") {
		t.Fatal("the key is not sealed")
	}
}

// The attributes and NameID map to the identity as configured.
func TestSAMLIdentityMapping(t *testing.T) {
	t.Parallel()
	attrs := []saml.Attribute{
		{Name: "urn:oid:0.9.2342.19200300.100.1.3", FriendlyName: "mail", Values: []saml.AttributeValue{{Value: "bob@acme.test"}}},
		{Name: "urn:oid:2.5.4.3", FriendlyName: "cn", Values: []saml.AttributeValue{{Value: "Bob"}}},
		{Name: "work_email", Values: []saml.AttributeValue{{Value: "robert@acme.test"}}},
	}
	mk := func(format, value string) *saml.Assertion {
		return &saml.Assertion{Subject: &saml.Subject{NameID: &saml.NameID{Format: format, Value: value}},
			AttributeStatements: []saml.AttributeStatement{{Attributes: attrs}}}
	}
	for _, c := range []struct {
		a      *saml.Assertion
		claims map[string]string
		email  string
		name   string
	}{
		{mk(string(saml.EmailAddressNameIDFormat), "alice@acme.test"), nil, "alice@acme.test", "Bob"},
		{mk(string(saml.PersistentNameIDFormat), "alice@acme.test"), nil, "bob@acme.test", "Bob"},
		{mk(string(saml.UnspecifiedNameIDFormat), "u123"), nil, "bob@acme.test", "Bob"},
		{mk(string(saml.EmailAddressNameIDFormat), "alice@acme.test"), map[string]string{"email": "work_email", "name": "mail"}, "robert@acme.test", "bob@acme.test"},
		{mk(string(saml.EmailAddressNameIDFormat), "alice@acme.test"), map[string]string{"email": "missing"}, "", "Bob"},
		{mk(string(saml.EmailAddressNameIDFormat), "Alice <alice@acme.test>"), map[string]string{"email": "missing"}, "", "Bob"},
	} {
		id := samlIdentity(c.a, c.claims)
		if id.Email != c.email || id.Name != c.name || id.Subject != c.a.Subject.NameID.Value {
			t.Fatalf("%+v %v: %+v", c.a.Subject.NameID, c.claims, id)
		}
	}
}

// An IdP that takes HTTP-POST only: the start answers the auto-posting
// form, its one script allowed by nonce, posting to the IdP alone.
func TestSAMLPostBinding(t *testing.T) {
	t.Parallel()
	e := samlNewEnv(t, true)
	idp := samlStartIdP(t, "")
	resp, err := http.Get(idp.url + "/metadata")
	if err != nil {
		t.Fatal(err)
	}
	md, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	postOnly := regexp.MustCompile(`<SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"[^>]*>(</SingleSignOnService>)?`).ReplaceAllString(string(md), "")
	if postOnly == string(md) {
		t.Fatalf("no redirect binding in %s", md)
	}
	e.input = &samlConnectionInput{MetadataXML: postOnly}
	conn := e.addConnection(t, "acme", idp)
	b := samlBrowser()
	resp, err = b.Get(e.base + "/api/v1/auth/sso/acme/start?connection=" + conn.ID)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	csp := resp.Header.Get("Content-Security-Policy")
	nonce := regexp.MustCompile(`script-src 'nonce-([^']+)'`).FindStringSubmatch(csp)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || nonce == nil ||
		!strings.Contains(csp, "form-action "+idp.url+";") || !strings.Contains(string(page), `<script nonce="`+nonce[1]+`">`) ||
		resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("start: %d %v %s", resp.StatusCode, resp.Header, page)
	}
	action, form := samlForm(t, string(page))
	if action != idp.url+"/sso" || form.Get("SAMLRequest") == "" || form.Get("RelayState") == "" {
		t.Fatalf("form to %s: %v", action, form)
	}
	resp, err = b.PostForm(action, form)
	if err != nil {
		t.Fatal(err)
	}
	page, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	action, form = samlForm(t, string(page))
	form.Set("user", "alice")
	form.Set("password", "correct horse battery staple")
	resp, err = b.PostForm(action, form)
	if err != nil {
		t.Fatal(err)
	}
	page, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	_, form = samlForm(t, string(page))
	if a := e.postACS(t, b, form); a.status != 200 || !strings.Contains(a.raw, "alice@acme.test") {
		t.Fatalf("ACS: %d %s", a.status, a.raw)
	}
}
