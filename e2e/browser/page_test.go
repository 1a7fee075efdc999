package browser_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/erpgate/erpgate/internal/httpt"
)

// pageCSP is the policy the page must be served with.
const pageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// The page the binary serves loads nothing from elsewhere, has no inline
// script or style, is sent with its policy and framing and referrer
// headers, has one h1, a label for every input and a live region for
// errors; its script and style are served beside it.
func TestPageStructure(t *testing.T) {
	t.Parallel()
	in, _ := browserGateway(t, nil)
	resp := httpt.Do(t, http.MethodGet, in.URL+"/login?company=acme", nil, nil)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /login: %d %s %.300s", resp.StatusCode, resp.Header.Get("Content-Type"), resp.Body)
	}
	for k, want := range map[string]string{
		"Content-Security-Policy": pageCSP,
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "no-referrer",
		"X-Content-Type-Options":  "nosniff",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	doc, err := html.Parse(strings.NewReader(string(resp.Body)))
	if err != nil {
		t.Fatal(err)
	}
	els := pageElements(doc)

	// Every reference stays on this origin (a path, or data: for the icon).
	var assets []string
	for _, n := range els {
		for _, a := range n.Attr {
			if strings.HasPrefix(a.Key, "on") {
				t.Errorf("<%s %s=…>: an inline event handler", n.Data, a.Key)
			}
			if a.Key == "style" {
				t.Errorf("<%s style=…>: an inline style", n.Data)
			}
			switch a.Key {
			case "src", "href", "action", "formaction", "srcset", "poster", "data":
				u, err := url.Parse(a.Val)
				if err != nil || u.Host != "" || (u.Scheme != "" && u.Scheme != "data") || strings.HasPrefix(a.Val, "//") {
					t.Errorf("<%s %s=%q>: not this origin's", n.Data, a.Key, a.Val)
				}
				if n.Data == "script" || (n.Data == "link" && pageAttr(n, "rel") == "stylesheet") {
					assets = append(assets, a.Val)
				}
			}
		}
		switch n.Data {
		case "script":
			if pageAttr(n, "src") == "" || n.FirstChild != nil {
				t.Errorf("an inline script")
			}
		case "style":
			t.Errorf("an inline <style>")
		case "iframe", "object", "embed", "base":
			t.Errorf("a <%s>", n.Data)
		}
	}
	if len(assets) != 2 {
		t.Errorf("the page loads %v, want its script and its style", assets)
	}
	for _, a := range assets {
		r := httpt.Do(t, http.MethodGet, in.URL+a, nil, nil)
		want := "text/javascript"
		if strings.Contains(a, ".css") {
			want = "text/css"
		}
		if r.StatusCode != 200 || !strings.HasPrefix(r.Header.Get("Content-Type"), want) || len(r.Body) == 0 {
			t.Errorf("%s: %d %s", a, r.StatusCode, r.Header.Get("Content-Type"))
		}
		if strings.Contains(string(r.Body), "http://") || strings.Contains(string(r.Body), "https://") {
			t.Errorf("%s names another origin", a)
		}
	}
	if r := httpt.Do(t, http.MethodGet, in.URL+"/login/nothing.js", nil, nil); r.StatusCode != 404 || r.Envelope(t).Code() != "NOT_FOUND" {
		t.Errorf("/login/nothing.js: %d %s", r.StatusCode, r.Body)
	}

	// Accessible: one h1, every field labelled, errors in a live region.
	h1 := 0
	labels := map[string]bool{}
	for _, n := range els {
		if n.Data == "h1" {
			h1++
		}
		if n.Data == "label" && pageAttr(n, "for") != "" {
			labels[pageAttr(n, "for")] = true
		}
	}
	if h1 != 1 {
		t.Errorf("%d h1 elements", h1)
	}
	inputs := 0
	for _, n := range els {
		if n.Data != "input" && n.Data != "select" && n.Data != "textarea" {
			continue
		}
		if pageAttr(n, "type") == "hidden" {
			continue
		}
		inputs++
		id := pageAttr(n, "id")
		if id == "" || !labels[id] {
			t.Errorf("<%s name=%q id=%q> has no label", n.Data, pageAttr(n, "name"), id)
		}
	}
	if inputs < 7 { // email, password, four methods, code, trust
		t.Errorf("only %d inputs: the page is not the sign-in page", inputs)
	}
	live := false
	for _, n := range els {
		if pageAttr(n, "id") == "error" && pageAttr(n, "role") == "alert" && pageAttr(n, "aria-live") != "" {
			live = true
		}
	}
	if !live {
		t.Error("no live region for errors")
	}
	if pageAttr(pageFirst(els, "html"), "lang") == "" {
		t.Error("the document has no language")
	}
	if !strings.Contains(pageAttr(pageFirst(els, "meta[name=viewport]"), "content"), "width=device-width") {
		t.Error("no viewport for small screens")
	}
}

func pageElements(root *html.Node) []*html.Node {
	var out []*html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			out = append(out, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(root)
	return out
}

func pageAttr(n *html.Node, key string) string {
	if n == nil {
		return ""
	}
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// pageFirst is the first element named tag, or tag[name=value].
func pageFirst(els []*html.Node, sel string) *html.Node {
	tag, name, _ := strings.Cut(strings.TrimSuffix(sel, "]"), "[name=")
	for _, n := range els {
		if n.Data == tag && (name == "" || pageAttr(n, "name") == name) {
			return n
		}
	}
	return nil
}
