// Package respcache is the core of erp_cache: a cache of backend answers
// shared by the callers of one company that hold the same scopes. It has no
// Caddy import, so it tests and benchmarks alone.
//
// Isolation comes from the key: company, the caller's scope set (sorted and
// deduplicated), backend, version, path, canonical query and the request
// headers that change an answer (Accept, Accept-Language) are hashed into
// it, so an answer is never served to another company or to a caller with
// other permissions.
//
// Invalidation is a generation counter per (company, backend): the counter's
// value is part of every entry's key, and a write bumps it (one INCR in
// Redis, one map write in memory), so every entry of that company and
// backend becomes unreachable at once without being listed or deleted; the
// stale entries expire by their TTL.
package respcache

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Store keeps entries under generation-scoped keys. Implementations:
// Memory (one process) and Redis (shared by every edge instance).
type Store interface {
	// Lookup reads the group's current generation and the entry stored
	// under that generation and variant, in one step (one round trip in
	// Redis). A missing entry is (gen, nil, nil).
	Lookup(ctx context.Context, k Key) (gen uint64, val []byte, err error)
	// Put stores val under generation gen (the one Lookup returned) for ttl.
	Put(ctx context.Context, k Key, gen uint64, val []byte, ttl time.Duration) error
	// Invalidate bumps the group's generation: every entry stored before
	// is unreachable from then on.
	Invalidate(ctx context.Context, group string) error
}

// Key names one cached answer: Group is the (company, backend) whose
// generation it belongs to, Variant everything else that selects it.
type Key struct {
	Group   string // hex hash of company and backend
	Variant string // hex hash of scopes, version, path, query, headers
}

// Request is what selects an answer.
type Request struct {
	Company string
	Scope   string // space-separated, as the credential holds it
	Backend string
	Version string
	Path    string
	Query   string // raw query; canonicalised by KeyFor
	Header  http.Header
}

// variantHeaders are the request headers whose values change an answer and
// so are part of the key. A backend answer that Varies on any other header
// is not stored (see Cacheable).
var variantHeaders = []string{"Accept", "Accept-Language"}

// GroupFor is the generation group of a company's backend.
func GroupFor(company, backend string) string {
	h := sha256.New()
	writeField(h, company)
	writeField(h, backend)
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0])[:16])
}

// KeyFor is the key of r's answer.
func KeyFor(r Request) Key {
	h := sha256.New()
	writeField(h, SortedScopes(r.Scope))
	writeField(h, r.Version)
	writeField(h, r.Path)
	writeField(h, CanonicalQuery(r.Query))
	for _, name := range variantHeaders {
		writeField(h, strings.Join(r.Header.Values(name), ","))
	}
	var sum [sha256.Size]byte
	return Key{Group: GroupFor(r.Company, r.Backend), Variant: hex.EncodeToString(h.Sum(sum[:0])[:16])}
}

// writeField writes s length-prefixed, so no two field lists hash alike.
func writeField(h interface{ Write([]byte) (int, error) }, s string) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(s)))
	_, _ = h.Write(n[:])
	_, _ = h.Write([]byte(s))
}

// SortedScopes is the scope set, sorted and without duplicates, so the
// order a credential lists its scopes in does not split the cache.
func SortedScopes(scope string) string {
	f := strings.Fields(scope)
	if len(f) < 2 {
		return strings.Join(f, " ")
	}
	sort.Strings(f)
	out := f[:1]
	for _, s := range f[1:] {
		if s != out[len(out)-1] {
			out = append(out, s)
		}
	}
	return strings.Join(out, " ")
}

// CanonicalQuery sorts the query's parameters by name (keeping the order of
// a repeated name's values, which may matter to a backend) and re-encodes
// them, so `a=1&b=2` and `b=2&a=1` share an entry. An unparsable query is
// kept as it came.
func CanonicalQuery(raw string) string {
	if raw == "" {
		return ""
	}
	v, err := url.ParseQuery(raw)
	if err != nil {
		return raw
	}
	return v.Encode() // sorted by key
}

// Directives are the Cache-Control directives erp_cache acts on.
type Directives struct {
	NoStore, NoCache, Private, Public bool
	MaxAge, SMaxAge                   int // -1 when absent
}

// ParseCacheControl reads the Cache-Control values (and Pragma: no-cache,
// as RFC 9111 §5.4 allows for requests). Unknown directives are ignored.
func ParseCacheControl(h http.Header) Directives {
	d := Directives{MaxAge: -1, SMaxAge: -1}
	for _, line := range h.Values("Cache-Control") {
		for _, part := range strings.Split(line, ",") {
			name, val, _ := strings.Cut(strings.TrimSpace(part), "=")
			val = strings.Trim(strings.TrimSpace(val), `"`)
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "no-store":
				d.NoStore = true
			case "no-cache":
				d.NoCache = true
			case "private":
				d.Private = true
			case "public":
				d.Public = true
			case "max-age":
				d.MaxAge = seconds(val)
			case "s-maxage":
				d.SMaxAge = seconds(val)
			}
		}
	}
	for _, p := range h.Values("Pragma") {
		if strings.EqualFold(strings.TrimSpace(p), "no-cache") {
			d.NoCache = true
		}
	}
	return d
}

