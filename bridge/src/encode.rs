//! Record values for the readings topic.
//!
//! One record per metric ("long" format). The fields, their Connect types and the table the JDBC
//! sink writes them into are defined once in [`ehs_contract::reading`]; the payload structs here
//! are checked against that definition by the tests below.

use ehs_contract::reading;
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
        let schema = serde_json::to_writer(&mut envelope_prefix, &reading::connect_schema());
        // Plain structs of strings, bools and numbers always serialize.
        debug_assert!(
            schema.is_ok(),
            "serializing the Connect schema failed: {schema:?}"
        );
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
        assert_eq!(schema["name"], reading::CONNECT_SCHEMA_NAME);
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
                    assert_eq!(field["name"], reading::CONNECT_TIMESTAMP);
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

    fn keys(object: &Value) -> Vec<&str> {
        let mut keys: Vec<&str> = object
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        keys
    }

    fn schema_field_names() -> Vec<&'static str> {
        let mut names: Vec<_> = reading::field_names().collect();
        names.sort_unstable();
        names
    }

    /// The envelope and both payloads must carry exactly the contract's fields: a field added to
    /// `ehs_contract::reading::FIELDS` but not to the payload structs fails here.
    #[test]
    fn envelope_and_payloads_equal_the_reading_schema() {
        let envelope = encode(OutputEncoding::ConnectJson);
        assert_eq!(
            envelope["schema"],
            serde_json::to_value(reading::connect_schema()).expect("schema")
        );
        assert_eq!(keys(&envelope["payload"]), schema_field_names());
        assert_eq!(keys(&encode(OutputEncoding::Json)), schema_field_names());
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
