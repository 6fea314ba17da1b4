// Package metrics exposes chatd's Prometheus metrics on /metrics. Metrics
// implements the event interfaces of the transport and the actors, and
// observes the storage batches.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/grainchat/grainchat/actors"
	"github.com/grainchat/grainchat/integrations/mail"
	"github.com/grainchat/grainchat/integrations/webhook"
	"github.com/grainchat/grainchat/transport"
)

// Metrics holds chatd's metrics in its own registry.
type Metrics struct {
	registry *prometheus.Registry

	connections      prometheus.Gauge
	framesIn         prometheus.Counter
	framesOut        prometheus.Counter
	framesRefused    *prometheus.CounterVec
	slowConsumers    prometheus.Counter
	readsPaused      *prometheus.CounterVec
	handshakeRefused *prometheus.CounterVec
	messagesStored   prometheus.Counter
	storeLatency     prometheus.Histogram
	batchSize        prometheus.Histogram
	batchFailures    prometheus.Counter
	activations      *prometheus.CounterVec
	passivations     *prometheus.CounterVec
	gapFilled        prometheus.Counter
	grainMoved       prometheus.Counter

	webhookSent      *prometheus.CounterVec
	webhookErrors    *prometheus.CounterVec
	webhookFailed    *prometheus.CounterVec
	webhookPending   *prometheus.GaugeVec
	webhookOldestAge *prometheus.GaugeVec
	mailSent         *prometheus.CounterVec
	mailErrors       *prometheus.CounterVec
	mailFailed       *prometheus.CounterVec
	mailInterrupted  prometheus.Counter
}

var (
	_ transport.Metrics = (*Metrics)(nil)
	_ actors.Metrics    = (*Metrics)(nil)
	_ webhook.Metrics   = (*Metrics)(nil)
	_ mail.Metrics      = (*Metrics)(nil)
)

// New registers every metric, plus the Go runtime and process collectors.
// members, if not nil, reports the cluster's member count.
func New(members func() int) *Metrics {
	r := prometheus.NewRegistry()
	f := func(c prometheus.Collector) { r.MustRegister(c) }
	m := &Metrics{
		registry:    r,
		connections: prometheus.NewGauge(prometheus.GaugeOpts{Name: "grainchat_connections", Help: "Open WebSockets."}),
		framesIn:    prometheus.NewCounter(prometheus.CounterOpts{Name: "grainchat_frames_in_total", Help: "Client frames received."}),
		framesOut:   prometheus.NewCounter(prometheus.CounterOpts{Name: "grainchat_frames_out_total", Help: "Frames written to clients."}),
		framesRefused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "grainchat_frames_refused_total",
			Help: "Client frames refused, by error code."}, []string{"code"}),
		readsPaused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "grainchat_reads_paused_total",
			Help: "Times the server paused reading a socket (flow control): reason rate (over the message rate) or pending (too many posts unsettled)."}, []string{"reason"}),
		slowConsumers: prometheus.NewCounter(prometheus.CounterOpts{Name: "grainchat_slow_consumers_total",
			Help: "Sockets closed because their write queue overflowed."}),
		handshakeRefused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "grainchat_handshakes_refused_total",
			Help: "WebSocket handshakes refused, by HTTP status."}, []string{"status"}),
		messagesStored: prometheus.NewCounter(prometheus.CounterOpts{Name: "grainchat_messages_stored_total",
			Help: "Messages stored and fanned out by this node's grains."}),
		storeLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "grainchat_store_batch_seconds",
			Help: "Duration of one batch append (one transaction).", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "grainchat_store_batch_size",
			Help: "Messages per batch append.", Buckets: prometheus.ExponentialBuckets(1, 2, 10)}),
		batchFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "grainchat_store_batch_failures_total",
			Help: "Batch appends that failed (nothing stored)."}),
		activations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "grainchat_grain_activations_total",
			Help: "Grain activations on this node, by kind."}, []string{"kind"}),
		passivations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "grainchat_grain_passivations_total",
			Help: "Grain stops on this node, by kind."}, []string{"kind"}),
		gapFilled: prometheus.NewCounter(prometheus.CounterOpts{Name: "grainchat_gap_filled_messages_total",
			Help: "Messages sessions read from the store to fill a gap."}),
		grainMoved: prometheus.NewCounter(prometheus.CounterOpts{Name: "grainchat_grain_moves_total",
			Help: "Times a session found its grain at a new PID."}),
		webhookSent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "grainchat_webhook_events_sent_total",
			Help: "Webhook events an endpoint took (2xx) from this node, by endpoint."}, []string{"endpoint"}),
		webhookErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "grainchat_webhook_attempts_failed_total",
			Help: "Webhook attempts that failed (non-2xx answer, timeout, connection) and will be retried, by endpoint."}, []string{"endpoint"}),
		webhookFailed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "grainchat_webhook_events_failed_total",
			Help: "Webhook events given up after the retention (--webhook-retention), by endpoint."}, []string{"endpoint"}),
		webhookPending: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "grainchat_webhook_events_pending",
			Help: "Webhook events waiting for an endpoint, reported by the node sending it (0 elsewhere: sum over nodes)."}, []string{"endpoint"}),
		webhookOldestAge: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "grainchat_webhook_oldest_pending_seconds",
			Help: "Age of the oldest webhook event waiting for an endpoint, reported by the node sending it (0 elsewhere: max over nodes)."}, []string{"endpoint"}),
		mailSent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "grainchat_mail_sent_total",
			Help: "Emails the SMTP server took from this node, by kind (visitor: unread replies; staff: a new conversation)."}, []string{"kind"}),
		mailErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "grainchat_mail_attempts_failed_total",
			Help: "Email attempts that failed and will be retried, by kind."}, []string{"kind"}),
		mailFailed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "grainchat_mail_failed_total",
			Help: "Emails given up (refused for good, or --mail-attempts failed), by kind."}, []string{"kind"}),
		mailInterrupted: prometheus.NewCounter(prometheus.CounterOpts{Name: "grainchat_mail_interrupted_total",
			Help: "Emails whose sender stopped mid-send, settled as sent and never resent (they may not have arrived)."}),
	}
	for _, c := range []prometheus.Collector{m.connections, m.framesIn, m.framesOut, m.framesRefused, m.slowConsumers, m.readsPaused,
		m.handshakeRefused, m.messagesStored, m.storeLatency, m.batchSize, m.batchFailures, m.activations,
		m.passivations, m.gapFilled, m.grainMoved,
		m.webhookSent, m.webhookErrors, m.webhookFailed, m.webhookPending, m.webhookOldestAge,
		m.mailSent, m.mailErrors, m.mailFailed, m.mailInterrupted,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		f(c)
	}
	if members != nil {
		f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "grainchat_cluster_members",
			Help: "Members in this node's view of the cluster."}, func() float64 { return float64(members()) }))
	}
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// ConnOpened implements transport.Metrics.
func (m *Metrics) ConnOpened() { m.connections.Inc() }

