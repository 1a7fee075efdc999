package deploy

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/erpgate/erpgate/internal/stacktest"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // upper case
	args string
}

// parseDockerfile splits a Dockerfile into instructions (comments and
// parser directives dropped, `\` continuations joined).
func parseDockerfile(s string) []instruction {
	var out []instruction
	var cur strings.Builder
	for _, line := range strings.Split(s, "\n") {
		t := strings.TrimSpace(line)
		if cur.Len() == 0 && (t == "" || strings.HasPrefix(t, "#")) {
			continue
		}
		if strings.HasPrefix(t, "#") { // a comment inside a continued instruction
			continue
		}
		if strings.HasSuffix(t, "\\") {
			cur.WriteString(strings.TrimSuffix(t, "\\") + " ")
			continue
		}
		cur.WriteString(t)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{strings.ToUpper(cmd), strings.TrimSpace(args)})
		cur.Reset()
	}
	return out
}

// checkDockerfile lists how a Dockerfile breaks the image's rules:
// multi-stage, a static (CGO_ENABLED=0) gateway built in a builder stage,
// a final stage on a pinned base that runs as a non-root user, with Caddy's
// data and config directories where a read-only root file system leaves
// them writable.
func checkDockerfile(s string) []string {
	var errs []string
	add := func(f string, a ...any) { errs = append(errs, fmt.Sprintf(f, a...)) }
	ins := parseDockerfile(s)
	var stages [][]instruction
	for _, in := range ins {
		if in.cmd == "FROM" {
			stages = append(stages, nil)
		}
		if len(stages) > 0 {
			stages[len(stages)-1] = append(stages[len(stages)-1], in)
		}
	}
	if len(stages) < 2 {
		return append(errs, fmt.Sprintf("%d stage(s): want a builder stage and a final one", len(stages)))
	}
	static := false
	for _, st := range stages[:len(stages)-1] {
		cgoOff := false // ENV CGO_ENABLED=0 in the stage
		for _, in := range st {
			if in.cmd == "ENV" && slices.Contains(strings.Fields(in.args), "CGO_ENABLED=0") {
				cgoOff = true
			}
			if in.cmd != "RUN" {
				continue
			}
			for _, c := range strings.Split(in.args, "&&") {
				if strings.Contains(c, "go build") && strings.Contains(c, "./cmd/gateway") {
					static = cgoOff || strings.Contains(c, "CGO_ENABLED=0")
				}
			}
		}
	}
	if !static {
		add("no builder stage builds ./cmd/gateway with CGO_ENABLED=0")
	}
	final := stages[len(stages)-1]
	base := strings.Fields(final[0].args)[0]
	if !strings.Contains(base, "$") { // an ARG-named base is pinned by its ARG
		if err := checkImage(base); err != nil {
			add("final stage: %v", err)
		}
	}
	var user string
	env := map[string]string{}
	var volumes []string
	copiedFromBuild := false
	for _, in := range final {
		switch in.cmd {
		case "USER":
			user = in.args
		case "ENV":
			for _, kv := range strings.Fields(in.args) {
				if k, v, ok := strings.Cut(kv, "="); ok {
					env[k] = v
				}
			}
		case "VOLUME":
			volumes = append(volumes, strings.Fields(strings.NewReplacer("[", " ", "]", " ", `"`, " ", ",", " ").Replace(in.args))...)
		case "COPY":
			copiedFromBuild = copiedFromBuild || strings.Contains(in.args, "--from=")
		}
	}
	if u, _, _ := strings.Cut(user, ":"); u == "" || u == "root" || u == "0" {
		add("final stage: USER %q: want a non-root user", user)
	}
	if !copiedFromBuild {
		add("final stage copies nothing from the builder")
	}
	for _, k := range []string{"XDG_DATA_HOME", "XDG_CONFIG_HOME"} {
		if env[k] == "" {
			add("final stage: %s unset: Caddy would write under $HOME", k)
		}
	}
	if d := env["XDG_DATA_HOME"]; d != "" && !slices.Contains(volumes, d) {
		add("final stage: XDG_DATA_HOME %s is not a VOLUME", d)
	}
	return errs
}

func TestDockerfile(t *testing.T) {
	t.Parallel()
	s := readFile(t, filepath.Join(stacktest.RepoRoot(), "Dockerfile"))
	for _, e := range checkDockerfile(s) {
		t.Error(e)
	}
	// the default command runs the Caddyfile the image carries
	var caddyfile string
	for _, in := range parseDockerfile(s) {
		if in.cmd == "COPY" && strings.HasPrefix(in.args, "deploy/Caddyfile ") {
			caddyfile = strings.Fields(in.args)[1]
		}
	}
	if caddyfile == "" || !strings.Contains(s, `"--config", "`+caddyfile+`"`) {
		t.Errorf("the default command does not run the Caddyfile copied to %q", caddyfile)
	}
	// .dockerignore keeps out what the build must not see
	ignore := significantLines(readFile(t, filepath.Join(stacktest.RepoRoot(), ".dockerignore")))
	for _, want := range []string{".git", "bin"} {
		if !slices.Contains(ignore, want) {
			t.Errorf(".dockerignore lacks %s", want)
		}
	}
}

func TestDockerfileChecksRefuse(t *testing.T) {
	t.Parallel()
	good := readFile(t, filepath.Join(stacktest.RepoRoot(), "Dockerfile"))
	for _, tc := range []struct{ name, from, to, want string }{
		{"root", "USER 65532:65532", "USER root", `USER "root"`},
		{"no user", "USER 65532:65532", "", `USER ""`},
		{"cgo", "CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags=\"-s -w\" -o /out/gateway", "GOOS=linux go build -o /out/gateway", "CGO_ENABLED=0"},
		{"latest base", "gcr.io/distroless/static-debian12:nonroot", "gcr.io/distroless/static-debian12:latest", ":latest"},
		{"no data dir", "XDG_DATA_HOME=/data \\", "\\", "XDG_DATA_HOME unset"},
		{"single stage", "FROM gcr.io/distroless/static-debian12:nonroot", "", "want a builder stage"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(good, tc.from) {
				t.Fatalf("the Dockerfile has no %q to change", tc.from)
			}
			errs := checkDockerfile(strings.Replace(good, tc.from, tc.to, 1))
			if !slices.ContainsFunc(errs, func(e string) bool { return strings.Contains(e, tc.want) }) {
				t.Fatalf("want an error containing %q, got %q", tc.want, errs)
			}
		})
	}
}
