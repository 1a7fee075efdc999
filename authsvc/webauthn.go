package authsvc

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/erpgate/erpgate/authsvc/loginname"
	"github.com/erpgate/erpgate/authsvc/store"
	"github.com/erpgate/erpgate/contract"
)

// Passkeys (WebAuthn): registration, passwordless login, second factor.
// Owned by the passkey work (issue #17).
//
// The relying party is the edge's public URL: its host is the RP id and
// it is the only origin accepted. A ceremony's state (the challenge, the
// user, what it is for) is sealed under the master key into the opaque
// `session` value the begin step returns; it is good for
// WebAuthnSessionTTL and spent by its first finish (a mark in Redis or
// memory), whatever the outcome. No state is kept between the steps on
// the server, so any instance finishes what another began.

// WebAuthnSessionTTL is how long a ceremony may take, begin to finish.
const WebAuthnSessionTTL = 5 * time.Minute

// maxPasskeys bounds a user's passkeys.
const maxPasskeys = 20

// webauthnRoutes are the passkey endpoints.
var webauthnRoutes = map[string]handlerFunc{
	"POST /api/v1/auth/webauthn/register/begin":     (*Service).handleWebAuthnRegisterBegin,
	"POST /api/v1/auth/webauthn/register/finish":    (*Service).handleWebAuthnRegisterFinish,
	"POST /api/v1/auth/webauthn/login/begin":        (*Service).handleWebAuthnLoginBegin,
	"POST /api/v1/auth/webauthn/login/finish":       (*Service).handleWebAuthnLoginFinish,
	"GET /api/v1/auth/webauthn/credentials":         (*Service).handleWebAuthnList,
	"DELETE /api/v1/auth/webauthn/credentials/{id}": (*Service).handleWebAuthnDelete,
}

// webauthnState is the passkey feature's state in the Service.
type webauthnState struct {
	rp *webauthn.WebAuthn // nil: passkeys are off (off says why)
	// off is why passkeys are off: the public URL's host is no domain
	// name (an IP address cannot be a relying party id).
	off string
	// decoyKey derives the plausible options of a login/begin for an
	// address without passkeys, the same ones each time for an address
	// (from the master key: the same on every instance).
	decoyKey []byte
}

// Reasons of passkey refusals (Details["reason"] of webauthn.failed).
const (
	ReasonWebAuthnSession     = "invalid_session"      // not a session of this step, forged or from another key
	ReasonWebAuthnExpired     = "session_expired"      // older than WebAuthnSessionTTL
	ReasonWebAuthnReplayed    = "session_replayed"     // a spent session came back
	ReasonWebAuthnMalformed   = "malformed_credential" // not a PublicKeyCredential
	ReasonWebAuthnUnknown     = "unknown_credential"   // no passkey with that credential id
	ReasonWebAuthnWrongUser   = "wrong_user"           // another user's passkey for this ceremony
	ReasonWebAuthnVerify      = "verification_failed"  // origin, RP id, challenge, signature, flags
	ReasonWebAuthnUserBlocked = "user_disabled"        // the passkey's user is disabled or locked
)

func (s *Service) initWebAuthn() error {
	u, err := url.Parse(s.cfg.PublicURL)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("public_url %q is not an http(s) URL", s.cfg.PublicURL)
	}
	// The key of the decoys: a PRF of the master key (AES-GCM under it, one
	// fixed message: a keystream block and its tag, never sent anywhere).
	s.webauthn.decoyKey = hmacKey(s.sealer.aead.Seal(nil, make([]byte, s.sealer.aead.NonceSize()), []byte("erpgate webauthn decoys v1"), nil))
	host := u.Hostname()
	if net.ParseIP(host) != nil {
		s.webauthn.off = "passkeys need public_url with a domain name (e.g. http://localhost:8080), not an IP address"
		s.logger.Warn("passkeys are off: the public URL's host is an IP address", zap.String("public_url", s.cfg.PublicURL))
		return nil
	}
	origin := u.Scheme + "://" + u.Host
	rp, err := webauthn.New(&webauthn.Config{
		RPID:                  host,
		RPDisplayName:         "erpgate",
		RPOrigins:             []string{origin},
		AttestationPreference: protocol.PreferNoAttestation,
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey:      protocol.ResidentKeyRequirementPreferred,
			UserVerification: protocol.VerificationPreferred,
		},
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Timeout: WebAuthnSessionTTL, TimeoutUVD: WebAuthnSessionTTL},
			Registration: webauthn.TimeoutConfig{Timeout: WebAuthnSessionTTL, TimeoutUVD: WebAuthnSessionTTL},
		},
	})
	if err != nil {
		return fmt.Errorf("webauthn relying party for %s: %w", s.cfg.PublicURL, err)
	}
	s.webauthn.rp = rp
	return nil
}

