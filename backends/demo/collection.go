package demo

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// List parameters and body limits.
const (
	defaultLimit = 50
	maxLimit     = 200
	maxSortKeys  = 3
	maxBodyBytes = 1 << 20
)

// resource is what the router needs from a collection, whatever its record type.
type resource interface {
	serveCollection(s *Server, w http.ResponseWriter, r *http.Request, c *company, v string)
	serveItem(s *Server, w http.ResponseWriter, r *http.Request, c *company, v, id string)
}

// collection implements the list/read/create/update/delete flows once for
// every record type. Stored records are never modified in place (an update
// stores a new pointer), so a list can sort and render them after the read
// lock is released.
type collection[T any] struct {
	name    string // singular, for messages
	path    string // the path segment
	records func(c *company) map[string]*T
	idOf    func(x *T) string
	render  func(v string, x *T) any
	sorts   map[string]map[string]func(a, b *T) int // by version, then field
	filter  func(q url.Values, x *T) bool           // the collection's own filters (id aside); nil: none
	build   func(in *input, c *company, v string, cur *T, now time.Time) *T
	assign  func(c *company, x *T)           // server-assigned fields on create
	inUse   func(c *company, id string) bool // nil: always deletable
}

func newCollection[T any](c collection[T], sorts func(v string) map[string]func(a, b *T) int) *collection[T] {
	c.sorts = map[string]map[string]func(a, b *T) int{v1: sorts(v1), v2: sorts(v2)}
	return &c
}

var resources = map[string]resource{
	"invoices": newCollection(collection[invoice]{
		name:    "invoice",
		path:    "invoices",
		records: func(c *company) map[string]*invoice { return c.invoices },
		idOf:    func(x *invoice) string { return x.ID },
		render:  renderInvoice,
		filter:  invoiceFilter,
		build:   buildInvoice,
		assign: func(c *company, x *invoice) {
			x.ID, x.Number = c.invoiceID(c.nextInvoice), c.invoiceNumber(c.nextInvoice)
			c.nextInvoice++
		},
	}, invoiceSorts),
	"customers": newCollection(collection[customer]{
		name:    "customer",
		path:    "customers",
		records: func(c *company) map[string]*customer { return c.customers },
		idOf:    func(x *customer) string { return x.ID },
		render:  renderCustomer,
		build:   buildCustomer,
		assign: func(c *company, x *customer) {
			x.ID = c.customerID(c.nextCustomer)
			c.nextCustomer++
		},
		inUse: func(c *company, id string) bool {
			for _, inv := range c.invoices {
				if inv.CustomerID == id {
					return true
				}
			}
			return false
		},
	}, customerSorts),
	"products": newCollection(collection[product]{
		name:    "product",
		path:    "products",
		records: func(c *company) map[string]*product { return c.products },
		idOf:    func(x *product) string { return x.ID },
		render:  renderProduct,
		filter:  productFilter,
		build:   buildProduct,
		assign: func(c *company, x *product) {
			x.ID = c.productID(c.nextProduct)
			c.nextProduct++
		},
	}, productSorts),
}

func (col *collection[T]) serveCollection(s *Server, w http.ResponseWriter, r *http.Request, c *company, v string) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		col.list(s, w, r, c, v)
	case http.MethodPost:
		col.create(s, w, r, c, v)
	default:
		methodNotAllowed(w, "GET, HEAD, POST")
	}
}

func (col *collection[T]) serveItem(s *Server, w http.ResponseWriter, r *http.Request, c *company, v, id string) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		s.mu.RLock()
		x, ok := col.records(c)[id]
		s.mu.RUnlock()
		if !ok {
			col.notFound(w, id)
			return
		}
		body, tag, err := renderETag(col.render(v, x))
		if err != nil {
			writeProblem(w, newProblem(http.StatusInternalServerError, "internal", "encoding the response failed"))
			return
		}
		if ifNoneMatchHits(r, tag) {
			w.Header().Set("ETag", tag)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		writeTagged(w, http.StatusOK, body, tag)
	case http.MethodPut:
		col.update(s, w, r, c, v, id, modeReplace)
	case http.MethodPatch:
		col.update(s, w, r, c, v, id, modePatch)
	case http.MethodDelete:
		col.remove(s, w, r, c, v, id)
	default:
		methodNotAllowed(w, "GET, HEAD, PUT, PATCH, DELETE")
	}
}

