package erpapp

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/erpgate/erpgate/caddymodules/internal/adapttest"
)

// TestCaddyfileAdapt: the erp block's golden cases (testdata/erp_*: a
// Caddyfile, a `----------` line, the JSON it adapts to or `error: …`).
func TestCaddyfileAdapt(t *testing.T) {
	adapttest.Run(t, adapttest.Files(t, "testdata/erp_*.caddyfiletest"))
}

func TestRedisOptions(t *testing.T) {
	t.Parallel()
	o, err := redisOptions("redis://:secret@127.0.0.1:6380/3")
	if err != nil || o.Addrs[0] != "127.0.0.1:6380" || o.DB != 3 || o.Password != "secret" {
		t.Fatalf("%+v %v", o, err)
	}
	o, err = redisOptions("10.0.0.1:7000, 10.0.0.2:7000")
	if err != nil || len(o.Addrs) != 2 {
		t.Fatalf("%+v %v", o, err)
	}
	if _, err := redisOptions("redis://:pw@host:notaport/x"); err == nil || contains(err.Error(), "pw") {
		t.Fatalf("bad URL accepted or echoed: %v", err)
	}
	// a cluster with credentials and TLS: the URL's host and every addr seed it
	o, err = redisOptions("rediss://edge:secret@10.0.0.1:7000?addr=10.0.0.2:7000&addr=10.0.0.3:7000")
	if err != nil || !o.IsClusterMode || len(o.Addrs) != 3 || o.Addrs[2] != "10.0.0.3:7000" ||
		o.Username != "edge" || o.Password != "secret" || o.TLSConfig == nil {
		t.Fatalf("cluster URL: %+v %v", o, err)
	}
	if _, ok := redis.NewUniversalClient(o).(*redis.ClusterClient); !ok {
		t.Fatal("cluster URL: not a cluster client")
	}
	if _, err := redisOptions("redis://:pw@10.0.0.1:7000?addr=10.0.0.2:7000&bogus=1"); err == nil || contains(err.Error(), "pw") {
		t.Fatalf("bad cluster URL accepted or echoed: %v", err)
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