func hmacKey(b []byte) []byte {
	h := sha256.Sum256(b)
	return h[:]
}

// webauthnFactor reports whether the user may complete a login with a
// passkey as a second factor: they have one.
func (s *Service) webauthnFactor(c *call, u store.User) (string, bool, error) {
	if s.webauthn.rp == nil {
		return MethodWebAuthn, false, nil
	}
	creds, err := s.store.ListWebAuthnCredentials(c.ctx, u.ID)
	if err != nil {
		return MethodWebAuthn, false, err
	}
	return MethodWebAuthn, len(creds) > 0, nil
}

func (s *Service) webauthnOn() error {
	if s.webauthn.rp == nil {
		return contract.NewError(http.StatusServiceUnavailable, contract.CodeServiceUnavailable, s.webauthn.off)
	}
	return nil
}

// waUser is a user as go-webauthn sees it: the user handle is the 16
// bytes of the user's UUID (no personal data).
type waUser struct {
	u     store.User
	id    []byte
	creds []webauthn.Credential
}

func (w *waUser) WebAuthnID() []byte                         { return w.id }
func (w *waUser) WebAuthnName() string                       { return w.u.Email }
func (w *waUser) WebAuthnCredentials() []webauthn.Credential { return w.creds }
func (w *waUser) WebAuthnDisplayName() string {
	if w.u.Name != "" {
		return w.u.Name
	}
	return w.u.Email
}

// userHandle is the WebAuthn user handle of a user id.
func userHandle(userID string) []byte {
	id, err := uuid.Parse(userID)
	if err != nil {
		h := sha256.Sum256([]byte(userID))
		return h[:16]
	}
	return id[:]
}

func toLibCredential(c store.WebAuthnCredential) webauthn.Credential {
	var flags protocol.AuthenticatorFlags = protocol.FlagUserPresent
	if c.UserVerified {
		flags |= protocol.FlagUserVerified
	}
	if c.BackupEligible {
		flags |= protocol.FlagBackupEligible
	}
	if c.BackupState {
		flags |= protocol.FlagBackupState
	}
	tr := make([]protocol.AuthenticatorTransport, 0, len(c.Transports))
	for _, t := range c.Transports {
		tr = append(tr, protocol.AuthenticatorTransport(t))
	}
	return webauthn.Credential{
		ID: c.CredentialID, PublicKey: c.PublicKey, AttestationFormat: c.AttestationFormat, Transport: tr,
		Flags:         webauthn.NewCredentialFlags(flags),
		Authenticator: webauthn.Authenticator{AAGUID: c.AAGUID, SignCount: c.SignCount},
	}
}

// loadWAUser is the user with their passkeys.
func (s *Service) loadWAUser(c *call, u store.User) (*waUser, []store.WebAuthnCredential, error) {
	stored, err := s.store.ListWebAuthnCredentials(c.ctx, u.ID)
	if err != nil {
		return nil, nil, err
	}
	w := &waUser{u: u, id: userHandle(u.ID)}
	for _, sc := range stored {
		w.creds = append(w.creds, toLibCredential(sc))
	}
	return w, stored, nil
}

// Ceremony kinds of a sealed session.
const (
	waRegister = "register"
	waLogin    = "login" // a first factor
	waMFA      = "mfa"   // a second factor of a pending login token
)

