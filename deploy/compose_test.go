package deploy

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"sigs.k8s.io/yaml"
)

// composeSecrets are the variables compose.yaml requires from its
// environment (`${X:?…}`); the test sets stand-ins.
var composeSecrets = []string{"POSTGRES_PASSWORD", "ERP_MASTER_KEY", "ERP_INTROSPECTION_SECRET", "GRAFANA_ADMIN_PASSWORD"}

// loadCompose loads a compose file the way `docker compose config` does,
// offline: interpolation, the compose specification's JSON schema (carried
// by compose-go), normalization and consistency checks.
func loadCompose(file string, env map[string]string) (*types.Project, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, err
	}
	return loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  filepath.Dir(abs),
		ConfigFiles: []types.ConfigFile{{Filename: abs}},
		Environment: env,
	}, func(o *loader.Options) { o.SetProjectName("erpgate", true) })
}

func standIns() map[string]string {
	env := map[string]string{}
	for _, k := range composeSecrets {
		env[k] = "stand-in-" + strings.ToLower(k)
	}
	return env
}

// checkCompose lists how p breaks the rules of the compose deployment.
func checkCompose(p *types.Project) []string {
	var errs []string
	add := func(f string, a ...any) { errs = append(errs, fmt.Sprintf(f, a...)) }
	var edges []string
	for _, name := range slices.Sorted(maps.Keys(p.Services)) {
		s := p.Services[name]
		if err := checkImage(s.Image); err != nil {
			add("service %s: %v", name, err)
		}
		if s.HealthCheck == nil || len(s.HealthCheck.Test) == 0 || s.HealthCheck.Disable {
			add("service %s: no healthcheck", name)
		}
		if !strings.HasPrefix(name, "edge") {
			continue
		}
		edges = append(edges, name)
		if n := s.Networks["default"]; n == nil || !slices.Contains(n.Aliases, "edge") {
			add("service %s: not reachable by the DNS name edge (network alias)", name)
		}
		if s.HealthCheck != nil && !slices.ContainsFunc(s.HealthCheck.Test, func(a string) bool { return strings.HasSuffix(a, "/health/ready") }) {
			add("service %s: healthcheck %q does not ask /health/ready", name, s.HealthCheck.Test)
		}
		if !s.ReadOnly {
			add("service %s: read_only: want true", name)
		}
		if u, _, _ := strings.Cut(s.User, ":"); u == "" || u == "0" || u == "root" {
			add("service %s: user %q: want a non-root user", name, s.User)
		}
		writable := slices.Clone(s.Tmpfs)
		for _, v := range s.Volumes {
			writable = append(writable, v.Target)
		}
		for _, dir := range []string{"/data", "/config", "/tmp"} {
			if !slices.Contains(writable, dir) {
				add("service %s: %s must be a volume or tmpfs (the root file system is read-only)", name, dir)
			}
		}
		if s.Build == nil || s.Build.Dockerfile != "Dockerfile" {
			add("service %s: want built from the repository's Dockerfile", name)
		}
	}
	if len(edges) != 3 {
		add("edge instances %v: want 3", edges)
	}
	if s, ok := p.Services["nats"]; !ok || !slices.Contains(s.Command, "--jetstream") {
		add("nats: want a service running with --jetstream")
	}
	return errs
}

// literalSecret finds environment values in the raw compose file that hold
// a secret written out: a secret-named variable or a URL with a password
// that is not an interpolation (${…}) of the environment.
func literalSecrets(raw map[string]any) []string {
	var found []string
	userinfo := regexp.MustCompile(`://[^/@\s]*:([^/@\s]+)@`)
	check := func(where, k, v string) {
		if m := userinfo.FindStringSubmatch(v); m != nil && !strings.HasPrefix(m[1], "${") {
			found = append(found, where+" "+k)
		}
		if secretName.MatchString(k) && v != "" && !strings.HasPrefix(v, "${") {
			found = append(found, where+" "+k)
		}
	}
	var walk func(where string, v any)
	walk = func(where string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if env, ok := v["environment"].(map[string]any); ok {
				for _, k := range slices.Sorted(maps.Keys(env)) {
					check(where, k, fmt.Sprint(env[k]))
				}
			}
			if env, ok := v["environment"].([]any); ok {
				for _, kv := range env {
					k, val, _ := strings.Cut(fmt.Sprint(kv), "=")
					check(where, k, val)
				}
			}
			for _, k := range slices.Sorted(maps.Keys(v)) {
				walk(where+"."+k, v[k])
			}
		case []any:
			for _, e := range v {
				walk(where, e)
			}
		}
	}
	walk("", raw)
	return found
}

// secretName matches the names of variables that hold secrets.
var secretName = regexp.MustCompile(`(?i)(PASSWORD|SECRET|MASTER_KEY|TOKEN|API_KEY)`)

