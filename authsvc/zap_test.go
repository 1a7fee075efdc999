package authsvc_test

import (
	"go.uber.org/zap"

	"github.com/erpgate/erpgate/authsvc"
)

func zapNop() *zap.Logger { return zap.NewNop() }

func zapString(k, v string) zap.Field { return zap.String(k, v) }

// newArgon is the production hasher (default parameters) with one slot.
func newArgon() *authsvc.Argon2id {
	h, err := authsvc.NewArgon2id(authsvc.Argon2Params{}, authsvc.HashLimits{Concurrency: 1})
	if err != nil {
		panic(err)
	}
	return h
}