// waSession is a ceremony's state, sealed into the `session` value.
type waSession struct {
	ID         string               `json:"i"` // the single-use mark
	UserID     string               `json:"u,omitempty"`
	LoginToken string               `json:"lt,omitempty"` // waMFA: the pending login token
	Name       string               `json:"n,omitempty"`  // waRegister: the passkey's name
	Expires    int64                `json:"e"`            // unix seconds
	Data       webauthn.SessionData `json:"d"`
}

func waKID(kind string) string { return "webauthn-session:" + kind }

func (s *Service) sealWASession(kind string, ws waSession) (string, error) {
	ws.ID = uuid.NewString()
	ws.Expires = s.clock.Now().Add(WebAuthnSessionTTL).Unix()
	ws.Data.Expires = time.Time{} // enforced here, on the service's clock
	b, err := json.Marshal(ws)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(s.sealer.Seal(waKID(kind), b)), nil
}

// openWASession opens a session of one of kinds, checks its age and
// spends it (a second finish with it is refused). The refusals are
// audited as webauthn.failed with step.
func (s *Service) openWASession(c *call, token, step string, refusal func() error, kinds ...string) (string, waSession, error) {
	var ws waSession
	if token == "" {
		return "", ws, invalid("session", "session is required (from the begin step)")
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(raw) > 16<<10 {
		return "", ws, s.waRefuse(c, store.EventWebAuthnFailed, ReasonWebAuthnSession, refusal(), "step", step)
	}
	kind := ""
	for _, k := range kinds {
		if pt, err := s.sealer.Open(waKID(k), raw); err == nil && json.Unmarshal(pt, &ws) == nil {
			kind = k
			break
		}
	}
	if kind == "" {
		return "", ws, s.waRefuse(c, store.EventWebAuthnFailed, ReasonWebAuthnSession, refusal(), "step", step)
	}
	if ws.UserID != "" {
		c.meta.UserID = ws.UserID
	}
	if !s.clock.Now().Before(time.Unix(ws.Expires, 0)) {
		return "", ws, s.waRefuse(c, store.EventWebAuthnFailed, ReasonWebAuthnExpired, refusal(), "step", step)
	}
	first, err := s.counters.MarkOnce(c.ctx, "webauthn:used:"+ws.ID, WebAuthnSessionTTL+time.Minute)
	if err != nil {
		return "", ws, err
	}
	if !first {
		return "", ws, s.waRefuse(c, store.EventWebAuthnFailed, ReasonWebAuthnReplayed, refusal(), "step", step)
	}
	return kind, ws, nil
}

// waRefuse audits a refusal (as s.refuse) and logs it on the refusal log.
func (s *Service) waRefuse(c *call, typ, reason string, refusal error, details ...string) error {
	if ce := s.refusals.CheckLine(zap.InfoLevel, "passkey refused", reason); ce != nil {
		ce.Write(zap.String("reason", reason), zap.String("user_id", c.meta.UserID), zap.String("ip", c.ip))
	}
	return s.refuse(c, typ, reason, refusal, details...)
}

// errPasskeyFailed is the one answer to an assertion that did not pass,
// whatever the reason (the audit record has it).
func errPasskeyFailed() error {
	return unauthenticated(contract.CodeUnauthenticated, "the passkey could not be verified; start again", hdrLogin)
}

// errRegistrationFailed answers a registration that did not verify: the
// caller is signed in, so a validation error, not a 401.
func errRegistrationFailed() error {
	return invalid("credential", "the passkey could not be verified; start the registration again")
}

// libDetail is what go-webauthn says about a failure, for the audit record.
func libDetail(err error) string {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		d := pe.Details
		if pe.DevInfo != "" {
			d += ": " + pe.DevInfo
		}
		return truncate(d, 200)
	}
	return truncate(err.Error(), 200)
}

// credentialView is a passkey as the API shows it.
type credentialView struct {
	ID                string     `json:"id"`
	Name              string     `json:"name"`
	CredentialID      string     `json:"credential_id"` // base64url, as navigator.credentials gives rawId
	AAGUID            string     `json:"aaguid"`
	Transports        []string   `json:"transports"`
	AttestationFormat string     `json:"attestation_format"`
	BackupEligible    bool       `json:"backup_eligible"`
	BackupState       bool       `json:"backup_state"`
	UserVerified      bool       `json:"user_verified"`
	SignCount         uint32     `json:"sign_count"`
	CreatedAt         time.Time  `json:"created_at"`
	LastUsedAt        *time.Time `json:"last_used_at"`
}

