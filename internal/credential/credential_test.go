package credential

import (
	"errors"
	"net/http"
	"testing"
)

func TestFind(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		h       http.Header
		upgrade bool
		want    Credential
		err     error
	}{
		{name: "none", h: http.Header{"Accept": {"*/*"}}},
		{name: "bearer", h: http.Header{"Authorization": {"Bearer abc"}}, want: Credential{Bearer, "abc", FromAuthorization}},
		{name: "bearer any case", h: http.Header{"Authorization": {"bEaReR  abc "}}, want: Credential{Bearer, "abc", FromAuthorization}},
		{name: "bearer without token", h: http.Header{"Authorization": {"Bearer"}}, want: Credential{Bearer, "", FromAuthorization}},
		{name: "api key scheme", h: http.Header{"Authorization": {"ApiKey k1"}}, want: Credential{APIKey, "k1", FromAuthorization}},
		{name: "basic", h: http.Header{"Authorization": {"Basic eDp5"}}, want: Credential{Other, "eDp5", FromAuthorization}},
		{name: "x-api-key", h: http.Header{"X-Api-Key": {" k1 "}}, want: Credential{APIKey, "k1", FromAPIKeyHeader}},
		{name: "websocket bearer", upgrade: true, h: http.Header{"Sec-Websocket-Protocol": {"graphql-ws, bearer, tok"}}, want: Credential{Bearer, "tok", FromWebSocket}},
		{name: "websocket bearer ignored without upgrade", h: http.Header{"Sec-Websocket-Protocol": {"bearer, tok"}}},
		{name: "websocket without bearer", upgrade: true, h: http.Header{"Sec-Websocket-Protocol": {"graphql-ws"}}},

		{name: "two authorization", h: http.Header{"Authorization": {"Bearer a", "Bearer b"}}, err: ErrAmbiguous},
		{name: "two authorization, one empty", h: http.Header{"Authorization": {"Bearer a", ""}}, err: ErrAmbiguous},
		{name: "two x-api-key", h: http.Header{"X-Api-Key": {"a", "b"}}, err: ErrAmbiguous},
		{name: "bearer and api key", h: http.Header{"Authorization": {"Bearer a"}, "X-Api-Key": {"b"}}, err: ErrAmbiguous},
		{name: "apikey scheme and x-api-key", h: http.Header{"Authorization": {"ApiKey a"}, "X-Api-Key": {"a"}}, err: ErrAmbiguous},
		{name: "basic and api key", h: http.Header{"Authorization": {"Basic eDp5"}, "X-Api-Key": {"b"}}, err: ErrAmbiguous},
		{name: "websocket bearer and authorization", upgrade: true, h: http.Header{"Authorization": {"Bearer a"}, "Sec-Websocket-Protocol": {"bearer, b"}}, err: ErrAmbiguous},
		{name: "websocket bearer and api key", upgrade: true, h: http.Header{"X-Api-Key": {"k"}, "Sec-Websocket-Protocol": {"bearer, b"}}, err: ErrAmbiguous},
		{name: "two websocket bearers", upgrade: true, h: http.Header{"Sec-Websocket-Protocol": {"bearer, a, bearer, b"}}, err: ErrAmbiguous},
		{name: "two websocket bearers in two lines", upgrade: true, h: http.Header{"Sec-Websocket-Protocol": {"bearer, a", "bearer, b"}}, err: ErrAmbiguous},
		{name: "underscore api key and bearer", h: http.Header{"Authorization": {"Bearer a"}, "X_api_key": {"b"}}, err: ErrAmbiguous},
		{name: "mixed spelling api key and bearer", h: http.Header{"Authorization": {"Bearer a"}, "X-Api_key": {"b"}}, err: ErrAmbiguous},
		{name: "underscore websocket protocol and bearer", upgrade: true, h: http.Header{"Authorization": {"Bearer a"}, "Sec_websocket-Protocol": {"bearer, b"}}, err: ErrAmbiguous},
		{name: "underscore api key alone", h: http.Header{"X_api_key": {"b"}}, err: ErrNonStandard},
		{name: "underscore websocket bearer alone", upgrade: true, h: http.Header{"Sec_websocket_protocol": {"bearer, b"}}, err: ErrNonStandard},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Find(tc.h, tc.upgrade)
			if !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestSpellings(t *testing.T) {
	t.Parallel()
	got := Spellings("x-api-key")
	want := []string{"X-Api-Key", "X-Api_key", "X_api-Key", "X_api_key"}
	if len(got) != len(want) || got[0] != want[0] {
		t.Fatalf("got %q", got)
	}
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || g == w
		}
		if !found {
			t.Fatalf("%q lacks %q", got, w)
		}
	}
	// what a server makes of a client's spelling is among them
	for _, sent := range []string{"x_API_key", "X-API_KEY", "x_api-key"} {
		k := http.CanonicalHeaderKey(sent)
		found := false
		for _, g := range got {
			found = found || g == k
		}
		if !found {
			t.Fatalf("%q (%q) not among %q", sent, k, got)
		}
	}
}

func TestRefusal(t *testing.T) {
	t.Parallel()
	for _, err := range []error{ErrAmbiguous, ErrNonStandard} {
		e := Refusal(err)
		if e.Status != http.StatusBadRequest || e.Code != "BAD_REQUEST" || e.Header.Get("Www-Authenticate") == "" {
			t.Fatalf("%v: %+v", err, e)
		}
	}
}

func TestRemoveWebSocketBearer(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"bearer, tok":                "",
		"graphql-ws, bearer, tok":    "graphql-ws",
		"bearer, tok, graphql-ws, x": "graphql-ws, x",
	} {
		h := http.Header{"Sec-Websocket-Protocol": {in}}
		RemoveWebSocketBearer(h)
		if got := h.Get("Sec-Websocket-Protocol"); got != want {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
	}
}

// BenchmarkFind: a typical authenticated request's headers.
func BenchmarkFind(b *testing.B) {
	h := http.Header{
		"Accept": {"application/json"}, "Accept-Encoding": {"gzip"}, "User-Agent": {"bench/1"},
		"X-Request-Id": {"0193a5d2-7c1e-7b3a-9f00-5a1c2b3d4e5f"}, "Authorization": {"Bearer eyJhbGciOi.eyJzdWIiOi.sig"},
		"Content-Type": {"application/json"}, "X-Forwarded-For": {"10.0.0.1"},
	}
	b.ReportAllocs()
	for b.Loop() {
		if c, err := Find(h, false); err != nil || c.Kind != Bearer {
			b.Fatal(c, err)
		}
	}
}
