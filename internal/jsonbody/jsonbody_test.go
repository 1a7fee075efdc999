package jsonbody

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/erpgate/erpgate/contract"
)

type input struct {
	URL    *string  `json:"url"`
	Events []string `json:"events"`
}

func TestDecode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, ct, body string
		empty          bool
		status         int
		code, field    string
	}{
		{"ok", "application/json", `{"url":"https://x.test","events":["erp.*"]}`, false, 0, "", ""},
		{"charset", "application/json; charset=utf-8", `{}`, false, 0, "", ""},
		{"no content type", "", `{}`, false, 0, "", ""},
		{"empty allowed", "", ``, true, 0, "", ""},
		{"empty refused", "", ``, false, 400, contract.CodeBadRequest, ""},
		{"form", "application/x-www-form-urlencoded", `url=x`, false, 415, contract.CodeBadRequest, ""},
		{"unknown member", "", `{"url":"x","secret":"s"}`, false, 400, contract.CodeBadRequest, "secret"},
		{"wrong type", "", `{"events":"erp.*"}`, false, 422, contract.CodeValidationFailed, "events"},
		{"two objects", "", `{} {}`, false, 400, contract.CodeBadRequest, ""},
		{"trailing garbage", "", `{} x`, false, 400, contract.CodeBadRequest, ""},
		{"array", "", `[]`, false, 400, contract.CodeBadRequest, ""},
		{"duplicate member", "", `{"url":"a","url":"b"}`, false, 400, contract.CodeBadRequest, "url"},
		{"case variant", "", `{"URL":"a"}`, false, 400, contract.CodeBadRequest, "URL"},
		{"case variant after the member", "", `{"url":"a","Url":"b"}`, false, 400, contract.CodeBadRequest, "Url"},
		{"escaped duplicate", "", `{"url":"a","u\u0072l":"b"}`, false, 400, contract.CodeBadRequest, "url"},
		{"too large", "", `{"url":"` + strings.Repeat("a", 100) + `"}`, false, 413, contract.CodePayloadTooLarge, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tc.body))
			if tc.ct != "" {
				r.Header.Set("Content-Type", tc.ct)
			}
			var in input
			err := Decode(httptest.NewRecorder(), r, &in, 64, tc.empty)
			if tc.status == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			e, ok := contract.AsError(err)
			if !ok || e.Status != tc.status || e.Code != tc.code || e.Field != tc.field {
				t.Fatalf("got %#v, want %d %s field %q", err, tc.status, tc.code, tc.field)
			}
		})
	}
}
