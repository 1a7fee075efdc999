package store

// DeviceStore keeps users' trusted devices (and what the risk signals
// remember of past logins). Owned by the devices and risk work (issue #17).
type DeviceStore interface{}

// memDevices is Memory's part of DeviceStore (under Memory.mu).
type memDevices struct{}
