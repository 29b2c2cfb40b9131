//! Payload adapters: turn one MQTT payload into metric values and an optional device timestamp.

use ehs_contract::PayloadAdapter;
use serde_json::{Map, Value};

use crate::config::FieldSelection;
use crate::timestamp::{self, EpochMillis};

/// Why a message went to the dead-letter topic. The label is a metric label, so the set is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeadLetterReason {
    /// Not JSON, not UTF-8, or not the shape the adapter expects.
    Unparseable,
    /// Larger than `--max-payload-bytes`.
    Oversize,
    /// The topic matches neither the topic pattern nor any payload route.
    Unmapped,
    /// Parsed, but holds no finite numeric metric among the route's selected fields.
    NonNumeric,
    /// A timestamp field is present but unreadable.
    BadTimestamp,
    /// Kafka refused a reading record for good (too large, invalid); the dead letter carries
    /// that record.
    KafkaRejected,
    /// Would become more readings than `--max-readings-per-message`.
    TooManyReadings,
    /// Carries more user-property bytes than `--max-header-bytes`; the dead letter goes without
    /// them.
    OversizeHeaders,
}

impl DeadLetterReason {
    pub const ALL: [Self; 8] = [
        Self::Unparseable,
        Self::Oversize,
        Self::Unmapped,
        Self::NonNumeric,
        Self::BadTimestamp,
        Self::KafkaRejected,
        Self::TooManyReadings,
        Self::OversizeHeaders,
    ];

    pub const fn label(self) -> &'static str {
        match self {
            Self::Unparseable => "unparseable",
            Self::Oversize => "oversize",
            Self::Unmapped => "unmapped",
            Self::NonNumeric => "non-numeric",
            Self::BadTimestamp => "bad-timestamp",
            Self::KafkaRejected => "kafka-rejected",
            Self::TooManyReadings => "too-many-readings",
            Self::OversizeHeaders => "oversize-headers",
        }
    }
}

/// Field names firmware uses for the device's own timestamp; they are never metrics.
const TIMESTAMP_KEYS: [&str; 3] = ["ts", "time", "timestamp"];
/// Where the nested adapter finds metrics.
const NESTED_DATA_KEY: &str = "data";

#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The device's timestamp, when the payload carries one.
    pub device_time: Option<EpochMillis>,
    pub metrics: Vec<(String, f64)>,
}

/// `topic_metric` names the value for the numeric adapter (the `{metric}` or last topic level);
/// only fields `fields` selects become metrics.
pub fn decode(
    adapter: PayloadAdapter,
    fields: &FieldSelection,
    payload: &[u8],
    topic_metric: &str,
) -> Result<Decoded, DeadLetterReason> {
    match adapter {
        PayloadAdapter::FlatJson => {
            let mut object = parse_object(payload)?;
            let device_time = take_timestamp(&mut object)?;
            let metrics = numeric_fields(object, fields)?;
            Ok(Decoded {
                device_time,
                metrics,
            })
        }
        PayloadAdapter::NestedJson => {
            let mut object = parse_object(payload)?;
            let Some(Value::Object(mut data)) = object.remove(NESTED_DATA_KEY) else {
                return Err(DeadLetterReason::Unparseable);
            };
            // Some firmware puts the timestamp inside `data`; the outer one wins when both exist.
            let outer = take_timestamp(&mut object)?;
            let inner = take_timestamp(&mut data)?;
            let metrics = numeric_fields(data, fields)?;
            Ok(Decoded {
                device_time: outer.or(inner),
                metrics,
            })
        }
        PayloadAdapter::Numeric => {
            let text = std::str::from_utf8(payload).map_err(|_| DeadLetterReason::Unparseable)?;
            let value = parse_finite(text)
                .filter(|_| fields.selects(topic_metric))
                .ok_or(DeadLetterReason::NonNumeric)?;
            Ok(Decoded {
                device_time: None,
                metrics: vec![(topic_metric.to_owned(), value)],
            })
        }
    }
}

fn parse_object(payload: &[u8]) -> Result<Map<String, Value>, DeadLetterReason> {
    match serde_json::from_slice::<Value>(payload) {
        Ok(Value::Object(object)) => Ok(object),
        _ => Err(DeadLetterReason::Unparseable),
    }
}

