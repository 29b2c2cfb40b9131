//! Record values for the readings topic.
//!
//! One record per metric ("long" format), matching the TimescaleDB hypertable the JDBC sink
//! writes (`bridge/sql/readings.sql`):
//!
//! ```sql
//! CREATE TABLE readings (
//!     time         timestamptz      NOT NULL,
//!     home_id      text             NOT NULL,
//!     device_id    text             NOT NULL,
//!     metric       text             NOT NULL,
//!     value        double precision NOT NULL,
//!     arrival_time timestamptz      NOT NULL
//! );
//! SELECT create_hypertable('readings', 'time');
//! ```

use ehs_contract::OutputEncoding;
use serde::Serialize;

use crate::timestamp::{format_rfc3339_millis, EpochMillis};

/// One normalized reading, borrowing its strings from the message it came from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading<'a> {
    /// Device time when the payload had one, else arrival time.
    pub time: EpochMillis,
    pub home_id: &'a str,
    pub device_id: &'a str,
    pub metric: &'a str,
    pub value: f64,
    pub arrival_time: EpochMillis,
}

/// Kafka Connect schema types of the readings struct, in field order.
const CONNECT_FIELDS: [(&str, ConnectType); 6] = [
    ("time", ConnectType::Timestamp),
    ("home_id", ConnectType::String),
    ("device_id", ConnectType::String),
    ("metric", ConnectType::String),
    ("value", ConnectType::Double),
    ("arrival_time", ConnectType::Timestamp),
];

/// Schema name the JDBC sink sees.
pub const CONNECT_SCHEMA_NAME: &str = "ehs.Reading";

#[derive(Debug, Clone, Copy)]
enum ConnectType {
    /// int64 milliseconds with the `org.apache.kafka.connect.data.Timestamp` logical type.
    Timestamp,
    String,
    Double,
}

/// The JsonConverter schema (schemas.enable=true) for [`Reading`], built once.
pub fn connect_schema() -> serde_json::Value {
    let fields: Vec<serde_json::Value> = CONNECT_FIELDS
        .iter()
        .map(|(field, kind)| match kind {
            ConnectType::Timestamp => serde_json::json!({
                "type": "int64",
                "optional": false,
                "name": "org.apache.kafka.connect.data.Timestamp",
                "version": 1,
                "field": field,
            }),
            ConnectType::String => {
                serde_json::json!({"type": "string", "optional": false, "field": field})
            }
            ConnectType::Double => {
                serde_json::json!({"type": "double", "optional": false, "field": field})
            }
        })
        .collect();
    serde_json::json!({
        "type": "struct",
        "fields": fields,
        "optional": false,
        "name": CONNECT_SCHEMA_NAME,
    })
}

#[derive(Serialize)]
struct PlainReading<'a> {
    time: &'a str,
    home_id: &'a str,
    device_id: &'a str,
    metric: &'a str,
    value: f64,
    arrival_time: &'a str,
}

#[derive(Serialize)]
struct ConnectPayload<'a> {
    time: EpochMillis,
    home_id: &'a str,
    device_id: &'a str,
    metric: &'a str,
    value: f64,
    arrival_time: EpochMillis,
}

/// Writes reading values into a reused buffer. The JsonConverter envelope's schema never changes,
/// so its bytes are prepared once.
#[derive(Debug, Clone)]
pub struct Encoder {
    encoding: OutputEncoding,
    envelope_prefix: Vec<u8>,
}

impl Encoder {
    pub fn new(encoding: OutputEncoding) -> Self {
        let mut envelope_prefix = b"{\"schema\":".to_vec();
        envelope_prefix.extend_from_slice(connect_schema().to_string().as_bytes());
        envelope_prefix.extend_from_slice(b",\"payload\":");
        Self {
            encoding,
            envelope_prefix,
        }
    }

