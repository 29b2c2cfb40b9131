//! The interface between the `ehs` compiler, which writes the bridge's Kubernetes manifests, and
//! the `ehs-bridge` binary, which reads them at run time.
//!
//! Every value here is needed by both sides. Keeping it in one crate means a renamed variable or a
//! moved probe path breaks the build instead of a production rollout. The bridge's tunables, their
//! defaults and their validity rules are here too ([`config`]), so the compiler refuses what the
//! bridge would refuse at start-up.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub mod config;
pub mod reading;

/// Environment variables the bridge reads. The compiler sets exactly these on the bridge's pods;
/// the bridge's command-line flags carry the same names (`--mqtt-url` ⇔ `EHS_MQTT_URL`).
pub mod env {
    /// MQTT broker address, `mqtt://host:port`.
    pub const MQTT_URL: &str = "EHS_MQTT_URL";
    /// MQTT client id; must survive restarts (a StatefulSet pod name), so a crashed replica
    /// resumes its own persistent session instead of stranding it.
    pub const MQTT_CLIENT_ID: &str = "EHS_MQTT_CLIENT_ID";
    /// Shared-subscription group: replicas in one group split the load.
    pub const MQTT_SHARE_GROUP: &str = "EHS_MQTT_SHARE_GROUP";
    /// Comma-separated MQTT topic filters, subscribed as `$share/<group>/<filter>`.
    pub const MQTT_FILTERS: &str = "EHS_MQTT_FILTERS";
    /// Persistent session expiry, seconds.
    pub const MQTT_SESSION_EXPIRY_SECS: &str = "EHS_MQTT_SESSION_EXPIRY_SECS";
    /// MQTT v5 receive maximum: QoS 1 messages the broker may have in flight to this replica.
    pub const MQTT_RECEIVE_MAXIMUM: &str = "EHS_MQTT_RECEIVE_MAXIMUM";
    /// Least milliseconds between two MQTT socket reads that each found the socket drained
    /// (0: read at once). Under a steady stream this turns a wake-up per message into a
    /// wake-up per batch, at the price of at most this much added latency.
    pub const MQTT_READ_COALESCE_MS: &str = "EHS_MQTT_READ_COALESCE_MS";
    /// Secret-mounted credentials are read from files, never from literal env values.
    pub const MQTT_USERNAME_FILE: &str = "EHS_MQTT_USERNAME_FILE";
    pub const MQTT_PASSWORD_FILE: &str = "EHS_MQTT_PASSWORD_FILE";
    /// Pattern extracting ids from the MQTT topic, e.g. `ehs/{home}/{device}/telemetry`.
    pub const TOPIC_PATTERN: &str = "EHS_TOPIC_PATTERN";
    /// Comma-separated `filter=adapter` routes choosing the payload decoder per topic;
    /// the first matching filter wins. Adapter names: see [`crate::PayloadAdapter`].
    pub const PAYLOAD_ROUTES: &str = "EHS_PAYLOAD_ROUTES";
    /// Largest MQTT payload accepted, bytes; larger ones are dead-lettered.
    pub const MAX_PAYLOAD_BYTES: &str = "EHS_MAX_PAYLOAD_BYTES";
    /// Comma-separated `host:port` Kafka bootstrap servers.
    pub const KAFKA_BOOTSTRAP_SERVERS: &str = "EHS_KAFKA_BOOTSTRAP_SERVERS";
    /// Kafka topic for normalized readings.
    pub const KAFKA_TOPIC: &str = "EHS_KAFKA_TOPIC";
    /// Kafka topic for messages that could not be decoded or mapped.
    pub const KAFKA_DEAD_LETTER_TOPIC: &str = "EHS_KAFKA_DEAD_LETTER_TOPIC";
    /// Encoding of records on [`KAFKA_TOPIC`]; see [`crate::OutputEncoding`].
    pub const OUTPUT_ENCODING: &str = "EHS_OUTPUT_ENCODING";
    /// Upper bound on MQTT messages taken but not yet acknowledged (backpressure window).
    pub const MAX_IN_FLIGHT: &str = "EHS_MAX_IN_FLIGHT";
    /// Address of the HTTP server for probes and metrics, e.g. `0.0.0.0:9090`.
    pub const HTTP_LISTEN: &str = "EHS_HTTP_LISTEN";
    /// Seconds the SIGTERM drain may take; must be shorter than the pod's grace period.
    pub const DRAIN_TIMEOUT_SECS: &str = "EHS_DRAIN_TIMEOUT_SECS";
    /// `json` or `text`.
    pub const LOG_FORMAT: &str = "EHS_LOG_FORMAT";
    /// tracing filter directives, e.g. `info,rdkafka=warn`.
    pub const LOG_LEVEL: &str = "EHS_LOG_LEVEL";
    /// Comma-separated `key=value` librdkafka producer settings (e.g. `linger.ms=5`); the ones
    /// at-least-once delivery depends on (acks, idempotence, timeouts) are refused.
    pub const KAFKA_PRODUCER_OVERRIDES: &str = "EHS_KAFKA_PRODUCER_OVERRIDES";
    // --- Kafka SASL credentials (issue 13, secrets never leak) ---
    /// Kafka SASL mechanism, see [`crate::config::KafkaSaslMechanism`]; needs the two files.
    pub const KAFKA_SASL_MECHANISM: &str = "EHS_KAFKA_SASL_MECHANISM";
    /// Secret-mounted Kafka SASL credentials, read from files like the MQTT ones, so neither
    /// ever appears as a literal value in the pod spec.
    pub const KAFKA_SASL_USERNAME_FILE: &str = "EHS_KAFKA_SASL_USERNAME_FILE";
    pub const KAFKA_SASL_PASSWORD_FILE: &str = "EHS_KAFKA_SASL_PASSWORD_FILE";
    // --- end Kafka SASL credentials ---
}

