package authsvc

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"
)

// Argon2Params are argon2id's cost parameters (RFC 9106): Memory in KiB,
// Time (passes over the memory) and Threads (lanes).
//
// Choose a row of OWASP's Password Storage Cheat Sheet; its rows are of
// equivalent strength against an attacker, trading memory for passes:
//
//	m=47104 t=1 p=1 (46 MiB)   m=19456 t=2 p=1 (19 MiB)   m=12288 t=3 p=1 (12 MiB)
//	m=9216  t=4 p=1 (9 MiB)    m=7168  t=5 p=1 (7 MiB)
//
// The work is about the same for every row (m×t KiB-blocks: 46, 38, 36,
// 36, 35 Mi), but memory per running hash falls 6.5-fold from the first
// row to the last, and on this project's 2-core machine the smaller rows
// are also cheaper in CPU (fewer fresh pages to fault in and zero): by
// BenchmarkLogin, m=47104 t=1 costs ~40 ms of CPU per login (25 logins per
// second per core), m=19456 t=2 ~30 ms (33/s), m=12288 t=3 ~26 ms (38/s),
// m=7168 t=5 ~22 ms (46/s); a 200-login storm's peak RSS is 333–341,
// 185–201, 144–172 and 124–142 MiB (README, "Login storms"). The default
// is m=19456 t=2 p=1, OWASP's most cited row: less than half the memory of
// the first row, and no bet on the lowest-memory rows' resistance to
// memory-cheap attacks.
type Argon2Params struct {
	Memory  uint32 // KiB
	Time    uint32
	Threads uint8
}

// DefaultArgon2Params are the parameters new hashes get by default (OWASP's
// second row).
var DefaultArgon2Params = Argon2Params{Memory: 19456, Time: 2, Threads: 1}

// Bounds of acceptable parameters: a stored hash beyond them is refused
// (so a tampered row cannot make us do unbounded work), a configuration
// beyond them does not start.
const (
	maxArgon2Memory  = 256 * 1024 // KiB
	maxArgon2Time    = 10
	maxArgon2Threads = 16
	// owaspMinMemory is the smallest memory of OWASP's table (m=7168 with
	// t=5); configured parameters below it are accepted (tests use cheap
	// ones) with a warning.
	owaspMinMemory = 7168
)

// Validate checks that p can be used: argon2id needs at least 8 KiB per
// thread, and the bounds above.
func (p Argon2Params) Validate() error {
	switch {
	case p.Threads == 0 || p.Threads > maxArgon2Threads:
		return fmt.Errorf("argon2id threads must be 1 to %d", maxArgon2Threads)
	case p.Time == 0 || p.Time > maxArgon2Time:
		return fmt.Errorf("argon2id time must be 1 to %d", maxArgon2Time)
	case p.Memory < 8*uint32(p.Threads) || p.Memory > maxArgon2Memory:
		return fmt.Errorf("argon2id memory must be 8 KiB per thread to %d KiB", maxArgon2Memory)
	}
	return nil
}

// BelowOWASP reports whether p is weaker than every row of OWASP's table
// (fewer block operations than the cheapest, or less memory than the smallest).
func (p Argon2Params) BelowOWASP() bool {
	return p.Memory < owaspMinMemory || uint64(p.Memory)*uint64(p.Time) < 7168*5
}

func (p Argon2Params) String() string {
	return fmt.Sprintf("m=%d,t=%d,p=%d", p.Memory, p.Time, p.Threads)
}

const (
	// Argon2KeyLen is the length of the derived key of new hashes.
	Argon2KeyLen  uint32 = 32
	argon2SaltLen        = 16
)

// HashLimits bound the password hashing of one service. A hash runs only
// with one of Concurrency slots (each running hash holds Params.Memory);
// up to Queue more callers wait for a slot, each at most QueueWait. A
// caller that finds the queue full, or whose wait runs out, gets
// ErrHashBusy at once: the login answers 429 RATE_LIMITED with Retry-After,
// instead of every caller waiting until its request times out.
type HashLimits struct {
	// Concurrency is how many hashes run at once. Default: GOMAXPROCS (the
	// number of cores the process may use), at least 1.
	Concurrency int
	// Queue is how many callers may wait for a slot. Default: 16 per slot.
	Queue int
	// QueueWait is how long a caller waits for a slot. Default: 2s. It
	// must be shorter than the request's timeout (Config.Timeout).
	QueueWait time.Duration
}