func viewCredential(c store.WebAuthnCredential) credentialView {
	v := credentialView{ID: c.ID, Name: c.Name, CredentialID: base64.RawURLEncoding.EncodeToString(c.CredentialID),
		Transports: c.Transports, AttestationFormat: c.AttestationFormat, BackupEligible: c.BackupEligible,
		BackupState: c.BackupState, UserVerified: c.UserVerified, SignCount: c.SignCount, CreatedAt: c.CreatedAt}
	if v.Transports == nil {
		v.Transports = []string{}
	}
	if a, err := uuid.FromBytes(c.AAGUID); err == nil {
		v.AAGUID = a.String()
	} else {
		v.AAGUID = uuid.Nil.String()
	}
	if !c.LastUsedAt.IsZero() {
		t := c.LastUsedAt
		v.LastUsedAt = &t
	}
	return v
}

// passkeyName checks a passkey's name: 1 to 64 characters, no control
// characters; "Passkey" when none is given.
func passkeyName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return "Passkey", nil
	}
	if !utf8.ValidString(name) || utf8.RuneCountInString(name) > 64 || strings.IndexFunc(name, unicode.IsControl) >= 0 {
		return "", invalid("name", "name is at most 64 characters, without control characters")
	}
	return name, nil
}

func (s *Service) handleWebAuthnRegisterBegin(c *call) (int, any, error) {
	if err := s.webauthnOn(); err != nil {
		return 0, nil, err
	}
	var in struct {
		Name string `json:"name"`
	}
	if err := decode(c, &in, true); err != nil {
		return 0, nil, err
	}
	_, u, err := s.mfaUser(c)
	if err != nil {
		return 0, nil, err
	}
	name, err := passkeyName(in.Name)
	if err != nil {
		return 0, nil, err
	}
	w, stored, err := s.loadWAUser(c, u)
	if err != nil {
		return 0, nil, err
	}
	if len(stored) >= maxPasskeys {
		return 0, nil, invalid("name", "a user has at most "+strconv.Itoa(maxPasskeys)+" passkeys; delete one first")
	}
	exclude := webauthn.Credentials(w.creds).CredentialDescriptors()
	creation, data, err := s.webauthn.rp.BeginRegistration(w, webauthn.WithExclusions(exclude))
	if err != nil {
		return 0, nil, err
	}
	session, err := s.sealWASession(waRegister, waSession{UserID: u.ID, Name: name, Data: *data})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]any{
		"session":    session,
		"options":    creation,
		"expires_in": int64(WebAuthnSessionTTL / time.Second),
	}, nil
}

