package graphql

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/propagation"
	"go.uber.org/zap"

	"github.com/erpgate/erpgate/backends/dialects"
	"github.com/erpgate/erpgate/caddymodules/erpapp"
	"github.com/erpgate/erpgate/caddymodules/internal/assertion"
	"github.com/erpgate/erpgate/contract"
	env "github.com/erpgate/erpgate/internal/envelope"
	"github.com/erpgate/erpgate/internal/graphql"
)

// backendRoute is a backend as GraphQL calls it, precomputed per config:
// the version its graphql block names (else its default), its dialect and
// its upstreams, picked round-robin.
type backendRoute struct {
	name     string
	version  *erpapp.Version
	dialect  dialects.Dialect
	resource string
	public   string // "/api/<version>/<backend>": what the backend's collection stands for in links
	scheme   string
	dials    []string
	next     atomic.Uint32
	calls    prometheus.Counter
}

func newBackendRoute(b *erpapp.Backend) *backendRoute {
	v := b.GraphQLVersion()
	scheme := v.Scheme()
	if scheme == "" {
		scheme = "http"
	}
	return &backendRoute{name: b.Name(), version: v, dialect: b.Dialect(), resource: b.Resource(),
		public: "/api/" + v.Name() + "/" + b.Name(), scheme: scheme, dials: v.Dials(),
		calls: metricBackendCalls.WithLabelValues(b.Name())}
}

// dial is the next upstream address, round-robin.
func (br *backendRoute) dial() string {
	if len(br.dials) == 0 {
		return ""
	}
	return br.dials[int(br.next.Add(1)-1)%len(br.dials)]
}

// newTransport is the config's one transport to the backends: kept-alive
// connections shared by every request of the config, closed in Cleanup.
func newTransport(timeout time.Duration) *http.Transport {
	return &http.Transport{
		Proxy:                 nil, // backends are dialled directly, as reverse_proxy does
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: timeout,
		ExpectContinueTimeout: time.Second,
	}
}

// fetcher makes one request's backend calls with its caller's identity.
type fetcher struct {
	h         *Handler
	r         *http.Request // the client's: its credential and identity vouch for the calls
	id        assertion.Identity
	requestID string
	trace     http.Header // traceparent/tracestate to send, or nil
}

// Fetch runs the calls, at most max_parallel at once, and returns their
// results in order.
func (f *fetcher) Fetch(ctx context.Context, calls []graphql.Call) []graphql.Result {
	out := make([]graphql.Result, len(calls))
	if len(calls) == 1 {
		out[0] = f.one(ctx, &calls[0])
		return out
	}
	sem := make(chan struct{}, f.h.MaxParallel)
	var wg sync.WaitGroup
	for i := range calls {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			out[i] = f.one(ctx, &calls[i])
		})
	}
	wg.Wait()
	return out
}

// callError is a failed call's result.
func callError(code, msg string) graphql.Result {
	return graphql.Result{Total: -1, Err: &graphql.Error{Code: code, Message: msg}}
}

func contractResult(err error) graphql.Result {
	if ce, ok := contract.AsError(err); ok {
		return graphql.Result{Total: -1, Err: &graphql.Error{Code: ce.Code, Message: ce.Message, Field: ce.Field, Context: ce.Context}}
	}
	return callError(contract.CodeInternal, "internal error")
}

