package promreg

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func newCounter() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "t_total", Help: "h"}, []string{"x"})
}

func TestRegister(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	first, err := Register(reg, newCounter())
	if err != nil {
		t.Fatal(err)
	}
	second, err := Register(reg, newCounter())
	if err != nil || second != first {
		t.Fatalf("a second module's collector: got %p (%v), want the first's %p", second, err, first)
	}
	// A new config's registry takes a collector of its own.
	third, err := Register(prometheus.NewRegistry(), newCounter())
	if err != nil || third == first {
		t.Fatalf("a new registry's collector: %p (%v)", third, err)
	}
	// Same name, another type: an error, not a silent swap.
	clash := prometheus.NewCounter(prometheus.CounterOpts{Name: "t_total", Help: "h"})
	if _, err := Register(reg, clash); err == nil {
		t.Fatal("a collector of another type under the same name was accepted")
	}
	c := newCounter()
	if got, err := Register(nil, c); err != nil || got != c {
		t.Fatalf("nil registry: %p, %v", got, err)
	}
}

func TestRegisterProcessWide(t *testing.T) {
	t.Parallel()
	a, b := newCounter(), prometheus.NewGauge(prometheus.GaugeOpts{Name: "g", Help: "h"})
	for range 2 { // two configs' provisions, or two modules of one config
		reg := prometheus.NewRegistry()
		for range 2 {
			if err := RegisterProcessWide(reg, a, b); err != nil {
				t.Fatal(err)
			}
		}
	}
	reg := prometheus.NewRegistry()
	if err := RegisterProcessWide(reg, newCounter()); err != nil {
		t.Fatal(err)
	}
	if err := RegisterProcessWide(reg, a); err == nil {
		t.Fatal("a second collector under a registered name was accepted")
	}
	if err := RegisterProcessWide(nil, a); err != nil {
		t.Fatal(err)
	}
}
