package events

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/erpgate/erpgate/internal/eventstream"
)

// hubCollector exports the hub's gauges on the config's registry (the hub
// is lasting, so its counts go on across reloads). Bounded labels: none.
type hubCollector struct{ hub *eventstream.Hub }

var (
	descStreamConnections = prometheus.NewDesc("erpgate_event_stream_connections", "Open event stream connections (SSE and WebSocket) on this instance.", nil, nil)
	descStreamRead        = prometheus.NewDesc("erpgate_event_stream_events_read_total", "Events the stream hub read from the events stream (each fanned out to the connections that want it).", nil, nil)
)

func (c hubCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descStreamConnections
	ch <- descStreamRead
}

func (c hubCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.hub.Stats()
	ch <- prometheus.MustNewConstMetric(descStreamConnections, prometheus.GaugeValue, float64(st.Connections))
	ch <- prometheus.MustNewConstMetric(descStreamRead, prometheus.CounterValue, float64(st.Delivered))
}
