package authsvc_test

import (
	"testing"
)

// A look-alike login costs what an unknown user and a wrong password cost
// (one argon2 verification, against the dummy hash or the account's own) and
// answers the same; another form of the same name is the same account.
func TestLoginNames(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, external bool) {
		e := newEnv(t, envOpts{external: external})
		ok := e.login(t, "alice@acme.test", "erpgate-demo")
		if ok.Status != 200 {
			t.Fatalf("alice: %d %s", ok.Status, ok.Raw)
		}
		aliceID, _ := ok.data()["user"].(map[string]any)["id"].(string)
		aliceHash := ""
		e.hasher.mu.Lock()
		aliceHash = e.hasher.hashes[len(e.hasher.hashes)-1]
		e.hasher.mu.Unlock()

		type outcome struct {
			status  int
			code    string
			realm   string
			message string
		}
		try := func(email, password string) (outcome, string) {
			t.Helper()
			before := e.hasher.verifies.Load()
			a := e.login(t, email, password)
			if n := e.hasher.verifies.Load() - before; n != 1 {
				t.Fatalf("login %q verified %d hashes, want 1", email, n)
			}
			e.hasher.mu.Lock()
			against := e.hasher.hashes[len(e.hasher.hashes)-1]
			e.hasher.mu.Unlock()
			msg := ""
			if errs, _ := a.Body["errors"].([]any); len(errs) > 0 {
				msg, _ = errs[0].(map[string]any)["message"].(string)
			}
			return outcome{a.Status, a.code(), a.Header.Get("WWW-Authenticate"), msg}, against
		}
		unknown, _ := try("nobody@acme.test", "erpgate-demo")
		wrong, against := try("alice@acme.test", "wrong-password")
		if against != aliceHash || unknown.status != 401 || unknown != wrong {
			t.Fatalf("unknown %+v, wrong password %+v", unknown, wrong)
		}
		for _, email := range []string{"alіce@acme.test", "аlісе@acme.test", "alice@аcme.test", "alice@xn--cme-5cd.test"} {
			got, against := try(email, "erpgate-demo")
			if got != unknown || against == aliceHash {
				t.Errorf("login %q: %+v against alice's hash %v; want the unknown user's answer %+v", email, got, against == aliceHash, unknown)
			}
		}
		for _, email := range []string{"ALICE@ACME.TEST", "ａlice@acme.test", "ali\u200bce@acme.test", "alice@ACME.test"} {
			a := e.login(t, email, "erpgate-demo")
			id, _ := a.data()["user"].(map[string]any)["id"].(string)
			if a.Status != 200 || id != aliceID {
				t.Errorf("login %q: %d %s; want alice (%s)", email, a.Status, a.Raw, aliceID)
			}
		}
		// An invalid name is refused before any look-up, for what it is.
		a := e.login(t, "al ice@acme.test", "erpgate-demo")
		if a.Status != 422 || a.code() != "VALIDATION_FAILED" {
			t.Fatalf("invalid name: %d %s", a.Status, a.Raw)
		}
	})
}
