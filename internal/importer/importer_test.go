package importer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

type got struct {
	line int
	body string
	code string
}

func readAll(t *testing.T, f Format, in string, max int) ([]got, error) {
	t.Helper()
	rd, err := NewReader(f, strings.NewReader(in), max)
	if err != nil {
		return nil, err
	}
	var out []got
	for {
		r, err := rd.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		g := got{line: r.Line, body: string(r.Body)}
		if r.Problem != nil {
			g.code = r.Problem.Code
		}
		out = append(out, g)
	}
}

func TestNDJSON(t *testing.T) {
	in := "{\"a\":1}\n\n  \r\n[1]\n{\"b\":\"" + strings.Repeat("x", 100) + "\"}\n{bad\r\n{\"c\":true}"
	rows, err := readAll(t, NDJSON, in, 64)
	if err != nil {
		t.Fatal(err)
	}
	want := []got{
		{1, `{"a":1}`, ""},
		{4, "", "BAD_REQUEST"},
		{5, "", "PAYLOAD_TOO_LARGE"},
		{6, "", "BAD_REQUEST"},
		{7, `{"c":true}`, ""},
	}
	if fmt.Sprint(rows) != fmt.Sprint(want) {
		t.Fatalf("rows %v\nwant %v", rows, want)
	}
}

func TestNDJSONLongLineOverBuffer(t *testing.T) {
	// a line longer than bufio's buffer is skipped without being kept
	in := "{\"a\":\"" + strings.Repeat("y", 200<<10) + "\"}\n{\"ok\":1}\n"
	rows, err := readAll(t, NDJSON, in, 1024)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].code != "PAYLOAD_TOO_LARGE" || rows[1].line != 2 || rows[1].body != `{"ok":1}` {
		t.Fatalf("rows %v", rows)
	}
}

func TestCSV(t *testing.T) {
	in := "\ufeffname,email,price:number,active:bool,meta:json\n" +
		"Ann,ann@x.test,9.5,true,\"{\"\"k\"\":1}\"\n" +
		"\"Bo, \"\"B\"\"\",,,,\n" +
		"short,row\n" +
		"Cy,cy@x.test,nine,false,\n" +
		"\"multi\nline\",m@x.test,1,0,null\n" +
		"Di,d@x.test,\"2\",\"x\",\n" +
		"bad\"quote,e,1,1,1\n" +
		"Ed,ed@x.test,3,1,[1]\n"
	rows, err := readAll(t, CSV, in, 1024)
	if err != nil {
		t.Fatal(err)
	}
	want := []got{
		{2, `{"name":"Ann","email":"ann@x.test","price":9.5,"active":true,"meta":{"k":1}}`, ""},
		{3, `{"name":"Bo, \"B\""}`, ""},
		{4, "", "BAD_REQUEST"},
		{5, "", "VALIDATION_FAILED"},
		{6, `{"name":"multi\nline","email":"m@x.test","price":1,"active":false,"meta":null}`, ""},
		{8, "", "VALIDATION_FAILED"},
		{9, "", "BAD_REQUEST"},
		{10, `{"name":"Ed","email":"ed@x.test","price":3,"active":true,"meta":[1]}`, ""},
	}
	if fmt.Sprint(rows) != fmt.Sprint(want) {
		t.Fatalf("rows %v\nwant %v", rows, want)
	}
}

func TestCSVHeader(t *testing.T) {
	for _, in := range []string{"", "a,a\n1,2\n", "a,b:date\n", "a,\n"} {
		if _, err := NewReader(CSV, strings.NewReader(in), 100); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}

func TestCSVRowTooLarge(t *testing.T) {
	in := "a,b\n1,2\n\"" + strings.Repeat("z", 1<<20) + "\",3\n4,5\n"
	rows, err := readAll(t, CSV, in, 256)
	if !errors.Is(err, ErrRowTooLarge) {
		t.Fatalf("err %v rows %v", err, rows)
	}
	if len(rows) != 1 || rows[0].body != `{"a":"1","b":"2"}` {
		t.Fatalf("rows %v", rows)
	}
	// a row just over the limit that fits the read-ahead is that row's error only
	in = "a\n\"" + strings.Repeat("z", 300) + "\"\nok\n"
	rows, err = readAll(t, CSV, in, 256)
	if err != nil || len(rows) != 2 || rows[0].code != "PAYLOAD_TOO_LARGE" || rows[1].body != `{"a":"ok"}` {
		t.Fatalf("err %v rows %v", err, rows)
	}
}

func TestFormatFor(t *testing.T) {
	for ct, want := range map[string]Format{"application/x-ndjson": NDJSON, "text/csv; charset=utf-8": CSV, "application/json": 0, "": 0} {
		if f, _ := FormatFor(ct); f != want {
			t.Errorf("%q: %v", ct, f)
		}
	}
}

func ndjsonRows(n int, bad map[int]bool) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		if bad[i] {
			b.WriteString("nope\n")
		} else {
			fmt.Fprintf(&b, "{\"n\":%d}\n", i)
		}
	}
	return b.String()
}

