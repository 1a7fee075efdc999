// Package webhooks is erpgate's webhook engine: company-scoped endpoints
// (Service, for the HTTP API of erp_webhooks), their store (Memory for the
// embedded default, Postgres), and the delivery of the company's events
// from the JetStream stream (internal/events) to each endpoint, signed per
// Standard Webhooks.
//
// # Delivery
//
// At least once. Every enabled endpoint has a durable JetStream consumer
// named after it (ConsumerName: wh_<uuid hex>, the endpoint's id) on the
// events stream, filtered to its company's subjects of its type patterns
// and starting at the endpoint's creation time, with explicit acks. Every
// instance runs workers (Manager.Start) bound to the same consumers, so the
// instances share the work and an instance that dies leaves its unacked
// events to the others (after the consumer's ack wait). Workers learn of
// created, changed and deleted endpoints from the core NATS subject
// NotifySubject and re-read every endpoint every Resync (30 s).
//
// An attempt is a POST of the event's CloudEvent JSON (the bytes stored in
// the stream), Content-Type application/cloudevents+json, with the headers
// webhook-id (the event id: the same on every attempt, so receivers
// deduplicate), webhook-timestamp (this attempt) and webhook-signature
// ("v1,<base64 HMAC-SHA256 of id.timestamp.body>", the key being the
// secret's base64 after whsec_; during the 24 h after a rotation, a second
// signature by the previous secret, space-separated). A 2xx answer is a
// success; anything else (3xx included: redirects are not followed),
// a timeout (10 s for the whole attempt) or a refused target fails it.
// The answer is read up to 64 KB; its first 1 KB is kept.
//
// A failed attempt is retried after Backoff[n-1] (attempt n; default 5s
// 30s 2m 10m 1h 6h 24h, ±20% jitter) with a delayed NAK; when the last
// fails the event is given up (status gave_up, the message terminated).
// A 410 answer to a delivery from the stream disables the endpoint (reason
// "gone"; Test and Retry only record what they get); an endpoint whose
// attempts have all failed for DisableAfter (default 5 days) is disabled
// (reason "failing"). Either publishes erp.webhooks.endpoint_disabled for
// the company. Enabling it again (Update enabled:true) resumes its
// consumer where it stopped: events it had not acknowledged are delivered
// then, as long as the stream keeps them (nats max_age, 7 days).
// Every attempt, including Test (erp.webhooks.ping) and Retry, is a
// Delivery.
//
// # Ordering
//
// Per endpoint, events are delivered in stream order while attempts
// succeed: one instance handles one event of an endpoint at a time. It is
// not a strict order: a failed event is retried after its backoff while
// later events go on (up to MaxAckPending, 16, events of an endpoint are
// in flight or waiting for a retry; then the endpoint waits for them), and
// with several instances each takes its own events of the consumer
// concurrently. Receivers that need an order use the event's `time` and
// `id` (UUIDv7 for events of the edge), and deduplicate by webhook-id.
//
// # Targets
//
// Create and Update accept http and https URLs without credentials; without
// AllowPrivate (ERP_WEBHOOK_ALLOW_PRIVATE=1), a host must resolve to public
// addresses. What counts is the check at connect time: the dialer's
// Control refuses loopback, private, link-local (the cloud metadata
// address too), CGNAT, unspecified, multicast and reserved addresses and
// their IPv4-mapped or translated forms, whatever a name resolved to
// before (DNS rebinding). No proxy from the environment is used.
//
// Owns: endpoints, deliveries, the delivery workers. Must not import Caddy
// or caddymodules; the erp app wires it (caddymodules/erpapp/webhooks.go).
package webhooks
