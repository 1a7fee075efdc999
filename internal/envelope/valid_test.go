package envelope

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
)

var validSeeds = []string{
	`{}`, `[]`, `null`, `true`, `false`, `0`, `-0`, `-1.5e+10`, `1E-2`, `"a\u00e9\n\/"`, `{"a":[1,2,{"b":null}]}`, " \t\r\n[1] ",
	`{"a":{},"b":[],"c":""}`, `[[],[[]],{}]`,
	`{`, `}`, `[1,]`, `[,1]`, `{"a" 1}`, `{"a":1,}`, `{,}`, `{1:2}`, `{"a"}`, `01`, `1.`, `.5`, `1e`, `1e+`, `-`, `--1`, `+1`,
	`"\x"`, "\"a\x01b\"", "\"\x0f\\b\"", `"\u12"`, `"\uzzzz"`, `"\ud800"`, `"abc`, `"abc\"`,
	`[1] [2]`, ``, ` `, `nul`, `truex`, `[true false]`, "\"\xff\"", `[1}`, `{"a":1]`,
	strings.Repeat(`[`, 10000) + strings.Repeat(`]`, 10000),
	strings.Repeat(`[`, 10001) + strings.Repeat(`]`, 10001),
	strings.Repeat(`{"a":`, 10000) + `1` + strings.Repeat(`}`, 10000),
	strings.Repeat(`{"a":`, 10000) + `{}` + strings.Repeat(`}`, 10000),
}

func TestValidJSONAgreesWithEncodingJSON(t *testing.T) {
	for _, s := range validSeeds {
		if got, want := ValidJSON([]byte(s)), json.Valid([]byte(s)); got != want {
			t.Errorf("ValidJSON(%.40q) = %v, encoding/json says %v", s, got, want)
		}
	}
}

func FuzzValidJSON(f *testing.F) {
	for _, s := range validSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := ValidJSON(b), json.Valid(b); got != want {
			t.Fatalf("ValidJSON(%q) = %v, encoding/json says %v", b, got, want)
		}
	})
}

func BenchmarkValidJSON(b *testing.B) {
	doc := []byte(`[` + strings.TrimSuffix(strings.Repeat(`{"id":"inv_000123","number":"INV-2026-00123","customer_id":"cus_000045","amount":"1234.50","currency":"EUR","status":"paid","issued_at":"2026-03-04T10:00:00Z","lines":[{"sku":"P-1","qty":3,"price":12.5,"note":"caf\u00e9 \"x\""}]},`, 10), ",") + `]`)
	b.Run("erpgate", func(b *testing.B) {
		b.SetBytes(int64(len(doc)))
		b.ReportAllocs()
		for b.Loop() {
			if !ValidJSON(doc) {
				b.Fatal("invalid")
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.SetBytes(int64(len(doc)))
		b.ReportAllocs()
		for b.Loop() {
			if !json.Valid(doc) {
				b.Fatal("invalid")
			}
		}
	})
}

func TestQueryValueAgreesWithURLValues(t *testing.T) {
	for _, raw := range []string{"", "page=2", "limit=10&page=3", "page=&page=4", "p%61ge=5", "page=%32", "page=1;x=2&page=7",
		"page=%zz&page=8", "a=1&&page=9", "page", "limit=1+0", "x=y&limit=25&limit=30"} {
		q, _ := url.ParseQuery(raw)
		for _, k := range []string{"page", "limit"} {
			if got, want := queryValue(raw, k), q.Get(k); got != want {
				t.Errorf("queryValue(%q, %q) = %q, url.Values says %q", raw, k, got, want)
			}
		}
	}
	for s, want := range map[string]int{"": 0, "0": 0, "12": 12, "-3": 0, "+4": 0, "1x": 0, "0007": 7} {
		if got, _ := positiveInt(s); got != want {
			t.Errorf("positiveInt(%q) = %d, want %d", s, got, want)
		}
	}
}
