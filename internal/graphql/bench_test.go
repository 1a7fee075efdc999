package graphql

import (
	"context"
	"testing"
)

func BenchmarkPrepare(b *testing.B) {
	s := demoSchema(b)
	req := &Request{Query: typicalQuery, Variables: map[string]any{"status": []any{"open", "paid"}}}
	lim := Limits{MaxDepth: 10, MaxCost: 1000, MaxAliases: 10, MaxSize: 8192}
	b.ReportAllocs()
	for b.Loop() {
		if _, errs := s.Prepare(req, lim); errs != nil {
			b.Fatal(errs[0].Message)
		}
	}
}

func BenchmarkExecute(b *testing.B) {
	s := demoSchema(b)
	f := fixtures(50)
	p, errs := s.Prepare(&Request{Query: typicalQuery, Variables: map[string]any{"status": []any{"open"}}}, Limits{})
	if errs != nil {
		b.Fatal(errs[0].Message)
	}
	ctx := context.Background()
	replay := &replayFetcher{f: f, answers: map[string]Result{}}
	b.ReportAllocs()
	for b.Loop() {
		r := s.Execute(ctx, p, replay, nil)
		if len(r.Errors) > 0 || r.Calls != 2 {
			b.Fatalf("errors %v calls %d", r.Errors, r.Calls)
		}
	}
}

// replayFetcher answers each distinct call once from the fake and then
// from memory, so BenchmarkExecute measures the executor, not the fake.
type replayFetcher struct {
	f       *fakeFetcher
	answers map[string]Result
}

func (r *replayFetcher) Fetch(ctx context.Context, calls []Call) []Result {
	out := make([]Result, len(calls))
	for i, c := range calls {
		key := c.Backend + "/" + c.ID + "?" + c.Query.Encode()
		a, ok := r.answers[key]
		if !ok {
			a = r.f.Fetch(ctx, []Call{c})[0]
			r.answers[key] = a
		}
		out[i] = a
	}
	return out
}

// BenchmarkAppendResponse is writing the answer of BenchmarkExecute's
// query.
func BenchmarkAppendResponse(b *testing.B) {
	s := demoSchema(b)
	p, errs := s.Prepare(&Request{Query: typicalQuery, Variables: map[string]any{"status": []any{"open"}}}, Limits{})
	if errs != nil {
		b.Fatal(errs[0].Message)
	}
	r := s.Execute(context.Background(), p, fixtures(50), nil)
	if len(r.Errors) > 0 || len(r.Data) < 4000 {
		b.Fatalf("errors %v, data %s", r.Errors, r.Data)
	}
	b.SetBytes(int64(len(r.Data)))
	meta := []byte(`{"request_id":"01J","cost":51}`)
	buf := make([]byte, 0, 16384)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendResponse(buf[:0], r.Data, r.Errors, meta)
	}
}
