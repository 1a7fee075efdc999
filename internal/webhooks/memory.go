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
	endpoints map[string]*Record          // by id
	order     []string                    // ids, oldest first
	delivs    map[string][]DeliveryRecord // by endpoint id, ascending id
}

// NewMemory is an empty Memory store.
func NewMemory() *Memory {
	return &Memory{endpoints: map[string]*Record{}, delivs: map[string][]DeliveryRecord{}}
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
	list := m.delivs[d.EndpointID]
	n := 0
	for i := range list {
		if list[i].EventID == d.EventID {
			n = max(n, list[i].Attempt)
		}
	}
	d.Attempt = n + 1
	i, _ := slices.BinarySearchFunc(list, d.ID, func(x DeliveryRecord, id string) int { return strings.Compare(x.ID, id) })
	list = slices.Insert(list, i, d)
	if len(list) > MemoryMaxDeliveries {
		list = slices.Delete(list, 0, len(list)-MemoryMaxDeliveries)
	}
	m.delivs[d.EndpointID] = list
	return d.Attempt, nil
}

func (m *Memory) Deliveries(_ context.Context, company, endpointID string, limit int, before string) ([]Delivery, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.get(company, endpointID); err != nil {
		return nil, err
	}
	list := m.delivs[endpointID]
	out := []Delivery{}
	for i := len(list) - 1; i >= 0 && len(out) < limit; i-- {
		if before != "" && list[i].ID >= before {
			continue
		}
		out = append(out, list[i].Delivery)
	}
	return out, nil
}

func (m *Memory) GetDelivery(_ context.Context, company, endpointID, id string) (DeliveryRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.get(company, endpointID); err != nil {
		return DeliveryRecord{}, err
	}
	for _, d := range m.delivs[endpointID] {
		if d.ID == id {
			return d, nil
		}
	}
	return DeliveryRecord{}, ErrNotFound
}

func (m *Memory) PruneDeliveries(_ context.Context, t time.Time) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var n int64
	for id, list := range m.delivs {
		kept := list[:0]
		for _, d := range list {
			if d.At.Before(t) {
				n++
				continue
			}
			kept = append(kept, d)
		}
		m.delivs[id] = kept
	}
	return n, nil
}
