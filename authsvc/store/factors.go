package store

// FactorStore keeps users' email and SMS second factors. Owned by the
// messaging work (issue #17).
type FactorStore interface{}

// memFactors is Memory's part of FactorStore (under Memory.mu).
type memFactors struct{}
