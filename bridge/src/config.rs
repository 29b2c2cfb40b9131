//! Command line and environment configuration.
//!
//! Every flag reads the environment variable named in [`ehs_contract::env`], so the compiler,
//! which sets those variables on the pods, and the bridge cannot drift apart.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
pub use ehs_contract::config::LogFormat;
use ehs_contract::config::{is_plain_name, BridgeConfig, KafkaSaslMechanism, Problem};
use ehs_contract::env;
use ehs_contract::{format_payload_routes, OutputEncoding, PayloadRoute};

use crate::secret::{redact_url, Secret};
use crate::topic::{TopicError, TopicFilter, TopicPattern};

/// Room for topic, properties and headers around a payload.
const PACKET_OVERHEAD_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--mqtt-url / {var}: {reason}", var = env::MQTT_URL)]
    MqttUrl { reason: String },
    #[error("--mqtt-client-id / {var}: must not be empty and must not contain `/`, `+` or `#`", var = env::MQTT_CLIENT_ID)]
    ClientId,
    /// The rules the compiler applies too ([`BridgeConfig::validate`]), every problem at once.
    #[error("{}", problems.iter().map(|p| format!("{} / {}: {}", p.flag(), p.env, p.message)).collect::<Vec<_>>().join("; "))]
    Settings { problems: Vec<Problem> },
    #[error("--payload-routes / {var}: {0}", var = env::PAYLOAD_ROUTES)]
    Routes(String),
    /// A value [`BridgeConfig::validate`] accepted but the runtime parser did not: a bug.
    #[error("{0}")]
    Topic(#[from] TopicError),
    /// Holds the value with any userinfo already removed ([`redact_url`]).
    #[error("--kafka-bootstrap-servers / {var}: expected comma-separated host:port entries (credentials go in {file}), got `{0}`", var = env::KAFKA_BOOTSTRAP_SERVERS, file = env::KAFKA_SASL_PASSWORD_FILE)]
    Bootstrap(String),
    #[error("--kafka-topic and --kafka-dead-letter-topic must be valid Kafka topic names (1-249 of [a-zA-Z0-9._-]) and differ, got `{0}`")]
    KafkaTopic(String),
    /// `entry` is the key alone whenever the value could be a secret.
    #[error("--kafka-producer-overrides / {var}: `{entry}` {reason}", var = env::KAFKA_PRODUCER_OVERRIDES)]
    ProducerOverride { entry: String, reason: String },
    #[error("cannot read credential file {path}")]
    CredentialFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{username} and {password} must be set together")]
    HalfCredentials {
        username: &'static str,
        password: &'static str,
    },
    #[error("--kafka-sasl-mechanism / {var} needs {username} and {password}", var = env::KAFKA_SASL_MECHANISM, username = env::KAFKA_SASL_USERNAME_FILE, password = env::KAFKA_SASL_PASSWORD_FILE)]
    SaslMechanismWithoutCredentials,
}

