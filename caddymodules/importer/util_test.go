package importer

import (
	"context"
	"fmt"
	"strings"

	"github.com/caddyserver/caddy/v2"

	"github.com/erpgate/erpgate/internal/importer"
)

func caddyContext() caddy.Context {
	ctx, _ := caddy.NewContext(caddy.Context{Context: context.Background()})
	return ctx
}

func fmtResult(status int, id string, errs []importer.Problem) string {
	var parts []string
	for _, e := range errs {
		parts = append(parts, e.Code+":"+e.Message+":"+e.Field)
	}
	return fmt.Sprintf("%d %s [%s]", status, id, strings.Join(parts, " "))
}
