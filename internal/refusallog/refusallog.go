// Package refusallog writes the log lines of refusals — bad tokens and API
// keys, cross-company requests, rate-limited requests, failed logins —
// through one sampler (internal/sampling, the refusal audit's), so that a
// flood of them costs a bounded number of lines whatever its rate. A Log
// owns its windows' counts (the erp app keeps one per config); of ours it
// imports only internal/sampling, and it must not import Caddy or anything
// under caddymodules/ (the auth service uses it too).
//
// Refusals are keyed by the logger, the message and a reason from a short
// fixed list. In each window of Interval, opened by its key's first
// refusal, the first Sample refusals are logged as before; every other
// refusal of the window writes nothing — neither its own line nor, when
// Options.Skip is set, the access log's line of its request — and is
// counted. When the window has ended, one summary line (message
// "refusals not logged one by one", at least at info level) gives the count
// with the message and reason it stands for. So a flood writes at most
// Sample lines (plus as many access log lines) and one summary per key and
// interval. Prometheus counters are not sampled: they count every refusal.
//
// A refusal past its window's Sample takes a lock, looks its key up and
// counts it: no allocation (BenchmarkCheckPastSample). Requests that are
// not refused never come here.
package refusallog

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/erpgate/erpgate/internal/sampling"
)

// Defaults of Options (and of the erp app's refusal_log).
const (
	DefaultSample   = 10
	DefaultInterval = time.Minute
)

// SummaryMessage is the message of a summary line.
const SummaryMessage = "refusals not logged one by one"

// Options make a Log; zero values take the defaults.
type Options struct {
	// Sample is how many refusals per key and interval are logged one by
	// one. Default: DefaultSample.
	Sample int
	// Interval is the length of a window. Default: DefaultInterval.
	Interval time.Duration
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// Tick is how often ended windows are summarised. Default: Interval/4,
	// at most 1s.
	Tick time.Duration
	// Skip is called with the request's context for a refusal that is not
	// logged, so that the server leaves its access log line out too (in
	// Caddy: the `log_skip` variable). Nil: access log lines are kept.
	Skip func(context.Context)
}

// Log is the sampler of one config's (or one auth service's) refusal lines
// with the goroutine that writes their summaries. Make it with New; its
// goroutine starts at the first refusal and stops when the base context is
// cancelled or Close is called, writing the summaries of the open windows.
type Log struct {
	sampler sampling.Sampler[key]
	now     func() time.Time
	skip    func(context.Context)
	tick    time.Duration
	base    context.Context

	startOnce sync.Once
	mu        sync.Mutex
	cancel    context.CancelFunc
	done      chan struct{}
}

// key is what refusals are sampled by; the logger writes the summary.
type key struct {
	logger      *zap.Logger
	level       zapcore.Level
	msg, reason string
}

// New makes a Log.
func New(base context.Context, o Options) *Log {
	if o.Sample <= 0 {
		o.Sample = DefaultSample
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Tick <= 0 {
		o.Tick = min(o.Interval/4, time.Second)
	}
	return &Log{
		sampler: sampling.Sampler[key]{PerInterval: o.Sample, Interval: o.Interval},
		now:     o.Now, skip: o.Skip, tick: o.Tick, base: base,
	}
}

// For is a module's sampled logger: its refusal lines are written with z.
// A nil Log gives a logger that samples nothing.
func (l *Log) For(z *zap.Logger) Logger {
	if z == nil {
		z = zap.NewNop()
	}
	return Logger{log: l, z: z}
}

// Logger writes one module's refusal lines through its Log. The zero value
// writes nothing.
type Logger struct {
	log *Log
	z   *zap.Logger
}

// Check is zap's Logger.Check for a refusal: it counts the refusal under
// (msg, reason) and returns the entry to write when the refusal is one of
// its window's first Sample (and lvl is enabled), else nil — and then, with
// Options.Skip, the request of ctx leaves no access log line either. msg
// must be static; reason from a short fixed list (it keys the sampler). A
// refusal with no line of its own (only its access log line) is checked at
// debug level. Build the entry's fields only when it is not nil.
func (l Logger) Check(ctx context.Context, lvl zapcore.Level, msg, reason string) *zapcore.CheckedEntry {
	return l.check(ctx, lvl, msg, reason)
}

// CheckLine is Check for a refusal's own line only: the request's access
// log line is kept, or left to another Check of the same request (the auth
// service samples the access log lines of all its refusals by error code,
// and its flows their own lines by reason). Also for a request that is
// served all the same (a refusal in shadow mode).
func (l Logger) CheckLine(lvl zapcore.Level, msg, reason string) *zapcore.CheckedEntry {
	return l.check(nil, lvl, msg, reason)
}

// check samples; a nil ctx skips no access log line.
func (l Logger) check(ctx context.Context, lvl zapcore.Level, msg, reason string) *zapcore.CheckedEntry {
	if l.z == nil {
		return nil
	}
	if l.log == nil {
		return l.z.Check(lvl, msg)
	}
	return l.log.check(ctx, key{logger: l.z, level: lvl, msg: msg, reason: reason})
}

// Zap is the module's logger itself, for lines that are not refusals.
func (l Logger) Zap() *zap.Logger {
	if l.z == nil {
		return zap.NewNop()
	}
	return l.z
}

func admit() bool { return true }

func (l *Log) check(ctx context.Context, k key) *zapcore.CheckedEntry {
	l.startOnce.Do(l.start)
	if l.sampler.Offer(k, l.now(), admit) != sampling.Recorded {
		if l.skip != nil && ctx != nil {
			l.skip(ctx)
		}
		return nil
	}
	return k.logger.Check(k.level, k.msg)
}

func (l *Log) start() {
	ctx, cancel := context.WithCancel(l.base)
	done := make(chan struct{})
	l.mu.Lock()
	l.cancel, l.done = cancel, done
	l.mu.Unlock()
	go l.run(ctx, done)
}

// Close stops the goroutine after it wrote the summaries of the open
// windows (also done when the base context ends).
func (l *Log) Close() error {
	if l == nil {
		return nil
	}
	l.startOnce.Do(func() {}) // not started: never will be
	l.mu.Lock()
	cancel, done := l.cancel, l.done
	l.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	return nil
}

func (l *Log) run(ctx context.Context, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(l.tick)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			l.flush(false)
		case <-ctx.Done():
			l.flush(true)
			return
		}
	}
}

// flush writes the summaries of the windows that have ended (all: of
// every window, when the Log stops).
func (l *Log) flush(all bool) {
	sums := l.sampler.Flush
	if all {
		sums = l.sampler.FlushAll
	}
	for _, s := range sums(l.now()) {
		writeSummary(s)
	}
}

// writeSummary logs what a window stands for, at the level of its lines
// but at least info: a count operators must see even when the lines
// themselves are debug.
func writeSummary(s sampling.Summary[key]) {
	lvl := max(s.Key.level, zapcore.InfoLevel)
	if ce := s.Key.logger.Check(lvl, SummaryMessage); ce != nil {
		ce.Write(
			zap.String("message", s.Key.msg), zap.String("reason", s.Key.reason),
			zap.Int64("count", s.Count()), zap.Int64("logged", s.Recorded), zap.Int64("total", s.Total),
			zap.Time("window_start", s.Start), zap.Time("window_end", s.End),
		)
	}
}