// ConnClosed implements transport.Metrics.
func (m *Metrics) ConnClosed() { m.connections.Dec() }

// FrameIn implements transport.Metrics.
func (m *Metrics) FrameIn() { m.framesIn.Inc() }

// FramesOut implements transport.Metrics: n frames were written.
func (m *Metrics) FramesOut(n int) { m.framesOut.Add(float64(n)) }

// FrameRefused implements transport.Metrics.
func (m *Metrics) FrameRefused(code string) { m.framesRefused.WithLabelValues(code).Inc() }

// SlowConsumer implements transport.Metrics.
func (m *Metrics) SlowConsumer() { m.slowConsumers.Inc() }

// ReadPaused implements transport.Metrics.
func (m *Metrics) ReadPaused(reason string) { m.readsPaused.WithLabelValues(reason).Inc() }

// HandshakeRefused implements transport.Metrics.
func (m *Metrics) HandshakeRefused(status int) {
	m.handshakeRefused.WithLabelValues(strconv.Itoa(status)).Inc()
}

// GrainActivated implements actors.Metrics.
func (m *Metrics) GrainActivated(kind string) { m.activations.WithLabelValues(kind).Inc() }

// GrainPassivated implements actors.Metrics.
func (m *Metrics) GrainPassivated(kind string) { m.passivations.WithLabelValues(kind).Inc() }

// MessageStored implements actors.Metrics.
func (m *Metrics) MessageStored() { m.messagesStored.Inc() }

// GapFilled implements actors.Metrics.
func (m *Metrics) GapFilled(n int) { m.gapFilled.Add(float64(n)) }

// GrainMoved implements actors.Metrics.
func (m *Metrics) GrainMoved() { m.grainMoved.Inc() }

// ObserveBatch records one batch append (batch.Options.Observe).
func (m *Metrics) ObserveBatch(size int, d time.Duration, err error) {
	m.batchSize.Observe(float64(size))
	m.storeLatency.Observe(d.Seconds())
	if err != nil {
		m.batchFailures.Inc()
	}
}

// MailSent implements mail.Metrics.
func (m *Metrics) MailSent(kind string) { m.mailSent.WithLabelValues(kind).Inc() }

// MailAttemptFailed implements mail.Metrics.
func (m *Metrics) MailAttemptFailed(kind string) { m.mailErrors.WithLabelValues(kind).Inc() }

// MailGivenUp implements mail.Metrics.
func (m *Metrics) MailGivenUp(kind string) { m.mailFailed.WithLabelValues(kind).Inc() }

// MailInterrupted implements mail.Metrics.
func (m *Metrics) MailInterrupted(n int) { m.mailInterrupted.Add(float64(n)) }

// WebhookSent implements webhook.Metrics.
func (m *Metrics) WebhookSent(endpoint string) { m.webhookSent.WithLabelValues(endpoint).Inc() }

// WebhookAttemptFailed implements webhook.Metrics.
func (m *Metrics) WebhookAttemptFailed(endpoint string) {
	m.webhookErrors.WithLabelValues(endpoint).Inc()
}

// WebhookExpired implements webhook.Metrics.
func (m *Metrics) WebhookExpired(endpoint string) { m.webhookFailed.WithLabelValues(endpoint).Inc() }

// WebhookBacklog implements webhook.Metrics.
func (m *Metrics) WebhookBacklog(endpoint string, pending int64, oldestAge time.Duration) {
	m.webhookPending.WithLabelValues(endpoint).Set(float64(pending))
	m.webhookOldestAge.WithLabelValues(endpoint).Set(oldestAge.Seconds())
}