// Defaults of HashLimits.
const (
	DefaultHashQueuePerSlot = 16
	DefaultHashQueueWait    = 2 * time.Second
)

func (l *HashLimits) setDefaults() {
	if l.Concurrency <= 0 {
		l.Concurrency = max(1, runtime.GOMAXPROCS(0))
	}
	if l.Queue <= 0 {
		l.Queue = DefaultHashQueuePerSlot * l.Concurrency
	}
	if l.QueueWait <= 0 {
		l.QueueWait = DefaultHashQueueWait
	}
}

// ErrHashBusy: every hashing slot is taken and the queue is full, or the
// wait for a slot ran out. errors.As finds a *HashBusyError with the
// suggested wait.
var ErrHashBusy = errors.New("password hashing is busy")

// HashBusyError is ErrHashBusy with the time after which a retry is likely
// to find a slot.
type HashBusyError struct{ RetryAfter time.Duration }

func (e *HashBusyError) Error() string { return ErrHashBusy.Error() }

// Is makes errors.Is(err, ErrHashBusy) true.
func (e *HashBusyError) Is(target error) bool { return target == ErrHashBusy }

// PasswordHasher hashes and verifies passwords. Verify takes the same time
// for a malformed hash as for a real one, so the dummy-hash path for unknown
// users can't be told apart. Both may answer ErrHashBusy when the hashing
// capacity is exhausted, and ctx's error when ctx ends while waiting.
type PasswordHasher interface {
	Hash(ctx context.Context, password string) (string, error)
	Verify(ctx context.Context, password, encoded string) (bool, error)
}

// Argon2id is the PasswordHasher. New hashes get Params; Verify uses the
// parameters stored in the hash. Every hash (Hash and Verify) runs under
// the limits' gate, so a burst of logins holds at most
// Concurrency × (the largest m among the hashes checked) of memory.
type Argon2id struct {
	Params Argon2Params
	gate   *hashGate
}

// NewArgon2id returns the hasher with parameters p (zero: the defaults)
// under limits l (zero fields: the defaults).
func NewArgon2id(p Argon2Params, l HashLimits) (*Argon2id, error) {
	if p == (Argon2Params{}) {
		p = DefaultArgon2Params
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	l.setDefaults()
	return &Argon2id{Params: p, gate: newHashGate(l)}, nil
}

// NewArgon2idParams returns a hasher with other parameters, running at most
// concurrency hashes, with an unbounded wait (ctx bounds it): tests use
// cheap ones.
func NewArgon2idParams(time, memoryKiB uint32, threads uint8, concurrency int) *Argon2id {
	return &Argon2id{Params: Argon2Params{Memory: memoryKiB, Time: time, Threads: threads},
		gate: &hashGate{slots: make(chan struct{}, max(1, concurrency))}}
}

// Limits are the hasher's effective limits.
func (a *Argon2id) Limits() HashLimits { return a.gate.limits }

// Hash returns the PHC string `$argon2id$v=19$m=…,t=…,p=…$salt$hash` of
// password with the hasher's parameters.
func (a *Argon2id) Hash(ctx context.Context, password string) (string, error) {
	salt := make([]byte, argon2SaltLen)
	_, _ = rand.Read(salt) // crypto/rand.Read never fails (Go 1.24+)
	release, err := a.gate.enter(ctx)
	if err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(password), salt, a.Params.Time, a.Params.Memory, a.Params.Threads, Argon2KeyLen)
	release()
	return encodePHC(a.Params, salt, key), nil
}

