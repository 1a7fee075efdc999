package graphql

import "testing"

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
