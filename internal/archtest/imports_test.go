package archtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const (
	module = "github.com/erpgate/erpgate"
	caddy  = "github.com/caddyserver/caddy/v2"
)

// pkg is what `go list -json` says of one of the module's packages.
type pkg struct {
	ImportPath   string
	Imports      []string // direct, non-test
	Deps         []string // transitive, non-test
	TestImports  []string
	XTestImports []string
}

// rel is p's path inside the module ("" for the root package).
func rel(p string) string {
	return strings.TrimPrefix(strings.TrimPrefix(p, module), "/")
}

func under(p, dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }

func isCaddy(p string) bool { return under(p, caddy) }

func isOurs(p string) bool { return under(p, module) }

// standard reports whether p is in Go's standard library (its first element
// has no dot; vendored std packages start with "vendor/").
func standard(p string) bool {
	first, _, _ := strings.Cut(p, "/")
	return !strings.Contains(first, ".")
}

func loadPackages(t *testing.T) []pkg {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "list", "-e", "-json=ImportPath,Imports,Deps,TestImports,XTestImports", "./...")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var pkgs []pkg
	for dec := json.NewDecoder(bytes.NewReader(out)); ; {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 20 {
		t.Fatalf("go list found %d packages: not the whole module", len(pkgs))
	}
	return pkgs
}

// moduleOf is the Caddy module package r belongs to ("caddymodules/quota"
// for caddymodules/quota and its sub-packages), or "" when r is not in one
// (caddymodules/internal/… and caddymodules/all are not modules).
func moduleOf(r string) string {
	if !under(r, "caddymodules") || under(r, "caddymodules/internal") || r == "caddymodules/all" {
		return ""
	}
	parts := strings.SplitN(r, "/", 4)
	if len(parts) < 2 {
		return ""
	}
	if parts[1] == "dialects" && len(parts) >= 3 {
		return strings.Join(parts[:3], "/")
	}
	return strings.Join(parts[:2], "/")
}

// allowedModuleImport: the one place a module names another's package.
// erp_auth expands to Caddy's authentication handler with the erp_jwt and
// erp_api_key providers, whose config types its Caddyfile parser fills.
var allowedModuleImport = map[string]bool{
	"caddymodules/authz caddymodules/companyjwt": true,
	"caddymodules/authz caddymodules/apikey":     true,
}

// TestImportRules enforces the layout of the package doc.
func TestImportRules(t *testing.T) {
	pkgs := loadPackages(t)
	seen := map[string]bool{}
	for _, p := range pkgs {
		r := rel(p.ImportPath)
		seen[r] = true
		mayUseCaddy := r == "" || under(r, "caddymodules") || under(r, "cmd")
		tests := append(append([]string{}, p.TestImports...), p.XTestImports...)

		for _, d := range p.Deps {
			switch {
			case !mayUseCaddy && isCaddy(d):
				t.Errorf("%s depends on Caddy (%s): only caddymodules/, cmd/ and the root package may", r, d)
			case !mayUseCaddy && isOurs(d) && under(rel(d), "caddymodules"):
				t.Errorf("%s depends on %s: only caddymodules/, cmd/ and the root package may", r, rel(d))
			case under(r, "contract") && !standard(d):
				t.Errorf("contract depends on %s: it holds names only (the standard library, nothing of ours, no viper)", d)
			}
		}
		for _, d := range tests {
			if !mayUseCaddy && (isCaddy(d) || isOurs(d) && under(rel(d), "caddymodules")) {
				t.Errorf("the tests of %s import %s: Caddy-free packages test without Caddy", r, d)
			}
		}
		for _, d := range append(append([]string{}, p.Imports...), tests...) {
			if d == module+"/caddymodules/all" && r != "" && !under(r, "cmd") {
				t.Errorf("%s imports caddymodules/all: only cmd/ and the root package (xcaddy's entry) may", r)
			}
		}
		for _, d := range p.Imports {
			if m := moduleOf(r); m != "" && isOurs(d) && moduleOf(rel(d)) != "" && moduleOf(rel(d)) != m &&
				moduleOf(rel(d)) != "caddymodules/erpapp" && !allowedModuleImport[r+" "+rel(d)] {
				t.Errorf("%s imports %s: modules share state through the erp app (caddymodules/erpapp), not each other's packages", r, rel(d))
			}
			if under(d, "github.com/spf13/viper") && r != "authsvc/standalone" {
				t.Errorf("%s imports viper: only authsvc/standalone (the standalone auth service's YAML) may", r)
			}
		}
	}
	// The rules above name these places; if one is renamed, they check nothing.
	for _, want := range []string{"", "contract", "caddymodules/all", "cmd/gateway", "backends/edgeassert", "authsvc", "authsvc/standalone", "internal/limit"} {
		if !seen[want] {
			t.Errorf("package %q not found: update the rules in archtest", want)
		}
	}
}
