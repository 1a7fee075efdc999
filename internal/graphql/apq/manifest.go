package apq

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
)

// LoadManifest reads a trusted-documents manifest: a JSON object whose
// members are hash → query (the form Relay and graphql-codegen's
// persisted-documents write). Every hash must be valid and the sha256 of its
// query, and every query at most MaxQueryBytes: the first that is not makes
// the whole load an error naming that hash, so a manifest is taken whole or
// not at all. Hashes are checked in sorted order, so the error names the
// same entry every time.
func LoadManifest(path string) (map[string]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("apq: manifest: %w", err)
	}
	var docs map[string]string
	if err := json.Unmarshal(raw, &docs); err != nil {
		return nil, fmt.Errorf("apq: manifest %s: not a JSON object of hash to query: %w", path, err)
	}
	if docs == nil { // the file said null
		return nil, fmt.Errorf("apq: manifest %s: not a JSON object of hash to query", path)
	}
	hashes := make([]string, 0, len(docs))
	for h := range docs {
		hashes = append(hashes, h)
	}
	sort.Strings(hashes)
	for _, h := range hashes {
		if err := check(h, docs[h]); err != nil {
			return nil, fmt.Errorf("apq: manifest %s: entry %q: %w", path, shortened(h), err)
		}
	}
	return docs, nil
}

// shortened keeps an error message short when a manifest's key is long.
func shortened(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
