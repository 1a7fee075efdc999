package version

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/erpgate/erpgate/caddymodules/erpapp"
	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/events"
)

// maxEventData bounds the answer data an event carries: NATS refuses
// messages over 1 MB, and a webhook receiver wants the change, not a
// bulk document. Larger data is left out (the subject names the resource).
const maxEventData = 256 << 10

// backendEvents are a backend's business event types, made once.
type backendEvents struct {
	created, updated, deleted string
}

func newBackendEvents(b *erpapp.Backend) *backendEvents {
	res := b.EventResource()
	if res == "" {
		return nil
	}
	return &backendEvents{created: "erp." + res + ".created", updated: "erp." + res + ".updated", deleted: "erp." + res + ".deleted"}
}

// typeFor is the event type of a write with method, on a collection (id
// "") or an item; "" for a method that writes nothing.
func (be *backendEvents) typeFor(method, id string) string {
	switch method {
	case http.MethodPost:
		if id == "" {
			return be.created
		}
		return be.updated // an action on an item (POST /invoices/inv_1/send)
	case http.MethodPut, http.MethodPatch:
		return be.updated
	case http.MethodDelete:
		return be.deleted
	}
	return ""
}

// writeEvent is the EventSink of one write: erp_envelope calls Emit with
// the 2xx answer, after the backend answered.
type writeEvent struct {
	lasting *erpapp.Lasting
	logger  *zap.Logger
	repl    *caddy.Replacer
	typ     string
	id      string // the item id of the path, or ""
}

// setEventSink arms the request's business event, for writes through a
// backend whose events are on. Reads pay nothing.
func (h *Handler) setEventSink(r *http.Request, br *backendRoute, method, id string, repl *caddy.Replacer) {
	if br.events == nil || repl == nil {
		return
	}
	typ := br.events.typeFor(method, id)
	if typ == "" {
		return
	}
	caddyhttp.SetVar(r.Context(), contract.VarEventSink, contract.EventSink(&writeEvent{lasting: h.lasting, logger: h.logger, repl: repl, typ: typ, id: id}))
}

// Emit publishes the event (asynchronously: the answer never waits).
func (we *writeEvent) Emit(status int, data []byte) {
	company, _ := we.repl.GetString("http.auth.user.company_id")
	if company == "" {
		return // writes through a backend are always authenticated; no company, no event
	}
	eng, err := we.lasting.Events()
	if err != nil {
		eventsDropped.Inc()
		return
	}
	subject := dataID(data)
	if subject == "" {
		subject = we.id
	}
	var payload json.RawMessage
	if len(data) > 0 && len(data) <= maxEventData && !bytes.Equal(data, []byte("null")) {
		payload = bytes.Clone(data) // data is the envelope's pooled buffer
	}
	ev, err := events.New(events.EdgeSource(we.lasting.Instance()), we.typ, company, subject, payload)
	if err != nil {
		eventsDropped.Inc()
		return
	}
	if !eng.Publish(ev) {
		eventsDropped.Inc()
		we.logger.Warn("business event dropped: the event buffer is full", zap.String("type", we.typ))
		return
	}
	eventsQueued.Inc()
}

// dataID is data's top-level "id" (a string, or a number's text), or "".
func dataID(data []byte) string {
	if len(data) == 0 || data[0] != '{' {
		return ""
	}
	var v struct {
		ID json.RawMessage `json:"id"`
	}
	if json.Unmarshal(data, &v) != nil || len(v.ID) == 0 {
		return ""
	}
	if v.ID[0] == '"' {
		var s string
		if json.Unmarshal(v.ID, &s) == nil {
			return s
		}
		return ""
	}
	if _, err := strconv.ParseFloat(string(v.ID), 64); err == nil {
		return string(v.ID)
	}
	return ""
}
