package erpapp

import (
	"testing"

	"github.com/erpgate/erpgate/caddymodules/internal/adapttest"
)

func TestCaddyfileAdapt(t *testing.T) {
	site := "\n:8080 {\n\trespond \"x\"\n}\n"
	server := `"http":{"servers":{"srv0":{"listen":[":8080"],"routes":[{"handle":[{"body":"x","handler":"static_response"}]}]}}}`
	adapttest.Run(t, []adapttest.Case{
		{
			Name:      "all settings",
			Caddyfile: "{\n\terp {\n\t\tpostgres {env.ERP_POSTGRES_URL}\n\t\tredis {env.ERP_REDIS_URL}\n\t\tkey_prefix acme:\n\t\tdemo on\n\t\ttimeout 3s\n\t}\n}" + site,
			JSON:      `{"apps":{"erp":{"postgres":"{env.ERP_POSTGRES_URL}","redis":"{env.ERP_REDIS_URL}","key_prefix":"acme:","demo":true,"timeout":3000000000},` + server + `}}`,
		},
		{
			Name:      "empty values mean embedded",
			Caddyfile: "{\n\terp {\n\t\tpostgres\n\t\tredis\n\t\tdemo off\n\t}\n}" + site,
			JSON:      `{"apps":{"erp":{},` + server + `}}`,
		},
		{Name: "unknown subdirective", Caddyfile: "{\n\terp {\n\t\tmysql x\n\t}\n}" + site, Err: "unknown subdirective"},
		{Name: "duplicate", Caddyfile: "{\n\terp {\n\t\tredis a:1\n\t\tredis b:1\n\t}\n}" + site, Err: "duplicate"},
		{Name: "extra argument", Caddyfile: "{\n\terp {\n\t\tpostgres a b\n\t}\n}" + site, Err: "wrong argument count"},
		{Name: "bad demo", Caddyfile: "{\n\terp {\n\t\tdemo maybe\n\t}\n}" + site, Err: "on or off"},
		{Name: "argument on erp", Caddyfile: "{\n\terp now\n}" + site, Err: "wrong argument count"},
	})
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
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
