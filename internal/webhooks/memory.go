package webhooks

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"
)

// MemoryMaxDeliveries bounds the attempts Memory keeps per endpoint (the
// newest).
const MemoryMaxDeliveries = 1000

// Memory is the Store of the embedded default: in process, lost at exit
// (the erp app keeps it across reloads).
type Memory struct {
	mu        sync.Mutex
	endpoints map[string]*Record        // by id
	order     []string                  // ids, oldest first
	delivs    map[string]*memDeliveries // by endpoint id
}

// memDeliveries are one endpoint's attempts, ascending id, and the number
// of the last attempt of each event among them.
type memDeliveries struct {
	list     []DeliveryRecord
	attempts map[string]int
}

// trim drops the oldest attempts beyond MemoryMaxDeliveries, once a
// quarter more piled up (amortised).
func (d *memDeliveries) trim() {
	if len(d.list) <= MemoryMaxDeliveries+MemoryMaxDeliveries/4 {
		return
	}
	d.list = slices.Delete(d.list, 0, len(d.list)-MemoryMaxDeliveries)
	d.recount()
}

func (d *memDeliveries) recount() {
	clear(d.attempts)
	for i := range d.list {
		d.attempts[d.list[i].EventID] = max(d.attempts[d.list[i].EventID], d.list[i].Attempt)
	}
}

// NewMemory is an empty Memory store.
func NewMemory() *Memory {
	return &Memory{endpoints: map[string]*Record{}, delivs: map[string]*memDeliveries{}}
}

var _ Store = (*Memory)(nil)

func cloneRecord(r *Record) Record {
	c := *r
	c.Events = slices.Clone(r.Events)
	c.Secret = slices.Clone(r.Secret)
	c.OldSecret = slices.Clone(r.OldSecret)
	if r.FailingSince != nil {
		t := *r.FailingSince
		c.FailingSince = &t
	}
	if r.OldSecretExpires != nil {
		t := *r.OldSecretExpires
		c.OldSecretExpires = &t
	}
	return c
}

func (m *Memory) CreateEndpoint(_ context.Context, r Record, max int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, e := range m.endpoints {
		if e.CompanyID == r.CompanyID {
			n++
		}
	}
	if max > 0 && n >= max {
		return ErrLimit
	}
	c := cloneRecord(&r)
	m.endpoints[r.ID] = &c
	m.order = append(m.order, r.ID)
	return nil
}

func (m *Memory) ListEndpoints(_ context.Context, company string) ([]Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []Record{}
	for _, id := range m.order {
		if e := m.endpoints[id]; e.CompanyID == company {
			out = append(out, cloneRecord(e))
		}
	}
	return out, nil
}

func (m *Memory) get(company, id string) (*Record, error) {
	e, ok := m.endpoints[id]
	if !ok || e.CompanyID != company {
		return nil, ErrNotFound
	}
	return e, nil
}

func (m *Memory) GetEndpoint(_ context.Context, company, id string) (Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, err := m.get(company, id)
	if err != nil {
		return Record{}, err
	}
	return cloneRecord(e), nil
}

func (m *Memory) UpdateEndpoint(_ context.Context, company, id string, fn func(*Record) error) (Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, err := m.get(company, id)
	if err != nil {
		return Record{}, err
	}
	c := cloneRecord(e)
	if err := fn(&c); err != nil {
		return Record{}, err
	}
	c.ID, c.CompanyID = e.ID, e.CompanyID
	*e = cloneRecord(&c)
	return c, nil
}

func (m *Memory) DeleteEndpoint(_ context.Context, company, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.get(company, id); err != nil {
		return err
	}
	delete(m.endpoints, id)
	delete(m.delivs, id)
	if i := slices.Index(m.order, id); i >= 0 {
		m.order = slices.Delete(m.order, i, i+1)
	}
	return nil
}

func (m *Memory) AllEndpoints(_ context.Context) ([]Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Record, 0, len(m.order))
	for _, id := range m.order {
		out = append(out, cloneRecord(m.endpoints[id]))
	}
	return out, nil
}

func (m *Memory) AddDelivery(_ context.Context, d DeliveryRecord) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.get(d.CompanyID, d.EndpointID); err != nil {
		return 0, err
	}
	ds := m.delivs[d.EndpointID]
	if ds == nil {
		ds = &memDeliveries{attempts: map[string]int{}}
		m.delivs[d.EndpointID] = ds
	}
	d.Attempt = ds.attempts[d.EventID] + 1
	ds.attempts[d.EventID] = d.Attempt
	if n := len(ds.list); n == 0 || ds.list[n-1].ID < d.ID {
		ds.list = append(ds.list, d) // ids grow with time: the usual case
	} else {
		i, _ := slices.BinarySearchFunc(ds.list, d.ID, func(x DeliveryRecord, id string) int { return strings.Compare(x.ID, id) })
		ds.list = slices.Insert(ds.list, i, d)
	}
	ds.trim()
	return d.Attempt, nil
}

func (m *Memory) Deliveries(_ context.Context, company, endpointID string, limit int, before string) ([]Delivery, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.get(company, endpointID); err != nil {
		return nil, err
	}
	out := []Delivery{}
	ds := m.delivs[endpointID]
	if ds == nil {
		return out, nil
	}
	end := len(ds.list)
	if before != "" {
		end, _ = slices.BinarySearchFunc(ds.list, before, func(x DeliveryRecord, id string) int { return strings.Compare(x.ID, id) })
	}
	for i := end - 1; i >= 0 && len(out) < limit; i-- {
		out = append(out, ds.list[i].Delivery)
	}
	return out, nil
}

func (m *Memory) GetDelivery(_ context.Context, company, endpointID, id string) (DeliveryRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.get(company, endpointID); err != nil {
		return DeliveryRecord{}, err
	}
	if ds := m.delivs[endpointID]; ds != nil {
		i, ok := slices.BinarySearchFunc(ds.list, id, func(x DeliveryRecord, id string) int { return strings.Compare(x.ID, id) })
		if ok {
			return ds.list[i], nil
		}
	}
	return DeliveryRecord{}, ErrNotFound
}

func (m *Memory) PruneDeliveries(_ context.Context, t time.Time) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var n int64
	for _, ds := range m.delivs {
		before := len(ds.list)
		ds.list = slices.DeleteFunc(ds.list, func(d DeliveryRecord) bool { return d.At.Before(t) })
		if len(ds.list) != before {
			n += int64(before - len(ds.list))
			ds.recount()
		}
	}
	return n, nil
}
