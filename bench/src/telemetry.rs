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
    /// First topic level: `ehs` for the bridge's pattern; another root keeps a broker-only
    /// measurement away from bridges subscribed to `ehs/...`.
    pub root: String,
    pub home: String,
    pub device_prefix: String,
    pub devices: u32,
}

impl Fleet {
    pub fn new(home: impl Into<String>, device_prefix: impl Into<String>, devices: u32) -> Self {
        Self {
            root: "ehs".to_owned(),
            home: home.into(),
            device_prefix: device_prefix.into(),
            devices: devices.max(1),
        }
    }

    pub fn with_root(mut self, root: impl Into<String>) -> Self {
        self.root = root.into();
        self
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
        format!(
            "{}/{}/{}/telemetry",
            self.root,
            self.home,
            self.device_name(device)
        )
    }

    /// The MQTT filter matching exactly this fleet's telemetry topics.
    pub fn filter(&self) -> String {
        format!("{}/{}/+/telemetry", self.root, self.home)
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

/// A meter's message: three readings (power, voltage, current) and the publish time in
/// milliseconds as `ts`, which becomes each row's `time` and the start of publish→row latency.
pub fn meter_payload(seq: u64, sent_at_ms: i64) -> String {
    let step = (seq % 100) as f64;
    let power_w = 400.0 + step * 0.5;
    let voltage_v = 229.0 + step * 0.02;
    let current_a = power_w / voltage_v;
    format!(
        r#"{{"ts":{sent_at_ms},"power_w":{power_w:.1},"voltage_v":{voltage_v:.2},"current_a":{current_a:.3}}}"#
    )
}

/// Readings in one [`meter_payload`].
pub const METER_READINGS: u64 = 3;

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
    fn meter_payload_has_three_readings_and_the_publish_time() {
        let body = meter_payload(5, 1_700_000_000_123);
        let value: serde_json::Value = serde_json::from_str(&body).unwrap();
        let object = value.as_object().unwrap();
        assert_eq!(object.len() as u64, METER_READINGS + 1, "{body}");
        assert_eq!(parse_sent_at(body.as_bytes()), Some(1_700_000_000_123));
        assert_eq!(
            Fleet::new("h", "d", 1).with_root("bench").filter(),
            "bench/h/+/telemetry"
        );
    }

    #[test]
    fn payload_round_trips() {
        assert_eq!(
            parse_sent_at(payload(17, 1_700_000_000_123).as_bytes()),
            Some(1_700_000_000_123)
        );
    }
}
