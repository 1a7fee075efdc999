package events

import (
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/httpt"
)

// TestStreamSSE: one gateway. A company's stream gets its events and never
// another company's; ?types= narrows it; the viewer's scope filters what
// it may not read and a pattern it can never read is 403; bad input is a
// clear envelope error; Last-Event-ID resumes without gap or duplicate.
func TestStreamSSE(t *testing.T) {
	s := startStack(t, 1)
	in := s.ins[0]
	alice := login(t, in, "alice@acme.test", "acme")        // admin of acme
	bob := login(t, in, "bob@globex.test", "globex")        // accountant of globex
	viewer := login(t, in, "alice@acme.test", "globex")     // viewer of globex
	acme, _, _ := openSSE(t, in.URL, "", alice.Access, nil) // every type it may read
	acmeInv, _, _ := openSSE(t, in.URL, "?types=erp.invoices.*", alice.Access, nil)
	globex, _, _ := openSSE(t, in.URL, "", bob.Access, nil)
	view, _, _ := openSSE(t, in.URL, "", viewer.Access, nil)

	t.Run("company isolation and types", func(t *testing.T) {
		inv := s.publish(t, "acme", "erp.invoices.created", "INV-1")
		cus := s.publish(t, "acme", "erp.customers.updated", "CUS-1")
		g := s.publish(t, "globex", "erp.invoices.created", "INV-G1")

		f := acme.next(t, 10*time.Second)
		if f.Event != "erp.invoices.created" || f.cloudEvent(t).ID != inv.ID || f.cloudEvent(t).CompanyID != "acme" {
			t.Fatalf("acme's first frame %+v", f)
		}
		if _, err := strconv.ParseUint(f.ID, 10, 64); err != nil {
			t.Fatalf("id %q is not the stream sequence", f.ID)
		}
		if f := acme.next(t, 10*time.Second); f.cloudEvent(t).ID != cus.ID {
			t.Fatalf("acme's second frame %+v", f)
		}
		if f := acmeInv.next(t, 10*time.Second); f.cloudEvent(t).ID != inv.ID {
			t.Fatalf("invoices-only stream got %+v", f)
		}
		if f := globex.next(t, 10*time.Second); f.cloudEvent(t).ID != g.ID || f.cloudEvent(t).CompanyID != "globex" {
			t.Fatalf("globex's frame %+v", f)
		}
		if f := view.next(t, 10*time.Second); f.cloudEvent(t).ID != g.ID {
			t.Fatalf("viewer's frame %+v", f)
		}
		// nothing else: not acme's invoice on globex's streams, not the
		// customer event on the invoices-only stream
		acme.none(t, 500*time.Millisecond)
		acmeInv.none(t, 100*time.Millisecond)
		globex.none(t, 100*time.Millisecond)
		view.none(t, 100*time.Millisecond)
	})

	t.Run("scope", func(t *testing.T) {
		// a viewer holds no webhooks:read: the company's auth events are not
		// its to read, and asking for them is 403
		s.publish(t, "globex", "erp.auth.login.failed", "u1")
		ok := s.publish(t, "globex", "erp.products.updated", "P-1")
		if f := view.next(t, 10*time.Second); f.cloudEvent(t).ID != ok.ID {
			t.Fatalf("viewer got %+v, want the products event only", f)
		}
		_, status, body := openSSE(t, in.URL, "?types=erp.invoices.*,erp.auth.*", viewer.Access, nil)
		env := decode(t, body)
		if status != http.StatusForbidden || env.Code() != contract.CodeForbidden {
			t.Fatalf("unreadable pattern: %d %s", status, body)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		for _, tc := range []struct {
			name, query string
			header      map[string]string
			token       string
			status      int
			code, field string
		}{
			{"bad pattern", "?types=erp..invoices", nil, alice.Access, 400, contract.CodeBadRequest, "types"},
			{"empty pattern", "?types=erp.invoices.*,", nil, alice.Access, 400, contract.CodeBadRequest, "types"},
			{"subject wildcard", "?types=erp.%3E", nil, alice.Access, 400, contract.CodeBadRequest, "types"},
			{"bad last event id", "", map[string]string{"Last-Event-ID": "abc"}, alice.Access, 400, contract.CodeBadRequest, "Last-Event-ID"},
			{"bad last_event_id", "?last_event_id=-3", nil, alice.Access, 400, contract.CodeBadRequest, "last_event_id"},
			{"no credential", "", nil, "", 401, contract.CodeUnauthenticated, ""},
			{"forged token", "", nil, alice.Access[:len(alice.Access)-4] + "AAAA", 401, contract.CodeUnauthenticated, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, status, body := openSSE(t, in.URL, tc.query, tc.token, tc.header)
				env := decode(t, body)
				if status != tc.status || env.Code() != tc.code || (tc.field != "" && env.Errors[0].Field != tc.field) {
					t.Fatalf("%d %s", status, body)
				}
			})
		}
		r := httpt.Do(t, http.MethodPost, in.URL+"/api/v1/events/stream", nil, map[string]string{"Authorization": "Bearer " + alice.Access})
		if r.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("POST: %d %s", r.StatusCode, r.Body)
		}
		r = httpt.Get(t, in.URL+"/api/v1/events/other", map[string]string{"Authorization": "Bearer " + alice.Access})
		if r.StatusCode != http.StatusNotFound || r.Envelope(t).Code() != contract.CodeNotFound {
			t.Fatalf("unknown path: %d %s", r.StatusCode, r.Body)
		}
		r = httpt.Get(t, in.URL+"/api/v1/events/ws", map[string]string{"Authorization": "Bearer " + alice.Access})
		if r.StatusCode != http.StatusBadRequest || r.Envelope(t).Code() != contract.CodeBadRequest {
			t.Fatalf("ws without upgrade: %d %s", r.StatusCode, r.Body)
		}
	})

	t.Run("resume", func(t *testing.T) {
		st, _, _ := openSSE(t, in.URL, "?types=erp.invoices.*", alice.Access, nil)
		var ids []string
		for i := 0; i < 3; i++ {
			ids = append(ids, s.publish(t, "acme", "erp.invoices.created", "R"+strconv.Itoa(i)).ID)
		}
		var last frame
		for i := 0; i < 3; i++ {
			if last = st.next(t, 10*time.Second); last.cloudEvent(t).ID != ids[i] {
				t.Fatalf("frame %d: %+v", i, last)
			}
		}
		st.close() // the drop
		for i := 3; i < 6; i++ {
			ids = append(ids, s.publish(t, "acme", "erp.invoices.updated", "R"+strconv.Itoa(i)).ID)
			s.publish(t, "acme", "erp.customers.created", "C"+strconv.Itoa(i)) // not asked for
			s.publish(t, "globex", "erp.invoices.created", "G"+strconv.Itoa(i))
		}
		re, _, _ := openSSE(t, in.URL, "?types=erp.invoices.*", alice.Access, map[string]string{"Last-Event-ID": last.ID})
		prev, _ := strconv.ParseUint(last.ID, 10, 64)
		check := func(want string) {
			t.Helper()
			f := re.next(t, 10*time.Second)
			if f.cloudEvent(t).ID != want {
				t.Fatalf("resumed stream: got %s, want %s", f.Data, want)
			}
			seq, _ := strconv.ParseUint(f.ID, 10, 64)
			if seq <= prev {
				t.Fatalf("id %d after %d", seq, prev)
			}
			prev = seq
		}
		for i := 3; i < 6; i++ {
			check(ids[i]) // the gap, replayed
		}
		live := s.publish(t, "acme", "erp.invoices.deleted", "R6").ID
		check(live) // then live, once
		re.none(t, 500*time.Millisecond)

		// the browser's reconnect carries the header; ?last_event_id= works too
		q, _, _ := openSSE(t, in.URL, "?types=erp.invoices.*&last_event_id="+last.ID, alice.Access, nil)
		for i := 3; i < 6; i++ {
			if f := q.next(t, 10*time.Second); f.cloudEvent(t).ID != ids[i] {
				t.Fatalf("query resume: %+v", f)
			}
		}
		if f := q.next(t, 10*time.Second); f.cloudEvent(t).ID != live {
			t.Fatalf("query resume: %+v", f)
		}
	})
}

func decode(t *testing.T, body []byte) *httpt.Envelope {
	t.Helper()
	var env httpt.Envelope
	if err := json.Unmarshal(body, &env); err != nil || env.Success || len(env.Errors) == 0 {
		t.Fatalf("not an error envelope: %v: %s", err, body)
	}
	return &env
}
