// Package browser_test drives the hosted sign-in page (GET /login) of the
// running gateway binary in headless Chromium (Debian's package, installed
// by scripts/chromium.sh; ERP_TEST_CHROMIUM names another binary): each
// flow ends with a company-scoped access token read from the page's
// sessionStorage and checked against the API. A failed test leaves a
// screenshot, the DOM and the console in an artifact directory (logged).
package browser_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/stacktest"
	"github.com/erpgate/erpgate/internal/testenv"
)

// browserStepTimeout bounds one step of a flow (a click and what it waits
// for); a flow is a handful of steps.
const browserStepTimeout = 15 * time.Second

// browserChromium is the Chromium binary: ERP_TEST_CHROMIUM, else the
// first of the usual names on PATH. The test fails (never skips) without.
func browserChromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("ERP_TEST_CHROMIUM"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("ERP_TEST_CHROMIUM=%s: %v", p, err)
		}
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no Chromium: run scripts/chromium.sh (make test does) or set ERP_TEST_CHROMIUM")
	return ""
}

// browserGateway starts the gateway from Caddyfile.example on a Postgres
// store, reachable as http://localhost:<port> (its ERP_PUBLIC_URL: the
// passkeys' relying party is its host, and localhost is a secure context).
func browserGateway(t *testing.T, env map[string]string) (*stacktest.Instance, string) {
	t.Helper()
	port := strconv.Itoa(stacktest.FreePort(t))
	public := "http://localhost:" + port
	e := map[string]string{
		"ERP_LISTEN":       ":" + port,
		"ERP_PUBLIC_URL":   public,
		"ERP_POSTGRES_URL": testenv.Postgres(t),
	}
	for k, v := range env {
		e[k] = v
	}
	in := stacktest.Start(t, stacktest.Options{Config: stacktest.ExampleConfig(t), Env: e})
	return in, public
}

// browserSession is one headless Chromium with one tab, its console
// recorded.
type browserSession struct {
	t   *testing.T
	ctx context.Context // the tab

	mu      sync.Mutex
	console []string // console messages, exceptions, browser log entries
	errs    []string // the ones that mean the page is broken
}

// browserOpen starts Chromium for the test; it is closed when the test
// ends, after the artifacts of a failure are saved.
func browserOpen(t *testing.T) *browserSession {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browserChromium(t)),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1024, 900),
		chromedp.Flag("disable-quic", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	b := &browserSession{t: t, ctx: ctx}
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	// The first action starts the browser and lives as long as it: no
	// timeout on its context; a browser that does not come up in time
	// fails the test (the cleanup stops it).
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("start chromium: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("chromium did not start in 30s")
	}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			b.note(m)
		}
	}()
	// Registered after the browser's own cleanup: runs before it.
	t.Cleanup(b.saveArtifactsOnFailure)
	return b
}

func (b *browserSession) note(m chromedp.ConsoleMessage) {
	b.mu.Lock()
	defer b.mu.Unlock()
	line := m.String()
	if m.Source != "" {
		line = m.Source + " " + line
	}
	if m.URL != "" {
		line += " (" + m.URL + ")"
	}
	b.console = append(b.console, line)
	// Exceptions, console errors of the page's own script and security
	// refusals (CSP violations) are the page's bugs; a failed fetch (a
	// 401 for a wrong password) is an expected answer.
	switch {
	case m.IsException(),
		m.Type == chromedp.ConsoleError && m.Source == "",
		m.Source == "security" || m.Source == "violation",
		strings.Contains(m.Text, "Content Security Policy"):
		b.errs = append(b.errs, line)
	}
}

// do runs steps with the step timeout; a failure ends the test.
func (b *browserSession) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v\nconsole:\n%s", what, err, b.consoleText())
	}
}

// browserRun runs one action that returns a value, with the step timeout.
func browserRun[T any](b *browserSession, what string, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.t.Fatalf("%s: %v\nconsole:\n%s", what, err, b.consoleText())
	}
	return v
}

// browserEval evaluates a JavaScript expression in the page.
func browserEval[T any](b *browserSession, expr string) T {
	b.t.Helper()
	return browserRun(b, "evaluate "+expr, chromedp.Evaluate[T](expr))
}

