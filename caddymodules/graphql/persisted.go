package graphql

// This file has no Caddy import: persisted queries (Apollo's automatic
// persisted queries and the trusted-documents manifest), tested alone.

import (
	"context"
	"net/http"

	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/depfail"
	"github.com/erpgate/erpgate/internal/graphql"
	"github.com/erpgate/erpgate/internal/graphql/apq"
)

// persisted resolves the documents requests name by hash.
type persisted struct {
	// manifest is the trusted documents: sha256 hex → query, every hash
	// verified when the config loaded.
	manifest map[string]string
	// store holds the automatic persisted queries clients registered.
	store apq.Store
}

// pqExtension is extensions.persistedQuery of a request.
type pqExtension struct {
	hash string
}

// readExtension finds extensions.persistedQuery: ok false when absent; a
// refusal when it is malformed (not version 1, not a sha256 hex hash).
func readExtension(ext map[string]any) (pq pqExtension, ok bool, ref *refusal) {
	raw, ok := ext["persistedQuery"]
	if !ok || raw == nil {
		return pq, false, nil
	}
	m, isObj := raw.(map[string]any)
	if !isObj {
		return pq, false, fieldRefusal("extensions.persistedQuery", "persistedQuery is an object {version, sha256Hash}")
	}
	if v, _ := m["version"].(float64); v != 1 {
		return pq, false, fieldRefusal("extensions.persistedQuery.version", "persistedQuery version 1 is the one supported")
	}
	h, _ := m["sha256Hash"].(string)
	if !apq.ValidHash(h) {
		return pq, false, fieldRefusal("extensions.persistedQuery.sha256Hash", "sha256Hash is 64 lower-case hex digits")
	}
	return pqExtension{hash: h}, true, nil
}

// errPersistedOnly refuses what a persisted-only plan does not run.
func errPersistedOnly() *refusal {
	return refuse(http.StatusForbidden, contract.CodeForbidden, "this plan accepts only persisted queries")
}

// resolve sets req.Query from the hash it names when it sends none. It
// returns the hash to register once the query proved valid ("" for none).
//   - hash only: the manifest's document, else the APQ store's; neither:
//     the error "PersistedQueryNotFound" (code NOT_FOUND, status 200: Apollo
//     clients then send the hash with the query);
//   - hash and query: sha256(query) must be the hash (else BAD_REQUEST);
//     the query is then registered (by the caller, after Prepare);
//   - persisted-only plans run the manifest's documents named by hash and
//     nothing else (403 FORBIDDEN), and register nothing.
func (p *persisted) resolve(ctx context.Context, req *graphql.Request, persistedOnly bool) (register string, ref *refusal) {
	pq, ok, ref := readExtension(req.Extensions)
	if ref != nil {
		return "", ref
	}
	if !ok {
		if persistedOnly {
			return "", errPersistedOnly()
		}
		return "", nil
	}
	if persistedOnly {
		q, known := p.manifest[pq.hash]
		if req.Query != "" || !known {
			return "", errPersistedOnly()
		}
		req.Query = q
		return "", nil
	}
	if req.Query != "" {
		if apq.Hash(req.Query) != pq.hash {
			return "", fieldRefusal("extensions.persistedQuery.sha256Hash", "sha256Hash is not the hash of the query")
		}
		if _, known := p.manifest[pq.hash]; known {
			return "", nil
		}
		return pq.hash, nil
	}
	if q, known := p.manifest[pq.hash]; known {
		req.Query = q
		return "", nil
	}
	if p.store == nil {
		return "", persistedNotFound()
	}
	q, found, err := p.store.Get(ctx, pq.hash)
	if err != nil {
		return "", fromContract(depfail.Error("persisted queries are temporarily unavailable"))
	}
	if !found {
		return "", persistedNotFound()
	}
	req.Query = q
	return "", nil
}

// persistedNotFound is Apollo's signal to send the query with its hash.
func persistedNotFound() *refusal {
	return refuse(http.StatusOK, contract.CodeNotFound, "PersistedQueryNotFound")
}