/// Raw command line; [`Args::validate`] turns it into a [`Config`].
///
/// Deliberately not `Debug`: the MQTT URL and the producer overrides are free text someone may
/// have written a password into, and only [`Args::validate`]'s redacting errors may show them.
/// For the same reason `--help` hides their environment values.
#[derive(Parser)]
#[command(
    name = "ehs-bridge",
    version,
    about = "MQTT v5 shared subscription to Kafka, at least once"
)]
pub struct Args {
    /// MQTT broker, `mqtt://host:port` (or `tcp://`).
    #[arg(long, env = env::MQTT_URL, hide_env_values = true)]
    pub mqtt_url: String,
    /// Client id that survives restarts (the StatefulSet pod name), so a restarted replica
    /// resumes its persistent session.
    #[arg(long, env = env::MQTT_CLIENT_ID)]
    pub mqtt_client_id: String,
    /// Shared-subscription group; replicas in one group split the load.
    #[arg(long, env = env::MQTT_SHARE_GROUP, default_value_t = defaults().mqtt_share_group)]
    pub mqtt_share_group: String,
    /// Comma-separated topic filters, each subscribed as `$share/<group>/<filter>` at QoS 1.
    /// Default: the topic pattern with each placeholder as `+`.
    #[arg(long, env = env::MQTT_FILTERS, value_delimiter = ',')]
    pub mqtt_filters: Vec<String>,
    /// Session expiry: how long the broker keeps this replica's session (and its unacknowledged
    /// messages) after a crash.
    #[arg(long, env = env::MQTT_SESSION_EXPIRY_SECS, default_value_t = defaults().mqtt_session_expiry_secs)]
    pub mqtt_session_expiry_secs: u32,
    /// QoS 1 messages the broker may have unacknowledged at this replica.
    #[arg(long, env = env::MQTT_RECEIVE_MAXIMUM, default_value_t = defaults().mqtt_receive_maximum)]
    pub mqtt_receive_maximum: u32,
    /// Least time between two MQTT socket reads that each found the socket drained, in ms; 0
    /// reads at once. A steady stream then costs one wake-up per batch instead of one per
    /// message or two (measured at 100 000 msg/s: 400 instead of 30 000 wake-ups per second,
    /// bridge CPU per message halved), and a message arriving just after a drain waits at most
    /// this long.
    #[arg(long, env = env::MQTT_READ_COALESCE_MS, default_value_t = defaults().mqtt_read_coalesce_ms)]
    pub mqtt_read_coalesce_ms: u64,
    /// File holding the MQTT username (a mounted Secret).
    #[arg(long, env = env::MQTT_USERNAME_FILE)]
    pub mqtt_username_file: Option<PathBuf>,
    /// File holding the MQTT password (a mounted Secret).
    #[arg(long, env = env::MQTT_PASSWORD_FILE)]
    pub mqtt_password_file: Option<PathBuf>,
    /// Where ids come from: `{home}` and `{device}` (required), `{metric}` (optional) and `+`
    /// match one topic level each, e.g. `ehs/{home}/{device}/telemetry`.
    #[arg(long, env = env::TOPIC_PATTERN, default_value_t = defaults().topic_pattern)]
    pub topic_pattern: String,
    /// `filter=adapter,...`; first match wins. Adapters: flat-json, nested-json, numeric.
    #[arg(long, env = env::PAYLOAD_ROUTES, default_value_t = format_payload_routes(&defaults().payload_routes))]
    pub payload_routes: String,
    /// Larger payloads are dead-lettered (reason `oversize`).
    #[arg(long, env = env::MAX_PAYLOAD_BYTES, default_value_t = defaults().max_payload_bytes)]
    pub max_payload_bytes: usize,
    /// Comma-separated `host:port` list.
    #[arg(long, env = env::KAFKA_BOOTSTRAP_SERVERS)]
    pub kafka_bootstrap_servers: String,
    /// Topic for normalized readings. No default: topic names have one source, the platform
    /// model (`components/kafka/defaults.yaml`), which the compiler passes to every replica.
    #[arg(long, env = env::KAFKA_TOPIC)]
    pub kafka_topic: String,
    /// Topic for messages that could not be decoded or mapped (no default, as above).
    #[arg(long, env = env::KAFKA_DEAD_LETTER_TOPIC)]
    pub kafka_dead_letter_topic: String,
    /// Extra librdkafka producer settings, `key=value,...` (e.g. `linger.ms=5`).
    /// Credentials are refused here; see the --kafka-sasl-* settings.
    #[arg(long, env = env::KAFKA_PRODUCER_OVERRIDES, value_delimiter = ',', hide_env_values = true)]
    pub kafka_producer_overrides: Vec<String>,
    // --- Kafka SASL credentials (issue 13) ---
    /// SASL mechanism for Kafka: SCRAM-SHA-512 (default when the credential files are given) or
    /// PLAIN. `security.protocol` becomes SASL_SSL when the overrides ask for TLS
    /// (`security.protocol=ssl`), SASL_PLAINTEXT otherwise.
    #[arg(long, env = env::KAFKA_SASL_MECHANISM, value_parser = parse_sasl_mechanism)]
    pub kafka_sasl_mechanism: Option<KafkaSaslMechanism>,
    /// File holding the Kafka SASL username (a mounted Secret).
    #[arg(long, env = env::KAFKA_SASL_USERNAME_FILE)]
    pub kafka_sasl_username_file: Option<PathBuf>,
    /// File holding the Kafka SASL password (a mounted Secret).
    #[arg(long, env = env::KAFKA_SASL_PASSWORD_FILE)]
    pub kafka_sasl_password_file: Option<PathBuf>,
    // --- end Kafka SASL credentials ---
    /// `json` or `connect-json` (Kafka Connect JsonConverter envelope).
    #[arg(long, env = env::OUTPUT_ENCODING, default_value_t = defaults().output_encoding, value_parser = parse_encoding)]
    pub output_encoding: OutputEncoding,
    /// MQTT messages taken but not yet acknowledged, QoS 0 included.
    #[arg(long, env = env::MAX_IN_FLIGHT, default_value_t = defaults().max_in_flight)]
    pub max_in_flight: usize,
    #[arg(long, env = env::HTTP_LISTEN, default_value_t = SocketAddr::from(([0, 0, 0, 0], ehs_contract::http::PORT)))]
    pub http_listen: SocketAddr,
    /// Time the SIGTERM drain may take; keep it below the pod's grace period.
    #[arg(long, env = env::DRAIN_TIMEOUT_SECS, default_value_t = defaults().drain_timeout_secs)]
    pub drain_timeout_secs: u64,
    /// `json` or `text`.
    #[arg(long, env = env::LOG_FORMAT, default_value_t = defaults().log_format, value_parser = parse_log_format)]
    pub log_format: LogFormat,
    /// tracing filter directives, e.g. `info,rdkafka=warn`.
    #[arg(long, env = env::LOG_LEVEL, default_value_t = defaults().log_level)]
    pub log_level: String,
}