func (b *browserSession) consoleText() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.console, "\n")
}

// noPageErrors fails the test when the page threw, logged an error or was
// refused something by its policy.
func (b *browserSession) noPageErrors() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.errs) > 0 {
		b.t.Errorf("the page reported errors:\n%s", strings.Join(b.errs, "\n"))
	}
}

// browserArtifactDir is where a failed test's screenshot and DOM go: the
// test's artifact directory when `go test -artifacts` keeps them, else
// $TMPDIR/erpgate-browser-artifacts/<test>-<time>.
func browserArtifactDir(t *testing.T) (string, error) {
	if f := flag.Lookup("test.artifacts"); f != nil && f.Value.String() == "true" {
		return t.ArtifactDir(), nil
	}
	name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
	dir := filepath.Join(os.TempDir(), "erpgate-browser-artifacts", name+"-"+time.Now().UTC().Format("20060102T150405.000"))
	return dir, os.MkdirAll(dir, 0o755)
}

func (b *browserSession) saveArtifactsOnFailure() {
	t := b.t
	if !t.Failed() {
		return
	}
	dir, err := browserArtifactDir(t)
	if err != nil {
		t.Logf("artifacts: %v", err)
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	where, _ := chromedp.Run(ctx, chromedp.Location())
	dom, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
	if err != nil {
		t.Logf("artifacts: the DOM could not be read: %v", err)
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Logf("artifacts: no screenshot: %v", err)
	}
	files := map[string][]byte{
		"console.txt": []byte(b.consoleText()),
		"dom.html":    []byte("<!-- " + where + " -->\n" + dom),
	}
	if len(shot) > 0 {
		files["screenshot.png"] = shot
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Logf("artifacts: %v", err)
		}
	}
	t.Logf("browser artifacts (screenshot, DOM, console) in %s", dir)
}

// open loads the page and waits until its script has started.
func (b *browserSession) open(url string) {
	b.t.Helper()
	b.do("open "+url, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS(`#app[data-ready="true"]`)))
}

// text is the text of the first element matching sel, once visible.
func (b *browserSession) text(sel string) string {
	b.t.Helper()
	b.do("wait for "+sel, chromedp.WaitVisible(chromedp.CSS(sel)))
	return strings.TrimSpace(browserRun(b, "read "+sel, chromedp.Text(chromedp.CSS(sel))))
}

// waitFor polls a JavaScript expression until it is truthy and returns
// its value as text. $ is document.querySelector.
func (b *browserSession) waitFor(expr string) string {
	b.t.Helper()
	return browserRun(b, "wait for "+expr, chromedp.Poll[string](`(($) => String((`+expr+`) || ""))(s => document.querySelector(s)) || null`))
}

// focused is the id of the element that has the focus.
func (b *browserSession) focused() string {
	b.t.Helper()
	return browserEval[string](b, `document.activeElement ? document.activeElement.id : ""`)
}

// waitError waits for a message in the page's error region and returns it.
func (b *browserSession) waitError() string {
	b.t.Helper()
	return b.text(`#error:not(:empty)`)
}

// fill clears a field and types v into it.
func fill(sel, v string) chromedp.Action[chromedp.Void] {
	// (chromedp's SetValue cannot set "": it sends no argument for it)
	clear := chromedp.Evaluate[chromedp.Void](`document.querySelector(` + strconv.Quote(sel) + `).value = "", undefined`)
	return chromedp.Steps(chromedp.WaitVisible(chromedp.CSS(sel)), func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := clear(ctx, t)
		return chromedp.Void{}, err
	}, chromedp.SendKeys(chromedp.CSS(sel), v))
}

// click clicks the first element matching sel.
func click(sel string) chromedp.Action[chromedp.Void] { return chromedp.Click(chromedp.CSS(sel)) }

// visible waits until an element matching sel is visible.
func visible(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.WaitVisible(chromedp.CSS(sel))
}