// seconds parses a delta-seconds value; an invalid one counts as 0 (RFC
// 9111 §4.2.1: a cache treats an invalid freshness lifetime as stale).
func seconds(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// RequestPolicy is what a GET's own headers ask of the cache.
type RequestPolicy int

const (
	// Use: read the cache, store a fresh answer.
	Use RequestPolicy = iota
	// Refresh: do not read (client no-cache or max-age=0), but store the
	// fresh answer for the next caller.
	Refresh
	// Bypass: neither read nor store (client no-store, a conditional or
	// range request, whose answer is not the full representation).
	Bypass
)

// PolicyFor decides how a GET with these headers uses the cache.
func PolicyFor(h http.Header) RequestPolicy {
	if h.Get("Range") != "" || h.Get("If-None-Match") != "" || h.Get("If-Modified-Since") != "" ||
		h.Get("If-Match") != "" || h.Get("If-Unmodified-Since") != "" {
		return Bypass
	}
	if h.Get("Cache-Control") == "" && h.Get("Pragma") == "" {
		return Use
	}
	d := ParseCacheControl(h)
	switch {
	case d.NoStore:
		return Bypass
	case d.NoCache || d.MaxAge == 0:
		return Refresh
	}
	return Use
}

// StoreTTL is how long a backend's answer may be kept: the configured ttl,
// shortened by the answer's s-maxage (or else max-age), and 0 (not stored)
// for anything but 200, for no-store, no-cache and private (this cache is
// shared by a company's callers, so an answer meant for one user stays
// out), for Set-Cookie, and for a Vary on a header outside the key.
func StoreTTL(status int, h http.Header, ttl time.Duration) time.Duration {
	if status != http.StatusOK || ttl <= 0 || len(h.Values("Set-Cookie")) > 0 {
		return 0
	}
	for _, line := range h.Values("Vary") {
		for _, name := range strings.Split(line, ",") {
			name = strings.TrimSpace(name)
			if name == "" {
				continue
			}
			if !isVariantHeader(name) {
				return 0
			}
		}
	}
	if h.Get("Cache-Control") == "" && h.Get("Pragma") == "" {
		return ttl
	}
	d := ParseCacheControl(h)
	if d.NoStore || d.NoCache || d.Private {
		return 0
	}
	age := d.SMaxAge
	if age < 0 {
		age = d.MaxAge
	}
	if age >= 0 {
		if lim := time.Duration(age) * time.Second; lim < ttl {
			ttl = lim
		}
	}
	return ttl
}

func isVariantHeader(name string) bool {
	for _, v := range variantHeaders {
		if strings.EqualFold(v, name) {
			return true
		}
	}
	return strings.EqualFold(name, "Accept-Encoding") // the edge compresses after the cache
}

// Entry is a stored answer: status, the backend's headers and body, and
// when it was stored (for Age).
type Entry struct {
	Status int
	Stored time.Time
	Header http.Header
	Body   []byte
}

const entryFormat = 1

// errCorrupt is returned for a stored value that does not decode.
var errCorrupt = errors.New("respcache: corrupt entry")

// Encode serialises e: a format byte, status, stored time (Unix ms), the
// header fields and the body, each length-prefixed.
func (e *Entry) Encode() []byte {
	n := 1 + 2 + 8 + 4 + 4 + len(e.Body)
	for k, vs := range e.Header {
		for _, v := range vs {
			n += 8 + len(k) + len(v)
		}
	}
	b := make([]byte, 0, n)
	b = append(b, entryFormat)
	b = binary.BigEndian.AppendUint16(b, uint16(e.Status))
	b = binary.BigEndian.AppendUint64(b, uint64(e.Stored.UnixMilli()))
	count := 0
	for _, vs := range e.Header {
		count += len(vs)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(count))
	for k, vs := range e.Header {
		for _, v := range vs {
			b = binary.BigEndian.AppendUint32(b, uint32(len(k)))
			b = append(b, k...)
			b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
			b = append(b, v...)
		}
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(e.Body)))
	return append(b, e.Body...)
}

// Decode reads an Encode'd entry. The body aliases b.
func Decode(b []byte) (*Entry, error) {
	if len(b) < 15 || b[0] != entryFormat {
		return nil, errCorrupt
	}
	e := &Entry{
		Status: int(binary.BigEndian.Uint16(b[1:])),
		Stored: time.UnixMilli(int64(binary.BigEndian.Uint64(b[3:]))),
	}
	count := int(binary.BigEndian.Uint32(b[11:]))
	b = b[15:]
	if count > len(b)/8 {
		return nil, errCorrupt
	}
	e.Header = make(http.Header, count)
	next := func() (string, bool) {
		if len(b) < 4 {
			return "", false
		}
		n := int(binary.BigEndian.Uint32(b))
		if n > len(b)-4 {
			return "", false
		}
		s := string(b[4 : 4+n])
		b = b[4+n:]
		return s, true
	}
	for i := 0; i < count; i++ {
		k, ok1 := next()
		v, ok2 := next()
		if !ok1 || !ok2 {
			return nil, errCorrupt
		}
		e.Header[k] = append(e.Header[k], v)
	}
	if len(b) < 4 || int(binary.BigEndian.Uint32(b)) != len(b)-4 {
		return nil, errCorrupt
	}
	e.Body = b[4:]
	return e, nil
}
