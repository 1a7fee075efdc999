package webhooks

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Resolver answers a host's addresses (net.DefaultResolver is one).
type Resolver interface {
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
}

// errBlocked: the target resolved to an address webhooks may not reach.
var errBlocked = errors.New("target address not allowed")

// Blocked ranges besides what netip's predicates name.
var blockedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // CGNAT (RFC 6598)
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // TEST-NET-1
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // TEST-NET-2
	netip.MustParsePrefix("203.0.113.0/24"),  // TEST-NET-3
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, broadcast
	netip.MustParsePrefix("::/96"),           // IPv4-compatible (deprecated), :: and ::1
	netip.MustParsePrefix("100::/64"),        // discard-only
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("fec0::/10"),       // site-local (deprecated)
}

// Translation prefixes that embed an IPv4 address in their last 32 bits
// (NAT64) or bits 16..48 (6to4): the embedded address is checked.
var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	nat64L    = netip.MustParsePrefix("64:ff9b:1::/48")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

// BlockedAddr reports whether webhooks must not connect to ip: loopback,
// private (RFC 1918, fc00::/7), link-local (169.254/16 with the cloud
// metadata address, fe80::/10), CGNAT, unspecified, multicast, reserved
// and documentation ranges, and IPv4-mapped or translated forms of those.
func BlockedAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() {
		return true
	}
	for _, p := range blockedPrefixes {
		if p.Contains(ip) {
			return true
		}
	}
	if ip.Is6() {
		b := ip.As16()
		switch {
		case nat64.Contains(ip), nat64L.Contains(ip):
			return BlockedAddr(netip.AddrFrom4([4]byte(b[12:16])))
		case sixToFour.Contains(ip):
			return BlockedAddr(netip.AddrFrom4([4]byte(b[2:6])))
		}
	}
	return false
}

// safeDialer connects webhooks to their targets. The address check runs in
// the dialer's Control, on the address the socket is about to connect to:
// what a name resolved to a moment earlier (at Create, or a rebinding DNS
// answer) does not count.
type safeDialer struct {
	allowPrivate bool
	resolver     Resolver
	dialer       net.Dialer
}

func newSafeDialer(allowPrivate bool, r Resolver, timeout time.Duration) *safeDialer {
	if r == nil {
		r = net.DefaultResolver
	}
	d := &safeDialer{allowPrivate: allowPrivate, resolver: r}
	d.dialer = net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second, Control: d.control}
	return d
}

func (d *safeDialer) control(_, address string, _ syscall.RawConn) error {
	if d.allowPrivate {
		return nil
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil || BlockedAddr(ap.Addr()) {
		return errBlocked
	}
	return nil
}

// DialContext resolves addr's host with the resolver and connects to the
// first address that answers; each connect is checked by control.
func (d *safeDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{ip}
	} else {
		addrs, err := d.resolver.LookupIPAddr(ctx, host)
		if err != nil {
			return nil, &net.DNSError{Err: "lookup failed", Name: host}
		}
		for _, a := range addrs {
			if ip, ok := netip.AddrFromSlice(a.IP); ok {
				ips = append(ips, ip.Unmap())
			}
		}
		if len(ips) == 0 {
			return nil, &net.DNSError{Err: "no addresses", Name: host, IsNotFound: true}
		}
	}
	var first error
	for _, ip := range ips {
		c, err := d.dialer.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
		if err == nil {
			return c, nil
		}
		if first == nil || errors.Is(first, errBlocked) && !errors.Is(err, errBlocked) {
			first = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, first
}

// maxURL bounds an endpoint's URL.
const maxURL = 2048

// checkURL is what Create and Update accept as a target: an absolute http
// or https URL with a host and no credentials; without allowPrivate, a
// host that resolves (now) to public addresses only.
func checkURL(ctx context.Context, raw string, allowPrivate bool, r Resolver) error {
	if raw == "" {
		return invalid("url", "required")
	}
	if len(raw) > maxURL {
		return invalid("url", "at most "+strconv.Itoa(maxURL)+" characters")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return invalid("url", "not a valid URL")
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return invalid("url", "must be an http or https URL")
	case u.User != nil:
		return invalid("url", "must not hold credentials (user or password)")
	case u.Hostname() == "" || u.Opaque != "":
		return invalid("url", "must name a host")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return invalid("url", "must not have a fragment")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return invalid("url", "invalid port")
		}
	}
	if allowPrivate {
		return nil
	}
	host := u.Hostname()
	if ip, err := netip.ParseAddr(host); err == nil {
		if BlockedAddr(ip) {
			return invalid("url", "the target address is not allowed (loopback, private, link-local or metadata)")
		}
		return nil
	}
	if r == nil {
		r = net.DefaultResolver
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := r.LookupIPAddr(ctx, host)
	if err != nil || len(addrs) == 0 {
		return invalid("url", "the host does not resolve")
	}
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok || BlockedAddr(ip) {
			return invalid("url", "the host resolves to an address that is not allowed (loopback, private, link-local or metadata)")
		}
	}
	return nil
}
