package limit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// decideScript makes one or more decisions over the same limits, atomic in
// Redis: for each decision in turn it checks every limit and, only if all
// have room, counts the request in each. It is loaded once and then called
// by its SHA (EVALSHA; after NOSCRIPT, e.g. a Redis restart, the store
// loads it again and retries: NOSCRIPT means nothing ran).
//
//	KEYS[i]    one key per limit (all with the same hash tag, for Cluster)
//	ARGV[1]    now, Unix ms (from the edge's clock)
//	ARGV[2]    a member prefix unique to this call
//	then 3 per limit: kind ("s" sliding, "f" fixed), max, window ms | period end ms
//	then one cost per decision (0: read only)
//
// Returns, per decision, {refused (1-based, 0 = admitted), used_1, reset_1,
// used_2, reset_2, …}; reset -1 means never (the cost exceeds max).
//
// A sliding limit is a sorted set of admissions scored by time; a fixed
// limit a counter that expires a week after its period's end (kept that
// long so the usage of a just-ended period can still be looked at). The
// admissions of one call are written once at its end (one ZADD, one
// INCRBY per limit): within the call they all have the score `now`, which
// is where the script finds them when it looks for the k-th oldest.
var decideScript = redis.NewScript(`
local now = tonumber(ARGV[1])
local prefix = ARGV[2]
local n = #KEYS
local kind, max, w, used, inset, oldest = {}, {}, {}, {}, {}, {}
for i = 1, n do
  local b = 3 + (i - 1) * 3
  kind[i], max[i], w[i] = ARGV[b], tonumber(ARGV[b + 1]), tonumber(ARGV[b + 2])
  if kind[i] == 's' then
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - w[i])
    used[i] = redis.call('ZCARD', KEYS[i])
  else
    used[i] = tonumber(redis.call('GET', KEYS[i]) or '0')
  end
  inset[i] = used[i]
end
local out = {}
local added = 0
for d = 3 + 3 * n, #ARGV do
  local cost = tonumber(ARGV[d])
  local refused, reset = 0, {}
  if cost > 0 then
    for i = 1, n do
      if used[i] + cost > max[i] then
        if refused == 0 then refused = i end
        if kind[i] == 's' then
          local idx = used[i] + cost - max[i] - 1
          if idx >= used[i] then
            reset[i] = -1
          elseif idx < inset[i] then
            local e = redis.call('ZRANGE', KEYS[i], idx, idx, 'WITHSCORES')
            reset[i] = tonumber(e[2]) + w[i]
          else
            reset[i] = now + w[i]
          end
        end
      end
    end
    if refused == 0 then
      for i = 1, n do used[i] = used[i] + cost end
      added = added + cost
    end
  end
  out[#out + 1] = refused
  for i = 1, n do
    local r = reset[i]
    if r == nil then
      if kind[i] == 's' then
        if oldest[i] == nil and inset[i] > 0 then
          local e = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')
          oldest[i] = tonumber(e[2]) + w[i]
        end
        if inset[i] > 0 then r = oldest[i] elseif used[i] > 0 then r = now + w[i] else r = now end
      else
        r = w[i]
      end
    end
    out[#out + 1] = used[i]
    out[#out + 1] = r
  end
end
if added > 0 then
  for i = 1, n do
    if kind[i] == 's' then
      local j = 1
      while j <= added do
        local args = {}
        for m = j, math.min(j + 499, added) do
          args[#args + 1] = now
          args[#args + 1] = prefix .. m
        end
        redis.call('ZADD', KEYS[i], unpack(args))
        j = j + 500
      end
      redis.call('PEXPIRE', KEYS[i], w[i])
    else
      redis.call('INCRBY', KEYS[i], added)
      redis.call('PEXPIREAT', KEYS[i], w[i] + 604800000)
    end
  end
end
return out
`)

