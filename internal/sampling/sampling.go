// Package sampling decides which of many like events are recorded one by
// one and counts the rest: the one mechanism behind the sampled refusal
// audit (caddymodules/internal/edgeauth) and the sampled refusal log lines
// (internal/refusallog). A Sampler owns its keys' windows and counts; it
// has no Caddy import, imports nothing of ours and reads no clock.
package sampling

import (
	"sync"
	"time"
)

// Sampler decides which events (refusals) are recorded one by one and
// counts the rest, so that a flood can't fill a trail or a log. Events are
// keyed by K, which callers keep to a small fixed set (a provider or a log
// message, and a reason), so memory stays bounded. A key's window opens at
// its first event and lasts Interval: its first PerInterval events are
// offered for a record of their own, every other one is only counted; once
// the window has ended, Flush returns its Summary if it counted any.
// Windows are fixed, not sliding: at most PerInterval single records and
// one summary per key and interval, whatever the rate. Time is passed in,
// never read. Past the first PerInterval events of a window, Offer takes a
// lock, looks the key up and counts: no allocation.
type Sampler[K comparable] struct {
	// PerInterval is how many refusals per key and window are recorded one by one.
	PerInterval int
	// Interval is the length of a window.
	Interval time.Duration

	mu    sync.Mutex
	open  map[K]*window
	ended []Summary[K]
}

type window struct {
	start                              time.Time
	total, admitted, recorded, dropped int64
}

// Summary is what a window stands for.
type Summary[K comparable] struct {
	Key        K
	Start, End time.Time
	// Total is every refusal of the window; Recorded those recorded one by
	// one; Dropped those offered a record of their own that the buffer had
	// no room for.
	Total, Recorded, Dropped int64
}

// Count is the number of the window's refusals that have no record of
// their own: the summary's record stands for them.
func (s Summary[K]) Count() int64 { return s.Total - s.Recorded }

// Outcome of one refusal offered to the sampler.
type Outcome int

// Outcomes, in the order of the metric's labels.
const (
	Recorded   Outcome = iota // a record of its own was buffered
	Summarized                // counted in the window's summary
	Dropped                   // its own record found the buffer full: counted in the summary
)

func (o Outcome) String() string {
	switch o {
	case Recorded:
		return "recorded"
	case Summarized:
		return "summarized"
	default:
		return "dropped"
	}
}

// Offer counts one event of key at now. While the window has room,
// record is called (under the sampler's lock: it must not block) to buffer
// the refusal's own record; it reports whether there was room.
func (s *Sampler[K]) Offer(key K, now time.Time, record func() bool) Outcome {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.open[key]
	if w != nil && !now.Before(w.start.Add(s.Interval)) {
		s.closeLocked(key, w, w.start.Add(s.Interval))
		w = nil
	}
	if w == nil {
		if s.open == nil {
			s.open = map[K]*window{}
		}
		w = &window{start: now}
		s.open[key] = w
	}
	w.total++
	if w.admitted >= int64(s.PerInterval) {
		return Summarized
	}
	w.admitted++
	if !record() {
		w.dropped++
		return Dropped
	}
	w.recorded++
	return Recorded
}

// closeLocked ends a window, keeping its summary if it stands for any refusal.
func (s *Sampler[K]) closeLocked(key K, w *window, end time.Time) {
	delete(s.open, key)
	if w.total > w.recorded {
		s.ended = append(s.ended, Summary[K]{Key: key, Start: w.start, End: end, Total: w.total, Recorded: w.recorded, Dropped: w.dropped})
	}
}

// Flush returns the summaries of the windows that have ended by now.
func (s *Sampler[K]) Flush(now time.Time) []Summary[K] {
	s.mu.Lock()
	defer s.mu.Unlock()
	for key, w := range s.open {
		if end := w.start.Add(s.Interval); !now.Before(end) {
			s.closeLocked(key, w, end)
		}
	}
	out := s.ended
	s.ended = nil
	return out
}

// FlushAll ends every window at now (when the edge stops) and returns the summaries.
func (s *Sampler[K]) FlushAll(now time.Time) []Summary[K] {
	s.mu.Lock()
	defer s.mu.Unlock()
	for key, w := range s.open {
		end := w.start.Add(s.Interval)
		if now.Before(end) {
			end = now
		}
		s.closeLocked(key, w, end)
	}
	out := s.ended
	s.ended = nil
	return out
}
