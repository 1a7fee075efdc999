package authsvc

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/erpgate/erpgate/authsvc/store"
	"github.com/erpgate/erpgate/contract"
)

// Trusted devices (issue #17). After a second factor the client may ask
// to trust its device (POST /mfa/verify {"trust_device": true}): the
// answer's "device" holds a credential, `erd_` + 256 random bits, shown
// once; the store keeps its SHA-256 only. A browser gets it in an
// HttpOnly cookie as well. A later login that presents it (the body's
// device_token or the cookie) skips the second factor until the device
// expires (TrustedDeviceTTL, 30 days), unless the risk asks for a step up
// (risk.go). GET /devices lists the user's devices (never a credential),
// DELETE /devices/{id} revokes one; a password change and disabling the
// user revoke them all (the store does, with the change).

// deviceRoutes are the trusted-device endpoints.
var deviceRoutes = map[string]handlerFunc{
	"GET /api/v1/auth/devices":         (*Service).handleListDevices,
	"DELETE /api/v1/auth/devices/{id}": (*Service).handleRevokeDevice,
}

// devicePrefix starts every device credential (a scanner's pattern, and
// a cheap check before any lookup).
const devicePrefix = "erd_"

// Device cookie names. Over https the cookie is `__Host-erp_device`
// (Secure, host-only, Path=/: no subdomain or path can set or shadow it).
// Over plain http (development, tests) a Secure cookie would not be kept
// by browsers and the __Host- prefix requires Secure, so it is
// `erp_device` without Secure: still HttpOnly and SameSite=Strict, never
// readable by scripts nor sent by other sites' requests.
const (
	deviceCookieSecure = "__Host-erp_device"
	deviceCookiePlain  = "erp_device"
)

// deviceState is the trusted-device feature's state in the Service.
type deviceState struct {
	cookie string // the device cookie's name (from PublicURL's scheme)
	secure bool
	// signals is Deps.RiskSignals (the security monitor's view), or nil.
	signals func(ctx context.Context, ip, userID string) (int, []string)
}

func (s *Service) initDevices() error {
	s.dev.secure = strings.HasPrefix(strings.ToLower(s.cfg.PublicURL), "https://")
	s.dev.cookie = deviceCookiePlain
	if s.dev.secure {
		s.dev.cookie = deviceCookieSecure
	}
	return nil
}