/// The bridge's HTTP endpoints, which the compiler wires into probes and scrape configs.
pub mod http {
    pub const PORT: u16 = 9090;
    pub const PORT_NAME: &str = "http-metrics";
    pub const HEALTHZ_PATH: &str = "/healthz";
    pub const READYZ_PATH: &str = "/readyz";
    pub const METRICS_PATH: &str = "/metrics";
}

/// Kafka record header names the bridge writes, which downstream consumers read.
pub mod headers {
    pub const MQTT_TOPIC: &str = "ehs.mqtt.topic";
    /// Arrival time at the bridge, RFC 3339 with milliseconds, UTC.
    pub const ARRIVAL_TIME: &str = "ehs.arrival.time";
    /// Why a record went to the dead-letter topic.
    pub const DEAD_LETTER_REASON: &str = "ehs.dlq.reason";
    /// MQTT v5 user properties are copied as headers with this prefix.
    pub const USER_PROPERTY_PREFIX: &str = "mqtt.user.";
    /// On a dead letter whose payload was cut to the size limit: the original size in bytes.
    pub const ORIGINAL_PAYLOAD_BYTES: &str = "ehs.dlq.original.bytes";
}

/// How a topic's payload is decoded into readings.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum PayloadAdapter {
    /// `{"power_w": 412.5, "voltage_v": 230.1, "ts": "…"}`: every numeric field is a metric.
    FlatJson,
    /// `{"ts": …, "data": {"power_w": 412.5, …}}`: metrics under `data`.
    NestedJson,
    /// `412.5`: one value; the metric name is the last topic level.
    Numeric,
}

impl PayloadAdapter {
    pub const ALL: [PayloadAdapter; 3] = [Self::FlatJson, Self::NestedJson, Self::Numeric];

    pub const fn name(self) -> &'static str {
        match self {
            Self::FlatJson => "flat-json",
            Self::NestedJson => "nested-json",
            Self::Numeric => "numeric",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }
}

/// How normalized readings are written to Kafka.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OutputEncoding {
    /// Plain JSON object per reading.
    Json,
    /// Kafka Connect JsonConverter envelope (`schema` + `payload`, schemas.enable=true), whose
    /// schema matches the readings table the JDBC sink writes to.
    ConnectJson,
}

impl OutputEncoding {
    pub const ALL: [OutputEncoding; 2] = [Self::Json, Self::ConnectJson];

    pub const fn name(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::ConnectJson => "connect-json",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.name() == name)
    }
}

/// One `filter=adapter` entry of [`env::PAYLOAD_ROUTES`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PayloadRoute {
    /// MQTT topic filter, e.g. `ehs/+/+/telemetry`.
    pub filter: String,
    /// Decoder for payloads on matching topics.
    pub adapter: PayloadAdapter,
}

/// Writes routes in the form [`parse_payload_routes`] reads, so both sides share one syntax.
pub fn format_payload_routes(routes: &[PayloadRoute]) -> String {
    routes
        .iter()
        .map(|r| format!("{}={}", r.filter, r.adapter.name()))
        .collect::<Vec<_>>()
        .join(",")
}

