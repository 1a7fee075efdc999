package standalone

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "authsvc.yaml")
	if err := os.WriteFile(file, []byte("listen: \":9000\"\nissuer: from-file\naudience: file-aud\naccess_ttl: 10m\ndemo: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("ERP_ISSUER", "from-env")
	t.Setenv("ERP_POSTGRES_URL", "postgres://u:secret@db/x")
	c, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Listen: ":9000", Issuer: "from-env", Audience: "file-aud", AccessTTL: 10 * time.Minute, Demo: true,
		Postgres: "postgres://u:secret@db/x", KeyPrefix: "erpgate:"}
	if c != want {
		t.Fatalf("got %+v\nwant %+v", c, want)
	}

	t.Run("defaults without a file", func(t *testing.T) {
		c, err := Load("")
		if err != nil {
			t.Fatal(err)
		}
		if c.Listen != ":8081" || c.KeyPrefix != "erpgate:" || c.Issuer != "from-env" {
			t.Fatalf("%+v", c)
		}
	})
	t.Run("env overrides booleans and durations", func(t *testing.T) {
		t.Setenv("ERP_DEMO", "false")
		t.Setenv("ERP_ACCESS_TTL", "5m")
		c, err := Load(file)
		if err != nil {
			t.Fatal(err)
		}
		if c.Demo || c.AccessTTL != 5*time.Minute {
			t.Fatalf("%+v", c)
		}
	})
	for name, body := range map[string]string{
		"unknown setting": "listen: \":1\"\nlisten_adress: x\n",
		"bad yaml":        "listen: [\n",
		"wrong type":      "access_ttl: master-key-like-secret\n",
	} {
		t.Run(name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "c.yaml")
			if err := os.WriteFile(f, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Load(f)
			if err == nil {
				t.Fatal("accepted")
			}
			if strings.Contains(err.Error(), "master-key-like-secret") {
				t.Fatalf("error quotes a value: %v", err)
			}
		})
	}
	t.Run("password hashing", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "c.yaml")
		body := "password_hashing:\n  memory_kib: 12288\n  iterations: 3\n  queue: 8\n  queue_wait: 1500ms\n"
		if err := os.WriteFile(f, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv("ERP_PASSWORD_CONCURRENCY", "3")
		t.Setenv("ERP_PASSWORD_QUEUE", "16")
		c, err := Load(f)
		if err != nil {
			t.Fatal(err)
		}
		want := PasswordHashing{MemoryKiB: 12288, Iterations: 3, Concurrency: 3, Queue: 16, QueueWait: 1500 * time.Millisecond}
		if c.PasswordHashing != want {
			t.Fatalf("got %+v\nwant %+v", c.PasswordHashing, want)
		}
		if err := os.WriteFile(f, []byte("password_hashing:\n  memory: 1\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(f); err == nil || !strings.Contains(err.Error(), "unknown setting") {
			t.Fatalf("unknown nested setting: %v", err)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		if _, err := Load(filepath.Join(dir, "nope.yaml")); err == nil {
			t.Fatal("accepted")
		}
	})
}
