// Package events is the erp_events handler: the caller's company's events,
// live, as Server-Sent Events (`GET /api/v1/events/stream`) or over a
// WebSocket (`GET /api/v1/events/ws`). The fan-out, resume and framing are
// internal/eventstream's; this package reads the verified identity the
// erp_auth chain left, and keeps one hub per erp app Lasting (erpapp.Keep),
// so a config reload neither drops the hub nor its connections. Of
// caddymodules it imports only the erp app and caddyfileutil.
package events

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/erpgate/erpgate/caddymodules/erpapp"
	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/depfail"
	"github.com/erpgate/erpgate/internal/eventstream"
	"github.com/erpgate/erpgate/internal/promreg"
	"github.com/erpgate/erpgate/internal/revocation"
)

func init() {
	caddy.RegisterModule(Handler{})
	httpcaddyfile.RegisterHandlerDirective("erp_events", parseCaddyfile)
	httpcaddyfile.RegisterDirectiveOrder("erp_events", httpcaddyfile.Before, "respond")
}

// Handler streams the caller's company's events:
//
//	handle /api/v1/events/* {
//		erp_auth {
//			authenticated_only
//		}
//		erp_events
//	}
//
// `GET …/events/stream` answers `text/event-stream`: one frame per event,
// `id:` its stream sequence, `event:` its CloudEvent type, `data:` the
// CloudEvent (structured JSON), and a comment every `heartbeat`.
// `GET …/events/ws` upgrades to a WebSocket (the token in the `bearer`
// subprotocol, `Sec-WebSocket-Protocol: bearer, <token>`, or any header the
// edge accepts): one text message per event, `{"id": <seq>, "event":
// <CloudEvent>}`.
//
// `?types=erp.invoices.*,erp.customers.*` (comma-separated type patterns)
// narrows the stream; without it the caller gets every type its scope
// reads (a business event `erp.<backend>.*` needs `<backend>:read`, the
// others `webhooks:read`). A pattern that is not one is 400 BAD_REQUEST
// (`field: types`); a pattern of a kind the caller's scope cannot read is
// 403 FORBIDDEN. Only the caller's company's events are sent.
//
// Resume after a drop: `Last-Event-ID: <id>` (what EventSource sends when
// it reconnects) or `?last_event_id=<id>` (the WebSocket's way): the events
// after it are replayed, then the live ones, without gap or duplicate, as
// far back as the stream keeps events (`erp { nats { max_age } }`).
//
// A stream ends with a final error when its credential is revoked (logout,
// logout everywhere, a demotion, a revoked API key: on every instance,
// through the revocation set) or expires — SSE `event: error` with
// `data: {"code": "TOKEN_REVOKED"|"TOKEN_EXPIRED", "message": …}`,
// WebSocket close code 4401 — when the client falls behind by more than
// `buffer` events (`SLOW_CONSUMER`, WebSocket 1013: resume with the last
// id), and when the process stops (`SERVICE_UNAVAILABLE`, WebSocket 1001).
type Handler struct {
	// Company is the placeholder naming the caller's company.
	// Default: `{http.auth.user.company_id}`.
	Company string `json:"company,omitempty"`

	// Heartbeat is the interval of keep-alive comments (SSE) and pings
	// (WebSocket). Default: 15s.
	Heartbeat caddy.Duration `json:"heartbeat,omitempty"`

	// Buffer is how many events a connection may have waiting before it is
	// ended as too slow. Default: 256.
	Buffer int `json:"buffer,omitempty"`

	// WriteTimeout bounds one write to a client. Default: 10s.
	WriteTimeout caddy.Duration `json:"write_timeout,omitempty"`

	app    *erpapp.App
	hub    *lastingHub
	logger *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.erp_events",
		New: func() caddy.Module { return new(Handler) },
	}
}

// lastingHub is the hub of a Lasting: it outlives config reloads.
type lastingHub struct {
	hub    *eventstream.Hub
	cancel context.CancelFunc
}

// Destruct stops reading the stream and ends every connection.
func (l *lastingHub) Destruct() error {
	l.cancel()
	l.hub.Close()
	return nil
}

