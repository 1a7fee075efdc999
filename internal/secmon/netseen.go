package secmon

import (
	"net/netip"
	"sync"
	"time"
)

// NetSeen is an edge instance's bounded memory of which networks (/24,
// /64) each API key was used from, so the edge publishes
// erp.auth.api_key.used only for a network new to the key (at most once
// per key, network and TTL per instance), not once per request. The
// monitor's own seen-set (Redis) decides whether the network is new across
// instances.
type NetSeen struct {
	ttl time.Duration
	max int

	mu sync.Mutex
	m  map[netKey]time.Time // -> last seen
}

type netKey struct {
	key string
	net netip.Prefix
}

// NewNetSeen remembers up to max (key, network) pairs for ttl each.
func NewNetSeen(ttl time.Duration, max int) *NetSeen {
	return &NetSeen{ttl: ttl, max: max, m: make(map[netKey]time.Time)}
}

// First records that key was used from ip at now and reports whether the
// network was not seen for key within the TTL (then, and only then, the
// use is worth an event). An address that doesn't parse is never first.
func (s *NetSeen) First(key, ip string, now time.Time) bool {
	a, err := netip.ParseAddr(ip)
	if err != nil || key == "" {
		return false
	}
	a = a.Unmap()
	bits := 64
	if a.Is4() {
		bits = 24
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return false
	}
	k := netKey{key, p}
	s.mu.Lock()
	defer s.mu.Unlock()
	last, ok := s.m[k]
	if ok && now.Sub(last) < s.ttl {
		if now.Sub(last) > time.Hour { // refresh rarely: the entry stays while used
			s.m[k] = now
		}
		return false
	}
	if len(s.m) >= s.max {
		s.evict(now)
	}
	s.m[k] = now
	return true
}

// evict drops expired pairs, then, if still full, about a tenth of the
// rest (map order: arbitrary ones; a forgotten pair costs one more event).
func (s *NetSeen) evict(now time.Time) {
	for k, t := range s.m {
		if now.Sub(t) >= s.ttl {
			delete(s.m, k)
		}
	}
	drop := len(s.m) - s.max + s.max/10 + 1
	for k := range s.m {
		if drop <= 0 {
			break
		}
		delete(s.m, k)
		drop--
	}
}

// Len is the number of pairs remembered.
func (s *NetSeen) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}