/// Parses `filter=adapter,filter=adapter`.
pub fn parse_payload_routes(text: &str) -> Result<Vec<PayloadRoute>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let (filter, adapter) = entry
                .rsplit_once('=')
                .ok_or_else(|| format!("route `{entry}` is not of the form `filter=adapter`"))?;
            let adapter = PayloadAdapter::from_name(adapter.trim()).ok_or_else(|| {
                let valid: Vec<_> = PayloadAdapter::ALL.iter().map(|a| a.name()).collect();
                format!(
                    "route `{entry}`: unknown adapter `{adapter}`, expected one of {}",
                    valid.join(", ")
                )
            })?;
            Ok(PayloadRoute {
                filter: filter.trim().to_owned(),
                adapter,
            })
        })
        .collect()
}

/// MQTT topics the bridge uses besides the configured filters; the broker ACL must allow each
/// replica to read and write its own.
pub mod mqtt {
    /// A persistent session keeps its subscriptions, and MQTT cannot list them. Each replica
    /// therefore keeps the set it subscribed as a retained QoS 1 message on
    /// `<prefix>/<client-id>/filters`, so a restart with fewer filters can unsubscribe the rest.
    /// Mosquitto ACL: `pattern readwrite ehs-bridge/sessions/%c/filters`.
    pub const SESSION_STATE_TOPIC_PREFIX: &str = "ehs-bridge/sessions";

    pub fn session_state_topic(client_id: &str) -> String {
        format!("{SESSION_STATE_TOPIC_PREFIX}/{client_id}/filters")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_routes_round_trip() {
        let routes = vec![
            PayloadRoute {
                filter: "ehs/+/+/telemetry".into(),
                adapter: PayloadAdapter::FlatJson,
            },
            PayloadRoute {
                filter: "ehs/+/+/value/#".into(),
                adapter: PayloadAdapter::Numeric,
            },
        ];
        assert_eq!(
            parse_payload_routes(&format_payload_routes(&routes)).unwrap(),
            routes
        );
    }

    #[test]
    fn unknown_adapter_names_valid_ones() {
        let err = parse_payload_routes("a/b=xml").unwrap_err();
        assert!(err.contains("flat-json, nested-json, numeric"), "{err}");
    }
}

/// Longest MQTT topic or filter, in bytes of UTF-8 (MQTT 5 §1.5.4).
pub const MQTT_TOPIC_MAX_BYTES: usize = 65_535;

/// Checks a topic filter the bridge subscribes to or routes payloads by (MQTT 5 §4.7): not empty,
/// no NUL, `#` only as the whole last level, `+` only as a whole level. It must not start with
/// `$share/` (the bridge adds the share group itself) and must not contain `,`, which separates
/// filters in [`env::MQTT_FILTERS`] and routes in [`env::PAYLOAD_ROUTES`].
///
/// The error says what is wrong and what would be valid.
pub fn validate_topic_filter(filter: &str) -> Result<(), String> {
    const VALID: &str = "levels separated by `/`, each either text without `+`, `#` and `,`, \
                         or exactly `+` (one level), or exactly `#` as the last level (all the \
                         rest), e.g. `ehs/+/+/telemetry` or `ehs/#`";
    let problem = if filter.is_empty() {
        Some("is empty".to_owned())
    } else if filter.len() > MQTT_TOPIC_MAX_BYTES {
        Some(format!("is longer than {MQTT_TOPIC_MAX_BYTES} bytes"))
    } else if filter.contains('\0') {
        Some("contains a NUL character".to_owned())
    } else if filter.contains(',') {
        Some("contains `,`, which separates filters where the bridge reads them".to_owned())
    } else if filter.starts_with("$share/") {
        Some(
            "starts with `$share/`: give the plain filter, the bridge adds its share group"
                .to_owned(),
        )
    } else {
        let last = filter.split('/').count() - 1;
        filter
            .split('/')
            .enumerate()
            .find_map(|(index, level)| match level {
                "#" if index == last => None,
                "#" => Some("has `#` before the last level".to_owned()),
                "+" => None,
                level if level.contains('#') => Some(format!("has `#` inside the level `{level}`")),
                level if level.contains('+') => Some(format!("has `+` inside the level `{level}`")),
                _ => None,
            })
    };
    match problem {
        None => Ok(()),
        Some(problem) => Err(format!(
            "MQTT topic filter `{filter}` {problem}; use {VALID}"
        )),
    }
}

/// Checks the pattern the bridge extracts ids from MQTT topics with, e.g.
/// `ehs/{home}/{device}/telemetry`: levels separated by `/`, each a literal (no `{`, `}`, `+`,
/// `#`, NUL), `+` (any one level, ignored), or a placeholder `{home}`, `{device}` or `{metric}`
/// filling a whole level. `{home}` and `{device}` are required; no placeholder may repeat.
///
/// The error says what is wrong and what would be valid.
pub fn validate_topic_pattern(pattern: &str) -> Result<(), String> {
    const PLACEHOLDERS: [&str; 3] = ["{home}", "{device}", "{metric}"];
    const VALID: &str = "levels separated by `/`, each literal text (without `{`, `}`, `+`, `#`), \
                         `+`, or one of `{home}`, `{device}` (both required) and `{metric}`, \
                         each at most once and filling its whole level, \
                         e.g. `ehs/{home}/{device}/telemetry`";
    let levels: Vec<&str> = pattern.split('/').collect();
    let count = |placeholder: &str| levels.iter().filter(|level| **level == placeholder).count();
    let problem = || {
        if pattern.len() > MQTT_TOPIC_MAX_BYTES {
            return Some(format!("is longer than {MQTT_TOPIC_MAX_BYTES} bytes"));
        }
        let bad_level = levels.iter().find(|level| {
            !PLACEHOLDERS.contains(level)
                && **level != "+"
                && level.contains(['{', '}', '+', '#', '\0'])
        });
        if let Some(level) = bad_level {
            return Some(format!("has the level `{}`", level.escape_debug()));
        }
        if let Some(repeated) = PLACEHOLDERS.into_iter().find(|p| count(p) > 1) {
            return Some(format!("uses `{repeated}` more than once"));
        }
        let missing = PLACEHOLDERS[..2].iter().find(|p| count(p) == 0);
        missing.map(|missing| format!("lacks `{missing}`"))
    };
    match problem() {
        None => Ok(()),
        Some(problem) => Err(format!("topic pattern `{pattern}` {problem}; use {VALID}")),
    }
}

#[cfg(test)]
mod topic_tests {
    use super::*;

