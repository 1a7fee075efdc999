package authsvc

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/erpgate/erpgate/caddymodules/erpapp"
)

// findHandler returns the JSON of the first erp_authsvc handler in an adapted config.
func findHandler(v any) map[string]any {
	switch x := v.(type) {
	case map[string]any:
		if x["handler"] == "erp_authsvc" {
			return x
		}
		for _, c := range x {
			if h := findHandler(c); h != nil {
				return h
			}
		}
	case []any:
		for _, c := range x {
			if h := findHandler(c); h != nil {
				return h
			}
		}
	}
	return nil
}

func TestCaddyfileGolden(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, block, want, err string
	}{
		{name: "bare", block: "erp_authsvc", want: `{"handler":"erp_authsvc"}`},
		{name: "empty block", block: "erp_authsvc {\n}", want: `{"handler":"erp_authsvc"}`},
		{name: "all settings", block: `erp_authsvc {
			issuer https://auth.example.com
			audience erp-api
			master_key {env.ERP_MASTER_KEY}
			access_ttl 10m
			refresh_ttl 72h
			refresh_idle_ttl 12h
			key_rotation 168h
			key_publish_delay 5m
			introspection_secret {env.ERP_INTROSPECTION_SECRET}
		}`, want: `{"access_ttl":600000000000,"audience":"erp-api","handler":"erp_authsvc","introspection_secret":"{env.ERP_INTROSPECTION_SECRET}",` +
			`"issuer":"https://auth.example.com","key_publish_delay":300000000000,"key_rotation":604800000000000,"master_key":"{env.ERP_MASTER_KEY}",` +
			`"refresh_idle_ttl":43200000000000,"refresh_ttl":259200000000000}`},
		{name: "empty value stays empty", block: "erp_authsvc {\nmaster_key\n}", want: `{"handler":"erp_authsvc"}`},
		{name: "unknown subdirective", block: "erp_authsvc {\nissuer x\nsecret y\n}", err: "unknown subdirective"},
		{name: "duplicate", block: "erp_authsvc {\nissuer x\nissuer y\n}", err: "duplicate"},
		{name: "extra argument", block: "erp_authsvc {\nissuer x y\n}", err: "wrong argument count"},
		{name: "directive argument", block: "erp_authsvc foo", err: "wrong argument count"},
		{name: "missing duration", block: "erp_authsvc {\naccess_ttl\n}", err: "wrong argument count"},
		{name: "bad duration", block: "erp_authsvc {\naccess_ttl soon\n}", err: "access_ttl"},
		{name: "negative duration", block: "erp_authsvc {\naccess_ttl -1m\n}", err: "positive"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			src := "{\n\terp {\n\t\tdemo on\n\t}\n}\nhttp://127.0.0.1:0 {\n\troute {\n\t\t" + c.block + "\n\t}\n}\n"
			out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(src), nil)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var cfg any
			if err := json.Unmarshal(out, &cfg); err != nil {
				t.Fatal(err)
			}
			got, _ := json.Marshal(findHandler(cfg))
			if string(got) != c.want {
				t.Fatalf("JSON:\n got %s\nwant %s", got, c.want)
			}
		})
	}
}

func TestDirectiveOrderBeforeRespond(t *testing.T) {
	t.Parallel()
	src := "http://127.0.0.1:0 {\n\trespond /x 200\n\terp_authsvc\n}\n"
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	if i, j := strings.Index(s, `"erp_authsvc"`), strings.Index(s, `"static_response"`); i < 0 || j < 0 || i > j {
		t.Fatalf("erp_authsvc not ordered before respond: %s", s)
	}
}

func TestSettingsConflict(t *testing.T) {
	t.Parallel()
	sh := &shared{}
	if err := sh.register(settings{}); err != nil {
		t.Fatal(err)
	}
	if err := sh.register(settings{Issuer: "a"}); err != nil {
		t.Fatal(err)
	}
	if err := sh.register(settings{Issuer: "a"}); err != nil {
		t.Fatalf("identical settings refused: %v", err)
	}
	if err := sh.register(settings{Issuer: "b"}); err == nil {
		t.Fatal("different settings accepted")
	}
}