fn take_timestamp(
    object: &mut Map<String, Value>,
) -> Result<Option<EpochMillis>, DeadLetterReason> {
    let mut found = None;
    for key in TIMESTAMP_KEYS {
        let parsed = match object.remove(key) {
            None | Some(Value::Null) => continue,
            Some(Value::Number(number)) => number
                .as_f64()
                .ok_or(DeadLetterReason::BadTimestamp)
                .and_then(|n| {
                    timestamp::from_epoch_number(n).map_err(|_| DeadLetterReason::BadTimestamp)
                }),
            Some(Value::String(text)) => {
                timestamp::from_text(&text).map_err(|_| DeadLetterReason::BadTimestamp)
            }
            Some(_) => Err(DeadLetterReason::BadTimestamp),
        }?;
        found.get_or_insert(parsed);
    }
    Ok(found)
}

/// Numbers, and numbers sent as strings (common in cheap firmware), are metrics; other fields
/// (status text, booleans, nested objects) are ignored.
fn numeric_fields(
    object: Map<String, Value>,
    fields: &FieldSelection,
) -> Result<Vec<(String, f64)>, DeadLetterReason> {
    let metrics: Vec<(String, f64)> = object
        .into_iter()
        .filter(|(name, _)| fields.selects(name))
        .filter_map(|(name, value)| {
            let number = match &value {
                Value::Number(number) => number.as_f64().filter(|n| n.is_finite()),
                Value::String(text) => parse_finite(text),
                _ => None,
            }?;
            (!name.is_empty()).then_some((name, number))
        })
        .collect();
    if metrics.is_empty() {
        Err(DeadLetterReason::NonNumeric)
    } else {
        Ok(metrics)
    }
}

fn parse_finite(text: &str) -> Option<f64> {
    let text = text.trim();
    // `f64::from_str` accepts `inf` and `NaN`, which no column can store.
    text.parse::<f64>().ok().filter(|n| n.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TS: EpochMillis = 1_764_064_800_000;
    const ALL: FieldSelection = FieldSelection::All;

    fn flat(payload: &str) -> Result<Decoded, DeadLetterReason> {
        decode(
            PayloadAdapter::FlatJson,
            &ALL,
            payload.as_bytes(),
            "telemetry",
        )
    }

    fn nested(payload: &str) -> Result<Decoded, DeadLetterReason> {
        decode(
            PayloadAdapter::NestedJson,
            &ALL,
            payload.as_bytes(),
            "telemetry",
        )
    }

    fn names(decoded: &Decoded) -> Vec<&str> {
        decoded
            .metrics
            .iter()
            .map(|(name, _)| name.as_str())
            .collect()
    }

    #[test]
    fn flat_json_with_rfc3339_timestamp() {
        let decoded = flat(r#"{"power_w": 412.5, "voltage_v": 230, "ts": "2025-11-25T10:00:00Z"}"#)
            .expect("decodes");
        assert_eq!(decoded.device_time, Some(TS));
        assert_eq!(
            decoded.metrics,
            vec![("power_w".into(), 412.5), ("voltage_v".into(), 230.0)]
        );
    }

    #[test]
    fn flat_json_firmware_variants() {
        // Epoch seconds under `timestamp`, numbers as strings, status text and flags ignored.
        let decoded = flat(r#"{"timestamp": 1764064800, "energy_kwh": "12.5", "status": "ok", "relay": true, "meta": {"fw": 3}}"#)
            .expect("decodes");
        assert_eq!(decoded.device_time, Some(TS));
        assert_eq!(decoded.metrics, vec![("energy_kwh".into(), 12.5)]);
        // Epoch milliseconds, no timestamp at all.
        assert_eq!(
            flat(r#"{"time": 1764064800000, "p": 1}"#)
                .expect("ms")
                .device_time,
            Some(TS)
        );
        assert_eq!(flat(r#"{"p": -1.5e3}"#).expect("no ts").device_time, None);
    }

    #[test]
    fn flat_json_malformed() {
        assert_eq!(flat("{\"power_w\": 41"), Err(DeadLetterReason::Unparseable));
        assert_eq!(flat("[1, 2]"), Err(DeadLetterReason::Unparseable));
        assert_eq!(flat("412.5"), Err(DeadLetterReason::Unparseable));
        assert_eq!(
            decode(PayloadAdapter::FlatJson, &ALL, &[0xff, 0xfe], "x"),
            Err(DeadLetterReason::Unparseable)
        );
        assert_eq!(
            flat(r#"{"status": "ok", "inf": "inf"}"#),
            Err(DeadLetterReason::NonNumeric)
        );
        assert_eq!(
            flat(r#"{"ts": 1764064800}"#),
            Err(DeadLetterReason::NonNumeric)
        );
        assert_eq!(
            flat(r#"{"ts": "last tuesday", "p": 1}"#),
            Err(DeadLetterReason::BadTimestamp)
        );
        assert_eq!(
            flat(r#"{"ts": -5, "p": 1}"#),
            Err(DeadLetterReason::BadTimestamp)
        );
        assert_eq!(
            flat(r#"{"ts": [1], "p": 1}"#),
            Err(DeadLetterReason::BadTimestamp)
        );
    }

    #[test]
    fn nested_json() {
        let decoded = nested(r#"{"ts": 1764064800000, "data": {"power_w": 1, "voltage_v": 2.5}}"#)
            .expect("decodes");
        assert_eq!(decoded.device_time, Some(TS));
        assert_eq!(names(&decoded), vec!["power_w", "voltage_v"]);
        let inner =
            nested(r#"{"data": {"ts": "2025-11-25T10:00:00Z", "power_w": 1}}"#).expect("inner ts");
        assert_eq!(inner.device_time, Some(TS));
        assert_eq!(names(&inner), vec!["power_w"]);
    }

    #[test]
    fn nested_json_malformed() {
        assert_eq!(
            nested(r#"{"ts": 1, "power_w": 1}"#),
            Err(DeadLetterReason::Unparseable)
        );
        assert_eq!(
            nested(r#"{"data": [1, 2]}"#),
            Err(DeadLetterReason::Unparseable)
        );
        assert_eq!(
            nested(r#"{"data": {"state": "idle"}}"#),
            Err(DeadLetterReason::NonNumeric)
        );
        assert_eq!(nested("not json"), Err(DeadLetterReason::Unparseable));
    }

    #[test]
    fn numeric() {
        let decoded =
            decode(PayloadAdapter::Numeric, &ALL, b" 412.5\n", "power_w").expect("decodes");
        assert_eq!(
            decoded,
            Decoded {
                device_time: None,
                metrics: vec![("power_w".into(), 412.5)]
            }
        );
        assert_eq!(
            decode(PayloadAdapter::Numeric, &ALL, b"-7", "t")
                .expect("int")
                .metrics[0]
                .1,
            -7.0
        );
        assert_eq!(
            decode(PayloadAdapter::Numeric, &ALL, b"NaN", "t"),
            Err(DeadLetterReason::NonNumeric)
        );
        assert_eq!(
            decode(PayloadAdapter::Numeric, &ALL, b"on", "t"),
            Err(DeadLetterReason::NonNumeric)
        );
        assert_eq!(
            decode(PayloadAdapter::Numeric, &ALL, b"", "t"),
            Err(DeadLetterReason::NonNumeric)
        );
        assert_eq!(
            decode(PayloadAdapter::Numeric, &ALL, &[0xc3, 0x28], "t"),
            Err(DeadLetterReason::Unparseable)
        );
    }

    #[test]
    fn field_selection() {
        let payload =
            br#"{"ts": 1764064800000, "seq": 7, "rssi": -61, "power_w": 1, "energy_kwh": 2}"#;
        let exclude = FieldSelection::AllBut(vec!["seq".into(), "rssi".into()]);
        let decoded = decode(PayloadAdapter::FlatJson, &exclude, payload, "t").expect("decodes");
        assert_eq!(names(&decoded), vec!["energy_kwh", "power_w"]);
        assert_eq!(decoded.device_time, Some(TS));
        let include = FieldSelection::Only(vec!["power_w".into()]);
        let decoded = decode(PayloadAdapter::FlatJson, &include, payload, "t").expect("decodes");
        assert_eq!(names(&decoded), vec!["power_w"]);
        let nested = br#"{"data": {"seq": 1, "power_w": 3}}"#;
        let decoded = decode(PayloadAdapter::NestedJson, &exclude, nested, "t").expect("nested");
        assert_eq!(decoded.metrics, vec![("power_w".into(), 3.0)]);
        // Nothing selected left: the message holds no metric this route wants.
        let only_counters = FieldSelection::Only(vec!["voltage_v".into()]);
        assert_eq!(
            decode(PayloadAdapter::FlatJson, &only_counters, payload, "t"),
            Err(DeadLetterReason::NonNumeric)
        );
        assert_eq!(
            decode(PayloadAdapter::Numeric, &exclude, b"5", "rssi"),
            Err(DeadLetterReason::NonNumeric)
        );
        assert!(decode(PayloadAdapter::Numeric, &exclude, b"5", "power_w").is_ok());
    }

    #[test]
    fn reason_labels_are_distinct() {
        let mut labels: Vec<_> = DeadLetterReason::ALL.iter().map(|r| r.label()).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), DeadLetterReason::ALL.len());
    }
}
