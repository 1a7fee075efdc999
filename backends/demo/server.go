package demo

import (
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/erpgate/erpgate/backends/edgeassert"
)

// CompanyHeader names the request header that scoped every ERP request
// before the edge assertion; it is read only by a server made without
// WithAssertions.
const CompanyHeader = "X-ERP-Company-ID"

// Server is the demo ERP. It is safe for concurrent use.
type Server struct {
	now func() time.Time

	// guard verifies the edge assertion of every ERP request (nil: the
	// company comes from CompanyHeader, as before assertions).
	guard http.Handler

	mu        sync.RWMutex        // guards the records inside companies
	companies map[string]*company // fixed after New
	// attachments: what each invoice received (sizes and hashes, never
	// the bytes), by company and invoice id (attachments.go)
	attachments map[string][]attachedFile

	connsMu sync.Mutex
	conns   map[net.Conn]struct{} // hijacked WebSocket connections, closed by Close
	closed  bool
}

// Option configures a Server.
type Option func(*Server)

// WithClock sets the clock used for server-assigned dates (defaults to time.Now).
func WithClock(now func() time.Time) Option {
	return func(s *Server) { s.now = now }
}

// WithAssertions makes the server answer ERP requests only with a valid
// edge assertion, checked by v, and take the company from it alone (never
// from a header). v names the audience each request must have; use
// Backends.For as its AudienceFor. Diagnostics under /_demo/ need none.
func WithAssertions(v *edgeassert.Verifier) Option {
	return WithGuard(v.Middleware)
}

// WithGuard is WithAssertions for a caller that builds its verifier later
// (at the first request): guard wraps the ERP services once, at New, and
// must let a request through only with its verified identity in the
// context (edgeassert.NewContext).
func WithGuard(guard func(http.Handler) http.Handler) Option {
	return func(s *Server) {
		s.guard = guard(http.HandlerFunc(s.serveERP))
	}
}

// New returns a Server seeded with the demo companies. Without
// WithAssertions it trusts CompanyHeader from whoever connects: for tests
// and benchmarks of the edge alone, never where anyone else can reach it.
func New(opts ...Option) *Server {
	s := &Server{
		now:       time.Now,
		companies: make(map[string]*company, len(seedSpecs)),
		conns:     make(map[net.Conn]struct{}),
	}
	for _, spec := range seedSpecs {
		s.companies[spec.id] = seed(spec)
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Companies returns the ids of the seeded companies.
func (s *Server) Companies() []string { return sortedKeys(s.companies) }

// ServeHTTP routes /_demo/… diagnostics and the ERP services: REST at
// /{version}/{collection}[/{id}] (and uploads at
// /v2/invoices/{id}/attachments), OData at /odata/v1, JSON-RPC at /jsonrpc.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if name, ok := strings.CutPrefix(r.URL.Path, "/_demo/"); ok {
		s.serveDiagnostic(w, r, name)
		return
	}
	if ServiceOf(r.URL.Path) == "" {
		notFoundPath(w, r)
		return
	}
	if s.guard != nil {
		s.guard.ServeHTTP(w, r)
		return
	}
	s.serveERP(w, r)
}

// serveERP serves one of the ERP services (after the guard, if any).
func (s *Server) serveERP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if path == jsonrpcPath {
		s.serveJSONRPC(w, r)
		return
	}
	if rest, ok := strings.CutPrefix(path, odataPrefix); ok && (rest == "" || rest[0] == '/') {
		s.serveOData(w, r, rest)
		return
	}
	if len(path) > 1 {
		path = strings.TrimSuffix(path, "/")
	}
	segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
	if len(segs) == 4 && segs[1] == "invoices" && segs[3] == attachmentsPath && segs[2] != "" {
		c, p := s.company(r)
		if p != nil {
			writeProblem(w, p)
			return
		}
		s.serveAttachments(w, r, c, segs[0], segs[2])
		return
	}
	if len(segs) < 2 || len(segs) > 3 || (segs[0] != v1 && segs[0] != v2) {
		notFoundPath(w, r)
		return
	}
	res, ok := resources[segs[1]]
	if !ok || (len(segs) == 3 && segs[2] == "") {
		notFoundPath(w, r)
		return
	}
	c, p := s.company(r)
	if p != nil {
		writeProblem(w, p)
		return
	}
	if len(segs) == 2 {
		res.serveCollection(s, w, r, c, segs[0])
		return
	}
	res.serveItem(s, w, r, c, segs[0], segs[2])
}

