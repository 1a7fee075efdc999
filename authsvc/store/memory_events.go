package store

import (
	"context"
	"slices"
	"sort"
)

// memoryEventBacklog bounds the Memory store's events outbox: a process
// whose events cannot be published (no event engine) drops the oldest
// tenth when it is full (EventsDropped counts them) rather than grow
// without end.
const memoryEventBacklog = 100_000

// enqueueEventLocked puts an appended record in the events outbox and wakes
// the relays (m.mu held; the notified functions do not block).
func (m *Memory) enqueueEventLocked(seq int64) {
	if len(m.events) >= memoryEventBacklog { // the oldest tenth goes at once: the copy is paid once per tenth
		drop := len(m.events) - memoryEventBacklog + memoryEventBacklog/10
		m.events = slices.Delete(m.events, 0, drop)
		m.eventsLost += int64(drop)
	}
	m.events = append(m.events, seq)
	m.appends.notify()
}

// EventsDropped counts the records dropped from a full events outbox.
func (m *Memory) EventsDropped() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.eventsLost
}

// auditLocked is the record seq (m.mu held).
func (m *Memory) auditLocked(seq int64) (Event, bool) {
	if i := int(seq - 1); i >= 0 && i < len(m.audit) && m.audit[i].Seq == seq {
		return m.audit[i], true
	}
	i := sort.Search(len(m.audit), func(i int) bool { return m.audit[i].Seq >= seq })
	if i < len(m.audit) && m.audit[i].Seq == seq {
		return m.audit[i], true
	}
	return Event{}, false
}

func (m *Memory) RelayEvents(_ context.Context, limit int, publish func([]Event) (int, error)) (claimed, published int, err error) {
	m.mu.Lock()
	if m.eventsHeld == nil {
		m.eventsHeld = map[int64]bool{}
	}
	var evs []Event
	for _, seq := range m.events {
		if len(evs) >= limit {
			break
		}
		if m.eventsHeld[seq] {
			continue
		}
		if e, ok := m.auditLocked(seq); ok {
			m.eventsHeld[seq] = true
			evs = append(evs, cloneEvent(e))
		}
	}
	m.mu.Unlock()
	if len(evs) == 0 {
		return 0, 0, nil
	}
	n, err := publish(evs)
	n = max(0, min(n, len(evs)))
	m.mu.Lock()
	defer m.mu.Unlock()
	done := make(map[int64]bool, n)
	for i, e := range evs {
		delete(m.eventsHeld, e.Seq)
		if i < n {
			done[e.Seq] = true
		}
	}
	m.events = slices.DeleteFunc(m.events, func(seq int64) bool { return done[seq] })
	return len(evs), n, err
}

func (m *Memory) EventBacklog(context.Context) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return int64(len(m.events)), nil
}

func (m *Memory) NotifyAppends(ctx context.Context, fn func()) { m.appends.subscribe(ctx, fn) }