// Provision sets defaults and takes the Lasting's hub.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	app, err := erpapp.Get(ctx)
	if err != nil {
		return err
	}
	h.app = app
	if h.Company == "" {
		h.Company = "{http.auth.user.company_id}"
	}
	cfg := eventstream.Config{Buffer: h.Buffer, Heartbeat: time.Duration(h.Heartbeat), WriteTimeout: time.Duration(h.WriteTimeout)}
	cfg = cfg.WithDefaults() // the key names the settings in effect
	key := cfg.Heartbeat.String() + "|" + cfg.WriteTimeout.String() + "|" + strconv.Itoa(cfg.Buffer)
	logger := h.logger
	h.hub, err = erpapp.Keep(app, key, func(l *erpapp.Lasting) (*lastingHub, error) {
		set := l.Revocations()
		cfg.Revoked = set.Has
		cfg.Logger = logger
		hub := eventstream.NewHub(cfg)
		set.OnAdd(func(id string) {
			if !strings.HasPrefix(id, revocation.APIKeyRotatedPrefix) { // a rotated key still works for a while
				hub.Revoke(id)
			}
		})
		rctx, cancel := context.WithCancel(l.Context())
		go hub.Run(rctx, l.EventsWait)
		go closeOnExit(rctx, hub)
		return &lastingHub{hub: hub, cancel: cancel}, nil
	})
	if err != nil {
		return err
	}
	_, err = promreg.Register(ctx.GetMetricsRegistry(), prometheus.Collector(hubCollector{h.hub.hub}))
	return err
}

// closeOnExit ends the streams when the process exits: the HTTP server's
// shutdown waits for every active request, and a stream never finishes by
// itself. (A reload leaves them: the hub outlives it.)
func closeOnExit(ctx context.Context, hub *eventstream.Hub) {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if caddy.Exiting() {
				hub.Close()
				return
			}
		}
	}
}

// Validate checks the configuration.
func (h *Handler) Validate() error {
	switch {
	case h.Buffer < 0:
		return errors.New("erp_events: buffer must be positive")
	case h.Heartbeat < 0 || h.WriteTimeout < 0:
		return errors.New("erp_events: durations must be positive")
	}
	return nil
}

// readyWait bounds how long a request waits for the hub at start-up.
const readyWait = 3 * time.Second

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	ws := strings.HasSuffix(r.URL.Path, "/events/ws")
	if !ws && !strings.HasSuffix(r.URL.Path, "/events/stream") {
		return caddyhttp.Error(http.StatusNotFound, contract.NewError(http.StatusNotFound, contract.CodeNotFound, "not found"))
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		return caddyhttp.Error(http.StatusMethodNotAllowed, contract.NewError(http.StatusMethodNotAllowed, contract.CodeBadRequest, "method not allowed"))
	}
	repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if !ok {
		return caddyhttp.Error(http.StatusInternalServerError, contract.NewError(http.StatusInternalServerError, contract.CodeInternal, "internal error"))
	}
	company := repl.ReplaceAll(h.Company, "")
	if company == "" {
		return caddyhttp.Error(http.StatusUnauthorized, contract.NewError(http.StatusUnauthorized, contract.CodeUnauthenticated, "authentication required"))
	}
	scope, _ := caddyhttp.GetVar(r.Context(), contract.VarScope).(string)
	req := eventstream.Request{Company: company, Scopes: eventstream.SplitScope(scope)}
	if cred, ok := caddyhttp.GetVar(r.Context(), contract.VarCredential).(*contract.Credential); ok {
		req.Revocable, req.Expiry = cred.Revocable, cred.Expiry
	}
	q := r.URL.Query()
	var err error
	if req.Patterns, err = eventstream.ParseTypes(q.Get("types")); err != nil || len(q["types"]) > 1 {
		return badRequest("types", eventstream.ErrBadTypes.Error())
	}
	if p := eventstream.Unreadable(req.Patterns, req.Scopes); p != "" {
		return caddyhttp.Error(http.StatusForbidden, contract.NewError(http.StatusForbidden, contract.CodeForbidden,
			"the credential's scope cannot read the events of "+p+" (it needs "+eventstream.PatternScope(p)+")"))
	}
	last, field := r.Header.Get("Last-Event-ID"), "Last-Event-ID"
	if last == "" {
		last, field = q.Get("last_event_id"), "last_event_id"
	}
	if req.After, req.Resume, err = eventstream.ParseLastEventID(last); err != nil {
		return badRequest(field, err.Error())
	}
	if ws && !isWebSocket(r) {
		w.Header().Set("Upgrade", "websocket")
		return badRequest("", "this endpoint needs a WebSocket upgrade (GET with Upgrade: websocket)")
	}
	if !h.hub.hub.Ready() {
		wctx, cancel := context.WithTimeout(r.Context(), readyWait)
		ready := h.hub.hub.WaitReady(wctx)
		cancel()
		if !ready {
			return caddyhttp.Error(http.StatusServiceUnavailable, depfail.Error("the event stream is temporarily unavailable"))
		}
	}
	caddyhttp.SetVar(r.Context(), contract.VarEnveloped, true)
	if ws {
		return h.serveWS(w, r, req)
	}
	return h.serveSSE(w, r, req)
}

