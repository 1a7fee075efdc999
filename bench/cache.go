package main

import (
	"fmt"
	"io"
	"net/http"
)

// cachedName is the full chain with erp_cache, every request a hit: beside
// "full chain (memory)" (the same chain without the cache, same process
// and round), its ratio shows what a hit saves.
const cachedName = "full chain + erp_cache hit (memory)"

// cacheSite is the full chain of quotaSites with erp_cache (memory store,
// an hour's TTL, so every measured request is a hit) before the proxy.
func cacheSite(port int) string {
	return fmt.Sprintf(`
http://:%d {
	erp_envelope
	handle /api/* {
		erp_version
		erp_auth
		erp_quota {
			plan standard 1000000000/m
		}
		erp_cache {
			ttl 1h
			store memory
		}
		reverse_proxy {
			dynamic erp
		}
	}
	handle_errors {
		erp_envelope
	}
}
`, port)
}

// checkCacheHit fills the cache and checks that the next answer is a hit,
// so the target measures what its name says.
func checkCacheHit(port int, path string, hdr map[string]string) error {
	url := fmt.Sprintf("http://127.0.0.1:%d%s", port, path)
	var last string
	for i := 0; i < 2; i++ {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("%s: %w", cachedName, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: status %d", cachedName, resp.StatusCode)
		}
		last = resp.Header.Get("X-Cache")
	}
	if last != "HIT" {
		return fmt.Errorf("%s: second answer X-Cache %q, want HIT", cachedName, last)
	}
	return nil
}
