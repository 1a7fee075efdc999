package authsvc

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"

	"github.com/erpgate/erpgate/internal/webhooks"
)

// The SSO flows' outbound requests (OIDC discovery, JWKS, token and
// userinfo endpoints; SAML metadata) go to URLs a company admin typed:
// they must not become a way into the edge's own network. The client
// checks the address each connection is about to be made to (after DNS,
// so a rebinding answer gains nothing) against the webhooks' blocklist:
// loopback, private, link-local with the cloud metadata address, CGNAT,
// and the rest BlockedAddr names; unless Config.SSOAllowPrivate. It has
// timeouts, follows at most 3 redirects (each checked the same way), uses
// no proxy from the environment, and reads at most ssoMaxBody per answer.

const (
	ssoDialTimeout   = 5 * time.Second
	ssoClientTimeout = 10 * time.Second
	ssoMaxBody       = 1 << 20
	ssoMaxRedirects  = 3
)

// errSSOBlocked: the target resolved to an address SSO may not reach.
var errSSOBlocked = errors.New("sso: target address not allowed")

// blockingControl is a dialer's Control that refuses loopback, private,
// link-local and metadata addresses with blocked (checked when connecting,
// after name resolution: a name rebound to such an address is refused
// too); nil, no check, when allowPrivate.
func blockingControl(allowPrivate bool, blocked error) func(network, address string, c syscall.RawConn) error {
	if allowPrivate {
		return nil
	}
	return func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil || webhooks.BlockedAddr(ap.Addr()) {
			return blocked
		}
		return nil
	}
}

func newSSOClient(allowPrivate bool) *http.Client {
	d := &net.Dialer{Timeout: ssoDialTimeout, KeepAlive: 30 * time.Second, Control: blockingControl(allowPrivate, errSSOBlocked)}
	tr := &http.Transport{
		Proxy:                  nil,
		DialContext:            d.DialContext,
		TLSHandshakeTimeout:    ssoDialTimeout,
		ResponseHeaderTimeout:  ssoClientTimeout,
		MaxResponseHeaderBytes: 64 << 10,
		MaxIdleConnsPerHost:    4,
		IdleConnTimeout:        90 * time.Second,
		ForceAttemptHTTP2:      true,
	}
	return &http.Client{
		Transport: limitedBodies{next: tr, limit: ssoMaxBody},
		Timeout:   ssoClientTimeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= ssoMaxRedirects {
				return errors.New("sso: too many redirects")
			}
			if req.URL.Scheme != "https" && !(allowPrivate && req.URL.Scheme == "http") {
				return errors.New("sso: redirect to a non-https URL")
			}
			return nil
		},
	}
}

// limitedBodies makes every answer's body fail past limit bytes, so that
// no library reading it whole (io.ReadAll) holds more.
type limitedBodies struct {
	next  http.RoundTripper
	limit int64
}

func (l limitedBodies) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := l.next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	if resp.ContentLength > l.limit {
		resp.Body.Close()
		return nil, fmt.Errorf("sso: answer of %d bytes is larger than %d", resp.ContentLength, l.limit)
	}
	resp.Body = &limitedBody{rc: resp.Body, left: l.limit}
	return resp, nil
}

type limitedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// one byte more tells a body of exactly the limit from a longer one
		var one [1]byte
		if n, _ := b.rc.Read(one[:]); n > 0 {
			return 0, errors.New("sso: answer larger than the limit")
		}
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }
