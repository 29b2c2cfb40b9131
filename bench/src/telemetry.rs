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

/// A firmware counter that is not a measurement; the platform's route excludes it.
pub const METER_COUNTER: &str = "uptime";

/// Most metrics one [`meter_payload`] carries.
pub const METER_MAX_METRICS: usize = 8;

/// A flat JSON meter payload (the `flat-json` adapter's shape): the publish time in
/// milliseconds as `ts` (each row's `time` and the start of publish→Kafka/row latency), the
/// non-metric counter [`METER_COUNTER`] if `counter`, and `metrics` numeric fields (1 to
/// [`METER_MAX_METRICS`]) in the order a meter reports them. The first three (power, voltage,
/// current) are the whole-path benchmark's message and `scripts/bench-pipeline.d/paho_load.py`'s,
/// byte for byte; `power_w` (the [`crate::readings::METRIC`] the harness traces messages by) is
/// always present.
pub fn meter_payload(seq: u64, sent_at_ms: i64, metrics: usize, counter: bool) -> String {
    use std::fmt::Write as _;
    let step = (seq % 100) as f64;
    let power_w = 400.0 + step * 0.5;
    let voltage_v = 229.0 + step * 0.02;
    // (name, value, decimals)
    let fields: [(&str, f64, usize); METER_MAX_METRICS] = [
        ("power_w", power_w, 1),
        ("voltage_v", voltage_v, 2),
        ("current_a", power_w / voltage_v, 3),
        ("energy_kwh", 1_200.0 + seq as f64 * 0.001, 3),
        ("frequency_hz", 49.9 + step * 0.002, 3),
        ("power_factor", 0.9 + step * 0.0005, 4),
        ("temperature_c", 21.0 + step * 0.05, 2),
        ("reactive_var", 35.0 + step * 0.1, 1),
    ];
    let mut body = format!(r#"{{"ts":{sent_at_ms}"#);
    // Writing to a String cannot fail.
    if counter {
        let _ = write!(body, r#","{METER_COUNTER}":{seq}"#);
    }
    for (name, value, decimals) in fields.iter().take(metrics.clamp(1, METER_MAX_METRICS)) {
        let _ = write!(body, r#","{name}":{value:.decimals$}"#);
    }
    body.push('}');
    body
}

/// Readings in the whole-path benchmark's message ([`Payload::pipeline_meter`]).
pub const METER_READINGS: u64 = 3;

/// What the messages of a publish plan carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// [`payload`]: `ts` and one metric, the integration tests' message.
    Single,
    /// [`meter_payload`]: the `index`-th message carries `mix[index % mix.len()]` metrics (e.g.
    /// `[1, 3, 8]`), plus the firmware counter if `counter`.
    Meter { mix: Vec<usize>, counter: bool },
}

impl Payload {
    /// The whole-path benchmark's message: [`METER_READINGS`] metrics, no counter.
    pub fn pipeline_meter() -> Self {
        Self::Meter {
            mix: vec![METER_READINGS as usize],
            counter: false,
        }
    }

    /// Metrics (readings, when every metric is one) of the `index`-th message.
    pub fn metrics(&self, index: u64) -> usize {
        match self {
            Self::Meter { mix, .. } if !mix.is_empty() => {
                mix[(index % mix.len() as u64) as usize].clamp(1, METER_MAX_METRICS)
            }
            _ => 1,
        }
    }

    /// The body of the `index`-th message, number `seq` of its device, sent at `sent_at_ms`.
    pub fn body(&self, index: u64, seq: u64, sent_at_ms: i64) -> String {
        match self {
            Self::Single => payload(seq, sent_at_ms),
            Self::Meter { counter, .. } => {
                meter_payload(seq, sent_at_ms, self.metrics(index), *counter)
            }
        }
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
        let mix = Payload::Meter {
            mix: vec![1, 3, 8],
            counter: true,
        };
        let body = mix.body(1, 7, 1_700_000_000_123);
        assert_eq!(
            body,
            r#"{"ts":1700000000123,"uptime":7,"power_w":403.5,"voltage_v":229.14,"current_a":1.761}"#
        );
        assert_eq!(parse_sent_at(body.as_bytes()), Some(1_700_000_000_123));
        let eight: serde_json::Value = serde_json::from_str(&mix.body(2, 1, 1)).expect("json");
        assert_eq!(eight.as_object().expect("object").len(), 10);
        assert_eq!(
            (0..6).map(|i| mix.metrics(i)).collect::<Vec<_>>(),
            vec![1, 3, 8, 1, 3, 8]
        );
        assert_eq!(Payload::Single.metrics(5), 1);
        assert_eq!(Payload::Single.body(5, 17, 3), payload(17, 3));
    }

    #[test]
    fn meter_payload_has_three_readings_and_the_publish_time() {
        let body = Payload::pipeline_meter().body(0, 5, 1_700_000_000_123);
        assert_eq!(
            body,
            r#"{"ts":1700000000123,"power_w":402.5,"voltage_v":229.10,"current_a":1.757}"#
        );
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