func TestCompose(t *testing.T) {
	t.Parallel()
	p, err := loadCompose("compose.yaml", standIns())
	if err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	for _, e := range checkCompose(p) {
		t.Error(e)
	}

	var raw map[string]any
	if err := yaml.Unmarshal([]byte(readFile(t, "compose.yaml")), &raw); err != nil {
		t.Fatal(err)
	}
	if s := literalSecrets(raw); len(s) > 0 {
		t.Errorf("secrets written out in compose.yaml: %v", s)
	}
	// each secret is required from the environment: without it, no project
	for _, k := range composeSecrets {
		env := standIns()
		delete(env, k)
		if _, err := loadCompose("compose.yaml", env); err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("compose.yaml loads without %s: %v", k, err)
		}
	}

	// Prometheus scrapes the edge instances' metrics listeners and loads the
	// alert rules mounted where it reads them; Grafana loads the dashboard.
	var prom struct {
		RuleFiles     []string `json:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `json:"job_name"`
			MetricsPath   string `json:"metrics_path"`
			StaticConfigs []struct {
				Targets []string `json:"targets"`
			} `json:"static_configs"`
		} `json:"scrape_configs"`
	}
	if err := yaml.Unmarshal([]byte(readFile(t, "prometheus/prometheus.yml")), &prom); err != nil {
		t.Fatal(err)
	}
	var targets []string
	for _, sc := range prom.ScrapeConfigs {
		if sc.JobName == "erpgate" {
			for _, st := range sc.StaticConfigs {
				targets = append(targets, st.Targets...)
			}
		}
	}
	var want []string
	for name := range p.Services {
		if strings.HasPrefix(name, "edge") {
			if p.Services[name].Environment["ERP_METRICS_LISTEN"] == nil || *p.Services[name].Environment["ERP_METRICS_LISTEN"] != ":9180" {
				t.Errorf("service %s: ERP_METRICS_LISTEN: want :9180, the port Prometheus scrapes", name)
			}
			want = append(want, name+":9180")
		}
	}
	slices.Sort(want)
	slices.Sort(targets)
	if !slices.Equal(targets, want) {
		t.Errorf("prometheus.yml job erpgate scrapes %v, want %v", targets, want)
	}
	mounts := func(service string) map[string]string { // source (relative to deploy/) → target
		m := map[string]string{}
		for _, v := range p.Services[service].Volumes {
			if v.Type == types.VolumeTypeBind {
				rel, err := filepath.Rel(p.WorkingDir, v.Source)
				if err != nil {
					t.Fatal(err)
				}
				m[rel] = v.Target
			}
		}
		return m
	}
	pm := mounts("prometheus")
	if pm["prometheus/prometheus.yml"] != "/etc/prometheus/prometheus.yml" {
		t.Errorf("prometheus: prometheus.yml mounted at %q", pm["prometheus/prometheus.yml"])
	}
	if target := pm["prometheus/alerts.yml"]; target == "" || !slices.Contains(prom.RuleFiles, target) {
		t.Errorf("prometheus: alerts.yml mounted at %q, rule_files %v", target, prom.RuleFiles)
	}
	gm := mounts("grafana")
	if gm["grafana/provisioning"] != "/etc/grafana/provisioning" {
		t.Errorf("grafana: provisioning mounted at %q", gm["grafana/provisioning"])
	}
	var dash struct {
		Providers []struct {
			Type    string `json:"type"`
			Options struct {
				Path string `json:"path"`
			} `json:"options"`
		} `json:"providers"`
	}
	if err := yaml.Unmarshal([]byte(readFile(t, "grafana/provisioning/dashboards/erpgate.yml")), &dash); err != nil {
		t.Fatal(err)
	}
	if len(dash.Providers) != 1 || filepath.Join(dash.Providers[0].Options.Path, "erpgate.json") != gm["grafana/erpgate.json"] {
		t.Errorf("grafana: the dashboards provider reads %+v, erpgate.json is mounted at %q", dash.Providers, gm["grafana/erpgate.json"])
	}
	// the files of ours that the services mount exist
	for _, src := range []string{"prometheus/prometheus.yml", "grafana/provisioning"} {
		if _, err := os.Stat(src); err != nil {
			t.Error(err)
		}
	}
}

// TestComposeChecksRefuse shows the compose checks refuse what they are
// for: a field the specification does not know, two edges, a writable
// edge, a literal password.
func TestComposeChecksRefuse(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "compose.yaml")
	if err := os.WriteFile(bad, []byte("services:\n  edge:\n    image: x:1\n    helthcheck:\n      test: [\"CMD\", \"true\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadCompose(bad, nil); err == nil || !strings.Contains(err.Error(), "helthcheck") {
		t.Errorf("a field outside the schema loaded: %v", err)
	}

	p, err := loadCompose("compose.yaml", standIns())
	if err != nil {
		t.Fatal(err)
	}
	if errs := checkCompose(p); len(errs) != 0 {
		t.Fatalf("the shipped compose.yaml: %q", errs)
	}
	delete(p.Services, "edge-3")
	e2 := p.Services["edge-2"]
	e2.ReadOnly = false
	e2.User = "root"
	p.Services["edge-2"] = e2
	pg := p.Services["postgres"]
	pg.HealthCheck = nil
	p.Services["postgres"] = pg
	errs := strings.Join(checkCompose(p), "\n")
	for _, want := range []string{"want 3", "edge-2: read_only", "edge-2: user \"root\"", "postgres: no healthcheck"} {
		if !strings.Contains(errs, want) {
			t.Errorf("want an error containing %q, got:\n%s", want, errs)
		}
	}

	var raw map[string]any
	if err := yaml.Unmarshal([]byte("services:\n  a:\n    environment:\n      DB_PASSWORD: hunter2\n      URL: postgres://u:pw@db/x\n      OK_URL: postgres://u:${PW}@db/x\n      GRAFANA_ADMIN_PASSWORD: ${GRAFANA_ADMIN_PASSWORD:?}\n"), &raw); err != nil {
		t.Fatal(err)
	}
	if got := literalSecrets(raw); !slices.Equal(got, []string{".services.a DB_PASSWORD", ".services.a URL"}) {
		t.Errorf("literal secrets found: %q", got)
	}
}
