package demo

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile" // the caddyfile adapter
)

func TestCaddyfileAdapt(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, input string
		want        string // compact JSON; "" when an error is expected
		wantErr     string
	}{
		{
			name: "plain",
			input: `{
				admin off
			}
			http://127.0.0.1:19001 {
				erp_demo
			}`,
			want: `{"admin":{"disabled":true},"apps":{"http":{"servers":{"srv0":{"listen":[":19001"],` +
				`"routes":[{"match":[{"host":["127.0.0.1"]}],"handle":[{"handler":"subroute","routes":[{"handle":[{"handler":"erp_demo"}]}]}],"terminal":true}],"automatic_https":{"skip":["127.0.0.1"]}}}}}}`,
		},
		{
			name: "with path matcher, ordered before respond",
			input: `:9001 {
				respond "fallback"
				erp_demo /v1/*
			}`,
			want: `{"apps":{"http":{"servers":{"srv0":{"listen":[":9001"],` +
				`"routes":[{"match":[{"path":["/v1/*"]}],"handle":[{"handler":"erp_demo"}]},{"handle":[{"body":"fallback","handler":"static_response"}]}]}}}}}`,
		},
		{name: "argument rejected", input: `:9001 {
				erp_demo extra
			}`, wantErr: "wrong argument count"},
		{name: "block rejected", input: `:9001 {
				erp_demo {
					seed 1
				}
			}`, wantErr: `unrecognized subdirective "seed"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(tt.input), nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var compact bytes.Buffer
			if err := json.Compact(&compact, got); err != nil {
				t.Fatal(err)
			}
			if compact.String() != tt.want {
				t.Fatalf("adapted\n got %s\nwant %s", compact.String(), tt.want)
			}
		})
	}
}
