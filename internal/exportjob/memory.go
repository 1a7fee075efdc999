package exportjob

import (
	"context"
	"sync"
	"time"
)

// Memory is the Store of one process.
type Memory struct {
	Now func() time.Time // nil: time.Now

	mu   sync.Mutex
	jobs map[string]*memJob
}

type memJob struct {
	job     Job
	lease   time.Time // an active job's slot is held until then
	expires time.Time // the record goes then
}

// NewMemory is an empty Memory store.
func NewMemory() *Memory { return &Memory{jobs: map[string]*memJob{}} }

func (m *Memory) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

// sweep drops expired records; m.mu held.
func (m *Memory) sweep(now time.Time) {
	for id, e := range m.jobs {
		if !now.Before(e.expires) {
			delete(m.jobs, id)
		}
	}
}

// Create implements Store.
func (m *Memory) Create(_ context.Context, j *Job, maxActive int, lease, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	m.sweep(now)
	active := 0
	for _, e := range m.jobs {
		if e.job.Company == j.Company && e.job.Status.Active() && now.Before(e.lease) {
			active++
		}
	}
	if active >= maxActive {
		return ErrTooMany
	}
	m.jobs[j.ID] = &memJob{job: *j, lease: now.Add(lease), expires: now.Add(ttl)}
	return nil
}

// Get implements Store.
func (m *Memory) Get(_ context.Context, company, id string) (*Job, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.jobs[id]
	if !ok || e.job.Company != company || !m.now().Before(e.expires) {
		return nil, ErrNotFound
	}
	j := e.job
	return &j, nil
}

// Update implements Store.
func (m *Memory) Update(_ context.Context, j *Job, lease, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.jobs[j.ID]
	now := m.now()
	if !ok || e.job.Company != j.Company || !now.Before(e.expires) {
		return ErrNotFound
	}
	e.job, e.lease, e.expires = *j, now.Add(lease), now.Add(ttl)
	return nil
}

// Delete implements Store.
func (m *Memory) Delete(_ context.Context, company, id string) (*Job, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.jobs[id]
	if !ok || e.job.Company != company || !m.now().Before(e.expires) {
		return nil, ErrNotFound
	}
	delete(m.jobs, id)
	j := e.job
	return &j, nil
}