    #[test]
    fn valid_topic_filters() {
        for filter in [
            "ehs/+/+/telemetry",
            "ehs/#",
            "#",
            "+",
            "+/+",
            "a//b",
            "/",
            "$SYS/#",
            "ehs/a b",
        ] {
            assert_eq!(validate_topic_filter(filter), Ok(()), "{filter}");
        }
    }

    #[test]
    fn invalid_topic_filters_say_why() {
        for (filter, problem) in [
            ("", "is empty"),
            ("ehs/#/x", "has `#` before the last level"),
            ("ehs/a#", "has `#` inside the level `a#`"),
            ("ehs/a+/b", "has `+` inside the level `a+`"),
            ("ehs/+x", "has `+` inside the level `+x`"),
            ("ehs/\0", "contains a NUL character"),
            ("a,b", "contains `,`"),
            ("$share/g/ehs/#", "starts with `$share/`"),
        ] {
            let error = validate_topic_filter(filter).unwrap_err();
            assert!(error.contains(problem), "{filter}: {error}");
            assert!(error.contains("e.g. `ehs/+/+/telemetry`"), "{error}");
        }
        assert!(validate_topic_filter(&"a".repeat(MQTT_TOPIC_MAX_BYTES + 1)).is_err());
        assert!(validate_topic_filter(&"a".repeat(MQTT_TOPIC_MAX_BYTES)).is_ok());
    }

    #[test]
    fn valid_topic_patterns() {
        for pattern in [
            "ehs/{home}/{device}/telemetry",
            "{device}/{home}",
            "ehs/{home}/+/{device}/{metric}",
            "/{home}/{device}",
        ] {
            assert_eq!(validate_topic_pattern(pattern), Ok(()), "{pattern}");
        }
    }

    #[test]
    fn invalid_topic_patterns_say_why() {
        for (pattern, problem) in [
            ("ehs/{home}/telemetry", "lacks `{device}`"),
            ("ehs/{device}", "lacks `{home}`"),
            ("", "lacks `{home}`"),
            ("ehs/{home}-x/{device}", "has the level `{home}-x`"),
            ("ehs/{home}/{device}/#", "has the level `#`"),
            ("ehs/{home}/{device}/{site}", "has the level `{site}`"),
            ("ehs/{home}/{device}/a+", "has the level `a+`"),
            ("ehs/{home}/{device}/\0", "has the level `\\0`"),
            ("{home}/{home}/{device}", "uses `{home}` more than once"),
            (
                "{home}/{device}/{metric}/{metric}",
                "uses `{metric}` more than once",
            ),
        ] {
            let error = validate_topic_pattern(pattern).unwrap_err();
            assert!(error.contains(problem), "{pattern}: {error}");
            assert!(
                error.contains("e.g. `ehs/{home}/{device}/telemetry`"),
                "{error}"
            );
        }
    }
}
