package deploy

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/erpgate/erpgate/internal/stacktest"
)

// adapt runs `gateway adapt` (our module set, as the image runs it) on a
// Caddyfile with env added to the environment, and returns the JSON.
func adapt(t *testing.T, file string, env ...string) map[string]any {
	t.Helper()
	cmd := exec.Command(stacktest.Binary(t), "adapt", "--config", file, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("adapt %s: %v\n%s", file, err, stderr.String())
	}
	if strings.Contains(stderr.String(), `"level":"warn"`) {
		t.Errorf("adapt %s warns:\n%s", file, stderr.String())
	}
	var cfg map[string]any
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatalf("adapt %s: %v", file, err)
	}
	return cfg
}

// servers are the adapted config's HTTP servers by their first listen address.
func servers(t *testing.T, cfg map[string]any) map[string]string {
	t.Helper()
	var c struct {
		Apps struct {
			HTTP struct {
				Servers map[string]struct {
					Listen []string        `json:"listen"`
					Routes json.RawMessage `json:"routes"`
				} `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	b, _ := json.Marshal(cfg)
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, s := range c.Apps.HTTP.Servers {
		if len(s.Listen) > 0 {
			out[s.Listen[0]] = string(s.Routes)
		}
	}
	return out
}

func TestDeployCaddyfile(t *testing.T) {
	t.Parallel()
	// secrets set in the environment stay out of the adapted config
	const secret = "c2VjcmV0LW5vdC1pbi10aGUtY29uZmlnLWF0LWFsbCE="
	cfg := adapt(t, "Caddyfile", "ERP_MASTER_KEY="+secret, "ERP_INTROSPECTION_SECRET="+secret,
		"ERP_POSTGRES_URL=postgres://erpgate:"+secret+"@db/erpgate", "ERP_REDIS_URL=redis://:"+secret+"@redis:6379/0")
	b, _ := json.Marshal(cfg)
	if bytes.Contains(b, []byte(secret)) {
		t.Errorf("a secret from the environment is in the adapted config")
	}
	for _, p := range []string{"{env.ERP_POSTGRES_URL}", "{env.ERP_REDIS_URL}", "{env.ERP_NATS_URL}", "{env.ERP_MASTER_KEY}", "{env.ERP_INTROSPECTION_SECRET}"} {
		if !bytes.Contains(b, []byte(p)) {
			t.Errorf("adapted config lacks %s", p)
		}
	}
	admin, _ := cfg["admin"].(map[string]any)
	if l, _ := admin["listen"].(string); !strings.HasPrefix(l, "localhost:") && !strings.HasPrefix(l, "127.0.0.1:") {
		t.Errorf("admin API listens on %q: keep it on loopback", l)
	}
	srv := servers(t, cfg)
	edge, metrics := srv[":8080"], srv[":9180"]
	for _, h := range []string{`"handler":"erp_health"`, `"handler":"erp_envelope"`, `"handler":"erp_authsvc"`, `"handler":"reverse_proxy"`} {
		if !strings.Contains(edge, h) {
			t.Errorf("the edge server (:8080) has no %s", h)
		}
	}
	if !strings.Contains(metrics, `"handler":"metrics"`) || strings.Contains(metrics, "erp_") {
		t.Errorf("the metrics server (:9180) must serve metrics alone: %s", metrics)
	}
	// the image's healthcheck and the probes ask these paths of erp_health
	if !strings.Contains(edge, `"/health/*"`) {
		t.Errorf("the edge serves no /health/*")
	}
}

func TestTLSExample(t *testing.T) {
	t.Parallel()
	root := stacktest.RepoRoot()
	cfg := adapt(t, filepath.Join(root, "Caddyfile.tls.example"))
	b, _ := json.Marshal(cfg)
	for _, want := range []string{
		`"issuers":[{"module":"internal"}]`,              // tls internal
		`"local":{"install_trust":false}`,                // skip_install_trust
		`"Strict-Transport-Security":["max-age=31536000`, // HSTS
		`"http_port":8080`,
	} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("adapted Caddyfile.tls.example lacks %s", want)
		}
	}
	if routes := servers(t, cfg)[":8443"]; !strings.Contains(routes, "Strict-Transport-Security") {
		t.Errorf("no HSTS on the HTTPS server")
	}

	// The TLS example is Caddyfile.example with the edge on HTTPS: every
	// other line the same (comments aside), so the two cannot drift.
	example := significantLines(readFile(t, filepath.Join(root, "Caddyfile.example")))
	tls := significantLines(readFile(t, filepath.Join(root, "Caddyfile.tls.example")))
	replaced := map[string]string{
		"http://{$ERP_LISTEN::8080} {":                       "{$ERP_TLS_HOST:localhost}:{$ERP_HTTPS_PORT:8443} {",
		"public_url {$ERP_PUBLIC_URL:http://localhost:8080}": "public_url {$ERP_PUBLIC_URL:https://localhost:8443}",
	}
	dropped := []string{"bind {$ERP_LISTEN::8080}"}
	added := []string{"http_port {$ERP_HTTP_PORT:8080}", "skip_install_trust",
		"tls internal", `Strict-Transport-Security "max-age=31536000; includeSubDomains"`}
	var want []string
	for _, l := range example {
		if slices.Contains(dropped, l) {
			continue
		}
		if r, ok := replaced[l]; ok {
			l = r
		}
		want = append(want, l)
	}
	var got []string
	for _, l := range tls {
		if !slices.Contains(added, l) {
			got = append(got, l)
		}
	}
	if !slices.Equal(got, want) {
		for i := range min(len(got), len(want)) {
			if got[i] != want[i] {
				t.Fatalf("Caddyfile.tls.example drifted from Caddyfile.example at its line %q (want %q)", got[i], want[i])
			}
		}
		t.Fatalf("Caddyfile.tls.example drifted from Caddyfile.example: %d lines, want %d", len(got), len(want))
	}
}

// significantLines are a Caddyfile's lines without comments and blank lines,
// trimmed.
func significantLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}
