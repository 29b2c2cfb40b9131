//! The synthetic meter traffic: which device sends which message on which topic, with a
//! per-device sequence number so loss, duplicates and order can be checked at the far end.

use std::time::{SystemTime, UNIX_EPOCH};

/// Identity of one published message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId {
    pub device: u32,
    pub seq: u64,
}

/// A fleet of devices under one home, publishing `ehs/<home>/<device>/telemetry` round-robin.
///
/// Each run uses its own home and device prefix, so its topics (and the bridge filter that
/// matches them) are disjoint from every other run's, and its records are recognisable in a
/// shared Kafka topic.
#[derive(Debug, Clone)]
pub struct Fleet {
    pub home: String,
    pub device_prefix: String,
    pub devices: u32,
}

impl Fleet {
    pub fn new(home: impl Into<String>, device_prefix: impl Into<String>, devices: u32) -> Self {
        Self {
            home: home.into(),
            device_prefix: device_prefix.into(),
            devices: devices.max(1),
        }
    }

    /// The `index`-th message of the run; devices take turns so each device's messages are
    /// spread evenly over the run.
    pub fn message(&self, index: u64) -> MessageId {
        let devices = u64::from(self.devices);
        MessageId {
            device: (index % devices) as u32,
            seq: index / devices,
        }
    }

    /// Inverse of [`Fleet::message`]: the publish order of a message.
    pub fn index(&self, id: MessageId) -> u64 {
        id.seq * u64::from(self.devices) + u64::from(id.device)
    }

    pub fn device_name(&self, device: u32) -> String {
        format!("{}{device:05}", self.device_prefix)
    }

    /// Inverse of [`Fleet::device_name`]; `None` for another run's devices.
    pub fn parse_device(&self, name: &str) -> Option<u32> {
        let device: u32 = name.strip_prefix(&self.device_prefix)?.parse().ok()?;
        (device < self.devices).then_some(device)
    }

    pub fn topic(&self, device: u32) -> String {
        format!("ehs/{}/{}/telemetry", self.home, self.device_name(device))
    }

    /// The MQTT filter matching exactly this fleet's telemetry topics.
    pub fn filter(&self) -> String {
        format!("ehs/{}/+/telemetry", self.home)
    }

    /// All ids of messages `first..first + count`.
    pub fn ids(&self, first: u64, count: u64) -> impl Iterator<Item = MessageId> + '_ {
        (first..first + count).map(|index| self.message(index))
    }
}

/// The bridge's topic pattern for [`Fleet::topic`].
pub const TOPIC_PATTERN: &str = "ehs/{home}/{device}/telemetry";

/// MQTT v5 user property carrying the per-device sequence number. The bridge copies user
/// properties into Kafka headers, so the number survives the trip without adding a metric to
/// the payload (which would double the records per message).
pub const SEQ_PROPERTY: &str = "seq";

/// A small flat JSON telemetry payload, stamped with the publish time in milliseconds as the
/// device's own `ts` (the bridge keeps it, which is what end-to-end latency is measured from).
pub fn payload(seq: u64, sent_at_ms: i64) -> String {
    let power_w = 400.0 + (seq % 100) as f64 * 0.5;
    format!(r#"{{"ts":{sent_at_ms},"power_w":{power_w:.1}}}"#)
}

/// Metric fields of [`meter_payload`], in the order a meter reports them; `power_w` (the one
/// [`crate::readings::METRIC`] the harness traces messages by) is always present.
pub const METER_METRICS: [&str; 8] = [
    "power_w",
    "energy_kwh",
    "voltage_v",
    "current_a",
    "frequency_hz",
    "power_factor",
    "temperature_c",
    "reactive_var",
];
/// A firmware counter that is not a measurement; the platform's route excludes it.
pub const METER_COUNTER: &str = "uptime";

/// A flat JSON meter payload (the `flat-json` adapter's shape) with `metrics` numeric fields
/// (1 to 8), the publish time as `ts` and the non-metric counter [`METER_COUNTER`].
pub fn meter_payload(seq: u64, sent_at_ms: i64, metrics: usize) -> String {
    let mut body = format!(r#"{{"ts":{sent_at_ms},"{METER_COUNTER}":{seq}"#);
    for (index, name) in METER_METRICS.iter().take(metrics.max(1)).enumerate() {
        let value = 100.0 * (index + 1) as f64 + (seq % 100) as f64 * 0.5;
        body.push_str(&format!(r#","{name}":{value:.1}"#));
    }
    body.push('}');
    body
}

/// Metrics of the `index`-th message when messages cycle through `mix` (e.g. `[1, 3, 8]`);
/// an empty mix is the single-metric [`payload`].
pub fn metrics_of(mix: &[usize], index: u64) -> usize {
    if mix.is_empty() {
        1
    } else {
        mix[(index % mix.len() as u64) as usize]
    }
}

/// Reads `ts` back from a [`payload`].
pub fn parse_sent_at(bytes: &[u8]) -> Option<i64> {
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    value.get("ts")?.as_i64()
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Run-unique names (share groups, client ids, Kafka topics, homes) so concurrent or repeated
/// runs never see each other's sessions or records.
pub fn unique_name(purpose: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "{purpose}-{}-{}-{n}",
        std::process::id(),
        now_ms() % 100_000_000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_take_turns_and_names_round_trip() {
        let fleet = Fleet::new("h", "q1d", 3);
        assert_eq!(fleet.message(4), MessageId { device: 1, seq: 1 });
        assert_eq!(fleet.index(fleet.message(4)), 4);
        assert_eq!(fleet.parse_device(&fleet.device_name(2)), Some(2));
        assert_eq!(fleet.parse_device("q0d00002"), None);
        assert_eq!(fleet.topic(2), "ehs/h/q1d00002/telemetry");
    }

    #[test]
    fn meter_payloads_carry_the_mix() {
        let body = meter_payload(7, 1_700_000_000_123, 3);
        assert_eq!(
            body,
            r#"{"ts":1700000000123,"uptime":7,"power_w":103.5,"energy_kwh":203.5,"voltage_v":303.5}"#
        );
        assert_eq!(parse_sent_at(body.as_bytes()), Some(1_700_000_000_123));
        let eight: serde_json::Value = serde_json::from_str(&meter_payload(1, 1, 8)).expect("json");
        assert_eq!(eight.as_object().expect("object").len(), 10);
        assert_eq!(
            (0..6)
                .map(|i| metrics_of(&[1, 3, 8], i))
                .collect::<Vec<_>>(),
            vec![1, 3, 8, 1, 3, 8]
        );
        assert_eq!(metrics_of(&[], 5), 1);
    }

    #[test]
    fn payload_round_trips() {
        assert_eq!(
            parse_sent_at(payload(17, 1_700_000_000_123).as_bytes()),
            Some(1_700_000_000_123)
        );
    }
}