func (s *Service) handleWebAuthnRegisterFinish(c *call) (int, any, error) {
	if err := s.webauthnOn(); err != nil {
		return 0, nil, err
	}
	var in struct {
		Session    string          `json:"session"`
		Credential json.RawMessage `json:"credential"`
	}
	if err := decode(c, &in, false); err != nil {
		return 0, nil, err
	}
	_, u, err := s.mfaUser(c)
	if err != nil {
		return 0, nil, err
	}
	if len(in.Credential) == 0 || string(in.Credential) == "null" {
		return 0, nil, invalid("credential", "credential is required: the PublicKeyCredential navigator.credentials.create gave")
	}
	refusal := func() error {
		return invalid("session", "the registration session is invalid, expired or used; start again")
	}
	_, ws, err := s.openWASession(c, in.Session, "register", refusal, waRegister)
	if err != nil {
		return 0, nil, err
	}
	if ws.UserID != u.ID { // another user's ceremony
		return 0, nil, s.waRefuse(c, store.EventWebAuthnFailed, ReasonWebAuthnWrongUser, refusal(), "step", "register")
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(in.Credential)
	if err != nil {
		return 0, nil, s.waRefuse(c, store.EventWebAuthnFailed, ReasonWebAuthnMalformed,
			invalid("credential", "credential is not a PublicKeyCredential as navigator.credentials.create gives it"),
			"step", "register", "detail", libDetail(err))
	}
	w, stored, err := s.loadWAUser(c, u)
	if err != nil {
		return 0, nil, err
	}
	if len(stored) >= maxPasskeys {
		return 0, nil, invalid("credential", "a user has at most "+strconv.Itoa(maxPasskeys)+" passkeys; delete one first")
	}
	cred, err := s.webauthn.rp.CreateCredential(w, ws.Data, parsed)
	if err != nil {
		return 0, nil, s.waRefuse(c, store.EventWebAuthnFailed, ReasonWebAuthnVerify, errRegistrationFailed(),
			"step", "register", "detail", libDetail(err))
	}
	now := s.clock.Now()
	sc := store.WebAuthnCredential{
		ID: uuid.NewString(), UserID: u.ID, CredentialID: cred.ID, PublicKey: cred.PublicKey, SignCount: cred.Authenticator.SignCount,
		AAGUID: cred.Authenticator.AAGUID, AttestationFormat: cred.AttestationFormat, BackupEligible: cred.Flags.BackupEligible,
		BackupState: cred.Flags.BackupState, UserVerified: cred.Flags.UserVerified, Name: ws.Name, CreatedAt: now,
	}
	if sc.AttestationFormat == "" {
		sc.AttestationFormat = "none"
	}
	for _, t := range cred.Transport {
		if tt := string(t); tt != "" && len(tt) <= 32 && !slices.Contains(sc.Transports, tt) && len(sc.Transports) < 8 {
			sc.Transports = append(sc.Transports, tt)
		}
	}
	slices.Sort(sc.Transports) // as the decoys list them
	ev := s.event(c, store.EventWebAuthnRegistered)
	ev.SubjectID = sc.ID
	ev.Details = map[string]string{"name": sc.Name, "aaguid": viewCredential(sc).AAGUID, "user_verified": strconv.FormatBool(sc.UserVerified),
		"backup_eligible": strconv.FormatBool(sc.BackupEligible)}
	if err := s.store.CreateWebAuthnCredential(c.ctx, sc, ev); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return 0, nil, errConflict("this passkey is registered already")
		}
		return 0, nil, err
	}
	s.logger.Info("passkey registered", zap.String("user_id", u.ID), zap.String("credential", sc.ID))
	return http.StatusCreated, viewCredential(sc), nil
}

func (s *Service) handleWebAuthnLoginBegin(c *call) (int, any, error) {
	if err := s.webauthnOn(); err != nil {
		return 0, nil, err
	}
	var in struct {
		Email      string `json:"email"`
		LoginToken string `json:"login_token"`
	}
	if err := decode(c, &in, true); err != nil {
		return 0, nil, err
	}
	if in.Email != "" && in.LoginToken != "" {
		return 0, nil, invalid("email", "give email or login_token, not both")
	}
	var (
		kind      = waLogin
		ws        waSession
		assertion *protocol.CredentialAssertion
		data      *webauthn.SessionData
		err       error
	)
	switch {
	case in.LoginToken != "":
		// A second factor: the pending login's user, their passkeys.
		lc, u, err := s.pendingLogin(c, in.LoginToken)
		if err != nil {
			return 0, nil, err
		}
		if !slices.Contains(lc.methods(), MethodWebAuthn) {
			return 0, nil, invalid("login_token", "this login is not completed with a passkey; its methods: "+strings.Join(lc.methods(), ", "))
		}
		if u.Locked {
			return 0, nil, s.refuse(c, store.EventMFAFailed, ReasonUserDisabled, errBadCredentials())
		}
		w, _, err := s.loadWAUser(c, u)
		if err != nil {
			return 0, nil, err
		}
		if len(w.creds) == 0 { // deleted since the login
			return 0, nil, s.refuse(c, store.EventMFAFailed, ReasonMFAOff, unauthenticated(contract.CodeUnauthenticated, "the login token is invalid or expired; log in again", hdrInvalidToken))
		}
		assertion, data, err = s.webauthn.rp.BeginLogin(w)
		if err != nil {
			return 0, nil, err
		}
		kind, ws = waMFA, waSession{UserID: u.ID, LoginToken: in.LoginToken}
	case in.Email != "":
		// A first factor for one address: its passkeys, or for an address
		// without any (or no account) decoys that look the same, so the
		// answer tells nothing about the account.
		name, err := loginName("email", in.Email)
		if err != nil {
			return 0, nil, err
		}
		u, err := s.store.GetUserByEmail(c.ctx, name.Email)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return 0, nil, err
		}
		var w *waUser
		if err == nil && !u.Disabled && !u.Locked {
			if w, _, err = s.loadWAUser(c, u); err != nil {
				return 0, nil, err
			}
		}
		if w == nil || len(w.creds) == 0 {
			w = s.decoyUser(name)
		}
		assertion, data, err = s.webauthn.rp.BeginLogin(w)
		if err != nil {
			return 0, nil, err
		}
	default:
		// Discoverable: the authenticator offers the user's passkeys.
		assertion, data, err = s.webauthn.rp.BeginDiscoverableLogin()
		if err != nil {
			return 0, nil, err
		}
	}
	ws.Data = *data
	session, err := s.sealWASession(kind, ws)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]any{
		"session":    session,
		"options":    assertion,
		"expires_in": int64(WebAuthnSessionTTL / time.Second),
	}, nil
}

