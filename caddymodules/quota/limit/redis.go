package limit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// decideScript is one decision, atomic in Redis: it checks every limit and,
// only if all have room, counts the request in each. It is loaded once and
// then called by its SHA (redis.Script.Run: EVALSHA, and EVAL when Redis
// answers NOSCRIPT, e.g. after a restart).
//
//	KEYS[i]    one key per limit (all with the same hash tag, for Cluster)
//	ARGV[1]    now, Unix ms (from the edge's clock)
//	ARGV[2]    a member name unique to this decision
//	ARGV[3]    cost (0: read only)
//	then 3 per limit: kind ("s" sliding, "f" fixed), max, window ms | period end ms
//
// Returns {refused (1-based, 0 = admitted), used_1, reset_1, used_2, reset_2, …};
// reset -1 means never (the cost exceeds max).
//
// A sliding limit is a sorted set of admissions scored by time; a fixed
// limit a counter that expires a week after its period's end (kept that
// long so the usage of a just-ended period can still be looked at).
var decideScript = redis.NewScript(`
local now = tonumber(ARGV[1])
local member = ARGV[2]
local cost = tonumber(ARGV[3])
local n = #KEYS
local used, reset = {}, {}
local refused = 0
for i = 1, n do
  local b = 3 + (i - 1) * 3
  local kind, max, w = ARGV[b + 1], tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3])
  local k = KEYS[i]
  if kind == 's' then
    redis.call('ZREMRANGEBYSCORE', k, '-inf', now - w)
    local u = redis.call('ZCARD', k)
    used[i] = u
    if cost > 0 and u + cost > max then
      if refused == 0 then refused = i end
      local idx = u + cost - max - 1
      if idx < u then
        local e = redis.call('ZRANGE', k, idx, idx, 'WITHSCORES')
        reset[i] = tonumber(e[2]) + w
      else
        reset[i] = -1
      end
    end
  else
    used[i] = tonumber(redis.call('GET', k) or '0')
    reset[i] = w
    if cost > 0 and used[i] + cost > max and refused == 0 then refused = i end
  end
end
local out = {refused}
for i = 1, n do
  local b = 3 + (i - 1) * 3
  local kind, w = ARGV[b + 1], tonumber(ARGV[b + 3])
  local k = KEYS[i]
  if kind == 's' then
    if refused == 0 and cost > 0 then
      for j = 1, cost do
        redis.call('ZADD', k, now, member .. ':' .. j)
      end
      redis.call('PEXPIRE', k, w)
      used[i] = used[i] + cost
    end
    if reset[i] == nil then
      local e = redis.call('ZRANGE', k, 0, 0, 'WITHSCORES')
      if e[2] then reset[i] = tonumber(e[2]) + w else reset[i] = now end
    end
  elseif refused == 0 and cost > 0 then
    used[i] = redis.call('INCRBY', k, cost)
    redis.call('PEXPIREAT', k, w + 604800000)
  end
  out[#out + 1] = used[i]
  out[#out + 1] = reset[i]
end
return out
`)

// Redis is the store every edge instance shares: one script run per
// decision, one round trip. Keys are the callers' (with their prefix and a
// {company} hash tag so a decision's keys share a Cluster slot).
//
// The time is the edge's clock, passed to the script: edge instances must
// keep their clocks in step (NTP), as a window edge moves by their skew.
type Redis struct {
	client redis.Scripter
	node   string // makes members unique across instances
	seq    atomic.Uint64
}

// NewRedis returns a store on client (a go-redis Client, ClusterClient or
// UniversalClient).
func NewRedis(client redis.Scripter) *Redis {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return &Redis{client: client, node: hex.EncodeToString(b)}
}

// Decide implements Store. The caller bounds ctx with a timeout.
func (s *Redis) Decide(ctx context.Context, now time.Time, cost int64, limits []Limit, states []State) (int, error) {
	if err := checkLimits(cost, limits, states); err != nil {
		return -1, err
	}
	var keysArr [MaxLimits]string
	var argsArr [3 + 3*MaxLimits]any
	keys := keysArr[:len(limits)]
	args := argsArr[:3+3*len(limits)]
	args[0] = ms(now)
	args[1] = s.node + strconv.FormatUint(s.seq.Add(1), 36)
	args[2] = cost
	for i := range limits {
		l := &limits[i]
		keys[i] = l.Key
		switch l.Kind {
		case Sliding:
			args[3+3*i], args[4+3*i], args[5+3*i] = "s", l.Max, l.Window.Milliseconds()
		case Fixed:
			args[3+3*i], args[4+3*i], args[5+3*i] = "f", l.Max, ms(l.End)
		default:
			return -1, fmt.Errorf("limit: unknown kind %d", l.Kind)
		}
	}
	res, err := decideScript.Run(ctx, s.client, keys, args...).Int64Slice()
	if err != nil {
		return -1, fmt.Errorf("limit: redis decide: %w", err)
	}
	if len(res) != 1+2*len(limits) {
		return -1, errors.New("limit: redis decide: unexpected answer")
	}
	for i := range limits {
		states[i].Used = res[1+2*i]
		switch r := res[2+2*i]; {
		case r < 0:
			states[i].Reset = time.Time{}
		case limits[i].Kind == Fixed:
			states[i].Reset = limits[i].End
		default:
			states[i].Reset = fromMS(r)
		}
	}
	return int(res[0]) - 1, nil
}
