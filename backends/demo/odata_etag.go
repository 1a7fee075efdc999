package demo

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
)

// patchLedgerEntry is PATCH /odata/v1/LedgerEntries('id'): the ledger's
// only write, changing an entry's description or status. A stale If-Match
// (compared with the entity's @odata.etag) is 412 with the current ETag;
// the answer is the changed entity with its new @odata.etag in the body
// and no ETag header, as OData services answering with a representation
// often do: the dialect makes the header from the annotation.
func (s *Server) patchLedgerEntry(w http.ResponseWriter, r *http.Request, c *company, key string) {
	k, ok := strings.CutSuffix(key, ")")
	if !ok || len(k) < 2 || k[0] != '\'' || k[len(k)-1] != '\'' {
		writeODataError(w, odataErr{http.StatusBadRequest, "InvalidKey", "keys are quoted strings: LedgerEntries('id')", ""})
		return
	}
	id := strings.ReplaceAll(k[1:len(k)-1], "''", "'")
	var in map[string]json.RawMessage
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	if err := dec.Decode(&in); err != nil || in == nil {
		writeODataError(w, odataErr{http.StatusBadRequest, "InvalidBody", "the body is a JSON object", ""})
		return
	}
	changes := map[string]string{}
	for f, raw := range in {
		var v string
		switch f {
		case "description", "status":
		default:
			writeODataError(w, odataErr{http.StatusBadRequest, "ReadOnlyProperty", "only description and status can change, not " + strconv.Quote(f), f})
			return
		}
		if json.Unmarshal(raw, &v) != nil || (f == "status" && v != "posted" && v != "draft") {
			writeODataError(w, odataErr{http.StatusBadRequest, "InvalidValue", f + " is a string (status: posted or draft)", f})
			return
		}
		changes[f] = v
	}
	s.mu.Lock()
	var entry *ledgerEntry
	for _, e := range c.ledger {
		if e.ID == id {
			entry = e
			break
		}
	}
	if entry == nil {
		s.mu.Unlock()
		writeODataError(w, odataErr{http.StatusNotFound, "NotFound", "LedgerEntries " + strconv.Quote(id) + " does not exist", ""})
		return
	}
	current := odataETag(entry.record())
	if ifMatchFails(r, current) {
		s.mu.Unlock()
		w.Header().Set("ETag", current)
		writeODataError(w, odataErr{http.StatusPreconditionFailed, "PreconditionFailed", "the entry has changed since the version in If-Match", ""})
		return
	}
	if v, ok := changes["description"]; ok {
		entry.Description = v
	}
	if v, ok := changes["status"]; ok {
		entry.Status = v
	}
	rec := entry.record()
	s.mu.Unlock()
	out := record{"@odata.context": "$metadata#LedgerEntries/$entity"}
	for f, v := range rec {
		out[f] = v
	}
	out["@odata.etag"] = odataETag(rec)
	writeOData(w, out)
}