// one makes one backend call: the request as erp_version and erp_authz
// would have made it for a client's REST call, through the backend's dialect.
func (f *fetcher) one(ctx context.Context, c *graphql.Call) graphql.Result {
	br := f.h.routes[c.Backend]
	if br == nil {
		return callError(contract.CodeInternal, "no backend "+strconv.Quote(c.Backend))
	}
	br.calls.Inc()
	var method string
	switch c.Op {
	case graphql.OpItem:
		method = http.MethodGet
	case graphql.OpList:
		method = http.MethodGet
	case graphql.OpCreate:
		method = http.MethodPost
	case graphql.OpUpdate:
		method = http.MethodPatch
	case graphql.OpDelete:
		method = http.MethodDelete
	default:
		return callError(contract.CodeInternal, "unknown backend operation")
	}
	dial := br.dial()
	if dial == "" {
		return callError(contract.CodeUpstreamUnavailable, "the "+br.name+" backend has no upstream")
	}
	tok, err := f.h.signer.Of(f.r, br.name, f.id)
	if err != nil {
		return contractResult(err)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(f.h.Timeout))
	defer cancel()
	u := &url.URL{Scheme: br.scheme, Host: dial, Path: br.public}
	if c.ID != "" {
		u.Path += "/" + c.ID
		u.RawPath = br.public + "/" + url.PathEscape(c.ID)
	}
	if len(c.Query) > 0 {
		u.RawQuery = c.Query.Encode()
	}
	var body io.Reader
	if c.Body != nil {
		body = bytes.NewReader(c.Body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return callError(contract.CodeBadRequest, "the id cannot be sent to the backend")
	}
	req.Header = http.Header{
		"Accept": {"application/json"},
		http.CanonicalHeaderKey(contract.HeaderCompanyID): {f.id.Company},
		http.CanonicalHeaderKey(contract.HeaderUserID):    {f.id.User},
		http.CanonicalHeaderKey(contract.HeaderRoles):     {f.id.Roles},
		http.CanonicalHeaderKey(contract.HeaderScope):     {f.id.Scope},
		contract.HeaderRequestIDKey:                       {f.requestID},
	}
	if c.Body != nil {
		req.Header["Content-Type"] = []string{"application/json"}
	}
	if tok != "" {
		req.Header[http.CanonicalHeaderKey(contract.HeaderAssertion)] = []string{tok}
	}
	for k, v := range f.trace {
		req.Header[k] = v
	}
	t := dialects.Target{Backend: br.name, Version: br.version.Name(), BasePath: br.version.BasePath(),
		Resource: br.resource, Public: br.public, ID: c.ID}
	tr, err := br.dialect.Rewrite(req, &t)
	if err != nil {
		return contractResult(err)
	}
	resp, err := f.h.transport.RoundTrip(req)
	if err != nil {
		return f.transportFailure(ctx, br, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, f.h.MaxResponse+1))
	if err != nil {
		return f.transportFailure(ctx, br, err)
	}
	if int64(len(raw)) > f.h.MaxResponse {
		return callError(contract.CodeUpstreamUnavailable, "the "+br.name+" backend's answer is larger than "+strconv.FormatInt(f.h.MaxResponse, 10)+" bytes")
	}
	res := tr.Translate(&env.Answer{Request: req, Status: resp.StatusCode, Header: resp.Header, Body: raw})
	if method != http.MethodGet && resp.StatusCode >= 200 && resp.StatusCode <= 299 && f.h.writes != nil {
		// a mutation changed the backend: what the edge cached of it is stale
		f.h.writes.Written(context.WithoutCancel(ctx), f.id.Company, br.name)
	}
	return f.result(br, resp.StatusCode, &res)
}

// result reads a translated answer into the executor's Result.
func (f *fetcher) result(br *backendRoute, status int, res *env.Result) graphql.Result {
	if res.Status != 0 {
		status = res.Status
	}
	if len(res.Errors) > 0 || status >= 400 {
		if len(res.Errors) == 0 {
			return callError(contract.CodeForStatus(status), contract.MessageForStatus(status))
		}
		e := res.Errors[0]
		return graphql.Result{Total: -1, Err: &graphql.Error{Code: e.Code, Message: e.Message, Field: e.Field, Context: e.Context}}
	}
	if len(res.Data) > 0 && !env.ValidJSON(res.Data) {
		return callError(contract.CodeUpstreamUnavailable, "the "+br.name+" backend's answer is not valid JSON")
	}
	out := graphql.Result{Data: res.Data, Total: -1}
	if p := res.Pagination; p != nil {
		out.Total, out.HasNext = p.Total, p.HasNext
	}
	return out
}

// transportFailure is the result of a call that got no (whole) answer:
// UPSTREAM_TIMEOUT past the call's timeout, else UPSTREAM_UNAVAILABLE.
func (f *fetcher) transportFailure(ctx context.Context, br *backendRoute, err error) graphql.Result {
	var ne net.Error
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return callError(contract.CodeUpstreamTimeout, "the "+br.name+" backend did not answer in time")
	}
	if c := f.h.logger.Check(zap.DebugLevel, "erp_graphql: backend call failed"); c != nil {
		c.Write(zap.String("backend", br.name), zap.String("request_id", f.requestID), zap.Error(err))
	}
	return callError(contract.CodeUpstreamUnavailable, "the "+br.name+" backend is unavailable")
}

// traceHeaders are the W3C trace context headers for the backend calls:
// the request's span when Caddy traces (its `tracing` handler), else the
// client's own traceparent/tracestate passed on as reverse_proxy would.
func traceHeaders(r *http.Request) http.Header {
	h := http.Header{}
	propagation.TraceContext{}.Inject(r.Context(), propagation.HeaderCarrier(h))
	if len(h) == 0 {
		for _, k := range []string{"Traceparent", "Tracestate"} {
			if v := r.Header.Values(k); len(v) > 0 {
				h[k] = v
			}
		}
	}
	if len(h) == 0 {
		return nil
	}
	return h
}