func (col *collection[T]) notFound(w http.ResponseWriter, id string) {
	writeProblem(w, newProblem(http.StatusNotFound, "not-found", "%s %q does not exist", col.name, id))
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	writeProblem(w, newProblem(http.StatusMethodNotAllowed, "method-not-allowed", "allowed methods: %s", allow))
}

// listParams are the validated page, limit and sort of a list request.
type listParams[T any] struct {
	page, limit int
	less        func(a, b *T) int
}

func (col *collection[T]) parseList(q url.Values, v string) (listParams[T], []FieldError) {
	p := listParams[T]{page: 1, limit: defaultLimit}
	var errs []FieldError
	if s, ok := q["page"]; ok {
		n, err := strconv.Atoi(s[0])
		if err != nil || n < 1 {
			errs = append(errs, FieldError{Field: "page", Code: codeInvalidValue, Message: "page must be a positive integer"})
		} else {
			p.page = n
		}
	}
	if s, ok := q["limit"]; ok {
		n, err := strconv.Atoi(s[0])
		if err != nil || n < 1 || n > maxLimit {
			errs = append(errs, FieldError{Field: "limit", Code: codeInvalidValue,
				Message: "limit must be an integer between 1 and " + strconv.Itoa(maxLimit)})
		} else {
			p.limit = n
		}
	}
	sorts := col.sorts[v]
	var keys []func(a, b *T) int
	if s, ok := q["sort"]; ok {
		parts := strings.Split(s[0], ",")
		if len(parts) > maxSortKeys {
			errs = append(errs, FieldError{Field: "sort", Code: codeInvalidValue,
				Message: "sort takes at most " + strconv.Itoa(maxSortKeys) + " fields"})
			parts = nil
		}
		for _, part := range parts {
			name, desc := strings.CutPrefix(strings.TrimSpace(part), "-")
			f, known := sorts[name]
			if !known {
				errs = append(errs, FieldError{Field: "sort", Code: codeInvalidValue,
					Message: "cannot sort by " + strconv.Quote(name) + "; sortable fields: " + strings.Join(sortedKeys(sorts), ", ")})
				continue
			}
			if desc {
				keys = append(keys, func(a, b *T) int { return f(b, a) })
			} else {
				keys = append(keys, f)
			}
		}
	}
	keys = append(keys, sorts["id"]) // a total order, so pages never overlap
	p.less = func(a, b *T) int {
		for _, k := range keys {
			if c := k(a, b); c != 0 {
				return c
			}
		}
		return 0
	}
	return p, errs
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func (col *collection[T]) list(s *Server, w http.ResponseWriter, r *http.Request, c *company, v string) {
	q := r.URL.Query()
	p, errs := col.parseList(q, v)
	if len(errs) > 0 {
		writeProblem(w, queryProblem(errs))
		return
	}
	ids, byID := q["id"]
	s.mu.RLock()
	all := col.records(c)
	items := make([]*T, 0, len(all))
	if byID { // any of the ids: look them up rather than scan
		seen := make(map[string]bool, len(ids))
		for _, id := range ids {
			if x, ok := all[id]; ok && !seen[id] && (col.filter == nil || col.filter(q, x)) {
				seen[id] = true
				items = append(items, x)
			}
		}
	} else {
		for _, x := range all {
			if col.filter == nil || col.filter(q, x) {
				items = append(items, x)
			}
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(items, p.less)
	if after, ok := q["after"]; ok {
		col.listAfter(w, r, q, v, items, after, p.limit)
		return
	}

	total := len(items)
	last := max(1, (total+p.limit-1)/p.limit)
	page := []any{}
	if p.page <= last { // compare before multiplying: page may be huge
		start := (p.page - 1) * p.limit
		end := min(start+p.limit, total)
		for _, x := range items[start:end] {
			page = append(page, col.render(v, x))
		}
	}
	h := w.Header()
	h.Set("X-Total-Count", strconv.Itoa(total))
	h.Set("X-Page", strconv.Itoa(p.page))
	h.Set("X-Per-Page", strconv.Itoa(p.limit))
	h.Set("Link", linkHeader(r.URL.Path, q, p.page, p.limit, last))
	writeJSON(w, http.StatusOK, page)
}

// listAfter answers a keyset page: the first limit records whose id sorts
// after the given one (ids compare as text; the listing must be in id
// order: no sort, or sort=id), a total of the whole listing, and a
// rel="next" link while more follow. page cannot go with it.
func (col *collection[T]) listAfter(w http.ResponseWriter, r *http.Request, q url.Values, v string, items []*T, after []string, limit int) {
	var errs []FieldError
	if len(after) != 1 || after[0] == "" {
		errs = append(errs, FieldError{Field: "after", Code: codeInvalidValue, Message: "after must be one id"})
	}
	if q.Has("page") {
		errs = append(errs, FieldError{Field: "page", Code: codeInvalidValue, Message: "page cannot go with after"})
	}
	if sorts, ok := q["sort"]; ok && (len(sorts) != 1 || strings.TrimSpace(sorts[0]) != "id") {
		errs = append(errs, FieldError{Field: "sort", Code: codeInvalidValue, Message: "after needs the listing in id order (no sort, or sort=id)"})
	}
	if len(errs) > 0 {
		writeProblem(w, queryProblem(errs))
		return
	}
	start, _ := slices.BinarySearchFunc(items, after[0], func(x *T, id string) int { return strings.Compare(col.idOf(x), id) })
	if start < len(items) && col.idOf(items[start]) == after[0] {
		start++
	}
	end := min(start+limit, len(items))
	page := make([]any, 0, end-start)
	for _, x := range items[start:end] {
		page = append(page, col.render(v, x))
	}
	h := w.Header()
	h.Set("X-Total-Count", strconv.Itoa(len(items)))
	h.Set("X-Per-Page", strconv.Itoa(limit))
	if end < len(items) {
		u := url.Values{}
		for k, vs := range q {
			u[k] = vs
		}
		u.Set("after", col.idOf(items[end-1]))
		u.Set("limit", strconv.Itoa(limit))
		h.Set("Link", "<"+r.URL.Path+"?"+u.Encode()+`>; rel="next"`)
	}
	writeJSON(w, http.StatusOK, page)
}

// linkHeader builds the RFC 8288 Link value: first, prev, next, last, as
// relative URIs that keep every other query parameter.
func linkHeader(path string, q url.Values, page, limit, last int) string {
	link := func(n int, rel string) string {
		u := make(url.Values, len(q)+2)
		for k, vs := range q {
			u[k] = vs
		}
		u.Set("page", strconv.Itoa(n))
		u.Set("limit", strconv.Itoa(limit))
		return "<" + path + "?" + u.Encode() + `>; rel="` + rel + `"`
	}
	links := []string{link(1, "first")}
	if page > 1 {
		links = append(links, link(min(page-1, last), "prev"))
	}
	if page < last {
		links = append(links, link(page+1, "next"))
	}
	links = append(links, link(last, "last"))
	return strings.Join(links, ", ")
}

func (col *collection[T]) create(s *Server, w http.ResponseWriter, r *http.Request, c *company, v string) {
	raw, p := readObject(w, r)
	if p != nil {
		writeProblem(w, p)
		return
	}
	in := newInput(raw, modeCreate)
	s.mu.Lock()
	x := col.build(in, c, v, nil, s.now())
	if errs := in.finish(""); len(errs) > 0 {
		s.mu.Unlock()
		writeProblem(w, validationProblem(errs))
		return
	}
	col.assign(c, x)
	id := col.idOf(x)
	col.records(c)[id] = x
	s.mu.Unlock()
	w.Header().Set("Location", "/"+v+"/"+col.path+"/"+id)
	col.writeRecord(w, http.StatusCreated, v, x)
}

func (col *collection[T]) update(s *Server, w http.ResponseWriter, r *http.Request, c *company, v, id string, m mode) {
	s.mu.RLock()
	_, exists := col.records(c)[id]
	s.mu.RUnlock()
	if !exists { // 404 before looking at the body: the id decides first
		col.notFound(w, id)
		return
	}
	raw, p := readObject(w, r)
	if p != nil {
		writeProblem(w, p)
		return
	}
	in := newInput(raw, m)
	s.mu.Lock()
	cur, ok := col.records(c)[id]
	if !ok { // deleted meanwhile
		s.mu.Unlock()
		col.notFound(w, id)
		return
	}
	if tag, stale := col.stale(r, v, cur); stale { // checked under the write lock: no lost update
		s.mu.Unlock()
		preconditionFailed(w, col.name, id, tag)
		return
	}
	x := col.build(in, c, v, cur, s.now())
	if errs := in.finish(""); len(errs) > 0 {
		s.mu.Unlock()
		writeProblem(w, validationProblem(errs))
		return
	}
	col.records(c)[id] = x
	s.mu.Unlock()
	col.writeRecord(w, http.StatusOK, v, x)
}

// stale reports whether r's If-Match excludes cur's current version, and
// that version.
func (col *collection[T]) stale(r *http.Request, v string, cur *T) (string, bool) {
	if len(r.Header.Values("If-Match")) == 0 {
		return "", false
	}
	_, tag, err := renderETag(col.render(v, cur))
	if err != nil {
		return "", true
	}
	return tag, ifMatchFails(r, tag)
}

// writeRecord answers a record with its ETag.
func (col *collection[T]) writeRecord(w http.ResponseWriter, status int, v string, x *T) {
	body, tag, err := renderETag(col.render(v, x))
	if err != nil {
		writeProblem(w, newProblem(http.StatusInternalServerError, "internal", "encoding the response failed"))
		return
	}
	writeTagged(w, status, body, tag)
}

func (col *collection[T]) remove(s *Server, w http.ResponseWriter, r *http.Request, c *company, v, id string) {
	s.mu.Lock()
	cur, ok := col.records(c)[id]
	if !ok {
		s.mu.Unlock()
		col.notFound(w, id)
		return
	}
	if tag, stale := col.stale(r, v, cur); stale {
		s.mu.Unlock()
		preconditionFailed(w, col.name, id, tag)
		return
	}
	if col.inUse != nil && col.inUse(c, id) {
		s.mu.Unlock()
		writeProblem(w, newProblem(http.StatusConflict, "conflict", "%s %q is still referenced by invoices", col.name, id))
		return
	}
	delete(col.records(c), id)
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// readObject reads a JSON object body of at most maxBodyBytes.
func readObject(w http.ResponseWriter, r *http.Request) (map[string]json.RawMessage, *Problem) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return nil, newProblem(http.StatusUnsupportedMediaType, "unsupported-media-type", "the body must be application/json")
		}
	}
	if r.ContentLength > maxBodyBytes {
		return nil, tooLarge()
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, tooLarge()
		}
		return nil, newProblem(http.StatusBadRequest, "bad-request", "reading the body failed")
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil, newProblem(http.StatusBadRequest, "malformed-json", "the request body is empty; a JSON object is required")
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil {
		if _, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
			return nil, newProblem(http.StatusBadRequest, "malformed-json", "the request body must be a JSON object")
		}
		return nil, newProblem(http.StatusBadRequest, "malformed-json", "the request body is not valid JSON: %v", err)
	}
	if obj == nil {
		return nil, newProblem(http.StatusBadRequest, "malformed-json", "the request body must be a JSON object")
	}
	return obj, nil
}

func tooLarge() *Problem {
	return newProblem(http.StatusRequestEntityTooLarge, "payload-too-large", "the request body exceeds %d bytes", maxBodyBytes)
}
