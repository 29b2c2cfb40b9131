//! The bridge's tunables: one typed model with one set of defaults and one set of validity rules.
//!
//! The bridge's command line takes its defaults from [`BridgeConfig::default`] and refuses what
//! [`BridgeConfig::validate`] reports; the compiler renders the same type into the bridge's
//! environment variables ([`BridgeConfig::to_env`]) and refuses the same problems before anything
//! is written. A value the compiler accepts is therefore a value the bridge starts with.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    env, format_payload_routes, validate_topic_filter, validate_topic_pattern, OutputEncoding,
    PayloadAdapter, PayloadRoute,
};

/// Largest MQTT receive maximum the protocol allows (MQTT 5 §3.1.2.11.3).
pub const RECEIVE_MAXIMUM_LIMIT: u32 = 65_535;
/// Kafka's default `message.max.bytes`; a dead-lettered payload must still fit in one record.
pub const MAX_PAYLOAD_BYTES_LIMIT: usize = 1_000_000;
/// Read coalescing blocks the runtime thread (probes, metrics and acknowledgements wait too)
/// and adds latency; beyond this it costs more than any batching gain is worth.
pub const READ_COALESCE_LIMIT_MS: u64 = 10;

/// How the bridge writes log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line, for log shippers.
    Json,
    /// Human-readable lines.
    Text,
}

impl LogFormat {
    pub const ALL: [LogFormat; 2] = [Self::Json, Self::Text];

    pub const fn name(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Text => "text",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|format| format.name() == name)
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for OutputEncoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

// --- Kafka SASL mechanism (issue 13, secrets never leak) ---

/// How the bridge authenticates to Kafka when it is given SASL credential files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum KafkaSaslMechanism {
    /// SCRAM with SHA-512: the password never crosses the wire.
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
    /// The password in clear inside the SASL exchange; only over TLS.
    #[serde(rename = "PLAIN")]
    Plain,
}

impl KafkaSaslMechanism {
    pub const ALL: [KafkaSaslMechanism; 2] = [Self::ScramSha512, Self::Plain];

    /// The name librdkafka's `sasl.mechanism` and the bridge's flag take.
    pub const fn name(self) -> &'static str {
        match self {
            Self::ScramSha512 => "SCRAM-SHA-512",
            Self::Plain => "PLAIN",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }
}

impl fmt::Display for KafkaSaslMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

// --- end Kafka SASL mechanism ---

/// A value as the bridge reads it from its environment variable.
pub trait EnvValue {
    fn env_value(&self) -> String;
}

macro_rules! env_value_by_display {
    ($($ty:ty),*) => {$(
        impl EnvValue for $ty {
            fn env_value(&self) -> String {
                self.to_string()
            }
        }
    )*};
}
env_value_by_display!(u32, u64, usize, String, LogFormat, OutputEncoding);

/// Comma-separated, as the bridge splits it.
impl EnvValue for Vec<String> {
    fn env_value(&self) -> String {
        self.join(",")
    }
}

impl EnvValue for Vec<PayloadRoute> {
    fn env_value(&self) -> String {
        format_payload_routes(self)
    }
}

