package store

// WebAuthnStore keeps users' passkeys. Owned by the passkey work (issue #17).
type WebAuthnStore interface{}

// memWebAuthn is Memory's part of WebAuthnStore (under Memory.mu).
type memWebAuthn struct{}
