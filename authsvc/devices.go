package authsvc

import "github.com/erpgate/erpgate/authsvc/store"

// Trusted devices. Owned by the devices and risk work (issue #17).

// deviceRoutes are the trusted-device endpoints.
var deviceRoutes = map[string]handlerFunc{}

// deviceState is the trusted-device feature's state in the Service.
type deviceState struct{}

func (s *Service) initDevices() error { return nil }

// deviceToken is the trusted-device credential a login presents: the
// body's (API clients) or the device cookie's (browsers); "" without one.
func (s *Service) deviceToken(c *call, fromBody string) string { return fromBody }

// trustDevice trusts the calling device for u after a second factor: the
// view of the new device with its credential (shown once), and a cookie
// for browsers; nil when devices are off.
func (s *Service) trustDevice(c *call, u store.User) (any, error) { return nil, nil }

// noteLogin records a completed login (first and, when asked, second
// factor) for the risk signals of later ones: its device and network.
func (s *Service) noteLogin(c *call, userID string) {}