func TestRun(t *testing.T) {
	rd, _ := NewReader(NDJSON, strings.NewReader(ndjsonRows(50, map[int]bool{7: true, 40: true})), 100)
	var inFlight, peak atomic.Int32
	create := func(_ context.Context, line int, body []byte) Result {
		n := inFlight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		defer inFlight.Add(-1)
		if line%10 == 3 {
			return Result{Status: http.StatusUnprocessableEntity, Errors: []Problem{{Code: "VALIDATION_FAILED", Message: "no"}}}
		}
		return Result{Status: http.StatusCreated, ID: string(body)}
	}
	s := Run(context.Background(), rd, create, Options{Parallel: 4, MaxResults: 8})
	if s.Rows != 50 || s.Created != 43 || s.Failed != 7 || s.ResultsOmitted != 42 || s.Stopped != nil {
		t.Fatalf("summary %+v", s)
	}
	var lines []int
	for _, r := range s.Results {
		lines = append(lines, r.Line)
	}
	// the 7 failures (3,7,13,23,33,40,43) and the first success (1), by line
	if fmt.Sprint(lines) != "[1 3 7 13 23 33 40 43]" {
		t.Fatalf("lines %v", lines)
	}
	if s.Results[0].ID != `{"n":1}` || s.Results[2].Errors[0].Code != "BAD_REQUEST" {
		t.Fatalf("results %+v", s.Results)
	}
	if peak.Load() > 4 {
		t.Fatalf("peak %d", peak.Load())
	}
}

func TestRunDryRun(t *testing.T) {
	rd, _ := NewReader(NDJSON, strings.NewReader(ndjsonRows(5, map[int]bool{2: true})), 100)
	s := Run(context.Background(), rd, func(context.Context, int, []byte) Result {
		t.Fatal("create called in a dry run")
		return Result{}
	}, Options{Parallel: 2, MaxResults: 10, DryRun: true})
	if !s.DryRun || s.Rows != 5 || s.Created != 4 || s.Failed != 1 || len(s.Results) != 5 || s.Results[1].Status != 400 {
		t.Fatalf("summary %+v", s)
	}
}

func TestRunStopsOn429(t *testing.T) {
	rd, _ := NewReader(NDJSON, strings.NewReader(ndjsonRows(1000, nil)), 100)
	var calls atomic.Int32
	s := Run(context.Background(), rd, func(_ context.Context, line int, _ []byte) Result {
		calls.Add(1)
		if line >= 5 {
			return Result{Status: http.StatusTooManyRequests, Errors: []Problem{{Code: "QUOTA_EXCEEDED", Message: "spent"}}}
		}
		return Result{Status: http.StatusCreated}
	}, Options{Parallel: 1, MaxResults: 0})
	if s.Stopped == nil || s.Stopped.Code != "QUOTA_EXCEEDED" || s.Stopped.Line != 5 || calls.Load() > 7 || s.Created != 4 {
		t.Fatalf("summary %+v calls %d", s, calls.Load())
	}
}

func BenchmarkNDJSONRead(b *testing.B) {
	in := ndjsonRows(1000, nil)
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		rd, _ := NewReader(NDJSON, strings.NewReader(in), 1024)
		for {
			if _, err := rd.Next(); err != nil {
				break
			}
		}
	}
}

func BenchmarkCSVRead(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("name,email,price:number\n")
	for i := range 1000 {
		fmt.Fprintf(&sb, "n%d,e%d@x.test,%d.5\n", i, i, i)
	}
	in := sb.String()
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		rd, _ := NewReader(CSV, strings.NewReader(in), 1024)
		for {
			if _, err := rd.Next(); err != nil {
				break
			}
		}
	}
}

func TestRunMaxRows(t *testing.T) {
	rd, _ := NewReader(NDJSON, strings.NewReader(ndjsonRows(10, nil)), 100)
	s := Run(context.Background(), rd, func(context.Context, int, []byte) Result { return Result{Status: 201} },
		Options{Parallel: 3, MaxResults: 100, MaxRows: 4})
	if s.Rows != 4 || s.Created != 4 || s.Stopped == nil || s.Stopped.Line != 5 || s.Stopped.Code != "PAYLOAD_TOO_LARGE" {
		t.Fatalf("summary %+v", s)
	}
}

func TestRunStopsOn401(t *testing.T) {
	rd, _ := NewReader(NDJSON, strings.NewReader(ndjsonRows(100, nil)), 100)
	var calls atomic.Int32
	s := Run(context.Background(), rd, func(context.Context, int, []byte) Result {
		calls.Add(1)
		return Result{Status: http.StatusUnauthorized}
	}, Options{Parallel: 2, MaxResults: 5})
	if s.Stopped == nil || s.Stopped.Code != "UNAUTHENTICATED" || calls.Load() > 4 || s.Created != 0 {
		t.Fatalf("summary %+v calls %d", s, calls.Load())
	}
}
