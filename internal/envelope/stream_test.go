package envelope

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func runStream(t testing.TB, in string, chunk int) (string, bool) {
	var buf bytes.Buffer
	s := NewStream(&buf)
	b := []byte(in)
	for len(b) > 0 {
		n := min(chunk, len(b))
		if _, err := s.Write(b[:n]); err != nil {
			t.Fatal(err)
		}
		b = b[n:]
	}
	ok, err := s.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return buf.String(), ok
}

func TestStream(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, in, want string
		valid          bool
	}{
		{"object", `{"a": [1, 2.5e3, -0, true, false, null], "b": "x\"\u00e9y"}`, `{"a":[1,2.5e3,-0,true,false,null],"b":"x\"\u00e9y"}`, true},
		{"empty containers", ` [ {}, [], "" ] `, `[{},[],""]`, true},
		{"scalar", `42`, `42`, true},
		{"truncated array", `{"a": [1, 2,`, `{"a":[1,2]}`, false},
		{"truncated string", `["abc`, `["abc"]`, false},
		{"truncated key", `{"ab`, `{"ab":null}`, false},
		{"truncated after colon", `{"a":`, `{"a":null}`, false},
		{"truncated before colon", `{"a"`, `{"a":null}`, false},
		{"truncated escape in key", `{"a\u00`, `{"a":null}`, false},
		{"truncated literal", `[tru`, `[]`, false},
		{"bad literal in object", `{"a": nul}`, `{"a":null}`, false},
		{"bad number", `[01]`, `[]`, false},
		{"trailing comma", `[1,]`, `[1]`, false},
		{"trailing garbage", `{} x`, `{}`, false},
		{"two documents", `1 2`, `1`, false},
		{"empty", ``, `null`, false},
		{"control char", "[\"a\nb\"]", `["a"]`, false},
		{"bad escape", `["\x"]`, `[""]`, false},
		{"mismatched close", `[1}`, `[1]`, false},
		{"html", `<html>`, `null`, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, chunk := range []int{1, 3, 1 << 20} {
				got, ok := runStream(t, tc.in, chunk)
				if got != tc.want || ok != tc.valid {
					t.Fatalf("chunk %d: got %s (valid %v), want %s (valid %v)", chunk, got, ok, tc.want, tc.valid)
				}
				if !json.Valid([]byte(got)) {
					t.Fatalf("output is not valid JSON: %s", got)
				}
			}
		})
	}
}

func TestStreamDeepNesting(t *testing.T) {
	t.Parallel()
	got, ok := runStream(t, strings.Repeat("[", 10000), 4096)
	if ok || !json.Valid([]byte(got)) {
		t.Fatalf("deep nesting: valid=%v output valid=%v", ok, json.Valid([]byte(got)))
	}
}

func FuzzStream(f *testing.F) {
	for _, s := range []string{`{"a":[1,2,{"b":"c\u0041"}]}`, `[1,`, `{"a"`, `"\`, `-1.5e+3`, `[[[]]]`} {
		f.Add(s, 3)
	}
	f.Fuzz(func(t *testing.T, in string, chunk int) {
		if chunk < 1 {
			chunk = 1
		}
		got, ok := runStream(t, in, chunk)
		if !json.Valid([]byte(got)) {
			t.Fatalf("invalid output %q for %q", got, in)
		}
		if want := json.Valid([]byte(in)); ok != want {
			t.Fatalf("valid=%v, json.Valid=%v for %q", ok, want, in)
		}
		if ok {
			var c bytes.Buffer
			_ = json.Compact(&c, []byte(in))
			if c.String() != got {
				t.Fatalf("got %q, want %q", got, c.String())
			}
		}
	})
}