// pageTokens are the tokens the page keeps in sessionStorage.
type pageTokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	Company      struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"company"`
}

// signedIn checks the page's end: "Signed in to <company>", and a
// company-scoped access token in sessionStorage that the API accepts as
// the user's (by address), in that company. It returns the tokens.
func (b *browserSession) signedIn(base, email, companyID, companyName string) pageTokens {
	b.t.Helper()
	t := b.t
	if got, want := b.text("#signed-in"), "Signed in to "+companyName; got != want {
		t.Fatalf("the page says %q, want %q", got, want)
	}
	raw := browserEval[string](b, `sessionStorage.getItem("erpgate.tokens") || ""`)
	var tok pageTokens
	if err := json.Unmarshal([]byte(raw), &tok); err != nil || tok.AccessToken == "" || tok.RefreshToken == "" {
		t.Fatalf("sessionStorage erpgate.tokens = %q (%v)", raw, err)
	}
	if tok.Company.ID != companyID {
		t.Fatalf("the tokens are for company %q, want %q", tok.Company.ID, companyID)
	}
	me := httpt.Do(t, http.MethodGet, base+"/api/v1/auth/me", nil, demoauth.Bearer(tok.AccessToken))
	var d struct {
		User struct {
			Email string `json:"email"`
		} `json:"user"`
		Company *struct {
			ID string `json:"id"`
		} `json:"company"`
	}
	if me.StatusCode != 200 || json.Unmarshal(me.Envelope(t).Data, &d) != nil {
		t.Fatalf("GET /me with the page's token: %d %s", me.StatusCode, me.Body)
	}
	if d.User.Email != email || d.Company == nil || d.Company.ID != companyID {
		t.Fatalf("the page's token is user %q in %+v, want %q in %q", d.User.Email, d.Company, email, companyID)
	}
	return tok
}

// browserUser is a user made for one test through the admin API.
type browserUser struct {
	ID, Email, Password string
}

// browserNewUser creates a user with a password and a membership of
// company (roles), as the platform admin.
func browserNewUser(t *testing.T, base, company string, roles ...string) browserUser {
	t.Helper()
	root := demoauth.Login(t, base, "root@erpgate.local", "acme")
	u := browserUser{Email: "page-" + browserRandom() + "@" + company + ".test", Password: "page-test-" + browserRandom()}
	r := httpt.Do(t, http.MethodPost, base+"/api/v1/admin/users", httpt.JSON(t, map[string]any{"email": u.Email, "name": "Pat Page", "password": u.Password}), demoauth.Bearer(root.Access))
	var d struct {
		ID string `json:"id"`
	}
	if r.StatusCode != http.StatusCreated || json.Unmarshal(r.Envelope(t).Data, &d) != nil || d.ID == "" {
		t.Fatalf("create user: %d %s", r.StatusCode, r.Body)
	}
	u.ID = d.ID
	r = httpt.Do(t, http.MethodPut, base+"/api/v1/admin/memberships/"+company+"/"+u.ID, httpt.JSON(t, map[string]any{"roles": roles}), demoauth.Bearer(root.Access))
	if r.StatusCode != 200 && r.StatusCode != 201 {
		t.Fatalf("membership: %d %s", r.StatusCode, r.Body)
	}
	return u
}

// browserAPILogin signs u in through the API (password, company) and
// returns the access token.
func browserAPILogin(t *testing.T, base string, u browserUser, company string) string {
	t.Helper()
	r := httpt.Do(t, http.MethodPost, base+"/api/v1/auth/login", httpt.JSON(t, map[string]string{"email": u.Email, "password": u.Password}), nil)
	var l struct {
		LoginToken string `json:"login_token"`
	}
	if r.StatusCode != 200 || json.Unmarshal(r.Envelope(t).Data, &l) != nil || l.LoginToken == "" {
		t.Fatalf("login: %d %s", r.StatusCode, r.Body)
	}
	r = httpt.Do(t, http.MethodPost, base+"/api/v1/auth/select-company", httpt.JSON(t, map[string]string{"login_token": l.LoginToken, "company_id": company}), nil)
	var s struct {
		AccessToken string `json:"access_token"`
	}
	if r.StatusCode != 200 || json.Unmarshal(r.Envelope(t).Data, &s) != nil || s.AccessToken == "" {
		t.Fatalf("select-company: %d %s", r.StatusCode, r.Body)
	}
	return s.AccessToken
}

// browserTOTPCode is the code of secret for the time step at.
func browserTOTPCode(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func browserRandom() string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
