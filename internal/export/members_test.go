package export

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// membersByDecoder is eachMember done with encoding/json, as the CSV path
// did before: the reference.
func membersByDecoder(rec []byte) ([][2]string, error) {
	dec := json.NewDecoder(bytes.NewReader(rec))
	dec.UseNumber()
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	var out [][2]string
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := t.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, err
		}
		out = append(out, [2]string{key, field(raw)})
	}
	return out, nil
}

var memberCases = []string{
	`{}`,
	` { } `,
	`{"id":"a","n":1}`,
	"{\n \"id\" : \"a\" ,\r\n\t\"n\":-1.5e3 , \"t\":true,\"f\":false,\"z\":null}",
	`{"q":"say \"hi\", \\ back\\slash","u":"\u00e9\u4e2d\ud83d\ude00","nl":"a\nb"}`,
	`{"k\"ey":1,"k\\":2,"\u006b":3}`,
	`{"o":{"a":[1,{"b":"}]"}],"c":"{"},"arr":[ "x" , [ ] , {} ],"e":""}`,
	`{"dup":1,"dup":2}`,
	`{"s":"\/slash","tab":"a\tb","empty":{},"ea":[]}`,
}

func TestEachMemberMatchesDecoder(t *testing.T) {
	for _, c := range memberCases {
		want, err := membersByDecoder([]byte(c))
		if err != nil {
			t.Fatalf("%s: reference: %v", c, err)
		}
		var got [][2]string
		if err := eachMember([]byte(c), func(k string, raw []byte) { got = append(got, [2]string{k, field(raw)}) }); err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s:\n got %q\nwant %q", c, got, want)
		}
	}
}

func FuzzEachMember(f *testing.F) {
	for _, c := range memberCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, rec []byte) {
		var obj map[string]json.RawMessage
		if json.Unmarshal(rec, &obj) != nil || !bytes.HasPrefix(bytes.TrimSpace(rec), []byte("{")) {
			return // eachMember gets valid objects only
		}
		want, err := membersByDecoder(rec)
		if err != nil {
			return
		}
		var got [][2]string
		if err := eachMember(rec, func(k string, raw []byte) { got = append(got, [2]string{k, field(raw)}) }); err != nil {
			t.Fatalf("%q: %v", rec, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\n got %q\nwant %q", rec, got, want)
		}
	})
}

func BenchmarkCSVJournalPage(b *testing.B) {
	var page bytes.Buffer
	page.WriteByte('[')
	for i := 0; i < 200; i++ {
		if i > 0 {
			page.WriteByte(',')
		}
		page.WriteString(`{"id":"jnl_0000001","batch":"B01","account":"4000","description":"Refund to O'Brien & Sons","amount":-12.34,"currency":"EUR","posted_on":"2026-01-01"}`)
	}
	page.WriteByte(']')
	w := New("csv", &bytes.Buffer{})
	b.ReportAllocs()
	b.SetBytes(int64(page.Len()))
	for b.Loop() {
		if _, err := w.WritePage(page.Bytes()); err != nil {
			b.Fatal(err)
		}
	}
}
