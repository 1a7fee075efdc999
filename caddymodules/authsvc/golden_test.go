package authsvc

import (
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	core "github.com/erpgate/erpgate/authsvc"
	"github.com/erpgate/erpgate/caddymodules/internal/adapttest"
)

// Golden files: a Caddyfile, a `----------` line, the JSON it adapts to.
func TestPasswordHashingCaddyfile(t *testing.T) {
	cases := adapttest.Files(t, "testdata/*.caddyfiletest")
	wrap := func(block string) string {
		return "http://127.0.0.1:0 {\n\troute {\n\t\terp_authsvc {\n\t\t\tpassword_hashing " + block + "\n\t\t}\n\t}\n}\n"
	}
	cases = append(cases,
		adapttest.Case{Name: "unknown subdirective", Caddyfile: wrap("{\n\t\t\t\tsalt 3\n\t\t\t}"), Err: "unknown subdirective"},
		adapttest.Case{Name: "negative", Caddyfile: wrap("{\n\t\t\t\titerations -1\n\t\t\t}"), Err: "0 or more"},
		adapttest.Case{Name: "not a number", Caddyfile: wrap("{\n\t\t\t\tmemory_kib 19MiB\n\t\t\t}"), Err: "0 or more"},
		adapttest.Case{Name: "bad wait", Caddyfile: wrap("{\n\t\t\t\tqueue_wait soon\n\t\t\t}"), Err: "positive duration"},
		adapttest.Case{Name: "duplicate", Caddyfile: wrap("{\n\t\t\t\tqueue 1\n\t\t\t\tqueue 2\n\t\t\t}"), Err: "duplicate"},
		adapttest.Case{Name: "extra argument", Caddyfile: wrap("{\n\t\t\t\tqueue 1 2\n\t\t\t}"), Err: "wrong argument count"},
		adapttest.Case{Name: "argument", Caddyfile: wrap("19456 {\n\t\t\t}"), Err: "wrong argument count"},
	)
	adapttest.Run(t, cases)
}

// TestPasswordHashingParams: what Provision hands the core, and what it refuses.
func TestPasswordHashingParams(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		in     *PasswordHashing
		params core.Argon2Params
		limits core.HashLimits
		err    string
	}{
		{name: "absent"},
		{name: "limits only: default parameters", in: &PasswordHashing{Queue: 4, QueueWait: caddy.Duration(time.Second)},
			limits: core.HashLimits{Queue: 4, QueueWait: time.Second}},
		{name: "a row", in: &PasswordHashing{MemoryKiB: 12288, Iterations: 3}, params: core.Argon2Params{Memory: 12288, Time: 3, Threads: 1}},
		{name: "memory only", in: &PasswordHashing{MemoryKiB: 47104}, params: core.Argon2Params{Memory: 47104, Time: 2, Threads: 1}},
		{name: "too much memory", in: &PasswordHashing{MemoryKiB: 300000}, err: "memory"},
		{name: "too many iterations", in: &PasswordHashing{Iterations: 11}, err: "time"},
		{name: "wait past the timeout", in: &PasswordHashing{QueueWait: caddy.Duration(5 * time.Second)}, err: "queue_wait"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p, l, err := c.in.params()
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want %q", err, c.err)
				}
				return
			}
			if err != nil || p != c.params || l != c.limits {
				t.Fatalf("got %+v %+v %v, want %+v %+v", p, l, err, c.params, c.limits)
			}
		})
	}
}