/// Every default comes from the contract, which the compiler renders from as well, so the two
/// cannot disagree.
fn defaults() -> BridgeConfig {
    BridgeConfig::default()
}

fn parse_encoding(text: &str) -> Result<OutputEncoding, String> {
    one_of(text, "encoding", &OutputEncoding::ALL, OutputEncoding::name)
}

fn parse_log_format(text: &str) -> Result<LogFormat, String> {
    one_of(text, "log format", &LogFormat::ALL, LogFormat::name)
}

fn parse_sasl_mechanism(text: &str) -> Result<KafkaSaslMechanism, String> {
    one_of(
        text,
        "SASL mechanism",
        &KafkaSaslMechanism::ALL,
        KafkaSaslMechanism::name,
    )
}

fn one_of<T: Copy>(
    text: &str,
    what: &str,
    all: &[T],
    name: fn(T) -> &'static str,
) -> Result<T, String> {
    all.iter()
        .copied()
        .find(|v| name(*v) == text)
        .ok_or_else(|| {
            let valid: Vec<_> = all.iter().map(|v| name(*v)).collect();
            format!(
                "unknown {what} `{text}`, expected one of {}",
                valid.join(", ")
            )
        })
}

/// A username and its password, read from mounted files; the password prints as `[redacted]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: Secret,
}

/// How the bridge logs in to Kafka.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaSasl {
    pub mechanism: KafkaSaslMechanism,
    pub credentials: Credentials,
}

/// A route with its filter parsed for matching.
#[derive(Debug, Clone)]
pub struct Route {
    pub filter: TopicFilter,
    pub adapter: ehs_contract::PayloadAdapter,
}

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub mqtt_host: String,
    pub mqtt_port: u16,
    pub client_id: String,
    pub share_group: String,
    pub filters: Vec<String>,
    pub session_expiry: Duration,
    pub receive_maximum: u16,
    pub read_coalesce: Duration,
    pub credentials: Option<Credentials>,
    pub pattern: TopicPattern,
    pub routes: Vec<Route>,
    pub max_payload_bytes: usize,
    pub bootstrap_servers: String,
    pub kafka_topic: String,
    pub dead_letter_topic: String,
    /// Free-form librdkafka settings; none of them is a credential (those are refused).
    pub producer_overrides: Vec<(String, String)>,
    pub kafka_sasl: Option<KafkaSasl>,
    pub encoding: OutputEncoding,
    pub max_in_flight: usize,
    pub http_listen: SocketAddr,
    pub drain_timeout: Duration,
    pub log_format: LogFormat,
    pub log_level: String,
}

impl Config {
    /// The MQTT maximum packet size the bridge announces. Payloads between
    /// `max_payload_bytes` and this size reach the bridge and are dead-lettered as `oversize`;
    /// larger packets the broker discards without sending (MQTT 5, 3.1.2.11.4).
    pub fn mqtt_max_packet_bytes(&self) -> u32 {
        let bytes = self.max_payload_bytes.saturating_add(PACKET_OVERHEAD_BYTES);
        u32::try_from(bytes).unwrap_or(u32::MAX)
    }

    /// `$share/<group>/<filter>` for every configured filter.
    pub fn shared_subscriptions(&self) -> Vec<String> {
        self.filters
            .iter()
            .map(|filter| shared_subscription(&self.share_group, filter))
            .collect()
    }
}

pub fn shared_subscription(group: &str, filter: &str) -> String {
    format!("$share/{group}/{filter}")
}

impl Args {
    /// The settings the contract describes, as given on the command line, unchecked.
    pub fn bridge_config(&self) -> Result<BridgeConfig, ConfigError> {
        Ok(BridgeConfig {
            mqtt_share_group: self.mqtt_share_group.clone(),
            mqtt_filters: self.mqtt_filters.clone(),
            mqtt_session_expiry_secs: self.mqtt_session_expiry_secs,
            mqtt_receive_maximum: self.mqtt_receive_maximum,
            mqtt_read_coalesce_ms: self.mqtt_read_coalesce_ms,
            topic_pattern: self.topic_pattern.clone(),
            payload_routes: ehs_contract::parse_payload_routes(&self.payload_routes)
                .map_err(ConfigError::Routes)?,
            max_payload_bytes: self.max_payload_bytes,
            max_in_flight: self.max_in_flight,
            output_encoding: self.output_encoding,
            drain_timeout_secs: self.drain_timeout_secs,
            log_level: self.log_level.clone(),
            log_format: self.log_format,
        })
    }