// Services of the demo, as ServiceOf names them: the three REST
// collections (v1 and v2 alike), the OData service and the JSON-RPC one.
const (
	ServiceOData   = "odata"
	ServiceJSONRPC = "jsonrpc"
)

// ServiceOf names the demo service of an ERP path ("" for none): the REST
// collection (invoices, customers, products), ServiceOData or
// ServiceJSONRPC.
func ServiceOf(path string) string {
	if path == jsonrpcPath {
		return ServiceJSONRPC
	}
	if rest, ok := strings.CutPrefix(path, odataPrefix); ok && (rest == "" || rest[0] == '/') {
		return ServiceOData
	}
	rest, ok := strings.CutPrefix(path, "/"+v1+"/")
	if !ok {
		if rest, ok = strings.CutPrefix(path, "/"+v2+"/"); !ok {
			return ""
		}
	}
	name, _, _ := strings.Cut(rest, "/")
	if _, ok := resources[name]; !ok {
		return ""
	}
	return name
}

// Backends maps each demo service (ServiceOf) to the name of the edge
// backend it is registered as: the audience its requests' assertions must
// carry.
type Backends map[string]string

// DefaultBackends are the names Caddyfile.example registers the demo under.
var DefaultBackends = Backends{
	"invoices": "invoices", "customers": "customers", "products": "products",
	ServiceOData: "ledger", ServiceJSONRPC: "inventory",
}

// With returns b with the names in overrides replacing b's.
func (b Backends) With(overrides map[string]string) Backends {
	out := make(Backends, len(b)+len(overrides))
	for k, v := range b {
		out[k] = v
	}
	for k, v := range overrides {
		out[k] = v
	}
	return out
}

// For names the backend of r's path ("" for none): an AudienceFor for
// edgeassert.Config.
func (b Backends) For(r *http.Request) string {
	return b[ServiceOf(r.URL.Path)]
}

// company resolves the caller's company: from the verified assertion, or
// without assertions from the X-ERP-Company-ID header.
func (s *Server) company(r *http.Request) (*company, *Problem) {
	if s.guard != nil {
		id, ok := edgeassert.FromContext(r.Context())
		if !ok { // the guard lets no request through without one
			return nil, newProblem(http.StatusUnauthorized, "unauthenticated", "a valid edge assertion is required")
		}
		c, ok := s.companies[id.Company]
		if !ok {
			return nil, newProblem(http.StatusNotFound, "unknown-company", "company %q does not exist", id.Company)
		}
		return c, nil
	}
	vals := r.Header.Values(CompanyHeader)
	switch {
	case len(vals) == 0 || strings.TrimSpace(vals[0]) == "":
		return nil, newProblem(http.StatusBadRequest, "missing-company", "the %s header is required", CompanyHeader)
	case len(vals) > 1:
		return nil, newProblem(http.StatusBadRequest, "bad-request", "the %s header must be sent once", CompanyHeader)
	}
	c, ok := s.companies[strings.TrimSpace(vals[0])]
	if !ok {
		return nil, newProblem(http.StatusNotFound, "unknown-company", "company %q does not exist", vals[0])
	}
	return c, nil
}

func notFoundPath(w http.ResponseWriter, r *http.Request) {
	writeProblem(w, newProblem(http.StatusNotFound, "not-found", "no resource at %s", r.URL.Path))
}

// Close ends the WebSocket echo connections still open; a new one is refused.
// HTTP requests in flight end with their own contexts.
func (s *Server) Close() error {
	s.connsMu.Lock()
	defer s.connsMu.Unlock()
	s.closed = true
	for conn := range s.conns {
		_ = conn.Close()
		delete(s.conns, conn)
	}
	return nil
}

// track registers a hijacked connection; false when the server is closed.
func (s *Server) track(conn net.Conn) bool {
	s.connsMu.Lock()
	defer s.connsMu.Unlock()
	if s.closed {
		return false
	}
	s.conns[conn] = struct{}{}
	return true
}

func (s *Server) untrack(conn net.Conn) {
	s.connsMu.Lock()
	delete(s.conns, conn)
	s.connsMu.Unlock()
}
