// Package batch is the Caddy-free core of erp_batch (`POST /api/v1/batch`):
// it decodes a batch, checks its items and their dependencies, and runs the
// items with bounded concurrency in dependency order. Running one item (a
// sub-request through the whole edge) is the caller's Do function: this
// package knows nothing of HTTP servers.
package batch

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
)

// Item is one sub-request of a batch as the client sent it.
type Item struct {
	ID        string            `json:"id"`
	Method    string            `json:"method"`
	Path      string            `json:"path"`
	Headers   map[string]string `json:"headers,omitempty"`
	Body      json.RawMessage   `json:"body,omitempty"`
	DependsOn []string          `json:"dependsOn,omitempty"`
}

// Request is a batch's body.
type Request struct {
	Requests []Item `json:"requests"`
}

// Result is one item's answer: its status and its body (the sub-answer's
// JSON envelope, or a JSON string when the answer was not JSON).
type Result struct {
	ID     string          `json:"id"`
	Status int             `json:"status"`
	Body   json.RawMessage `json:"body"`
}

// Problem is why a whole batch is refused before anything runs.
type Problem struct {
	Field   string // the offending input, e.g. requests[3].dependsOn
	Message string
}

func (p *Problem) Error() string { return p.Field + ": " + p.Message }

// Check validates what makes a whole batch unrunnable: no items, an item
// without an id, duplicate ids, a dependsOn naming an unknown id or the
// item itself, and dependency cycles. Per-item faults (method, path,
// headers) are the Do function's to answer in the item's own entry.
func Check(items []Item) *Problem {
	if len(items) == 0 {
		return &Problem{Field: "requests", Message: "at least one request is required"}
	}
	index := make(map[string]int, len(items))
	for i, it := range items {
		if it.ID == "" {
			return &Problem{Field: fmt.Sprintf("requests[%d].id", i), Message: "every request needs an id"}
		}
		if _, dup := index[it.ID]; dup {
			return &Problem{Field: fmt.Sprintf("requests[%d].id", i), Message: "duplicate id " + quote(it.ID)}
		}
		index[it.ID] = i
	}
	for i, it := range items {
		for _, d := range it.DependsOn {
			j, ok := index[d]
			if !ok {
				return &Problem{Field: fmt.Sprintf("requests[%d].dependsOn", i), Message: "unknown id " + quote(d)}
			}
			if j == i {
				return &Problem{Field: fmt.Sprintf("requests[%d].dependsOn", i), Message: "a request cannot depend on itself"}
			}
		}
	}
	// Cycles: depth-first search with three colours.
	const (
		white = iota
		grey
		black
	)
	colour := make([]uint8, len(items))
	var visit func(i int) int // returns the index of an item on a cycle, or -1
	visit = func(i int) int {
		colour[i] = grey
		for _, d := range items[i].DependsOn {
			j := index[d]
			switch colour[j] {
			case grey:
				return j
			case white:
				if c := visit(j); c >= 0 {
					return c
				}
			}
		}
		colour[i] = black
		return -1
	}
	for i := range items {
		if colour[i] == white {
			if c := visit(i); c >= 0 {
				return &Problem{Field: fmt.Sprintf("requests[%d].dependsOn", c), Message: "dependency cycle through " + quote(items[c].ID)}
			}
		}
	}
	return nil
}

func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return fmt.Sprintf("%q", s)
}

// Do runs one item and returns its status and body.
type Do func(ctx context.Context, it *Item) (status int, body json.RawMessage)

// Failed is the body of an item not run because a dependency failed.
type Failed func(it *Item, dep string) json.RawMessage

// Run runs the items of a checked batch (Check returned nil) with at most
// parallel running at once, and returns their results in request order. An
// item starts only after every item it depends on has finished; when one of
// them did not answer 2xx the item is not run and answers 424 Failed
// Dependency with failed's body. One item's failure does not stop others.
func Run(ctx context.Context, items []Item, parallel int, do Do, failed Failed) []Result {
	if parallel < 1 {
		parallel = 1
	}
	results := make([]Result, len(items))
	index := make(map[string]int, len(items))
	for i := range items {
		index[items[i].ID] = i
	}
	done := make([]chan struct{}, len(items))
	for i := range done {
		done[i] = make(chan struct{})
	}
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i := range items {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer close(done[i])
			it := &items[i]
			results[i].ID = it.ID
			for _, d := range it.DependsOn {
				j := index[d]
				<-done[j] // acyclic (Check): every wait ends
				if s := results[j].Status; s < 200 || s > 299 {
					results[i].Status = StatusFailedDependency
					results[i].Body = failed(it, d)
					return
				}
			}
			sem <- struct{}{}
			results[i].Status, results[i].Body = do(ctx, it)
			<-sem
		}(i)
	}
	wg.Wait()
	return results
}

// StatusFailedDependency is an item's status when an item it depends on
// did not succeed (RFC 4918).
const StatusFailedDependency = 424

// MethodAllowed reports whether a sub-request may use method.
func MethodAllowed(method string) bool {
	switch method {
	case "GET", "POST", "PUT", "PATCH", "DELETE":
		return true
	}
	return false
}

// PathProblem says why path cannot be a sub-request's target, or "" when it
// can: it must be an absolute path under /api/ without dot segments,
// backslashes, control bytes or a fragment, and must not name one of
// refused (the first segment after /api/ or after /api/{version}/, e.g.
// "batch" for no recursion, "auth" for the auth service).
func PathProblem(path string, refused []string) string {
	p, _, _ := strings.Cut(path, "?")
	if p == "" {
		return "path is required"
	}
	if !strings.HasPrefix(p, "/api/") {
		return "path must start with /api/"
	}
	if strings.ContainsAny(path, "#\\") {
		return "path must not contain # or \\"
	}
	for i := 0; i < len(path); i++ {
		if path[i] < 0x20 || path[i] == 0x7f || path[i] == ' ' {
			return "path must not contain spaces or control characters"
		}
	}
	if strings.Contains(strings.ToLower(p), "%2f") || strings.Contains(p, "%2e") || strings.Contains(p, "%2E") || strings.Contains(strings.ToLower(p), "%5c") {
		return "path must not contain encoded slashes or dots"
	}
	segs := strings.Split(p[len("/api/"):], "/")
	for _, s := range segs {
		if s == "." || s == ".." {
			return "path must not contain dot segments"
		}
	}
	for i, s := range segs {
		if s == "" && i != len(segs)-1 {
			return "path must not contain empty segments"
		}
	}
	names := segs[:1]
	if len(segs) > 1 && isVersion(segs[0]) {
		names = segs[:2] // /api/{version}/{name}: the name too
	}
	for _, n := range names {
		for _, r := range refused {
			if strings.EqualFold(n, r) {
				return "path " + r + " cannot be part of a batch"
			}
		}
	}
	return ""
}

// isVersion reports whether s is a version segment: v and digits (either
// case: Caddy's path matchers ignore case).
func isVersion(s string) bool {
	if len(s) < 2 || (s[0] != 'v' && s[0] != 'V') {
		return false
	}
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
