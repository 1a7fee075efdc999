package authsvc_test

import (
	"go.uber.org/zap"

	"github.com/erpgate/erpgate/authsvc"
)

func zapNop() *zap.Logger { return zap.NewNop() }

func zapString(k, v string) zap.Field { return zap.String(k, v) }

func newArgon() *authsvc.Argon2id { return authsvc.NewArgon2id(1) }