    /// `times` are the RFC 3339 forms of `reading.time` and `reading.arrival_time`, formatted once
    /// per message by the caller (plain JSON only).
    pub fn encode(&self, reading: &Reading<'_>, times: (&str, &str), out: &mut Vec<u8>) {
        out.clear();
        // Serializing these structs into a Vec cannot fail: all keys are strings, f64 is finite
        // (adapters reject the rest) and writing to a Vec has no I/O error.
        let result = match self.encoding {
            OutputEncoding::Json => serde_json::to_writer(
                &mut *out,
                &PlainReading {
                    time: times.0,
                    home_id: reading.home_id,
                    device_id: reading.device_id,
                    metric: reading.metric,
                    value: reading.value,
                    arrival_time: times.1,
                },
            ),
            OutputEncoding::ConnectJson => {
                out.extend_from_slice(&self.envelope_prefix);
                let result = serde_json::to_writer(
                    &mut *out,
                    &ConnectPayload {
                        time: reading.time,
                        home_id: reading.home_id,
                        device_id: reading.device_id,
                        metric: reading.metric,
                        value: reading.value,
                        arrival_time: reading.arrival_time,
                    },
                );
                out.push(b'}');
                result
            }
        };
        debug_assert!(result.is_ok(), "serializing a reading failed: {result:?}");
    }

    pub fn needs_text_times(&self) -> bool {
        self.encoding == OutputEncoding::Json
    }
}

/// RFC 3339 text of a time for the plain JSON encoding.
pub fn text_time(millis: EpochMillis) -> String {
    format_rfc3339_millis(millis)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    const READING: Reading<'static> = Reading {
        time: 1_764_064_800_000,
        home_id: "home-1",
        device_id: "meter \"7\"",
        metric: "power_w",
        value: 412.5,
        arrival_time: 1_764_064_800_250,
    };

    fn encode(encoding: OutputEncoding) -> Value {
        let mut out = Vec::new();
        let times = (text_time(READING.time), text_time(READING.arrival_time));
        Encoder::new(encoding).encode(&READING, (&times.0, &times.1), &mut out);
        serde_json::from_slice(&out).expect("valid JSON")
    }

    #[test]
    fn plain_json() {
        assert_eq!(
            encode(OutputEncoding::Json),
            serde_json::json!({
                "time": "2025-11-25T10:00:00.000Z",
                "home_id": "home-1",
                "device_id": "meter \"7\"",
                "metric": "power_w",
                "value": 412.5,
                "arrival_time": "2025-11-25T10:00:00.250Z",
            })
        );
    }

    #[test]
    fn connect_envelope_schema_matches_payload() {
        let envelope = encode(OutputEncoding::ConnectJson);
        let object = envelope.as_object().expect("object");
        let mut keys: Vec<_> = object.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            ["payload", "schema"],
            "JsonConverter rejects extra top-level fields"
        );

        let schema = &envelope["schema"];
        assert_eq!(schema["type"], "struct");
        assert_eq!(schema["optional"], false);
        assert_eq!(schema["name"], CONNECT_SCHEMA_NAME);
        let payload = envelope["payload"].as_object().expect("payload object");
        let fields = schema["fields"].as_array().expect("fields");
        assert_eq!(
            fields.len(),
            payload.len(),
            "every payload field has a schema field and back"
        );
        for field in fields {
            let name = field["field"].as_str().expect("field name");
            let value = payload
                .get(name)
                .unwrap_or_else(|| panic!("payload lacks {name}"));
            match field["type"].as_str() {
                Some("int64") => {
                    assert!(value.is_i64(), "{name}");
                    assert_eq!(field["name"], "org.apache.kafka.connect.data.Timestamp");
                }
                Some("string") => assert!(value.is_string(), "{name}"),
                Some("double") => assert!(value.is_f64(), "{name}"),
                other => panic!("unexpected type {other:?} for {name}"),
            }
        }
        assert_eq!(payload["time"], 1_764_064_800_000_i64);
        assert_eq!(payload["arrival_time"], 1_764_064_800_250_i64);
        assert_eq!(payload["value"], 412.5);
    }

    #[test]
    fn buffer_is_reused_not_appended() {
        let encoder = Encoder::new(OutputEncoding::ConnectJson);
        let mut out = Vec::new();
        encoder.encode(&READING, ("", ""), &mut out);
        let first = out.clone();
        encoder.encode(&READING, ("", ""), &mut out);
        assert_eq!(out, first);
    }

    #[test]
    fn integral_values_stay_doubles() {
        let mut out = Vec::new();
        Encoder::new(OutputEncoding::ConnectJson).encode(
            &Reading {
                value: 230.0,
                ..READING
            },
            ("", ""),
            &mut out,
        );
        let envelope: Value = serde_json::from_slice(&out).expect("json");
        assert!(
            envelope["payload"]["value"].is_f64(),
            "230.0 must not be written as the integer 230"
        );
    }
}