// deviceView is a trusted device as its user sees it. Token is set once,
// in the answer that trusted it.
type deviceView struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	IP         string    `json:"ip"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	// Current: the request presented this device's credential (cookie).
	Current bool   `json:"current"`
	Token   string `json:"token,omitempty"`
}

func viewDevice(d store.TrustedDevice) deviceView {
	return deviceView{ID: d.ID, Name: d.Name, IP: d.IP, CreatedAt: d.CreatedAt, LastUsedAt: d.LastUsedAt, ExpiresAt: d.ExpiresAt}
}

// validDeviceFormat rejects what can't be a device credential before any
// lookup: the prefix and 43 base64url characters (32 bytes).
func validDeviceFormat(t string) bool {
	return len(t) == len(devicePrefix)+43 && strings.HasPrefix(t, devicePrefix)
}

// deviceToken is the trusted-device credential a login presents: the
// body's (API clients) or the device cookie's (browsers); "" without one.
func (s *Service) deviceToken(c *call, fromBody string) string {
	if fromBody != "" {
		return fromBody
	}
	if ck, err := c.r.Cookie(s.dev.cookie); err == nil {
		return ck.Value
	}
	return ""
}

// trustedDevice is the user's active device the credential names, if
// any (another user's credential, an expired or revoked one: none).
func (s *Service) trustedDevice(c *call, userID, token string, now time.Time) (store.TrustedDevice, bool, error) {
	if !validDeviceFormat(token) {
		return store.TrustedDevice{}, false, nil
	}
	h := hashSecret(token)
	d, err := s.store.TrustedDeviceByHash(c.ctx, h)
	if errors.Is(err, store.ErrNotFound) {
		return store.TrustedDevice{}, false, nil
	}
	if err != nil {
		return store.TrustedDevice{}, false, err
	}
	// The lookup was by hash; the comparison again in constant time keeps
	// the check independent of how the store matched it.
	if subtle.ConstantTimeCompare(d.TokenHash, h) != 1 || d.UserID != userID || !d.Active(now) {
		return store.TrustedDevice{}, false, nil
	}
	return d, true, nil
}

// trustDevice trusts the calling device for u after a second factor: the
// view of the new device with its credential (shown once), and a cookie
// for browsers.
func (s *Service) trustDevice(c *call, u store.User) (any, error) {
	now := s.clock.Now()
	token := devicePrefix + randomSecret()
	d := store.TrustedDevice{ID: uuid.NewString(), UserID: u.ID, TokenHash: hashSecret(token), Name: Device(c.r.UserAgent()), IP: c.ip,
		CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(s.cfg.TrustedDeviceTTL)}
	ev := s.event(c, store.EventDeviceTrusted)
	ev.ActorID, ev.SubjectID = u.ID, d.ID
	ev.Details = map[string]string{"name": d.Name, "expires_at": d.ExpiresAt.UTC().Format(time.RFC3339)}
	if err := s.store.CreateTrustedDevice(c.ctx, d, ev); err != nil {
		return nil, err
	}
	s.pruneDevices(c, u.ID, now)
	http.SetCookie(c.w, &http.Cookie{Name: s.dev.cookie, Value: token, Path: "/", MaxAge: int(s.cfg.TrustedDeviceTTL / time.Second),
		HttpOnly: true, Secure: s.dev.secure, SameSite: http.SameSiteStrictMode})
	s.logger.Info("device trusted", zap.String("user_id", u.ID), zap.String("device_id", d.ID), zap.String("device", d.Name))
	v := viewDevice(d)
	v.Current, v.Token = true, token
	return v, nil
}

// maxTrustedDevices bounds a user's active trusted devices: trusting one
// more revokes the least recently used.
const maxTrustedDevices = 20

// pruneDevices revokes the user's least recently used active devices
// beyond maxTrustedDevices (audited device.revoked, reason "replaced").
// Best effort: a failure is logged, the new device stays trusted.
func (s *Service) pruneDevices(c *call, userID string, now time.Time) {
	list, err := s.store.ListTrustedDevices(c.ctx, userID, now)
	if err != nil {
		s.logger.Warn("trusted devices not pruned", zap.String("user_id", userID), zap.Error(err))
		return
	}
	for i := len(list) - 1; i >= maxTrustedDevices; i-- { // most recently used first: the oldest are last
		ev := s.event(c, store.EventDeviceRevoked)
		ev.ActorID, ev.SubjectID, ev.Details = userID, list[i].ID, map[string]string{"reason": store.DeviceRevokedReplaced}
		if err := s.store.RevokeTrustedDevice(c.ctx, userID, list[i].ID, store.DeviceRevokedReplaced, now, ev); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.logger.Warn("trusted device not pruned", zap.String("user_id", userID), zap.String("device_id", list[i].ID), zap.Error(err))
		}
	}
}

// noteLogin records a completed login (first and, when asked, second
// factor) for the risk signals of later ones: its device and network.
// Best effort: a store failure is logged, the login goes on.
func (s *Service) noteLogin(c *call, userID string) {
	tr := store.LoginTrace{UserID: userID, Fingerprint: deviceFingerprint(c.r.UserAgent()), Network: clientNetwork(c.ip), At: s.clock.Now()}
	if err := s.store.RecordLogin(c.ctx, tr, loginHistoryKeep); err != nil {
		s.logger.Warn("login history not recorded", zap.String("user_id", userID), zap.Error(err))
	}
}

func (s *Service) handleListDevices(c *call) (int, any, error) {
	claims, err := s.authenticate(c, true)
	if err != nil {
		return 0, nil, err
	}
	list, err := s.store.ListTrustedDevices(c.ctx, claims.Subject, s.clock.Now())
	if err != nil {
		return 0, nil, err
	}
	var current []byte
	if ck, err := c.r.Cookie(s.dev.cookie); err == nil && validDeviceFormat(ck.Value) {
		current = hashSecret(ck.Value)
	}
	out := make([]deviceView, 0, len(list))
	for _, d := range list {
		v := viewDevice(d)
		v.Current = current != nil && subtle.ConstantTimeCompare(current, d.TokenHash) == 1
		out = append(out, v)
	}
	return http.StatusOK, out, nil
}

func (s *Service) handleRevokeDevice(c *call) (int, any, error) {
	claims, err := s.authenticate(c, true)
	if err != nil {
		return 0, nil, err
	}
	ev := s.event(c, store.EventDeviceRevoked)
	ev.SubjectID, ev.Details = c.param, map[string]string{"reason": store.DeviceRevokedByUser}
	err = s.store.RevokeTrustedDevice(c.ctx, claims.Subject, c.param, store.DeviceRevokedByUser, s.clock.Now(), ev)
	if errors.Is(err, store.ErrNotFound) {
		// Another user's device, an unknown one and one already revoked or
		// expired look alike.
		return 0, nil, contract.NewError(http.StatusNotFound, contract.CodeNotFound, "no such device")
	}
	if err != nil {
		return 0, nil, s.errNotRecorded(c, err)
	}
	// Revoked from the device itself: its cookie goes too.
	if ck, err := c.r.Cookie(s.dev.cookie); err == nil && validDeviceFormat(ck.Value) {
		if d, err := s.store.TrustedDeviceByHash(c.ctx, hashSecret(ck.Value)); err == nil && d.ID == c.param {
			http.SetCookie(c.w, &http.Cookie{Name: s.dev.cookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: s.dev.secure,
				SameSite: http.SameSiteStrictMode})
		}
	}
	s.logger.Info("trusted device revoked", zap.String("user_id", claims.Subject), zap.String("device_id", c.param))
	return http.StatusOK, map[string]any{"id": c.param, "revoked": true}, nil
}