// Client is what the Redis store needs of a go-redis client: a Client,
// ClusterClient or UniversalClient.
type Client interface {
	redis.Scripter
	Pipeline() redis.Pipeliner
}

// Redis is the store every edge instance shares. Keys are the callers'
// (with their prefix and a {company} hash tag so a decision's keys share a
// Cluster slot).
//
// Decisions are batched, as a database batches commits: while one batch is
// in flight to Redis, the decisions that arrive wait, and go together in
// the next — one pipeline, and one script call for all the decisions over
// the same limits (one company's burst), which decides them one after the
// other exactly as separate calls would. An idle edge sends each decision
// at once (a batch of one, one round trip); a busy one sends fewer, larger
// round trips, so neither Redis nor the edge spends a system call and a
// script start per request.
//
// The time is the edge's clock, passed to the script (a batch decides at
// the latest clock reading among its decisions): edge instances must keep
// their clocks in step (NTP), as a window edge moves by their skew.
type Redis struct {
	client Client
	node   string // makes members unique across instances
	seq    atomic.Uint64

	// Timeout bounds each round trip (the batch's, not the caller's: a
	// decision that has joined a batch waits for it). Default 100ms.
	Timeout time.Duration

	mu      sync.Mutex
	pending []*call // waiting for the next batch
	spare   []*call // the other buffer
	leading bool    // a batch is in flight, or its successor is being woken
}

// call is one decision waiting in a batch. limits and states are the
// caller's: it is blocked until its result is written.
type call struct {
	now     int64
	cost    int64
	limits  []Limit
	states  []State
	refused int
	err     error
	wake    chan bool // true: the result is written; false: lead the next batch
}

var calls = sync.Pool{New: func() any { return &call{wake: make(chan bool, 1)} }}

// NewRedis returns a store on client.
func NewRedis(client Client) *Redis {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return &Redis{client: client, node: hex.EncodeToString(b), Timeout: 100 * time.Millisecond}
}

// Decide implements Store. ctx is checked on entry; once the decision has
// joined a batch it waits for the batch (bounded by Timeout).
func (s *Redis) Decide(ctx context.Context, now time.Time, cost int64, limits []Limit, states []State) (int, error) {
	if err := checkLimits(cost, limits, states); err != nil {
		return -1, err
	}
	for i := range limits {
		if limits[i].Kind != Sliding && limits[i].Kind != Fixed {
			return -1, fmt.Errorf("limit: unknown kind %d", limits[i].Kind)
		}
	}
	if err := ctx.Err(); err != nil {
		return -1, err
	}
	c := calls.Get().(*call)
	c.now, c.cost, c.limits, c.states = ms(now), cost, limits, states
	s.mu.Lock()
	s.pending = append(s.pending, c)
	lead := !s.leading
	s.leading = true
	s.mu.Unlock()
	if lead || !<-c.wake {
		s.lead(ctx, c)
	}
	refused, err := c.refused, c.err
	*c = call{wake: c.wake}
	calls.Put(c)
	return refused, err
}

// lead sends what is pending (me among it) as one batch, delivers the
// results, and passes the lead to the first decision that arrived since.
func (s *Redis) lead(ctx context.Context, me *call) {
	s.mu.Lock()
	batch := s.pending
	s.pending = s.spare[:0]
	s.mu.Unlock()

	c, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.Timeout)
	s.send(c, batch)
	cancel()
	for _, d := range batch {
		if d != me {
			d.wake <- true
		}
	}

	clear(batch)
	s.mu.Lock()
	s.spare = batch[:0]
	var next *call
	if len(s.pending) > 0 {
		next = s.pending[0]
	} else {
		s.leading = false
	}
	s.mu.Unlock()
	if next != nil {
		next.wake <- false
	}
}

// group is the decisions of a batch over the same limits: one script call.
type group struct {
	calls []*call
	cmd   *redis.Cmd
	keys  []string
	args  []any
}

