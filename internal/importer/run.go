package importer

import (
	"container/heap"
	"context"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/erpgate/erpgate/contract"
)

// Result is one row's outcome in the import's answer.
type Result struct {
	Line   int       `json:"line"`
	Status int       `json:"status"`
	ID     string    `json:"id,omitempty"`
	Errors []Problem `json:"errors,omitempty"`
}

// OK reports whether the row was created (or, in a dry run, accepted).
func (r *Result) OK() bool { return r.Status >= 200 && r.Status < 300 }

// Summary is the import's answer (the envelope's data).
type Summary struct {
	DryRun  bool `json:"dry_run"`
	Rows    int  `json:"rows"`
	Created int  `json:"created"`
	Failed  int  `json:"failed"`
	// Results holds at most Options.MaxResults rows: the failures first
	// (lowest lines), then the successes, listed by line.
	Results []Result `json:"results"`
	// ResultsOmitted counts the rows left out of Results.
	ResultsOmitted int `json:"results_omitted"`
	// Stopped says why the import ended before the end of its input (a
	// CSV row over the limit, the quota or rate spent, the input broken
	// off); the rows after Line were not read or not tried.
	Stopped *Stop `json:"stopped,omitempty"`
}

// Stop is why an import ended early.
type Stop struct {
	Line int `json:"line"`
	Problem
}

// CreateFunc creates one row (body is the row's JSON object, owned by the
// callee) and says how it went. It is called from several goroutines.
type CreateFunc func(ctx context.Context, line int, body []byte) Result

// Options bound an import.
type Options struct {
	Parallel   int  // rows created at once (≥ 1)
	MaxResults int  // rows listed in Summary.Results (≥ 0)
	DryRun     bool // validate only: create is not called
	MaxRows    int  // rows read at most (0: no bound); the rest is refused
}

type job struct {
	line int
	body []byte
}

// Run reads every row of rd and creates each valid one through create with
// at most o.Parallel in flight. A refused or failed row does not stop the
// import; a 429 (rate or quota spent) or a 401 (the credential refused)
// does: no further row is tried, since every one would be refused alike. Memory is one row per worker plus the
// capped results.
func Run(ctx context.Context, rd Reader, create CreateFunc, o Options) Summary {
	if o.Parallel < 1 {
		o.Parallel = 1
	}
	s := Summary{DryRun: o.DryRun}
	col := &collector{max: o.MaxResults}
	var (
		mu      sync.Mutex
		limited atomic.Pointer[Stop]
		wg      sync.WaitGroup
	)
	add := func(r Result) {
		mu.Lock()
		if r.OK() {
			s.Created++
		} else {
			s.Failed++
		}
		col.add(r)
		mu.Unlock()
	}
	jobs := make(chan job)
	if !o.DryRun {
		for range o.Parallel {
			wg.Go(func() {
				for j := range jobs {
					r := create(ctx, j.line, j.body)
					r.Line = j.line
					if r.Status == http.StatusTooManyRequests || r.Status == http.StatusUnauthorized {
						st := &Stop{Line: j.line, Problem: Problem{Code: contract.CodeForStatus(r.Status), Message: http.StatusText(r.Status)}}
						if len(r.Errors) > 0 {
							st.Problem = r.Errors[0]
						}
						limited.CompareAndSwap(nil, st)
					}
					add(r)
				}
			})
		}
	}
read:
	for {
		if st := limited.Load(); st != nil {
			s.Stopped = st
			break
		}
		if err := ctx.Err(); err != nil {
			s.Stopped = &Stop{Line: 0, Problem: Problem{Code: contract.CodeBadRequest, Message: "the request was cancelled"}}
			break
		}
		row, err := rd.Next()
		if err == nil && o.MaxRows > 0 && s.Rows >= o.MaxRows {
			s.Stopped = &Stop{Line: row.Line, Problem: Problem{Code: contract.CodePayloadTooLarge,
				Message: "the import is over " + strconv.Itoa(o.MaxRows) + " rows; the rows from this line on were not read"}}
			break
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			p := Problem{Code: contract.CodeBadRequest, Message: "the input cannot be read on: " + err.Error()}
			if err == ErrRowTooLarge {
				p = Problem{Code: contract.CodePayloadTooLarge, Message: "a CSV row is over the size limit; the rows after it cannot be read"}
			}
			s.Stopped = &Stop{Line: row.Line, Problem: p}
			break
		}
		s.Rows++
		switch {
		case row.Problem != nil:
			add(Result{Line: row.Line, Status: problemStatus(row.Problem), Errors: []Problem{*row.Problem}})
		case o.DryRun:
			add(Result{Line: row.Line, Status: http.StatusOK})
		default:
			select {
			case jobs <- job{line: row.Line, body: slices.Clone(row.Body)}:
			case <-ctx.Done():
				break read
			}
		}
	}
	close(jobs)
	wg.Wait()
	if st := limited.Load(); st != nil && s.Stopped == nil {
		s.Stopped = st
	}
	s.Results, s.ResultsOmitted = col.list()
	return s
}

func problemStatus(p *Problem) int {
	switch p.Code {
	case contract.CodePayloadTooLarge:
		return http.StatusRequestEntityTooLarge
	case contract.CodeValidationFailed:
		return http.StatusUnprocessableEntity
	}
	return http.StatusBadRequest
}

// collector keeps the max most telling results whatever order the rows
// finish in: failures before successes, lower lines first. It is a max-heap
// on that order, so the least telling kept result is the one dropped.
type collector struct {
	max     int
	h       resultHeap
	omitted int
}

func (c *collector) add(r Result) {
	if c.max <= 0 {
		c.omitted++
		return
	}
	if len(c.h) < c.max {
		heap.Push(&c.h, r)
		return
	}
	c.omitted++
	if before(&r, &c.h[0]) {
		c.h[0] = r
		heap.Fix(&c.h, 0)
	}
}

func (c *collector) list() ([]Result, int) {
	out := []Result(c.h)
	slices.SortFunc(out, func(a, b Result) int { return a.Line - b.Line })
	if out == nil {
		out = []Result{}
	}
	return out, c.omitted
}

// before: a is more telling than b.
func before(a, b *Result) bool {
	if a.OK() != b.OK() {
		return !a.OK()
	}
	return a.Line < b.Line
}

type resultHeap []Result

func (h resultHeap) Len() int           { return len(h) }
func (h resultHeap) Less(i, j int) bool { return before(&h[j], &h[i]) }
func (h resultHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *resultHeap) Push(x any)        { *h = append(*h, x.(Result)) }
func (h *resultHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
