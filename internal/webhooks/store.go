package webhooks

import (
	"context"
	"time"
)

// Record is an endpoint as stored: the Endpoint and its sealed secrets.
type Record struct {
	Endpoint
	// Secret is the current signing secret, sealed (Sealer, bound to the
	// endpoint id).
	Secret []byte
	// OldSecret is the secret before the last rotation, sealed; it signs
	// too until OldSecretExpires. nil: none.
	OldSecret        []byte
	OldSecretExpires *time.Time
}

// DeliveryRecord is a Delivery as stored: with its company and the stream
// sequence of its event (0: not from the stream, a ping).
type DeliveryRecord struct {
	Delivery
	CompanyID string
	StreamSeq uint64
}

// Store keeps endpoints and deliveries. Every method but AllEndpoints is
// scoped to a company: another company's rows are ErrNotFound.
type Store interface {
	// CreateEndpoint adds r unless its company has max endpoints (ErrLimit).
	CreateEndpoint(ctx context.Context, r Record, max int) error
	ListEndpoints(ctx context.Context, company string) ([]Record, error)
	GetEndpoint(ctx context.Context, company, id string) (Record, error)
	// UpdateEndpoint changes the endpoint with fn, atomically (fn may run
	// more than once; an error from it is returned as is).
	UpdateEndpoint(ctx context.Context, company, id string, fn func(*Record) error) (Record, error)
	// DeleteEndpoint removes the endpoint and its deliveries.
	DeleteEndpoint(ctx context.Context, company, id string) error
	// AllEndpoints lists every company's endpoints (the workers' resync).
	AllEndpoints(ctx context.Context) ([]Record, error)

	// AddDelivery records an attempt; the store numbers it (d.Attempt: one
	// more than the attempts of the same event to the same endpoint) and
	// returns the number. The endpoint must exist in d.CompanyID.
	AddDelivery(ctx context.Context, d DeliveryRecord) (int, error)
	// Deliveries lists the endpoint's attempts, newest first, at most
	// limit, those with an id below before when it is not "".
	Deliveries(ctx context.Context, company, endpointID string, limit int, before string) ([]Delivery, error)
	GetDelivery(ctx context.Context, company, endpointID, id string) (DeliveryRecord, error)
	// PruneDeliveries removes attempts made before t.
	PruneDeliveries(ctx context.Context, t time.Time) (int64, error)
}
