package webhooks

import (
	"context"
	"errors"
	"time"
)

// Endpoint is one company's webhook endpoint, as the API shows it (never
// its secret).
type Endpoint struct {
	ID             string     `json:"id"` // "wh_" + a UUIDv7's 32 hex digits
	CompanyID      string     `json:"company_id"`
	URL            string     `json:"url"`
	Events         []string   `json:"events"` // type patterns (events.ValidPattern), 1..32
	Description    string     `json:"description,omitempty"`
	Enabled        bool       `json:"enabled"`
	DisabledReason string     `json:"disabled_reason,omitempty"` // "gone" (410), "failing", "" (by the company)
	FailingSince   *time.Time `json:"failing_since,omitempty"`
	CreatedAt      time.Time  `json:"created_at"`
	UpdatedAt      time.Time  `json:"updated_at"`
}

// Reasons an endpoint was disabled by the engine.
const (
	ReasonGone    = "gone"    // the receiver answered 410 Gone
	ReasonFailing = "failing" // every attempt failed for DisableAfter
)

// Delivery is one attempt to deliver one event to one endpoint.
type Delivery struct {
	ID          string     `json:"id"` // "whd_" + a UUIDv7's 32 hex digits (newer ids sort after older)
	EndpointID  string     `json:"endpoint_id"`
	EventID     string     `json:"event_id"`
	EventType   string     `json:"event_type"`
	Attempt     int        `json:"attempt"`               // 1, 2, … for this event and endpoint
	Status      string     `json:"status"`                // "succeeded" | "failed" | "gave_up"
	HTTPStatus  int        `json:"http_status,omitempty"` // 0: no answer (refused, timeout, blocked target)
	Error       string     `json:"error,omitempty"`       // safe text: "timeout", "connection refused", "target address not allowed", …
	DurationMS  int64      `json:"duration_ms"`
	Response    string     `json:"response,omitempty"` // first 1 KB of the answer body
	At          time.Time  `json:"at"`
	NextAttempt *time.Time `json:"next_attempt_at,omitempty"`
}

// Statuses of a Delivery.
const (
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"  // another attempt follows (NextAttempt), or none when manual (Test, Retry)
	StatusGaveUp    = "gave_up" // the last attempt of the backoff schedule failed
)

// EndpointInput is the input of Create and Update (Update: nil fields
// unchanged).
type EndpointInput struct {
	URL         *string  `json:"url"`
	Events      []string `json:"events"` // nil: unchanged (Update)
	Description *string  `json:"description"`
	Enabled     *bool    `json:"enabled"` // Update only; true re-enables a disabled endpoint
}

// ErrNotFound: no such endpoint or delivery in the caller's company (also
// for another company's: never reveal it exists).
var ErrNotFound = errors.New("webhooks: not found")

// ErrLimit: the company has MaxEndpoints endpoints already.
var ErrLimit = errors.New("webhooks: too many endpoints for this company")

// ErrEventGone: Retry's event is no longer in the stream (older than the
// stream's max_age). The API answers 409 CONFLICT.
var ErrEventGone = errors.New("webhooks: the event is no longer kept in the stream")

// ErrNotReady: the event engine has not started (Retry needs the stream).
// The API answers 503 SERVICE_UNAVAILABLE.
var ErrNotReady = errors.New("webhooks: the event engine is not ready")

// ValidationError is bad input: the field and a message safe to show.
type ValidationError struct{ Field, Message string }

func (e *ValidationError) Error() string { return "webhooks: " + e.Field + ": " + e.Message }

func invalid(field, msg string) error { return &ValidationError{Field: field, Message: msg} }

// Service is what the HTTP API calls. Every method is scoped to company
// (from the verified identity).
type Service interface {
	// Create adds an endpoint and returns it with its secret (whsec_…),
	// which is shown this once.
	Create(ctx context.Context, company string, in EndpointInput) (Endpoint, string, error)
	List(ctx context.Context, company string) ([]Endpoint, error)
	Get(ctx context.Context, company, id string) (Endpoint, error)
	Update(ctx context.Context, company, id string, in EndpointInput) (Endpoint, error)
	Delete(ctx context.Context, company, id string) error
	// RotateSecret makes a new secret (returned, shown once); the old one
	// signs too for 24 h.
	RotateSecret(ctx context.Context, company, id string) (string, error)
	// Test sends erp.webhooks.ping now, synchronously (bounded by the
	// delivery timeout), and returns the attempt.
	Test(ctx context.Context, company, id string) (Delivery, error)
	// Deliveries lists attempts, newest first; before is the id of the
	// last delivery of the previous page ("" the first page).
	Deliveries(ctx context.Context, company, id string, limit int, before string) ([]Delivery, error)
	// Retry sends that delivery's event again now: a new attempt.
	Retry(ctx context.Context, company, id, deliveryID string) (Delivery, error)
}