func encodePHC(p Argon2Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

// Dummy returns a well-formed hash, with this hasher's parameters, of no
// password anyone knows: random salt and key. Verifying a password against
// it costs exactly what verifying against a real hash of these parameters
// costs, and making it costs no argon2 work (a reloaded config's auth
// service makes one as it starts).
func (a *Argon2id) Dummy() string {
	salt := make([]byte, argon2SaltLen)
	key := make([]byte, Argon2KeyLen)
	_, _ = rand.Read(salt)
	_, _ = rand.Read(key)
	return encodePHC(a.Params, salt, key)
}

// NeedsRehash reports whether encoded was made with other parameters (or
// another key length) than new hashes get: the login that verified it
// replaces it.
func (a *Argon2id) NeedsRehash(encoded string) bool {
	h, err := parsePHC(encoded)
	if err != nil {
		return false // not ours to upgrade; Verify refuses it anyway
	}
	return h.m != a.Params.Memory || h.t != a.Params.Time || h.p != a.Params.Threads || len(h.key) != int(Argon2KeyLen)
}

var errBadHash = errors.New("malformed password hash")

type phc struct {
	m, t      uint32
	p         uint8
	salt, key []byte
}

func parsePHC(s string) (phc, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[1] != "argon2id" || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return phc{}, errBadHash
	}
	var h phc
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &h.m, &h.t, &h.p); err != nil {
		return phc{}, errBadHash
	}
	var err error
	if h.salt, err = base64.RawStdEncoding.DecodeString(parts[4]); err != nil {
		return phc{}, errBadHash
	}
	if h.key, err = base64.RawStdEncoding.DecodeString(parts[5]); err != nil || len(h.key) == 0 {
		return phc{}, errBadHash
	}
	// Refuse parameters that would let a stored value cost us unbounded work.
	if (Argon2Params{Memory: h.m, Time: h.t, Threads: h.p}).Validate() != nil || len(h.key) > 64 {
		return phc{}, errBadHash
	}
	return h, nil
}

// Verify reports whether password matches encoded (constant-time compare).
// It waits for a hashing slot under the hasher's limits.
func (a *Argon2id) Verify(ctx context.Context, password, encoded string) (bool, error) {
	h, err := parsePHC(encoded)
	if err != nil {
		return false, err
	}
	release, err := a.gate.enter(ctx)
	if err != nil {
		return false, err
	}
	key := argon2.IDKey([]byte(password), h.salt, h.t, h.m, h.p, uint32(len(h.key)))
	release()
	return subtle.ConstantTimeCompare(key, h.key) == 1, nil
}

// hashGate admits hashes: slots bounds those running, admitted those
// running or waiting. A nil admitted means an unbounded queue (the wait
// bounded by ctx only).
type hashGate struct {
	limits   HashLimits
	slots    chan struct{}
	admitted chan struct{}
}

func newHashGate(l HashLimits) *hashGate {
	return &hashGate{limits: l, slots: make(chan struct{}, l.Concurrency), admitted: make(chan struct{}, l.Concurrency+l.Queue)}
}

// busy is the answer to a caller that gets no slot: retry after about the
// time a full queue takes to drain (the wait), at least a second.
func (g *hashGate) busy() error {
	return &HashBusyError{RetryAfter: max(time.Second, g.limits.QueueWait)}
}

// enter waits for a slot and returns its release. It answers ErrHashBusy
// when the queue is full or the wait runs out — also when ctx's deadline
// comes first, since the caller is still there to be told — and ctx's error
// when the caller went away.
func (g *hashGate) enter(ctx context.Context) (func(), error) {
	if g.admitted == nil {
		select {
		case g.slots <- struct{}{}:
			return func() { <-g.slots }, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	select {
	case g.admitted <- struct{}{}:
	default:
		return nil, g.busy()
	}
	release := func() { <-g.slots; <-g.admitted }
	select {
	case g.slots <- struct{}{}:
		return release, nil
	default:
	}
	wait := time.NewTimer(g.limits.QueueWait)
	defer wait.Stop()
	select {
	case g.slots <- struct{}{}:
		return release, nil
	case <-wait.C:
		<-g.admitted
		return nil, g.busy()
	case <-ctx.Done():
		<-g.admitted
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, g.busy()
		}
		return nil, ctx.Err()
	}
}