    pub fn validate(self) -> Result<Config, ConfigError> {
        let (mqtt_host, mqtt_port) = parse_mqtt_url(&self.mqtt_url)?;
        if !is_plain_name(&self.mqtt_client_id) {
            return Err(ConfigError::ClientId);
        }
        let settings = self.bridge_config()?;
        let problems = settings.validate();
        if !problems.is_empty() {
            return Err(ConfigError::Settings { problems });
        }
        let filters = settings.subscribed_filters();
        let routes = settings
            .payload_routes
            .iter()
            .map(|PayloadRoute { filter, adapter }| {
                Ok(Route {
                    filter: TopicFilter::parse(filter)?,
                    adapter: *adapter,
                })
            })
            .collect::<Result<Vec<_>, ConfigError>>()?;
        let pattern = TopicPattern::parse(&settings.topic_pattern)?;
        // validate() bounds it to 1..=65535.
        let receive_maximum = u16::try_from(settings.mqtt_receive_maximum).unwrap_or(u16::MAX);
        let bootstrap_servers = validate_bootstrap(&self.kafka_bootstrap_servers)?;
        for topic in [&self.kafka_topic, &self.kafka_dead_letter_topic] {
            if !is_kafka_topic(topic) {
                return Err(ConfigError::KafkaTopic(topic.clone()));
            }
        }
        if self.kafka_topic == self.kafka_dead_letter_topic {
            return Err(ConfigError::KafkaTopic(self.kafka_topic));
        }
        let producer_overrides = parse_producer_overrides(&self.kafka_producer_overrides)?;
        let credentials = read_credentials(
            self.mqtt_username_file.as_ref(),
            self.mqtt_password_file.as_ref(),
            (env::MQTT_USERNAME_FILE, env::MQTT_PASSWORD_FILE),
        )?;
        let kafka_sasl = match read_credentials(
            self.kafka_sasl_username_file.as_ref(),
            self.kafka_sasl_password_file.as_ref(),
            (env::KAFKA_SASL_USERNAME_FILE, env::KAFKA_SASL_PASSWORD_FILE),
        )? {
            Some(credentials) => Some(KafkaSasl {
                mechanism: self
                    .kafka_sasl_mechanism
                    .unwrap_or(KafkaSaslMechanism::ScramSha512),
                credentials,
            }),
            None if self.kafka_sasl_mechanism.is_some() => {
                return Err(ConfigError::SaslMechanismWithoutCredentials)
            }
            None => None,
        };
        Ok(Config {
            mqtt_host,
            mqtt_port,
            client_id: self.mqtt_client_id,
            share_group: settings.mqtt_share_group,
            filters,
            session_expiry: Duration::from_secs(u64::from(settings.mqtt_session_expiry_secs)),
            receive_maximum,
            read_coalesce: Duration::from_millis(settings.mqtt_read_coalesce_ms),
            credentials,
            pattern,
            routes,
            max_payload_bytes: settings.max_payload_bytes,
            bootstrap_servers,
            kafka_topic: self.kafka_topic,
            dead_letter_topic: self.kafka_dead_letter_topic,
            producer_overrides,
            kafka_sasl,
            encoding: settings.output_encoding,
            max_in_flight: settings.max_in_flight,
            http_listen: self.http_listen,
            drain_timeout: Duration::from_secs(settings.drain_timeout_secs),
            log_format: settings.log_format,
            log_level: settings.log_level,
        })
    }
}

/// Producer settings at-least-once delivery or the bridge's own wiring depends on.
const PROTECTED_PRODUCER_KEYS: [&str; 10] = [
    "bootstrap.servers",
    "client.id",
    "enable.idempotence",
    "acks",
    "request.required.acks",
    "message.timeout.ms",
    "delivery.timeout.ms",
    "enable.gapless.guarantee",
    "max.in.flight.requests.per.connection",
    "max.in.flight",
];

/// Why `key` may not be overridden, if it may not: the bridge's own delivery settings, and every
/// credential, which would otherwise sit in the pod spec as a plain environment value.
fn refused_producer_key(key: &str) -> Option<String> {
    let lower = key.to_ascii_lowercase();
    let instead = |flag: &str, var: &str| format!("is a credential setting; use {flag} / {var}");
    if PROTECTED_PRODUCER_KEYS.contains(&lower.as_str()) {
        return Some("would weaken at-least-once delivery; the bridge sets it itself".to_owned());
    }
    match lower.as_str() {
        "sasl.username" => Some(format!(
            "is a credential; give it as a file with --kafka-sasl-username-file / {}",
            env::KAFKA_SASL_USERNAME_FILE
        )),
        "sasl.password" => Some(format!(
            "is a credential; give it as a file with --kafka-sasl-password-file / {}",
            env::KAFKA_SASL_PASSWORD_FILE
        )),
        "sasl.mechanism" | "sasl.mechanisms" => {
            Some(instead("--kafka-sasl-mechanism", env::KAFKA_SASL_MECHANISM))
        }
        _ if lower.contains("password")
            || lower.contains("secret")
            || SECRET_PRODUCER_KEYS.contains(&lower.as_str()) =>
        {
            Some(format!(
                "would put a secret into the pod spec as a plain environment value; mount it \
                 from a Secret as a file instead (SASL: --kafka-sasl-username-file / {} and \
                 --kafka-sasl-password-file / {}; TLS keys: an unencrypted key file through \
                 ssl.key.location)",
                env::KAFKA_SASL_USERNAME_FILE,
                env::KAFKA_SASL_PASSWORD_FILE
            ))
        }
        _ => None,
    }
}

