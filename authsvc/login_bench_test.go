package authsvc_test

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/erpgate/erpgate/authsvc"
)

// owaspRows are the argon2id rows of OWASP's Password Storage Cheat Sheet,
// of equivalent strength.
var owaspRows = []authsvc.Argon2Params{
	{Memory: 47104, Time: 1, Threads: 1},
	{Memory: 19456, Time: 2, Threads: 1},
	{Memory: 12288, Time: 3, Threads: 1},
	{Memory: 9216, Time: 4, Threads: 1},
	{Memory: 7168, Time: 5, Threads: 1},
}

// BenchmarkLogin is POST /login through the handler (in-memory store), one
// benchmark per OWASP row, with as many parallel clients as slots: what
// one instance sustains. logins/s/core is logins per second of the
// process's CPU time (user+system, garbage collection included), which a
// busy shared machine disturbs less than wall time; it is the figure of the
// README's "Login storms" table. B/op is mostly argon2's memory (m KiB per
// login).
func BenchmarkLogin(b *testing.B) {
	for _, p := range owaspRows {
		b.Run(fmt.Sprintf("m=%d,t=%d", p.Memory, p.Time), func(b *testing.B) {
			h, err := authsvc.NewArgon2id(p, authsvc.HashLimits{QueueWait: time.Second})
			if err != nil {
				b.Fatal(err)
			}
			e := newEnv(b, envOpts{hasher: h})
			login := map[string]any{"email": "alice@acme.test", "password": authsvc.DemoPassword}
			if code, _ := serve(e.h, "POST", "/api/v1/auth/login", "", login); code != 200 { // seeds (and rehashes) first
				b.Fatalf("login: %d", code)
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime(b)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if code, _ := serve(e.h, "POST", "/api/v1/auth/login", "", login); code != 200 {
						b.Errorf("login: %d", code)
						return
					}
				}
			})
			cpu := cpuTime(b) - cpu0
			b.ReportMetric(float64(b.N)/cpu.Seconds(), "logins/s/core")
			b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/login")
		})
	}
}

// cpuTime is the process's CPU time so far (user + system).
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
