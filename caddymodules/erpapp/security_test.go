package erpapp

import (
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/erpgate/erpgate/internal/secmon"
)

func TestSecurityRules(t *testing.T) {
	t.Parallel()
	rs, err := (*Security)(nil).rules()
	if err != nil || rs[secmon.RulePasswordGuessing].Threshold != 50 {
		t.Fatalf("defaults: %v %v", rs, err)
	}
	rs, err = (&Security{Rules: map[string]*SecurityRule{
		secmon.RuleCredentialStuffing: {NoActions: true},
		secmon.RulePasswordGuessing:   {Threshold: 7, Window: caddy.Duration(time.Minute), Actions: []SecurityAction{{Kind: secmon.ActionLockAccount}}},
	}}).rules()
	if err != nil {
		t.Fatal(err)
	}
	if a := rs[secmon.RuleCredentialStuffing].Actions; a == nil || len(a) != 0 {
		t.Fatalf("action none: %v", a)
	}
	pg := rs[secmon.RulePasswordGuessing]
	if pg.Threshold != 7 || pg.AccountThreshold != 20 || pg.Window != time.Minute || len(pg.Actions) != 1 || pg.Actions[0].Kind != secmon.ActionLockAccount {
		t.Fatalf("password_guessing: %+v", pg)
	}
	for name, s := range map[string]*Security{
		"bad severity":        {Rules: map[string]*SecurityRule{secmon.RuleNewDevice: {Severity: "huge"}}},
		"unknown rule (JSON)": {Rules: map[string]*SecurityRule{"nope": {}}},
		"none with actions":   {Rules: map[string]*SecurityRule{secmon.RuleNewDevice: {NoActions: true, Actions: []SecurityAction{{Kind: secmon.ActionBlockIP}}}}},
		"unknown action":      {Rules: map[string]*SecurityRule{secmon.RuleNewDevice: {Actions: []SecurityAction{{Kind: "shun"}}}}},
	} {
		if _, err := s.rules(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
