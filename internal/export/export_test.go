package export

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestNDJSON(t *testing.T) {
	var b bytes.Buffer
	w := New("ndjson", &b)
	n1, err := w.WritePage([]byte(`[{"id":"a","n":1},
	 {"id":"b","x":{"y":
	 [1, 2]}}]`))
	if err != nil || n1 != 2 {
		t.Fatal(n1, err)
	}
	if n, err := w.WritePage([]byte(`[]`)); err != nil || n != 0 {
		t.Fatal(n, err)
	}
	if n, err := w.WritePage([]byte(`[{"id":"c"}]`)); err != nil || n != 1 {
		t.Fatal(n, err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	want := "{\"id\":\"a\",\"n\":1}\n{\"id\":\"b\",\"x\":{\"y\":[1,2]}}\n{\"id\":\"c\"}\n"
	if b.String() != want {
		t.Fatalf("got %q", b.String())
	}
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if !json.Valid([]byte(line)) {
			t.Fatalf("invalid line %q", line)
		}
	}
}

func TestCSV(t *testing.T) {
	var b bytes.Buffer
	w := New("csv", &b)
	if _, err := w.WritePage([]byte(`[{"id":"a","note":"x, \"y\"\nz","qty":2.5,"ok":true,"gone":null}]`)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.WritePage([]byte(`[{"qty":3,"id":"b","extra":1,"tags":["t"]}]`)); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(b.String(), "id,note,qty,ok,gone\r\n") {
		t.Fatalf("header/line ends: %q", b.String())
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"id", "note", "qty", "ok", "gone"}, {"a", "x, \"y\"\nz", "2.5", "true", ""}, {"b", "", "3", "", ""}}
	if !reflect.DeepEqual(rows, want) {
		t.Fatalf("rows %q", rows)
	}
}

func TestNotArray(t *testing.T) {
	for _, f := range []string{"ndjson", "csv"} {
		if _, err := New(f, &bytes.Buffer{}).WritePage([]byte(`{"id":1}`)); err != ErrNotArray {
			t.Errorf("%s object: %v", f, err)
		}
		if _, err := New(f, &bytes.Buffer{}).WritePage([]byte(`[1]`)); err != ErrNotArray {
			t.Errorf("%s scalar: %v", f, err)
		}
	}
	if New("xml", &bytes.Buffer{}) != nil {
		t.Error("unknown format accepted")
	}
}

// A page of 200 records of the demo's size, as erp_bulk writes it.
func benchPage() []byte {
	var b bytes.Buffer
	b.WriteByte('[')
	for i := range 200 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"id":"inv_000123","customer":"Acme, Inc.","amount":1234.5,"paid":false,"lines":[1,2]}`)
	}
	b.WriteByte(']')
	return b.Bytes()
}

func BenchmarkNDJSONPage(b *testing.B) {
	page := benchPage()
	w := New("ndjson", discard{})
	b.ReportAllocs()
	b.SetBytes(int64(len(page)))
	for b.Loop() {
		if _, err := w.WritePage(page); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCSVPage(b *testing.B) {
	page := benchPage()
	w := New("csv", discard{})
	b.ReportAllocs()
	b.SetBytes(int64(len(page)))
	for b.Loop() {
		if _, err := w.WritePage(page); err != nil {
			b.Fatal(err)
		}
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
