package credentials

import (
	"crypto/rand"
	"encoding/base64"
	"net/url"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/stacktest"
	"github.com/erpgate/erpgate/internal/testenv"
)

// TestAdminConfigHasNoSecret: Caddyfile.example run with a Postgres URL
// that carries a password (trust auth accepts any), a Redis URL, a master
// key and an introspection secret: the config the admin API serves holds
// none of them (each stays an {env.…} placeholder), and the stack works
// with them.
func TestAdminConfigHasNoSecret(t *testing.T) {
	t.Parallel()
	pg, err := url.Parse(testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	password := "S3cretPw" + random(t)
	pg.User = url.UserPassword(pg.User.Username(), password)
	redisURL, prefix := testenv.Redis(t)
	mk := make([]byte, 32)
	if _, err := rand.Read(mk); err != nil {
		t.Fatal(err)
	}
	masterKey := base64.StdEncoding.EncodeToString(mk)
	introspection := "introspect-" + random(t)
	in := stacktest.Start(t, stacktest.Options{Env: map[string]string{
		"ERP_POSTGRES_URL":         pg.String(),
		"ERP_REDIS_URL":            redisURL,
		"ERP_KEY_PREFIX":           prefix,
		"ERP_MASTER_KEY":           masterKey,
		"ERP_INTROSPECTION_SECRET": introspection,
	}})
	cfg := httpt.Get(t, in.AdminURL+"/config/", nil)
	if cfg.StatusCode != 200 || len(cfg.Body) < 100 {
		t.Fatalf("/config/: %d %s", cfg.StatusCode, cfg.Body)
	}
	body := string(cfg.Body)
	for name, secret := range map[string]string{
		"the Postgres password": password, "the Postgres URL": pg.String(), "the Redis URL": redisURL,
		"the master key": masterKey, "the introspection secret": introspection,
	} {
		if strings.Contains(body, secret) {
			t.Errorf("/config/ shows %s", name)
		}
	}
	for _, placeholder := range []string{"{env.ERP_POSTGRES_URL}", "{env.ERP_REDIS_URL}", "{env.ERP_MASTER_KEY}", "{env.ERP_INTROSPECTION_SECRET}"} {
		if !strings.Contains(body, placeholder) {
			t.Errorf("/config/ lacks %s", placeholder)
		}
	}
	// and the stack runs on them: Postgres (login; the demo is seeded
	// there), Redis (the rate-limit counters of a proxied call)
	alice := login(t, in.URL)
	resp := httpt.Get(t, in.URL+"/api/v2/invoices?limit=1", map[string]string{"Authorization": "Bearer " + alice.Access})
	expect(t, "invoices", resp, 200, "")
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	keys, err := rdb.Keys(t.Context(), prefix+"*").Result()
	if err != nil || len(keys) == 0 {
		t.Errorf("no key under the test's Redis prefix (%v): the placeholder was not resolved", err)
	}
	if strings.Contains(in.Logs(), password) {
		t.Error("the Postgres password reached the log")
	}
}