// decoyUser stands for an address without passkeys in login/begin: a user
// handle and one credential id derived from the address under the decoy
// key (the same on every call and instance), with a platform passkey's
// transports.
func (s *Service) decoyUser(name loginname.Name) *waUser {
	mac := hmac.New(sha256.New, s.webauthn.decoyKey)
	mac.Write([]byte("decoy\x00" + name.Email))
	sum := mac.Sum(nil)
	credID := sum[:]
	mac.Reset()
	mac.Write([]byte("handle\x00" + name.Email))
	handle := mac.Sum(nil)[:16]
	return &waUser{id: handle, creds: []webauthn.Credential{{ID: credID,
		Transport: []protocol.AuthenticatorTransport{protocol.Hybrid, protocol.Internal}}}}
}

func (s *Service) handleWebAuthnLoginFinish(c *call) (int, any, error) {
	if err := s.webauthnOn(); err != nil {
		return 0, nil, err
	}
	var in struct {
		Session     string          `json:"session"`
		Credential  json.RawMessage `json:"credential"`
		DeviceToken string          `json:"device_token"`
		TrustDevice bool            `json:"trust_device"`
	}
	if err := decode(c, &in, false); err != nil {
		return 0, nil, err
	}
	if len(in.Credential) == 0 || string(in.Credential) == "null" {
		return 0, nil, invalid("credential", "credential is required: the PublicKeyCredential navigator.credentials.get gave")
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(in.Credential)
	if err != nil {
		return 0, nil, s.waRefuse(c, store.EventWebAuthnFailed, ReasonWebAuthnMalformed,
			invalid("credential", "credential is not a PublicKeyCredential as navigator.credentials.get gives it"),
			"step", "login", "detail", libDetail(err))
	}
	kind, ws, err := s.openWASession(c, in.Session, "login", errPasskeyFailed, waLogin, waMFA)
	if err != nil {
		return 0, nil, err
	}
	step := kind
	var lc *loginClaims
	if kind == waMFA {
		// The pending login first: a spent or expired one burns no assertion.
		var u store.User
		if lc, u, err = s.pendingLogin(c, ws.LoginToken); err != nil {
			return 0, nil, err
		}
		if u.ID != ws.UserID || !slices.Contains(lc.methods(), MethodWebAuthn) {
			return 0, nil, s.waRefuse(c, store.EventWebAuthnFailed, ReasonWebAuthnSession, errPasskeyFailed(), "step", step)
		}
		if err := s.loginSpent(c, lc); err != nil {
			return 0, nil, err
		}
	}
	sc, err := s.store.FindWebAuthnCredential(c.ctx, parsed.RawID)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil, s.waRefuse(c, store.EventWebAuthnFailed, ReasonWebAuthnUnknown, errPasskeyFailed(), "step", step)
	}
	if err != nil {
		return 0, nil, err
	}
	owner := userHandle(sc.UserID)
	data := ws.Data
	if len(data.UserID) == 0 { // discoverable: the passkey names its user
		data.UserID = owner
	}
	if !bytes.Equal(data.UserID, owner) {
		c.meta.UserID = ws.UserID
		return 0, nil, s.waRefuse(c, store.EventWebAuthnFailed, ReasonWebAuthnWrongUser, errPasskeyFailed(), "step", step, "credential", sc.ID)
	}
	c.meta.UserID = sc.UserID
	u, err := s.store.GetUser(c.ctx, sc.UserID)
	if err != nil {
		return 0, nil, err
	}
	w, _, err := s.loadWAUser(c, u)
	if err != nil {
		return 0, nil, err
	}
	cred, err := s.webauthn.rp.ValidateLogin(w, data, parsed)
	if err != nil {
		return 0, nil, s.waRefuse(c, store.EventWebAuthnFailed, ReasonWebAuthnVerify, errPasskeyFailed(),
			"step", step, "credential", sc.ID, "detail", libDetail(err))
	}
	if u.Disabled || u.Locked {
		return 0, nil, s.waRefuse(c, store.EventWebAuthnFailed, ReasonWebAuthnUserBlocked, errPasskeyFailed(), "step", step, "credential", sc.ID)
	}
	flags := parsed.Response.AuthenticatorData.Flags
	presented := parsed.Response.AuthenticatorData.Counter
	regression := func() error {
		s.logger.Warn("passkey refused: the signature counter went back (a cloned authenticator?)", zap.String("user_id", u.ID),
			zap.String("credential", sc.ID), zap.Uint32("stored", sc.SignCount), zap.Uint32("presented", presented))
		return s.waRefuse(c, store.EventWebAuthnCounterRegression, ReasonWebAuthnVerify, errPasskeyFailed(), "step", step,
			"credential", sc.ID, "stored_count", strconv.FormatUint(uint64(sc.SignCount), 10), "presented_count", strconv.FormatUint(uint64(presented), 10))
	}
	if cred.Authenticator.CloneWarning {
		return 0, nil, regression()
	}
	err = s.store.UseWebAuthnCredential(c.ctx, u.ID, sc.ID, presented, flags.HasBackupState(), s.clock.Now())
	if errors.Is(err, store.ErrSignCount) { // a parallel assertion got there first
		return 0, nil, regression()
	}
	if err != nil {
		return 0, nil, err
	}
	if kind == waMFA {
		return s.completeMFA(c, u, lc, MethodWebAuthn, in.TrustDevice)
	}
	return s.finishLogin(c, loginAttempt{user: u, first: FirstPasskey, strong: flags.HasUserVerified(),
		deviceToken: s.deviceToken(c, in.DeviceToken),
		details:     map[string]string{"credential": sc.ID, "user_verified": strconv.FormatBool(flags.HasUserVerified())}})
}

func (s *Service) handleWebAuthnList(c *call) (int, any, error) {
	_, u, err := s.mfaUser(c)
	if err != nil {
		return 0, nil, err
	}
	creds, err := s.store.ListWebAuthnCredentials(c.ctx, u.ID)
	if err != nil {
		return 0, nil, err
	}
	out := make([]credentialView, 0, len(creds))
	for _, cr := range creds {
		out = append(out, viewCredential(cr))
	}
	return http.StatusOK, out, nil
}

func (s *Service) handleWebAuthnDelete(c *call) (int, any, error) {
	_, u, err := s.mfaUser(c)
	if err != nil {
		return 0, nil, err
	}
	ev := s.event(c, store.EventWebAuthnRemoved)
	ev.SubjectID = c.param
	err = s.store.DeleteWebAuthnCredential(c.ctx, u.ID, c.param, ev)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil, errNotFound("no such passkey")
	}
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]any{"id": c.param, "deleted": true}, nil
}
