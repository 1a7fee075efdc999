// Package apq keeps GraphQL query texts by their sha256, for automatic
// persisted queries (Apollo's protocol: a client sends
// extensions.persistedQuery.sha256Hash instead of the query; on a miss it
// sends both once and the edge remembers the text) and for trusted documents
// (a manifest of hash → query the operator ships, the only queries a
// "persisted queries only" plan may run).
//
// A store is content-addressed: Put refuses a text whose hash is not the key,
// so nobody can register another text under a hash a client will send, and
// query texts are bounded (MaxQueryBytes) so a store cannot be filled with
// huge entries. Memory is a bounded LRU for one edge instance; Redis is
// shared by every instance, each entry expiring when it has not been read for
// its TTL. The package imports contract, go-redis and the standard library.
package apq

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
)

// MaxQueryBytes is the longest query text a store keeps (64 KiB).
const MaxQueryBytes = 64 << 10

// Errors a store returns; compare with errors.Is. The first three are the
// client's fault (an answer of 400); anything else from a store is a
// dependency failure.
var (
	// ErrInvalidHash: the hash is not 64 lowercase hex digits.
	ErrInvalidHash = errors.New("apq: hash is not a lowercase hex sha256")
	// ErrHashMismatch: the query's sha256 is not the hash it is put under.
	ErrHashMismatch = errors.New("apq: hash does not match the query")
	// ErrTooLarge: the query is longer than MaxQueryBytes.
	ErrTooLarge = errors.New("apq: query too large")
)

// Store keeps query texts by their sha256 (hex, lowercase), as Apollo's
// automatic persisted queries do. Implementations are safe for concurrent
// use.
type Store interface {
	// Get returns the query stored under hash; ok is false when there is
	// none. An invalid hash is ErrInvalidHash.
	Get(ctx context.Context, hash string) (query string, ok bool, err error)
	// Put stores query under hash, which must be Hash(query)
	// (ErrHashMismatch otherwise); a query over MaxQueryBytes is
	// ErrTooLarge. Putting a stored entry again refreshes it.
	Put(ctx context.Context, hash, query string) error
}

// Hash is the lowercase hex sha256 of the query's exact bytes.
func Hash(query string) string {
	sum := sha256.Sum256([]byte(query))
	return hex.EncodeToString(sum[:])
}

// ValidHash says whether s is 64 lowercase hex digits. Upper case is
// refused, so one query has one key.
func ValidHash(s string) bool {
	if len(s) != sha256.Size*2 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// check is Put's common verification: the hash's form, the query's size,
// then the hash of the query (last: it is the only costly one).
func check(hash, query string) error {
	if !ValidHash(hash) {
		return ErrInvalidHash
	}
	if len(query) > MaxQueryBytes {
		return ErrTooLarge
	}
	if !matches(hash, query) {
		return ErrHashMismatch
	}
	return nil
}

// matches says whether hash is the sha256 of query, without allocating.
func matches(hash, query string) bool {
	sum := sha256.Sum256([]byte(query))
	var enc [sha256.Size * 2]byte
	hex.Encode(enc[:], sum[:])
	return string(enc[:]) == hash
}
