// Package standalone runs the auth service without Caddy (`gateway authsvc
// --config FILE`): it owns the standalone service's settings (a YAML file
// and ERP_* variables, read with viper) and its plain net/http server.
// Registering the command is caddymodules/authsvc's job; this package must
// not import Caddy nor anything under caddymodules/, and it is the only
// package that imports viper.
package standalone

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/viper"
)

// Config is the configuration of the standalone auth service: a YAML file,
// each setting overridden by its ERP_* environment variable.
//
//	listen: ":8081"                # ERP_LISTEN
//	postgres: "postgres://…"       # ERP_POSTGRES_URL (empty: in-memory store)
//	redis: "redis://…"             # ERP_REDIS_URL (empty: in-process counters; a cluster as erp { redis } takes it)
//	key_prefix: "erpgate:"         # ERP_KEY_PREFIX
//	master_key: ""                 # ERP_MASTER_KEY (prefer the variable to the file)
//	issuer: "erpgate"              # ERP_ISSUER
//	audience: "erpgate-api"        # ERP_AUDIENCE
//	introspection_secret: ""       # ERP_INTROSPECTION_SECRET
//	access_ttl: 15m                # ERP_ACCESS_TTL
//	refresh_ttl: 168h              # ERP_REFRESH_TTL
//	demo: false                    # ERP_DEMO
//	password_hashing:              # argon2id of new hashes and hashing bounds
//	  memory_kib: 19456            # ERP_PASSWORD_MEMORY_KIB (OWASP row; default 19456)
//	  iterations: 2                # ERP_PASSWORD_ITERATIONS (default 2)
//	  parallelism: 1               # ERP_PASSWORD_PARALLELISM (default 1)
//	  concurrency: 0               # ERP_PASSWORD_CONCURRENCY (0: the number of cores)
//	  queue: 0                     # ERP_PASSWORD_QUEUE (0: 16 per slot)
//	  queue_wait: 2s               # ERP_PASSWORD_QUEUE_WAIT (default 2s; under 5s)
//
// password_hashing is what erp_authsvc's block of the same name sets
// (caddymodules/authsvc.PasswordHashing documents each field).
type Config struct {
	Listen              string          `mapstructure:"listen"`
	Postgres            string          `mapstructure:"postgres"`
	Redis               string          `mapstructure:"redis"`
	KeyPrefix           string          `mapstructure:"key_prefix"`
	MasterKey           string          `mapstructure:"master_key"`
	Issuer              string          `mapstructure:"issuer"`
	Audience            string          `mapstructure:"audience"`
	IntrospectionSecret string          `mapstructure:"introspection_secret"`
	AccessTTL           time.Duration   `mapstructure:"access_ttl"`
	RefreshTTL          time.Duration   `mapstructure:"refresh_ttl"`
	Demo                bool            `mapstructure:"demo"`
	PasswordHashing     PasswordHashing `mapstructure:"password_hashing"`
}

// PasswordHashing are the standalone service's argon2id parameters and
// hashing bounds; zero: the auth service's defaults.
type PasswordHashing struct {
	MemoryKiB   uint32        `mapstructure:"memory_kib"`
	Iterations  uint32        `mapstructure:"iterations"`
	Parallelism uint8         `mapstructure:"parallelism"`
	Concurrency int           `mapstructure:"concurrency"`
	Queue       int           `mapstructure:"queue"`
	QueueWait   time.Duration `mapstructure:"queue_wait"`
}

// authServiceEnv maps each setting to its environment variable.
var authServiceEnv = map[string]string{
	"listen":               "ERP_LISTEN",
	"postgres":             "ERP_POSTGRES_URL",
	"redis":                "ERP_REDIS_URL",
	"key_prefix":           "ERP_KEY_PREFIX",
	"master_key":           "ERP_MASTER_KEY",
	"issuer":               "ERP_ISSUER",
	"audience":             "ERP_AUDIENCE",
	"introspection_secret": "ERP_INTROSPECTION_SECRET",
	"access_ttl":           "ERP_ACCESS_TTL",
	"refresh_ttl":          "ERP_REFRESH_TTL",
	"demo":                 "ERP_DEMO",

	"password_hashing.memory_kib":  "ERP_PASSWORD_MEMORY_KIB",
	"password_hashing.iterations":  "ERP_PASSWORD_ITERATIONS",
	"password_hashing.parallelism": "ERP_PASSWORD_PARALLELISM",
	"password_hashing.concurrency": "ERP_PASSWORD_CONCURRENCY",
	"password_hashing.queue":       "ERP_PASSWORD_QUEUE",
	"password_hashing.queue_wait":  "ERP_PASSWORD_QUEUE_WAIT",
}

// Load reads file (YAML; empty: none) and the environment.
// Errors never quote values (the file may hold secrets).
func Load(file string) (Config, error) {
	v := viper.New()
	v.SetDefault("listen", ":8081")
	v.SetDefault("key_prefix", "erpgate:")
	for key, env := range authServiceEnv {
		if err := v.BindEnv(key, env); err != nil {
			return Config{}, fmt.Errorf("config: bind %s: %w", env, err)
		}
	}
	if file != "" {
		v.SetConfigFile(file)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			var nf viper.ConfigFileNotFoundError
			if errors.As(err, &nf) {
				return Config{}, fmt.Errorf("config: %s not found", file)
			}
			return Config{}, fmt.Errorf("config: read %s: invalid YAML", file)
		}
		for _, k := range v.AllKeys() {
			if _, ok := authServiceEnv[k]; !ok {
				return Config{}, fmt.Errorf("config: %s: unknown setting %q", file, k)
			}
		}
	}
	var c Config
	if err := v.Unmarshal(&c); err != nil {
		return Config{}, fmt.Errorf("config: a setting has the wrong type: %s", redactDecodeError(err))
	}
	c.Listen = strings.TrimSpace(c.Listen)
	if c.Listen == "" {
		return Config{}, errors.New("config: listen must not be empty")
	}
	return c, nil
}

// redactDecodeError keeps the names of the offending settings, not their values.
func redactDecodeError(err error) string {
	var names []string
	for key := range authServiceEnv {
		_, leaf, _ := strings.Cut(key, ".")
		if strings.Contains(err.Error(), "'"+key+"'") || (leaf != "" && strings.Contains(err.Error(), "'"+leaf+"'")) {
			names = append(names, key)
		}
	}
	if len(names) == 0 {
		return "unknown"
	}
	return strings.Join(names, ", ")
}
