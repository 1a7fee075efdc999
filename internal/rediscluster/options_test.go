package rediscluster_test

import (
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/erpgate/erpgate/internal/rediscluster"
)

// TestOptions: the `redis` setting's forms; an error never echoes a
// password.
func TestOptions(t *testing.T) {
	o, err := rediscluster.Options("redis://:secret@127.0.0.1:6380/3")
	if err != nil || o.Addrs[0] != "127.0.0.1:6380" || o.DB != 3 || o.Password != "secret" {
		t.Fatalf("%+v %v", o, err)
	}
	o, err = rediscluster.Options("10.0.0.1:7000, 10.0.0.2:7000")
	if err != nil || len(o.Addrs) != 2 {
		t.Fatalf("%+v %v", o, err)
	}
	if _, err := rediscluster.Options("redis://:pw@host:notaport/x"); err == nil || strings.Contains(err.Error(), "pw") {
		t.Fatalf("bad URL accepted or echoed: %v", err)
	}
	// a cluster with credentials and TLS: the URL's host and every addr seed it
	o, err = rediscluster.Options("rediss://edge:secret@10.0.0.1:7000?addr=10.0.0.2:7000&addr=10.0.0.3:7000")
	if err != nil || !o.IsClusterMode || len(o.Addrs) != 3 || o.Addrs[2] != "10.0.0.3:7000" ||
		o.Username != "edge" || o.Password != "secret" || o.TLSConfig == nil {
		t.Fatalf("cluster URL: %+v %v", o, err)
	}
	if _, ok := redis.NewUniversalClient(o).(*redis.ClusterClient); !ok {
		t.Fatal("cluster URL: not a cluster client")
	}
	if _, err := rediscluster.Options(" , "); err == nil {
		t.Fatal("no address accepted")
	}
	if _, err := rediscluster.Options("redis://:pw@10.0.0.1:7000?addr=10.0.0.2:7000&bogus=1"); err == nil || strings.Contains(err.Error(), "pw") {
		t.Fatalf("bad cluster URL accepted or echoed: %v", err)
	}
}
