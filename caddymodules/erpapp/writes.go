package erpapp

import (
	"context"
	"sync"
)

// BackendWrites connects the modules that call backends on their own
// (erp_graphql's mutations) with the modules that keep what backends
// answered (erp_cache): a successful write to a backend for a company is
// announced here, so no copy of the old answer outlives it, whichever way
// the write went. One per config (Writes).
type BackendWrites struct {
	mu  sync.RWMutex
	fns []func(ctx context.Context, company, backend string)
}

// Writes is the config's BackendWrites.
func Writes(a *App) (*BackendWrites, error) {
	return OfConfig(a, func() (*BackendWrites, error) { return new(BackendWrites), nil })
}

// Listen registers fn, called for every write announced with Written until
// the config unloads.
func (bw *BackendWrites) Listen(fn func(ctx context.Context, company, backend string)) {
	bw.mu.Lock()
	bw.fns = append(bw.fns, fn)
	bw.mu.Unlock()
}

// Written announces a successful write to backend for company. The
// listeners run before it returns; ctx bounds them.
func (bw *BackendWrites) Written(ctx context.Context, company, backend string) {
	bw.mu.RLock()
	fns := bw.fns
	bw.mu.RUnlock()
	for _, fn := range fns {
		fn(ctx, company, backend)
	}
}

// Close implements io.Closer: the listeners are dropped with the config.
func (bw *BackendWrites) Close() error {
	bw.mu.Lock()
	bw.fns = nil
	bw.mu.Unlock()
	return nil
}
