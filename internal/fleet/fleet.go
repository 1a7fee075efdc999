// Package fleet keeps the runtime changes of the erp app's config the same
// on every edge instance: backends and quota overrides changed through one
// instance's Caddy admin API are stored in Postgres as entries (one per
// backend or company, its JSON value or a deletion), ordered by a fleet-wide
// revision, and every instance overlays them onto its own config.
//
// The rules, pure and Caddy-free here (the erp app applies them through
// Caddy's config loading):
//
//   - Overlay: a stored entry wins over the same key of a config; a stored
//     deletion removes it. A config loaded from a file (no runtime
//     revision in it) gets every stored entry; the instance then writes the
//     result into its config, so the admin API shows what serves.
//   - Changes: what a config load changed compared with the config before
//     it, minus what the fleet already stores with that same value (the
//     sync's own loads, so no announcement loops). Those are the instance's
//     local changes: stored, then announced.
package fleet

import (
	"bytes"
	"cmp"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"sync"
)

// Kinds of entries.
const (
	KindBackend       = "backend"
	KindQuotaOverride = "quota_override"
)

// Key names an entry: a backend by name, a quota override by company.
type Key struct {
	Kind string
	Name string
}

func (k Key) String() string { return k.Kind + "/" + k.Name }

// Entry is one stored runtime change.
type Entry struct {
	Key
	// Value is the entry's canonical JSON; nil: it was deleted.
	Value    json.RawMessage
	Revision int64
	Origin   string // the instance that made it
}

// Maps are a config's entries: canonical JSON by key.
type Maps map[Key]json.RawMessage

// Canonical is raw re-encoded with sorted object keys and no spaces, so
// that equal values compare equal as bytes.
func Canonical(raw json.RawMessage) (json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

// MapsOf makes the Maps of a config's two maps (each a JSON object by
// name, or nil).
func MapsOf(backends, overrides map[string]json.RawMessage) (Maps, error) {
	out := make(Maps, len(backends)+len(overrides))
	for kind, m := range map[string]map[string]json.RawMessage{KindBackend: backends, KindQuotaOverride: overrides} {
		for name, raw := range m {
			c, err := Canonical(raw)
			if err != nil {
				return nil, err
			}
			if string(c) == "null" {
				continue
			}
			out[Key{kind, name}] = c
		}
	}
	return out, nil
}

// Split turns Maps back into the config's two maps.
func (m Maps) Split() (backends, overrides map[string]json.RawMessage) {
	backends, overrides = map[string]json.RawMessage{}, map[string]json.RawMessage{}
	for k, v := range m {
		switch k.Kind {
		case KindBackend:
			backends[k.Name] = v
		case KindQuotaOverride:
			overrides[k.Name] = v
		}
	}
	return backends, overrides
}

// Equal reports whether two Maps hold the same entries.
func (m Maps) Equal(o Maps) bool {
	return maps.EqualFunc(m, o, func(a, b json.RawMessage) bool { return bytes.Equal(a, b) })
}

// Overlay is base with entries applied in order: a value sets its key, a
// deletion removes it. base is not changed.
func Overlay(base Maps, entries []Entry) Maps {
	out := maps.Clone(base)
	if out == nil {
		out = Maps{}
	}
	for _, e := range entries {
		if e.Value == nil {
			delete(out, e.Key)
		} else {
			out[e.Key] = e.Value
		}
	}
	return out
}

// Changes are the entries cur changed compared with prev (a value, or a
// deletion with a nil Value) that stored does not already hold with the
// same value. With onlyUnknown, keys stored holds are never changes (a
// config from a file does not override the fleet's entries). Sorted by key.
func Changes(prev, cur Maps, stored map[Key]Entry, onlyUnknown bool) []Entry {
	var out []Entry
	consider := func(k Key) {
		a, b := prev[k], cur[k]
		if bytes.Equal(a, b) {
			return
		}
		if s, ok := stored[k]; ok {
			if onlyUnknown || bytes.Equal(s.Value, b) {
				return
			}
		}
		out = append(out, Entry{Key: k, Value: b})
	}
	for k := range prev {
		consider(k)
	}
	for k := range cur {
		if _, seen := prev[k]; !seen {
			consider(k)
		}
	}
	slices.SortFunc(out, func(x, y Entry) int { return strings.Compare(x.Key.String(), y.Key.String()) })
	return out
}

// Known is what an instance knows of the stored entries: each key's
// latest entry and the highest revision seen. Safe for concurrent use.
type Known struct {
	mu      sync.Mutex
	rev     int64
	entries map[Key]Entry
}

// Merge adds entries newer than what is known of their keys and returns
// those that were new.
func (k *Known) Merge(entries []Entry) []Entry {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.entries == nil {
		k.entries = map[Key]Entry{}
	}
	var fresh []Entry
	for _, e := range entries {
		if old, ok := k.entries[e.Key]; ok && old.Revision >= e.Revision {
			continue
		}
		k.entries[e.Key] = e
		fresh = append(fresh, e)
		k.rev = max(k.rev, e.Revision)
	}
	return fresh
}

// Revision is the highest revision known.
func (k *Known) Revision() int64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.rev
}

// Snapshot is a copy of the known entries by key.
func (k *Known) Snapshot() map[Key]Entry {
	k.mu.Lock()
	defer k.mu.Unlock()
	return maps.Clone(k.entries)
}

// Since lists the known entries with a revision above rev, in revision order.
func (k *Known) Since(rev int64) []Entry {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []Entry
	for _, e := range k.entries {
		if e.Revision > rev {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(x, y Entry) int { return cmp.Compare(x.Revision, y.Revision) })
	return out
}
