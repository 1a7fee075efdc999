// Package celltable is the edge's table of company cells: which cell
// (a named group of a backend version's upstreams) serves each company.
// Requests read it on every proxied call, so a read is one atomic load and
// one map lookup, with no lock; changes (rare: an admin moves a company)
// copy the map and swap it.
package celltable

import (
	"maps"
	"sync"
	"sync/atomic"
)

// Table maps company ids to cell names. The zero value is empty and ready.
type Table struct {
	mu sync.Mutex // serialises writers
	m  atomic.Pointer[map[string]string]
}

// Of is company's cell, "" when it has none.
func (t *Table) Of(company string) string {
	p := t.m.Load()
	if p == nil {
		return ""
	}
	return (*p)[company]
}

// Set assigns company its cell ("" clears it).
func (t *Table) Set(company, cell string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var next map[string]string
	if p := t.m.Load(); p != nil {
		next = maps.Clone(*p)
	}
	if next == nil {
		next = map[string]string{}
	}
	if cell == "" {
		delete(next, company)
	} else {
		next[company] = cell
	}
	t.m.Store(&next)
}

// Replace makes m (company → cell) the whole table; m is not kept.
// It reports whether anything changed.
func (t *Table) Replace(m map[string]string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	next := make(map[string]string, len(m))
	for k, v := range m {
		if v != "" {
			next[k] = v
		}
	}
	if p := t.m.Load(); p != nil && maps.Equal(*p, next) {
		return false
	}
	t.m.Store(&next)
	return true
}

// Len is the number of companies with a cell.
func (t *Table) Len() int {
	if p := t.m.Load(); p != nil {
		return len(*p)
	}
	return 0
}
