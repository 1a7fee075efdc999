package exportjob

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is the Store every instance shares. Keys (Prefix first), all of a
// company in one Redis Cluster slot:
//
//	exportjobs:{<company>}:job:<id>   the record (JSON), expiring with it
//	exportjobs:{<company>}:active     sorted set of the active jobs' ids,
//	                                  scored by their lease's end (ms)
type Redis struct {
	Client redis.UniversalClient
	Prefix string
	// Timeout bounds each call. 0: 2s.
	Timeout time.Duration
	Now     func() time.Time // nil: time.Now
}

func (s *Redis) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Redis) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	t := s.Timeout
	if t <= 0 {
		t = 2 * time.Second
	}
	return context.WithTimeout(ctx, t)
}

func (s *Redis) jobKey(company, id string) string {
	return s.Prefix + "exportjobs:{" + company + "}:job:" + id
}

func (s *Redis) activeKey(company string) string {
	return s.Prefix + "exportjobs:{" + company + "}:active"
}

// createScript: KEYS job, active; ARGV now(ms), max, lease end(ms), id,
// record, ttl(ms).
var createScript = redis.NewScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
redis.call('SET', KEYS[1], ARGV[5], 'PX', ARGV[6])
return 1`)

// updateScript: KEYS job, active; ARGV record, ttl(ms), active (1/0),
// lease end(ms), id.
var updateScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if ARGV[3] == '1' then
  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[5])
  if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
else
  redis.call('ZREM', KEYS[2], ARGV[5])
end
return 1`)

// deleteScript: KEYS job, active; ARGV id. Returns the record or false.
var deleteScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then return false end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return v`)

func ms(d time.Duration) int64 { return max(int64(d/time.Millisecond), 1) }

// Create implements Store.
func (s *Redis) Create(ctx context.Context, j *Job, maxActive int, lease, ttl time.Duration) error {
	rec, err := json.Marshal(j)
	if err != nil {
		return err
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	now := s.now()
	ok, err := createScript.Run(ctx, s.Client, []string{s.jobKey(j.Company, j.ID), s.activeKey(j.Company)},
		now.UnixMilli(), maxActive, now.Add(lease).UnixMilli(), j.ID, rec, ms(ttl)).Int()
	if err != nil {
		return fmt.Errorf("exportjob: create: %w", err)
	}
	if ok == 0 {
		return ErrTooMany
	}
	return nil
}

// Get implements Store.
func (s *Redis) Get(ctx context.Context, company, id string) (*Job, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	b, err := s.Client.Get(ctx, s.jobKey(company, id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("exportjob: get: %w", err)
	}
	var j Job
	if err := json.Unmarshal(b, &j); err != nil || j.Company != company {
		return nil, ErrNotFound
	}
	return &j, nil
}

// Update implements Store.
func (s *Redis) Update(ctx context.Context, j *Job, lease, ttl time.Duration) error {
	rec, err := json.Marshal(j)
	if err != nil {
		return err
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	active := "0"
	if j.Status.Active() {
		active = "1"
	}
	ok, err := updateScript.Run(ctx, s.Client, []string{s.jobKey(j.Company, j.ID), s.activeKey(j.Company)},
		rec, ms(ttl), active, s.now().Add(lease).UnixMilli(), j.ID).Int()
	if err != nil {
		return fmt.Errorf("exportjob: update: %w", err)
	}
	if ok == 0 {
		return ErrNotFound
	}
	return nil
}

// Delete implements Store.
func (s *Redis) Delete(ctx context.Context, company, id string) (*Job, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	v, err := deleteScript.Run(ctx, s.Client, []string{s.jobKey(company, id), s.activeKey(company)}, id).Text()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("exportjob: delete: %w", err)
	}
	var j Job
	if err := json.Unmarshal([]byte(v), &j); err != nil {
		return nil, ErrNotFound
	}
	return &j, nil
}

// LinkKey is the download links' key every instance shares: made once,
// at random, and kept in Redis under Prefix+"exportjobs:link_key".
func (s *Redis) LinkKey(ctx context.Context) ([]byte, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	var b [32]byte
	if _, err := randRead(b[:]); err != nil {
		return nil, err
	}
	key := s.Prefix + "exportjobs:link_key"
	if err := s.Client.SetNX(ctx, key, b[:], 0).Err(); err != nil {
		return nil, fmt.Errorf("exportjob: link key: %w", err)
	}
	v, err := s.Client.Get(ctx, key).Bytes()
	if err != nil {
		return nil, fmt.Errorf("exportjob: link key: %w", err)
	}
	if len(v) < 32 {
		return nil, errors.New("exportjob: link key: " + strconv.Itoa(len(v)) + " bytes in Redis, want 32")
	}
	return v, nil
}
