package apq

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "manifest.json")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadManifest(t *testing.T) {
	t.Parallel()
	q1 := `query Invoices { invoices(first: 20) { nodes { number } } }`
	q2 := `query Customer($id: ID!) { customer(id: $id) { email } }`
	good, _ := json.Marshal(map[string]string{Hash(q1): q1, Hash(q2): q2})
	docs, err := LoadManifest(writeFile(t, string(good)))
	if err != nil {
		t.Fatalf("good manifest: %v", err)
	}
	if len(docs) != 2 || docs[Hash(q1)] != q1 || docs[Hash(q2)] != q2 {
		t.Fatalf("docs = %v", docs)
	}
	empty, err := LoadManifest(writeFile(t, `{}`))
	if err != nil || len(empty) != 0 {
		t.Fatalf("empty manifest = %v, %v", empty, err)
	}

	wrong := Hash(q2) // q1's text under q2's hash
	big := strings.Repeat("#", MaxQueryBytes+1)
	for _, c := range []struct {
		name, content string
		is            error  // errors.Is, or nil
		names         string // in the message
	}{
		{"hash of another query", `{"` + Hash(q1) + `":` + quote(q1) + `,"` + wrong + `":` + quote(q1) + `}`, ErrHashMismatch, wrong},
		{"upper-case hash", `{"` + strings.ToUpper(Hash(q1)) + `":` + quote(q1) + `}`, ErrInvalidHash, strings.ToUpper(Hash(q1))},
		{"not a hash", `{"Invoices":` + quote(q1) + `}`, ErrInvalidHash, "Invoices"},
		{"too large", `{"` + Hash(big) + `":` + quote(big) + `}`, ErrTooLarge, Hash(big)},
		{"bad JSON", `{"` + Hash(q1) + `":`, nil, "not a JSON object"},
		{"an array", `[` + quote(q1) + `]`, nil, "not a JSON object"},
		{"a non-string query", `{"` + Hash(q1) + `": 1}`, nil, "not a JSON object"},
		{"null", `null`, nil, "not a JSON object"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			docs, err := LoadManifest(writeFile(t, c.content))
			if err == nil || docs != nil {
				t.Fatalf("LoadManifest = %d docs, %v; want an error", len(docs), err)
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Errorf("err = %v; want %v", err, c.is)
			}
			if !strings.Contains(err.Error(), c.names) {
				t.Errorf("err = %v; want it to name %q", err, c.names)
			}
		})
	}
	if _, err := LoadManifest(filepath.Join(t.TempDir(), "missing.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
