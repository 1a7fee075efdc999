package store

import (
	"context"
	"sync"
)

// EventOutbox is the list of audit records still to be published as events
// (issue 15). Every audit record enters it when it is appended, in the same
// transaction (Postgres: the trigger of migration 0007) or under the same
// lock (Memory), so a record that was kept is published at least once,
// whatever happens between the commit and the publish.
type EventOutbox interface {
	// RelayEvents claims up to limit records of the outbox, oldest first,
	// that no other relay holds (Postgres: FOR UPDATE SKIP LOCKED, held
	// while publish runs), and calls publish with them. The first n of
	// them (publish's answer) leave the outbox; the others stay for a later
	// call. It returns how many were claimed and how many left; publish's
	// error is returned as is, after its first n were removed.
	RelayEvents(ctx context.Context, limit int, publish func([]Event) (n int, err error)) (claimed, published int, err error)
	// EventBacklog counts the records still to publish.
	EventBacklog(ctx context.Context) (int64, error)
	// NotifyAppends calls fn after each audit record this store value
	// appends (once the change is kept), until ctx ends: a relay's wake-up.
	// fn runs on the appender's goroutine and must not block.
	NotifyAppends(ctx context.Context, fn func())
}

// appendNotifier calls its subscribers after appends.
type appendNotifier struct {
	mu   sync.Mutex
	subs map[int]func()
	next int
}

func (n *appendNotifier) subscribe(ctx context.Context, fn func()) {
	n.mu.Lock()
	if n.subs == nil {
		n.subs = map[int]func(){}
	}
	id := n.next
	n.next++
	n.subs[id] = fn
	n.mu.Unlock()
	context.AfterFunc(ctx, func() {
		n.mu.Lock()
		delete(n.subs, id)
		n.mu.Unlock()
	})
}

func (n *appendNotifier) notify() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, fn := range n.subs {
		fn()
	}
}
