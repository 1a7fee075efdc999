package demo

import (
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// CompanyHeader names the request header that scopes every ERP request.
const CompanyHeader = "X-ERP-Company-ID"

// Server is the demo ERP. It is safe for concurrent use.
type Server struct {
	now func() time.Time

	mu        sync.RWMutex        // guards the records inside companies
	companies map[string]*company // fixed after New

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

// New returns a Server seeded with the demo companies.
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

// ServeHTTP routes /_demo/… diagnostics and /{version}/{collection}[/{id}].
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if name, ok := strings.CutPrefix(path, "/_demo/"); ok {
		s.serveDiagnostic(w, r, name)
		return
	}
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

// company resolves the X-ERP-Company-ID header.
func (s *Server) company(r *http.Request) (*company, *Problem) {
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