/// Defines [`BridgeConfig`] (every setting, defaulted) and [`BridgeConfigLayer`] (the same
/// settings, each optional: overrides) from one list, so a setting, its documentation, its
/// default and its environment variable are written once. A field is named like its variable
/// without `EHS_` (`mqtt_receive_maximum` ⇔ `EHS_MQTT_RECEIVE_MAXIMUM` ⇔
/// `--mqtt-receive-maximum`); a test holds every field to that.
macro_rules! bridge_config {
    ($(
        $(#[doc = $doc:literal])*
        $field:ident: $ty:ty = $default:expr, $env:ident;
    )*) => {
        /// The ehs-bridge binary's own settings: what its flags and environment variables set,
        /// other than where the brokers are and who it is. Unset fields take the binary's
        /// defaults.
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
        #[serde(default, deny_unknown_fields, rename_all = "camelCase")]
        pub struct BridgeConfig {
            $($(#[doc = $doc])* pub $field: $ty,)*
        }

        impl Default for BridgeConfig {
            fn default() -> Self {
                Self { $($field: $default,)* }
            }
        }

        /// Overrides of the ehs-bridge binary's own settings; unset ones keep the binary's
        /// defaults.
        #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
        #[serde(deny_unknown_fields, rename_all = "camelCase")]
        #[schemars(rename = "BridgeConfig")]
        pub struct BridgeConfigLayer {
            $(
                $(#[doc = $doc])*
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub $field: Option<$ty>,
            )*
        }

        impl BridgeConfig {
            /// `(field, environment variable)` of every setting.
            pub const FIELDS: &'static [(&'static str, &'static str)] =
                &[$((stringify!($field), env::$env)),*];

            /// Every setting as the environment variable the bridge reads it from.
            pub fn to_env(&self) -> Vec<(&'static str, String)> {
                vec![$((env::$env, self.$field.env_value())),*]
            }
        }
    };
}

bridge_config! {
    /// Shared-subscription group the replicas join; replicas in one group split the load. A
    /// name without `/`, `+`, `#` or whitespace.
    mqtt_share_group: String = "ehs-bridge".to_owned(), MQTT_SHARE_GROUP;
    /// MQTT topic filters, each subscribed as `$share/<group>/<filter>` at QoS 1. Empty (the
    /// default): the topic pattern with each placeholder as `+`, e.g.
    /// `ehs/{home}/{device}/telemetry` subscribes `ehs/+/+/telemetry`.
    mqtt_filters: Vec<String> = Vec::new(), MQTT_FILTERS;
    /// How long the broker keeps a disconnected replica's session (and its unacknowledged
    /// messages), in seconds.
    mqtt_session_expiry_secs: u32 = 300, MQTT_SESSION_EXPIRY_SECS;
    /// QoS 1 messages the broker may have unacknowledged at one replica (MQTT v5 receive
    /// maximum), 1 to 65535 and at most `maxInFlight`.
    mqtt_receive_maximum: u32 = 1000, MQTT_RECEIVE_MAXIMUM;
    /// Least milliseconds between two MQTT socket reads that each found the socket drained, 0
    /// to 10; 0 reads at once. A steady stream then costs one wake-up per batch instead of one
    /// per message (measured at 100 000 msg/s: 400 instead of 30 000 wake-ups per second,
    /// bridge CPU per message halved); a message arriving just after a drain waits at most
    /// this long.
    mqtt_read_coalesce_ms: u64 = 1, MQTT_READ_COALESCE_MS;
    /// Where ids come from: `{home}` and `{device}` (required), `{metric}` (optional) and `+`
    /// match one topic level each, e.g. `ehs/{home}/{device}/telemetry`.
    topic_pattern: String = "ehs/{home}/{device}/telemetry".to_owned(), TOPIC_PATTERN;
    /// Payload decoder per MQTT topic filter; the first matching filter wins. Each filter must
    /// match some topic the subscribed filters deliver.
    payload_routes: Vec<PayloadRoute> = vec![PayloadRoute {
        filter: "#".to_owned(),
        adapter: PayloadAdapter::FlatJson,
    }], PAYLOAD_ROUTES;
    /// Largest MQTT payload accepted, in bytes, 1 to 1000000 (Kafka's default record limit);
    /// larger ones are dead-lettered (reason `oversize`).
    max_payload_bytes: usize = 65_536, MAX_PAYLOAD_BYTES;
    /// MQTT messages taken but not yet acknowledged, QoS 0 included (the backpressure window);
    /// at least `mqttReceiveMaximum`.
    max_in_flight: usize = 2000, MAX_IN_FLIGHT;
    /// Encoding of records on the telemetry topic.
    output_encoding: OutputEncoding = OutputEncoding::Json, OUTPUT_ENCODING;
    /// Seconds the SIGTERM drain may take, at least 1; keep it below the pod's grace period.
    drain_timeout_secs: u64 = 20, DRAIN_TIMEOUT_SECS;
    /// tracing filter directives, e.g. `info,rdkafka=warn`.
    // librdkafka's info lines (one per connection event) drown the bridge's own; the benchmark
    // and the integration tests run with this filter.
    log_level: String = "info,rdkafka=warn".to_owned(), LOG_LEVEL;
    /// Log line format.
    log_format: LogFormat = LogFormat::Json, LOG_FORMAT;
}

/// One thing wrong with a [`BridgeConfig`]: the setting and what would be valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The setting's environment variable, e.g. `EHS_MQTT_RECEIVE_MAXIMUM`.
    pub env: &'static str,
    /// What is wrong and what would be valid.
    pub message: String,
}

impl Problem {
    fn new(env: &'static str, message: impl Into<String>) -> Self {
        Self {
            env,
            message: message.into(),
        }
    }

    fn words(&self) -> impl Iterator<Item = String> + '_ {
        let name = self.env.strip_prefix("EHS_").unwrap_or(self.env);
        name.split('_').map(str::to_ascii_lowercase)
    }

    /// The setting's key in [`BridgeConfig`]'s serialised form, e.g. `mqttReceiveMaximum`.
    pub fn key(&self) -> String {
        camel_case(self.words())
    }

    /// The bridge's command-line flag, e.g. `--mqtt-receive-maximum`.
    pub fn flag(&self) -> String {
        format!("--{}", self.words().collect::<Vec<_>>().join("-"))
    }
}

fn camel_case(words: impl Iterator<Item = String>) -> String {
    words
        .enumerate()
        .map(|(index, word)| {
            let mut chars = word.chars();
            match chars.next() {
                Some(first) if index > 0 => first.to_ascii_uppercase().to_string() + chars.as_str(),
                _ => word,
            }
        })
        .collect()
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` {}", self.key(), self.message)
    }
}

/// A name the bridge joins MQTT with (share group, client id): not empty, no `/`, `+`, `#`
/// (they would change the meaning of `$share/<group>/<filter>`), no whitespace.
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(['/', '+', '#']) && !name.chars().any(char::is_whitespace)
}

/// Checks tracing filter directives with the parser the bridge installs them with.
pub fn validate_log_filter(directives: &str) -> Result<(), String> {
    tracing_subscriber::EnvFilter::try_new(directives)
        .map(drop)
        .map_err(|error| {
            format!(
                "`{directives}` is not a tracing filter ({error}); use comma-separated \
                 `level` or `target=level` directives, levels trace, debug, info, warn, error \
                 or off, e.g. `info,rdkafka=warn`"
            )
        })
}

/// The filter subscribing to every topic `pattern` can match: each placeholder becomes `+`.
pub fn filter_for_pattern(pattern: &str) -> String {
    pattern
        .split('/')
        .map(|level| {
            if level.starts_with('{') && level.ends_with('}') {
                "+"
            } else {
                level
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Whether some topic matches both filters (MQTT 5 §4.7: `#` matches its parent level too, and
/// a filter starting with a wildcard matches no `$` topic).
pub fn filters_overlap(a: &str, b: &str) -> bool {
    let dollar_only = |filter: &str| filter.starts_with('$');
    let wildcard_first = |filter: &str| filter.starts_with('+') || filter.starts_with('#');
    if (dollar_only(a) && wildcard_first(b)) || (dollar_only(b) && wildcard_first(a)) {
        return false;
    }
    let a: Vec<&str> = a.split('/').collect();
    let b: Vec<&str> = b.split('/').collect();
    levels_overlap(&a, &b)
}

fn levels_overlap(a: &[&str], b: &[&str]) -> bool {
    match (a.split_first(), b.split_first()) {
        (Some((&"#", _)), _) | (_, Some((&"#", _))) | (None, None) => true,
        (Some((x, a_rest)), Some((y, b_rest))) => {
            (*x == "+" || *y == "+" || x == y) && levels_overlap(a_rest, b_rest)
        }
        _ => false,
    }
}

impl BridgeConfig {
    /// The filters the bridge subscribes to: the configured ones, or, if none, the one the
    /// topic pattern implies.
    pub fn subscribed_filters(&self) -> Vec<String> {
        let configured: Vec<String> = self
            .mqtt_filters
            .iter()
            .map(|filter| filter.trim().to_owned())
            .filter(|filter| !filter.is_empty())
            .collect();
        if configured.is_empty() {
            vec![filter_for_pattern(&self.topic_pattern)]
        } else {
            configured
        }
    }

    /// Every problem that would stop the bridge from starting with these settings, each naming
    /// its setting and what would be valid. Empty: the bridge accepts them.
    pub fn validate(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        if !is_plain_name(&self.mqtt_share_group) {
            problems.push(Problem::new(
                env::MQTT_SHARE_GROUP,
                format!(
                    "must be a non-empty name without `/`, `+`, `#` or whitespace, e.g. \
                     `ehs-bridge`, got `{}`",
                    self.mqtt_share_group.escape_debug()
                ),
            ));
        }
        let pattern = validate_topic_pattern(&self.topic_pattern)
            .map_err(|error| problems.push(Problem::new(env::TOPIC_PATTERN, error)))
            .ok();
        let filters = self.subscribed_filters();
        let mut filters_valid = true;
        for filter in &filters {
            if let Err(error) = validate_topic_filter(filter) {
                filters_valid = false;
                problems.push(Problem::new(env::MQTT_FILTERS, error));
            }
        }
        if pattern.is_some() && filters_valid {
            let pattern_filter = filter_for_pattern(&self.topic_pattern);
            for filter in filters
                .iter()
                .filter(|f| !filters_overlap(f, &pattern_filter))
            {
                problems.push(Problem::new(
                    env::MQTT_FILTERS,
                    format!(
                        "`{filter}` delivers no topic the topic pattern `{}` matches, so every \
                         message would be dead-lettered; subscribe to topics of the pattern, \
                         e.g. `{pattern_filter}`",
                        self.topic_pattern
                    ),
                ));
            }
        }
        if self.payload_routes.is_empty() {
            problems.push(Problem::new(
                env::PAYLOAD_ROUTES,
                "needs at least one `filter` → `adapter` route, e.g. `#` → `flat-json`",
            ));
        }
        for route in &self.payload_routes {
            if let Err(error) = validate_topic_filter(&route.filter) {
                problems.push(Problem::new(env::PAYLOAD_ROUTES, error));
            } else if filters_valid && !filters.iter().any(|f| filters_overlap(f, &route.filter)) {
                problems.push(Problem::new(
                    env::PAYLOAD_ROUTES,
                    format!(
                        "route filter `{}` matches no topic the subscribed filters ({}) \
                         deliver, so it can never apply; use a filter within them, or `#`",
                        route.filter,
                        filters.join(", ")
                    ),
                ));
            }
        }
        if !(1..=RECEIVE_MAXIMUM_LIMIT).contains(&self.mqtt_receive_maximum) {
            problems.push(Problem::new(
                env::MQTT_RECEIVE_MAXIMUM,
                format!(
                    "must be between 1 and {RECEIVE_MAXIMUM_LIMIT}, got {}",
                    self.mqtt_receive_maximum
                ),
            ));
        } else if usize::try_from(self.mqtt_receive_maximum)
            .is_ok_and(|receive_maximum| receive_maximum > self.max_in_flight)
        {
            problems.push(Problem::new(
                env::MAX_IN_FLIGHT,
                format!(
                    "must be at least mqttReceiveMaximum ({}), got {}: the broker could \
                     otherwise hand over more messages than the bridge may hold",
                    self.mqtt_receive_maximum, self.max_in_flight
                ),
            ));
        }
        if self.mqtt_read_coalesce_ms > READ_COALESCE_LIMIT_MS {
            problems.push(Problem::new(
                env::MQTT_READ_COALESCE_MS,
                format!(
                    "must be between 0 and {READ_COALESCE_LIMIT_MS} (it adds up to that much \
                     latency), got {}",
                    self.mqtt_read_coalesce_ms
                ),
            ));
        }
        if !(1..=MAX_PAYLOAD_BYTES_LIMIT).contains(&self.max_payload_bytes) {
            problems.push(Problem::new(
                env::MAX_PAYLOAD_BYTES,
                format!(
                    "must be between 1 and {MAX_PAYLOAD_BYTES_LIMIT} (so a dead-lettered \
                     payload fits in a Kafka record), got {}",
                    self.max_payload_bytes
                ),
            ));
        }
        if self.drain_timeout_secs == 0 {
            problems.push(Problem::new(
                env::DRAIN_TIMEOUT_SECS,
                "must be at least 1, got 0",
            ));
        }
        if let Err(error) = validate_log_filter(&self.log_level) {
            problems.push(Problem::new(env::LOG_LEVEL, error));
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(config: BridgeConfig) -> Vec<String> {
        config.validate().iter().map(Problem::to_string).collect()
    }

    fn only_problem(config: BridgeConfig, key: &str, text: &str) {
        let problems = problems(config);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with(&format!("`{key}` ")),
            "{problems:?}"
        );
        assert!(problems[0].contains(text), "{problems:?}");
    }

    #[test]
    fn defaults_are_valid_and_subscribe_to_the_pattern() {
        let config = BridgeConfig::default();
        assert_eq!(config.validate(), vec![]);
        assert_eq!(config.subscribed_filters(), vec!["ehs/+/+/telemetry"]);
    }

    #[test]
    fn every_field_is_named_like_its_environment_variable() {
        for (field, variable) in BridgeConfig::FIELDS {
            assert_eq!(format!("EHS_{}", field.to_ascii_uppercase()), *variable);
        }
        let schema = serde_json::to_value(schemars::schema_for!(BridgeConfigLayer)).unwrap();
        let keys: Vec<&String> = schema["properties"].as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), BridgeConfig::FIELDS.len());
        for (_, variable) in BridgeConfig::FIELDS {
            let key = Problem::new(variable, "").key();
            assert!(keys.contains(&&key), "{key} not in {keys:?}");
        }
        assert_eq!(
            Problem::new(env::MQTT_RECEIVE_MAXIMUM, "").flag(),
            "--mqtt-receive-maximum"
        );
    }

    #[test]
    fn to_env_sets_every_variable_once() {
        let vars = BridgeConfig::default().to_env();
        assert_eq!(vars.len(), BridgeConfig::FIELDS.len());
        let value = |name| vars.iter().find(|(var, _)| *var == name).unwrap().1.clone();
        assert_eq!(value(env::PAYLOAD_ROUTES), "#=flat-json");
        assert_eq!(value(env::MQTT_FILTERS), "");
        assert_eq!(value(env::OUTPUT_ENCODING), "json");
    }

    #[test]
    fn the_audits_crash_loop_inputs_are_refused() {
        only_problem(
            BridgeConfig {
                log_level: "info,,=x[[".into(),
                ..Default::default()
            },
            "logLevel",
            "e.g. `info,rdkafka=warn`",
        );
        only_problem(
            BridgeConfig {
                max_in_flight: 999,
                ..Default::default()
            },
            "maxInFlight",
            "at least mqttReceiveMaximum (1000), got 999",
        );
        only_problem(
            BridgeConfig {
                max_payload_bytes: 1_000_001,
                ..Default::default()
            },
            "maxPayloadBytes",
            "between 1 and 1000000",
        );
        only_problem(
            BridgeConfig {
                mqtt_receive_maximum: 0,
                ..Default::default()
            },
            "mqttReceiveMaximum",
            "between 1 and 65535, got 0",
        );
        only_problem(
            BridgeConfig {
                mqtt_share_group: "a/b+".into(),
                ..Default::default()
            },
            "mqttShareGroup",
            "without `/`, `+`, `#`",
        );
    }

    #[test]
    fn all_problems_are_reported_at_once() {
        let config = BridgeConfig {
            mqtt_receive_maximum: 70_000,
            mqtt_read_coalesce_ms: 11,
            drain_timeout_secs: 0,
            max_payload_bytes: 0,
            ..Default::default()
        };
        assert_eq!(problems(config).len(), 4);
    }

    #[test]
    fn routes_must_reach_subscribed_topics() {
        only_problem(
            BridgeConfig {
                payload_routes: vec![PayloadRoute {
                    filter: "ehs/+/+/telemtry".into(),
                    adapter: PayloadAdapter::FlatJson,
                }],
                ..Default::default()
            },
            "payloadRoutes",
            "matches no topic the subscribed filters (ehs/+/+/telemetry) deliver",
        );
        // The integration tests' layout: one wide filter, narrower routes.
        let config = BridgeConfig {
            topic_pattern: "ehs/{home}/{device}/{metric}".into(),
            mqtt_filters: vec!["ehs/h1/#".into()],
            payload_routes: vec![
                PayloadRoute {
                    filter: "ehs/h1/+/telemetry".into(),
                    adapter: PayloadAdapter::FlatJson,
                },
                PayloadRoute {
                    filter: "ehs/h1/+/power_w".into(),
                    adapter: PayloadAdapter::Numeric,
                },
            ],
            ..Default::default()
        };
        assert_eq!(config.validate(), vec![]);
        assert!(problems(BridgeConfig {
            payload_routes: vec![],
            ..Default::default()
        })[0]
            .contains("at least one"));
    }

    #[test]
    fn filters_must_reach_the_pattern() {
        only_problem(
            BridgeConfig {
                mqtt_filters: vec!["other/#".into()],
                ..Default::default()
            },
            "mqttFilters",
            "delivers no topic the topic pattern",
        );
        only_problem(
            BridgeConfig {
                mqtt_filters: vec!["ehs/#/x".into()],
                ..Default::default()
            },
            "mqttFilters",
            "has `#` before the last level",
        );
    }

    #[test]
    fn overlap() {
        for (a, b, expected) in [
            ("#", "a/b", true),
            ("a/#", "a", true),
            ("a/+", "a", false),
            ("a/+/c", "a/b/+", true),
            ("a/b", "a/c", false),
            ("a/b/c", "a/b", false),
            ("+/x", "$SYS/x", false),
            ("#", "$SYS/x", false),
            ("$SYS/#", "$SYS/x", true),
        ] {
            assert_eq!(filters_overlap(a, b), expected, "{a} {b}");
            assert_eq!(filters_overlap(b, a), expected, "{b} {a}");
        }
        assert_eq!(
            filter_for_pattern("ehs/{home}/+/{device}/{metric}"),
            "ehs/+/+/+/+"
        );
    }
}