func (h *Handler) serveSSE(w http.ResponseWriter, r *http.Request, req eventstream.Request) error {
	if id, _ := caddyhttp.GetVar(r.Context(), contract.VarRequestID).(string); id != "" {
		w.Header().Set(contract.HeaderRequestID, id)
	}
	hub := h.hub.hub
	st, err := hub.Open(req) // before the head: nothing published after it is missed
	if err != nil {
		return caddyhttp.Error(http.StatusServiceUnavailable, depfail.Error("the event stream is temporarily unavailable"))
	}
	if r.ProtoMajor == 1 {
		// HTTP/1: the stream goes on from a goroutine of its own on the
		// hijacked connection, and this request's state is freed (an idle
		// stream costs about a fifth of what it does inside the handler)
		if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
			caddyhttp.SetVar(r.Context(), contract.VarResponseStarted, true)
			sink, err := eventstream.StartRawSSE(c, w.Header(), hub.Config().WriteTimeout)
			if err != nil {
				st.Close()
				c.Close()
				return nil
			}
			ctx := h.app.Lasting().Context()
			go func() {
				defer sink.Close()
				reason, err := st.Serve(ctx, sink)
				h.ended("sse", reason, err)
			}()
			return nil
		}
	}
	sink, err := eventstream.StartSSE(w, hub.Config().WriteTimeout)
	caddyhttp.SetVar(r.Context(), contract.VarResponseStarted, true)
	if err != nil {
		st.Close()
		return nil // the client is gone
	}
	defer sink.Finish()
	reason, err := st.Serve(r.Context(), sink)
	h.ended("sse", reason, err)
	return nil
}

func (h *Handler) serveWS(w http.ResponseWriter, r *http.Request, req eventstream.Request) error {
	// erp_jwt took the token out of `Sec-WebSocket-Protocol: bearer, <token>`
	// (it must reach no backend); a token without an Authorization header
	// came from there, and the answer must select `bearer`.
	sub := ""
	if r.Header.Get("Authorization") == "" && !strings.HasPrefix(req.Revocable, revocation.APIKeyPrefix) {
		sub = "bearer"
		r.Header.Add("Sec-Websocket-Protocol", sub)
	}
	st, err := h.hub.hub.Open(req) // before the upgrade: nothing published after it is missed
	if err != nil {
		return caddyhttp.Error(http.StatusServiceUnavailable, depfail.Error("the event stream is temporarily unavailable"))
	}
	// the connection outlives the request's context once hijacked: it ends
	// with the Lasting (or the client)
	conn, err := eventstream.AcceptWS(h.app.Lasting().Context(), w, r, sub)
	caddyhttp.SetVar(r.Context(), contract.VarResponseStarted, true)
	if err != nil {
		st.Close()
		h.logger.Debug("WebSocket upgrade failed", zap.Error(err))
		return nil // Accept answered
	}
	// the stream goes on from a goroutine of its own: this request's state
	// (and the handler goroutine's grown stack) is freed
	go func() {
		defer conn.Close()
		reason, err := st.Serve(conn.Ctx, conn)
		h.ended("ws", reason, err)
	}()
	return nil
}

func (h *Handler) ended(kind string, reason eventstream.Reason, err error) {
	if ce := h.logger.Check(zap.DebugLevel, "event stream ended"); ce != nil {
		ce.Write(zap.String("transport", kind), zap.String("reason", reason.Code()), zap.Error(err))
	}
}

func badRequest(field, msg string) error {
	e := contract.NewError(http.StatusBadRequest, contract.CodeBadRequest, msg)
	e.Field = field
	return caddyhttp.Error(http.StatusBadRequest, e)
}

func isWebSocket(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(Handler)
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return m, err
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
	_ caddyfile.Unmarshaler       = (*Handler)(nil)
	_ caddy.Destructor            = (*lastingHub)(nil)
)
