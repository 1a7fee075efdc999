package browser_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/erpgate/erpgate/internal/demoauth"
)

// On a 320 px wide screen nothing of the page is cut off or scrolls
// sideways, and a sign-in works with the keyboard alone: type, Tab,
// Enter, Tab to the second company, Enter.
func TestPageNarrowScreenAndKeyboard(t *testing.T) {
	t.Parallel()
	in, public := browserGateway(t, nil)
	b := browserOpen(t)
	b.do("320 px", chromedp.EmulateViewport(320, 640))
	b.open(public + "/login")

	overflow := browserEval[[]string](b, `(() => {
		const out = [];
		if (document.documentElement.scrollWidth > window.innerWidth) out.push("the page scrolls sideways: " + document.documentElement.scrollWidth);
		for (const el of document.querySelectorAll("input, button, label, h1, a")) {
			const r = el.getBoundingClientRect();
			if (r.width === 0 && r.height === 0) continue; // not shown
			if (r.left < 0 || r.right > window.innerWidth) out.push((el.id || el.tagName) + " spans " + r.left + ".." + r.right);
		}
		return out;
	})()`)
	if window := browserEval[int](b, `window.innerWidth`); window != 320 {
		t.Fatalf("the viewport is %d px wide", window)
	}
	if len(overflow) > 0 {
		t.Errorf("at 320 px: %s", strings.Join(overflow, "; "))
	}

	if f := b.focused(); f != "email" {
		t.Fatalf("focus on %q", f)
	}
	b.do("keyboard sign-in",
		chromedp.KeyEvent("alice@acme.test"), chromedp.KeyEvent(kb.Tab),
		chromedp.KeyEvent(demoauth.Password), chromedp.KeyEvent(kb.Enter),
		visible(`#companies button[data-company-id="globex"]`))
	first := browserEval[string](b, `document.activeElement.getAttribute("data-company-id") || ""`)
	ids := browserEval[[]string](b, `Array.from(document.querySelectorAll("#companies button")).map(b => b.getAttribute("data-company-id"))`)
	if len(ids) != 2 || first != ids[0] {
		t.Fatalf("companies %v, focus on %q", ids, first)
	}
	names := map[string]string{"acme": "Acme Corp", "globex": "Globex"}
	b.do("keyboard company", chromedp.KeyEvent(kb.Tab), chromedp.KeyEvent(kb.Enter))
	b.signedIn(in.URL, "alice@acme.test", ids[1], names[ids[1]])
	if f := b.focused(); f != "signed-in" {
		t.Errorf("after signing in the focus is on %q", f)
	}
	b.noPageErrors()
}
