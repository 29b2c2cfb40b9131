//! Prometheus metrics. Labels are low-cardinality by construction: no topic, home or device ids.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::decode::DeadLetterReason;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

/// End-to-end latency buckets, seconds: fine between 1 and 50 ms where the target lies.
const LATENCY_BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1.0,
    5.0,
];

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub received: Counter,
    pub produced: Counter,
    dead_lettered: [Counter; DeadLetterReason::ALL.len()],
    pub delivery_failures: Counter,
    pub acked: Counter,
    pub stale_acks_dropped: Counter,
    pub in_flight: Gauge,
    pub latency: Histogram,
    pub mqtt_connected: Gauge,
    pub mqtt_subscribed: Gauge,
    pub kafka_connected: Gauge,
    pub mqtt_reconnects: Counter,
    pub filters_removed: Counter,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("ehs_bridge");
        let received = Counter::default();
        registry.register(
            "mqtt_messages_received",
            "MQTT messages taken from the broker",
            received.clone(),
        );
        let produced = Counter::default();
        registry.register(
            "kafka_records_produced",
            "Reading records Kafka acknowledged",
            produced.clone(),
        );

        let dead_family = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "dead_lettered",
            "Messages written to the dead-letter topic, by reason",
            dead_family.clone(),
        );
        let dead_lettered = DeadLetterReason::ALL.map(|r| {
            dead_family
                .get_or_create(&ReasonLabel { reason: r.label() })
                .clone()
        });

        let failure_family = Family::<KindLabel, Counter>::default();
        registry.register(
            "kafka_delivery_failures",
            "Records Kafka rejected for good; acknowledgements stop behind them",
            failure_family.clone(),
        );
        let delivery_failures = failure_family
            .get_or_create(&KindLabel { kind: "permanent" })
            .clone();

        let acked = Counter::default();
        registry.register(
            "mqtt_acks_sent",
            "MQTT acknowledgements released to the broker",
            acked.clone(),
        );
        let stale_acks_dropped = Counter::default();
        registry.register(
            "mqtt_stale_acks_dropped",
            "Acknowledgements withheld because the message came on an earlier connection",
            stale_acks_dropped.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "in_flight_messages",
            "MQTT messages taken and not yet acknowledged",
            in_flight.clone(),
        );
        let latency = Histogram::new(LATENCY_BUCKETS);
        registry.register(
            "end_to_end_latency_seconds",
            "Arrival at the bridge to Kafka acknowledging every record of the message",
            latency.clone(),
        );
        let mqtt_connected = Gauge::default();
        registry.register(
            "mqtt_connected",
            "1 while connected to the MQTT broker",
            mqtt_connected.clone(),
        );
        let mqtt_subscribed = Gauge::default();
        registry.register(
            "mqtt_subscribed",
            "1 while every configured shared subscription is granted on the current connection",
            mqtt_subscribed.clone(),
        );
        let kafka_connected = Gauge::default();
        registry.register(
            "kafka_connected",
            "1 while Kafka answered a metadata request recently",
            kafka_connected.clone(),
        );
        let mqtt_reconnects = Counter::default();
        registry.register(
            "mqtt_connection_losses",
            "MQTT connections lost or replaced",
            mqtt_reconnects.clone(),
        );
        let filters_removed = Counter::default();
        registry.register(
            "mqtt_stale_filters_unsubscribed",
            "Subscriptions left in the persistent session by an earlier configuration and removed",
            filters_removed.clone(),
        );

        Self {
            registry,
            received,
            produced,
            dead_lettered,
            delivery_failures,
            acked,
            stale_acks_dropped,
            in_flight,
            latency,
            mqtt_connected,
            mqtt_subscribed,
            kafka_connected,
            mqtt_reconnects,
            filters_removed,
        }
    }

    pub fn dead_lettered(&self, reason: DeadLetterReason) -> &Counter {
        // ALL lists every variant, in declaration order.
        &self.dead_lettered[reason as usize]
    }

    /// OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut text = String::with_capacity(4096);
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_letter_counters_are_indexed_by_reason() {
        let metrics = Metrics::new();
        metrics.dead_lettered(DeadLetterReason::NonNumeric).inc();
        metrics.dead_lettered(DeadLetterReason::NonNumeric).inc();
        metrics.dead_lettered(DeadLetterReason::Oversize).inc();
        let text = metrics.encode();
        assert!(
            text.contains("ehs_bridge_dead_lettered_total{reason=\"non-numeric\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("ehs_bridge_dead_lettered_total{reason=\"oversize\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("ehs_bridge_dead_lettered_total{reason=\"unmapped\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("ehs_bridge_end_to_end_latency_seconds_bucket{le=\"0.005\"}"),
            "{text}"
        );
    }
}
