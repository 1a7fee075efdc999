package erpapp

import (
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	core "github.com/erpgate/erpgate/authsvc"
)

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