// send decides batch: one script call per group, all groups in one
// pipeline (one round trip). Every call gets its result or an error.
func (s *Redis) send(ctx context.Context, batch []*call) {
	var groupsArr [8]group
	groups := groupsArr[:0]
next:
	for _, d := range batch {
		for i := range groups {
			if sameLimits(groups[i].calls[0].limits, d.limits) {
				groups[i].calls = append(groups[i].calls, d)
				continue next
			}
		}
		groups = append(groups, group{calls: []*call{d}})
	}
	for i := range groups {
		s.prepare(&groups[i])
	}
	s.run(ctx, groups)
	var lost []group
	for i := range groups {
		if isNoScript(groups[i].cmd.Err()) {
			lost = append(lost, groups[i])
		}
	}
	if len(lost) > 0 {
		// Redis lost its scripts (a restart, SCRIPT FLUSH): those calls did
		// not run. Load the script and send them again.
		if err := decideScript.Load(ctx, s.client).Err(); err == nil {
			s.run(ctx, lost)
			for i, j := 0, 0; i < len(groups) && j < len(lost); i++ {
				if isNoScript(groups[i].cmd.Err()) {
					groups[i].cmd = lost[j].cmd
					j++
				}
			}
		}
	}
	for i := range groups {
		g := &groups[i]
		res, gerr := g.cmd.Int64Slice()
		if gerr == nil && len(res) != len(g.calls)*(1+2*len(g.calls[0].limits)) {
			gerr = errors.New("unexpected answer")
		}
		for j, d := range g.calls {
			if gerr != nil {
				d.refused, d.err = -1, fmt.Errorf("limit: redis decide: %w", gerr)
				continue
			}
			n := len(d.limits)
			r := res[j*(1+2*n):]
			d.refused = int(r[0]) - 1
			for i := range n {
				d.states[i].Used = r[1+2*i]
				switch v := r[2+2*i]; {
				case v < 0:
					d.states[i].Reset = time.Time{}
				case d.limits[i].Kind == Fixed:
					d.states[i].Reset = d.limits[i].End
				default:
					d.states[i].Reset = fromMS(v)
				}
			}
		}
	}
}

// prepare builds a group's keys and arguments; the group decides at the
// latest of its decisions' times.
func (s *Redis) prepare(g *group) {
	ls := g.calls[0].limits
	now := g.calls[0].now
	for _, d := range g.calls[1:] {
		now = max(now, d.now)
	}
	g.keys = make([]string, len(ls))
	g.args = make([]any, 0, 2+3*len(ls)+len(g.calls))
	g.args = append(g.args, now, s.node+strconv.FormatUint(s.seq.Add(1), 36)+":")
	for i := range ls {
		g.keys[i] = ls[i].Key
		if ls[i].Kind == Sliding {
			g.args = append(g.args, "s", ls[i].Max, ls[i].Window.Milliseconds())
		} else {
			g.args = append(g.args, "f", ls[i].Max, ms(ls[i].End))
		}
	}
	for _, d := range g.calls {
		g.args = append(g.args, d.cost)
	}
}

// run sends the groups' script calls, alone or pipelined; each group's
// cmd holds its answer or error.
func (s *Redis) run(ctx context.Context, groups []group) {
	if len(groups) == 1 {
		g := &groups[0]
		g.cmd = decideScript.EvalSha(ctx, s.client, g.keys, g.args...)
		return
	}
	pipe := s.client.Pipeline()
	for i := range groups {
		groups[i].cmd = decideScript.EvalSha(ctx, pipe, groups[i].keys, groups[i].args...)
	}
	_, _ = pipe.Exec(ctx) // errors are the commands'
}

func isNoScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}

func sameLimits(a, b []Limit) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Key != b[i].Key || a[i].Kind != b[i].Kind || a[i].Max != b[i].Max ||
			a[i].Window != b[i].Window || !a[i].End.Equal(b[i].End) {
			return false
		}
	}
	return true
}
