package eventstream

import (
	"context"
	"net/http"

	"github.com/coder/websocket"
)

// CloseAuth is the WebSocket close code of a connection whose credential
// was revoked or expired (the 4000 range is the application's; 4401 reads
// as HTTP's 401).
const CloseAuth websocket.StatusCode = 4401

// closeCode is the close code of a connection ended for r.
func closeCode(r Reason) websocket.StatusCode {
	switch r {
	case ReasonRevoked, ReasonExpired:
		return CloseAuth
	case ReasonSlow:
		return websocket.StatusTryAgainLater // 1013: resume with last_event_id
	}
	return websocket.StatusGoingAway // 1001: the server stops
}

// WS writes events to a WebSocket: one text message per event,
// `{"id": <seq>, "event": <CloudEvent>}`. Nothing the client sends is read
// but control frames (pings, close); a data message closes the connection.
type WS struct {
	c *websocket.Conn
	// Ctx ends when the client closed the connection (or it broke): serve
	// the stream with it (a hijacked request's own context does not end).
	Ctx context.Context
}

// AcceptWS upgrades the request. subprotocol, when not empty, is the one
// the server selects (`bearer`, when the token came in the subprotocol
// list: a browser fails a handshake whose answer selects none). The origin
// is not checked: the connection is authenticated by the token the client
// sends, never by ambient credentials (cookies), so a cross-site page gains
// nothing it did not already hold.
func AcceptWS(ctx context.Context, w http.ResponseWriter, r *http.Request, subprotocol string) (*WS, error) {
	opts := &websocket.AcceptOptions{InsecureSkipVerify: true, CompressionMode: websocket.CompressionDisabled}
	if subprotocol != "" {
		opts.Subprotocols = []string{subprotocol}
	}
	c, err := websocket.Accept(w, r, opts)
	if err != nil {
		return nil, err
	}
	c.SetReadLimit(4096)
	return &WS{c: c, Ctx: c.CloseRead(ctx)}, nil
}

// Send implements Sink.
func (s *WS) Send(ctx context.Context, it *Item) error {
	return s.c.Write(ctx, websocket.MessageText, it.WS())
}

// Heartbeat implements Sink: a ping (the client's pong proves it is there).
func (s *WS) Heartbeat(ctx context.Context) error { return s.c.Ping(ctx) }

// End implements Sink: a close frame with the reason's code (4401 for a
// revoked or expired credential) and its error code as the reason text.
func (s *WS) End(_ context.Context, r Reason) error {
	return s.c.Close(closeCode(r), r.Code())
}

// Close drops the connection without a close handshake.
func (s *WS) Close() error { return s.c.CloseNow() }