/// Secret-bearing librdkafka settings whose names say neither `password` nor `secret`.
const SECRET_PRODUCER_KEYS: [&str; 2] = ["ssl.key.pem", "sasl.oauthbearer.config"];

fn parse_producer_overrides(entries: &[String]) -> Result<Vec<(String, String)>, ConfigError> {
    entries
        .iter()
        .map(|entry| entry.trim())
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            // Entries that fail are shown by key only: the value may be a secret. An entry
            // without `=` is shown whole; it cannot be the tail of a secret value split at a
            // comma, because that secret's own entry comes first and is refused by key.
            let fail = |shown: &str, reason: &str| ConfigError::ProducerOverride {
                entry: shown.to_owned(),
                reason: reason.to_owned(),
            };
            let (key, value) = entry
                .split_once('=')
                .ok_or_else(|| fail(entry, "is not of the form key=value"))?;
            let key = key.trim();
            if key.is_empty() {
                return Err(fail("=…", "has an empty key"));
            }
            if let Some(reason) = refused_producer_key(key) {
                return Err(fail(key, &reason));
            }
            Ok((key.to_owned(), value.trim().to_owned()))
        })
        .collect()
}

fn is_kafka_topic(name: &str) -> bool {
    (1..=249).contains(&name.len())
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn parse_mqtt_url(url: &str) -> Result<(String, u16), ConfigError> {
    let fail = |reason: &str| ConfigError::MqttUrl {
        reason: format!(
            "{reason} (got `{}`, expected mqtt://host:port)",
            redact_url(url)
        ),
    };
    let rest = url
        .strip_prefix("mqtt://")
        .or_else(|| url.strip_prefix("tcp://"))
        .ok_or_else(|| fail("unsupported scheme; TLS is not built in"))?;
    let rest = rest.trim_end_matches('/');
    if rest.contains(['/', '?', '@']) {
        return Err(fail(&format!(
            "paths, query strings and inline credentials are not accepted; give credentials \
             as files with {} and {}",
            env::MQTT_USERNAME_FILE,
            env::MQTT_PASSWORD_FILE
        )));
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) => (host, port.parse::<u16>().map_err(|_| fail("invalid port"))?),
        None => (rest, 1883),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || port == 0 {
        return Err(fail("missing host or port"));
    }
    Ok((host.to_owned(), port))
}

fn validate_bootstrap(servers: &str) -> Result<String, ConfigError> {
    let entries: Vec<&str> = servers
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    // `@` would be userinfo: credentials the bridge must not pass on or print.
    let valid = !entries.is_empty()
        && entries.iter().all(|entry| {
            !entry.contains('@')
                && entry.rsplit_once(':').is_some_and(|(host, port)| {
                    !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
                })
        });
    if valid {
        Ok(entries.join(","))
    } else {
        let shown: Vec<String> = servers.split(',').map(redact_url).collect();
        Err(ConfigError::Bootstrap(shown.join(",")))
    }
}

/// Both files or neither; `vars` names them for the error.
fn read_credentials(
    username: Option<&PathBuf>,
    password: Option<&PathBuf>,
    (username_var, password_var): (&'static str, &'static str),
) -> Result<Option<Credentials>, ConfigError> {
    match (username, password) {
        (None, None) => Ok(None),
        (Some(username), Some(password)) => Ok(Some(Credentials {
            username: read_secret(username)?,
            password: Secret::new(read_secret(password)?),
        })),
        _ => Err(ConfigError::HalfCredentials {
            username: username_var,
            password: password_var,
        }),
    }
}

/// The file's text without its trailing newline. An unreadable file's error names the path
/// only: the OS error never quotes a file's contents.
fn read_secret(path: &PathBuf) -> Result<String, ConfigError> {
    std::fs::read_to_string(path)
        .map(|text| text.trim_end_matches(['\n', '\r']).to_owned())
        .map_err(|source| ConfigError::CredentialFile {
            path: path.clone(),
            source,
        })
}

/// The flags without a default, for tests.
#[cfg(test)]
pub(crate) const REQUIRED_ARGS: [&str; 11] = [
    "ehs-bridge",
    "--mqtt-url",
    "mqtt://127.0.0.1:1883",
    "--mqtt-client-id",
    "ehs-bridge-0",
    "--kafka-bootstrap-servers",
    "127.0.0.1:9092",
    "--kafka-topic",
    "ehs.readings",
    "--kafka-dead-letter-topic",
    "ehs.readings.dlq",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Result<Config, String> {
        let mut argv = vec![REQUIRED_ARGS[0]];
        // Flags given by the test replace the required ones (clap rejects a repeated flag).
        for pair in REQUIRED_ARGS[1..].chunks(2) {
            if !extra.contains(&pair[0]) {
                argv.extend_from_slice(pair);
            }
        }
        argv.extend_from_slice(extra);
        let parsed = Args::try_parse_from(argv).map_err(|e| e.to_string())?;
        parsed
            .validate()
            .map_err(|e| crate::logging::error_chain(&e))
    }

    #[test]
    fn defaults_are_valid() {
        let config = args(&[]).expect("defaults");
        assert_eq!(config.mqtt_host, "127.0.0.1");
        assert_eq!(config.mqtt_port, 1883);
        assert_eq!(
            u32::from(config.receive_maximum),
            BridgeConfig::default().mqtt_receive_maximum
        );
        assert_eq!(
            config.shared_subscriptions(),
            vec!["$share/ehs-bridge/ehs/+/+/telemetry".to_owned()]
        );
        assert_eq!(config.routes.len(), 1);
    }

    #[test]
    fn cli_defaults_are_the_contracts() {
        let parsed = Args::try_parse_from(REQUIRED_ARGS).expect("required flags only");
        assert_eq!(
            parsed.bridge_config().expect("defaults parse"),
            BridgeConfig::default()
        );
    }

    #[test]
    fn filters_default_to_the_topic_pattern() {
        let config = Args::try_parse_from(
            REQUIRED_ARGS
                .into_iter()
                .chain(["--topic-pattern", "site/{home}/{device}/{metric}"]),
        )
        .expect("parse")
        .validate()
        .expect("valid");
        assert_eq!(config.filters, vec!["site/+/+/+".to_owned()]);
    }

    #[test]
    fn routes_outside_the_subscription_are_refused_at_start_up() {
        let err = args(&["--payload-routes", "other/#=flat-json"]).expect_err("dead route");
        assert!(
            err.contains("--payload-routes / EHS_PAYLOAD_ROUTES: route filter `other/#`"),
            "{err}"
        );
    }

    #[test]
    fn receive_maximum_above_window_is_rejected() {
        let err = args(&["--mqtt-receive-maximum", "500", "--max-in-flight", "100"])
            .expect_err("invalid configuration");
        assert!(
            err.contains(
                "--max-in-flight / EHS_MAX_IN_FLIGHT: must be at least mqttReceiveMaximum (500)"
            ),
            "{err}"
        );
    }

    #[test]
    fn receive_maximum_out_of_protocol_range() {
        let err = args(&[
            "--mqtt-receive-maximum",
            "70000",
            "--max-in-flight",
            "100000",
        ])
        .expect_err("invalid configuration");
        assert!(err.contains("between 1 and 65535"), "{err}");
        assert!(args(&["--mqtt-receive-maximum", "0"]).is_err());
    }

    #[test]
    fn read_coalesce_is_bounded_and_zero_disables_it() {
        assert_eq!(
            args(&[]).expect("defaults").read_coalesce,
            Duration::from_millis(1)
        );
        let off = args(&["--mqtt-read-coalesce-ms", "0"]).expect("0 is valid");
        assert_eq!(off.read_coalesce, Duration::ZERO);
        let err = args(&["--mqtt-read-coalesce-ms", "11"]).expect_err("too long");
        assert!(err.contains("between 0 and 10 "), "{err}");
    }

    #[test]
    fn unknown_encoding_names_valid_ones() {
        let err = args(&["--output-encoding", "avro"]).expect_err("invalid configuration");
        assert!(err.contains("json, connect-json"), "{err}");
    }

    #[test]
    fn invalid_filters_and_patterns() {
        let err = args(&["--mqtt-filters", "ehs/#/x"]).expect_err("invalid configuration");
        assert!(
            err.contains(env::MQTT_FILTERS) && err.contains('#'),
            "{err}"
        );
        let err =
            args(&["--topic-pattern", "ehs/{home}/telemetry"]).expect_err("invalid configuration");
        assert!(err.contains("{device}"), "{err}");
        let err =
            args(&["--payload-routes", "ehs/+/x=protobuf"]).expect_err("invalid configuration");
        assert!(err.contains("unknown adapter"), "{err}");
    }

    #[test]
    fn urls_and_bootstrap() {
        assert!(args(&["--mqtt-url", "mqtts://broker:8883"])
            .expect_err("invalid configuration")
            .contains("TLS"));
        assert!(args(&["--mqtt-url", "mqtt://broker:notaport"]).is_err());
        let config = args(&["--mqtt-url", "tcp://broker"]).expect("default port");
        assert_eq!(
            (config.mqtt_host.as_str(), config.mqtt_port),
            ("broker", 1883)
        );
        assert!(args(&["--kafka-bootstrap-servers", "kafka"])
            .expect_err("invalid configuration")
            .contains("host:port"));
        let config = args(&["--kafka-bootstrap-servers", "a:9092, b:9093"]).expect("two brokers");
        assert_eq!(config.bootstrap_servers, "a:9092,b:9093");
    }

    #[test]
    fn producer_overrides() {
        let config = args(&[
            "--kafka-producer-overrides",
            "linger.ms=5, compression.type=none",
        ])
        .expect("valid");
        assert_eq!(
            config.producer_overrides,
            vec![
                ("linger.ms".into(), "5".into()),
                ("compression.type".into(), "none".into())
            ]
        );
        let err = args(&["--kafka-producer-overrides", "acks=1"]).expect_err("protected");
        assert!(err.contains("at-least-once"), "{err}");
        assert!(args(&["--kafka-producer-overrides", "linger.ms"]).is_err());
    }

    #[test]
    fn topics_must_differ_and_be_valid() {
        assert!(args(&["--kafka-dead-letter-topic", "ehs.readings"]).is_err());
        assert!(args(&["--kafka-topic", "bad topic"]).is_err());
    }

    #[test]
    fn credentials_need_both_files() {
        let dir = std::env::temp_dir().join(format!("ehs-bridge-cred-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let user = dir.join("user");
        let pass = dir.join("pass");
        std::fs::write(&user, "bridge\n").expect("write");
        std::fs::write(&pass, "s3cret").expect("write");
        let err = args(&["--mqtt-username-file", user.to_str().expect("utf8")])
            .expect_err("invalid configuration");
        assert!(err.contains("must be set together"), "{err}");
        let config = args(&[
            "--mqtt-username-file",
            user.to_str().expect("utf8"),
            "--mqtt-password-file",
            pass.to_str().expect("utf8"),
        ])
        .expect("credentials");
        assert_eq!(
            config.credentials,
            Some(Credentials {
                username: "bridge".into(),
                password: Secret::new("s3cret")
            })
        );
        let missing = dir.join("missing");
        let err = args(&[
            "--mqtt-username-file",
            missing.to_str().expect("utf8"),
            "--mqtt-password-file",
            pass.to_str().expect("utf8"),
        ])
        .expect_err("invalid configuration");
        assert!(err.contains("cannot read credential file"), "{err}");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    /// A password no message may contain.
    const SENTINEL: &str = "Sentinel-Pa55word-4711";

    fn assert_no_sentinel(text: &str) {
        assert!(!text.contains(SENTINEL), "secret leaked: {text}");
        assert!(
            !text.contains("Pa55word"),
            "part of a secret leaked: {text}"
        );
    }

    fn secret_files(name: &str) -> (PathBuf, PathBuf, PathBuf) {
        let dir = std::env::temp_dir().join(format!("ehs-bridge-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let user = dir.join("username");
        let pass = dir.join("password");
        std::fs::write(&user, "bridge\n").expect("write");
        std::fs::write(&pass, format!("{SENTINEL}\n")).expect("write");
        (dir, user, pass)
    }

    #[test]
    fn config_and_credentials_never_format_the_password() {
        let (dir, user, pass) = secret_files("debug");
        let (user, pass) = (user.to_str().expect("utf8"), pass.to_str().expect("utf8"));
        let config = args(&[
            "--mqtt-username-file",
            user,
            "--mqtt-password-file",
            pass,
            "--kafka-sasl-username-file",
            user,
            "--kafka-sasl-password-file",
            pass,
        ])
        .expect("valid");
        let mqtt = config.credentials.as_ref().expect("mqtt credentials");
        let sasl = config.kafka_sasl.as_ref().expect("kafka credentials");
        // The secret was read, so its absence below is redaction, not a missing value.
        assert_eq!(mqtt.password.expose(), SENTINEL);
        assert_eq!(sasl.credentials.password.expose(), SENTINEL);
        assert_eq!(sasl.mechanism, KafkaSaslMechanism::ScramSha512);
        for text in [
            format!("{config:?}"),
            format!("{config:#?}"),
            format!("{mqtt:?}"),
            format!("{sasl:?}"),
            format!("{}", mqtt.password),
        ] {
            assert_no_sentinel(&text);
            assert!(text.contains(crate::secret::REDACTED), "{text}");
        }
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn kafka_sasl_settings() {
        let (dir, user, pass) = secret_files("sasl");
        let (user, pass) = (user.to_str().expect("utf8"), pass.to_str().expect("utf8"));
        let sasl = |extra: &[&str]| {
            let mut argv = vec![
                "--kafka-sasl-username-file",
                user,
                "--kafka-sasl-password-file",
                pass,
            ];
            argv.extend_from_slice(extra);
            args(&argv)
        };
        let config = sasl(&["--kafka-sasl-mechanism", "PLAIN"]).expect("valid");
        let client = crate::kafka::client_config(&config);
        assert_eq!(client.get("security.protocol"), Some("SASL_PLAINTEXT"));
        assert_eq!(client.get("sasl.mechanism"), Some("PLAIN"));
        assert_eq!(client.get("sasl.username"), Some("bridge"));
        assert_eq!(client.get("sasl.password"), Some(SENTINEL));
        let config = sasl(&["--kafka-producer-overrides", "security.protocol=ssl"]).expect("tls");
        let client = crate::kafka::client_config(&config);
        assert_eq!(client.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(client.get("sasl.mechanism"), Some("SCRAM-SHA-512"));
        let plain = crate::kafka::client_config(&args(&[]).expect("defaults"));
        assert_eq!(plain.get("sasl.password"), None);
        assert_eq!(plain.get("security.protocol"), None);

        let err = args(&["--kafka-sasl-mechanism", "PLAIN"]).expect_err("no files");
        assert!(err.contains(env::KAFKA_SASL_PASSWORD_FILE), "{err}");
        let err = args(&["--kafka-sasl-password-file", pass]).expect_err("half");
        assert!(
            err.contains("EHS_KAFKA_SASL_USERNAME_FILE and EHS_KAFKA_SASL_PASSWORD_FILE must be set together"),
            "{err}"
        );
        assert_no_sentinel(&err);
        let err = sasl(&["--kafka-sasl-mechanism", "GSSAPI"]).expect_err("unknown mechanism");
        assert!(err.contains("SCRAM-SHA-512, PLAIN"), "{err}");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn credentials_in_overrides_are_refused_by_key_with_the_file_setting_to_use() {
        for (entry, key, hint) in [
            (
                format!("sasl.password={SENTINEL}"),
                "sasl.password",
                "--kafka-sasl-password-file / EHS_KAFKA_SASL_PASSWORD_FILE",
            ),
            (
                format!("sasl.username={SENTINEL}"),
                "sasl.username",
                "--kafka-sasl-username-file / EHS_KAFKA_SASL_USERNAME_FILE",
            ),
            (
                "sasl.mechanism=PLAIN".to_owned(),
                "sasl.mechanism",
                "--kafka-sasl-mechanism / EHS_KAFKA_SASL_MECHANISM",
            ),
            (
                format!("ssl.key.password={SENTINEL}"),
                "ssl.key.password",
                "ssl.key.location",
            ),
            (
                format!("ssl.keystore.password={SENTINEL}"),
                "ssl.keystore.password",
                "mount it from a Secret as a file",
            ),
            (
                format!("sasl.oauthbearer.client.secret={SENTINEL}"),
                "sasl.oauthbearer.client.secret",
                "mount it from a Secret as a file",
            ),
            (
                format!("ssl.key.pem={SENTINEL}"),
                "ssl.key.pem",
                "mount it from a Secret as a file",
            ),
            // A secret holding a comma: its first part is refused before the rest is looked at.
            (
                format!("linger.ms=5,SASL.PASSWORD=a,{SENTINEL}"),
                "SASL.PASSWORD",
                "EHS_KAFKA_SASL_PASSWORD_FILE",
            ),
        ] {
            let err = args(&["--kafka-producer-overrides", &entry]).expect_err("refused");
            assert!(err.contains(&format!("`{key}`")), "{err}");
            assert!(err.contains(hint), "{err}");
            assert_no_sentinel(&err);
        }
    }

    #[test]
    fn no_config_error_contains_a_password() {
        let (dir, user, pass) = secret_files("errors");
        let (user, pass) = (user.to_str().expect("utf8"), pass.to_str().expect("utf8"));
        let url_with =
            |scheme: &str, tail: &str| format!("{scheme}://bridge:{SENTINEL}@broker{tail}");
        let cases: Vec<Vec<String>> = vec![
            vec!["--mqtt-url".into(), url_with("mqtt", ":1883")],
            vec!["--mqtt-url".into(), url_with("mqtts", ":8883")],
            vec!["--mqtt-url".into(), url_with("tcp", ":notaport")],
            vec!["--mqtt-url".into(), url_with("mqtt", ":1883/path?x=1")],
            vec!["--mqtt-url".into(), format!("mqtt://u:{SENTINEL}/x@broker")],
            vec![
                "--kafka-bootstrap-servers".into(),
                format!("u:{SENTINEL}@kafka:9092"),
            ],
            vec![
                "--kafka-bootstrap-servers".into(),
                format!("sasl_ssl://u:{SENTINEL}@kafka:9092"),
            ],
            vec!["--mqtt-password-file".into(), pass.into()],
            vec!["--kafka-sasl-password-file".into(), pass.into()],
            vec![
                "--mqtt-username-file".into(),
                format!("{pass}.missing"),
                "--mqtt-password-file".into(),
                pass.into(),
            ],
            vec![
                "--mqtt-username-file".into(),
                user.into(),
                "--mqtt-password-file".into(),
                pass.into(),
                "--mqtt-receive-maximum".into(),
                "0".into(),
            ],
        ];
        for case in cases {
            let argv: Vec<&str> = case.iter().map(String::as_str).collect();
            let err = args(&argv).expect_err("invalid configuration");
            assert_no_sentinel(&err);
        }
        let err = args(&["--mqtt-url", &url_with("mqtt", ":1883")]).expect_err("inline");
        assert!(
            err.contains("mqtt://[redacted]@broker:1883") && err.contains(env::MQTT_PASSWORD_FILE),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
