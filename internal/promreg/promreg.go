// Package promreg registers Prometheus collectors on a config's registry,
// across config reloads. Caddy gives each loaded config its own registry
// (caddy.Context.GetMetricsRegistry), so a module registers its collectors
// in every Provision, and two modules of one config may register the same
// collector: both are normal, not errors. It owns no state (the registry
// is the config's); it imports no Caddy and nothing of ours.
package promreg

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers c on reg and returns the collector to use: c, or the
// collector of the same description reg already holds when that one has
// c's type (another module of the same config registered it first, and
// both must count into the one the registry exports). A nil reg (a test
// without a Caddy context) leaves c unregistered.
func Register[C prometheus.Collector](reg *prometheus.Registry, c C) (C, error) {
	if reg == nil {
		return c, nil
	}
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, err
}

// RegisterProcessWide registers collectors that live for the process
// (package variables, so counts go on across reloads) on a config's
// registry. Registering one again on the same registry is not an error;
// another collector of the same description is, as it would hide ours.
func RegisterProcessWide(reg *prometheus.Registry, cs ...prometheus.Collector) error {
	if reg == nil {
		return nil
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok && are.ExistingCollector == c {
				continue
			}
			return err
		}
	}
	return nil
}
