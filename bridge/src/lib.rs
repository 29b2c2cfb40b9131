//! ehs-bridge: MQTT v5 shared subscription to Kafka, at least once, acknowledgements in order.
//!
//! Data path: [`mqtt::MqttLoop`] takes a PUBLISH, [`pipeline::Processor`] decodes it with the
//! route's adapter ([`decode`]), encodes readings ([`encode`]) and hands them to the producer
//! ([`kafka`]) after registering the message with the [`acks::AckTracker`]; delivery reports
//! complete it, and [`mqtt::run_acknowledger`] releases PUBACKs in arrival order.
//!
//! # Running
//!
//! Every flag has an environment variable named in [`ehs_contract::env`] (`--mqtt-url` ⇔
//! `EHS_MQTT_URL`); `ehs-bridge --help` lists them with defaults. Minimal:
//!
//! ```text
//! ehs-bridge --mqtt-url mqtt://127.0.0.1:1883 --mqtt-client-id ehs-bridge-0 \
//!   --mqtt-filters 'ehs/+/+/telemetry' --kafka-bootstrap-servers 127.0.0.1:9092 \
//!   --kafka-topic ehs.telemetry.raw --kafka-dead-letter-topic ehs.telemetry.dead-letters
//! ```
//!
//! In process: build a [`config::Config`] with `config::Args::try_parse_from(..)?.validate()`
//! and await [`run::run`] on a Tokio runtime; it returns after SIGTERM/SIGINT and the drain.
//! Exit codes of the binary: 0 after a completed drain, 2 for invalid configuration, 1 otherwise.
//!
//! # Broker permissions
//!
//! Besides reading its filters (through `$share/<group>/…`), each replica reads and writes one
//! retained message, [`ehs_contract::mqtt::session_state_topic`] of its client id, which records
//! the subscriptions its persistent session holds so that filters removed from the
//! configuration are unsubscribed at the next start. Mosquitto ACL:
//! `pattern readwrite ehs-bridge/sessions/%c/filters`. Without it the bridge still runs and
//! warns that removed filters stay subscribed.
//!
//! # Delivery
//!
//! A QoS 1 message is acknowledged only after Kafka (idempotent producer, `acks=all`, no
//! delivery deadline) confirmed every record made from it, in PUBLISH order. A reading Kafka
//! refuses as too large or invalid goes to the dead-letter topic (`kafka-rejected`); any other
//! permanent failure (a forbidden topic, a refused dead letter) stops acknowledgements behind
//! it, and the bridge reconnects to MQTT (with backoff) so the broker redelivers everything
//! unacknowledged. Messages from an earlier
//! connection are never acknowledged on a later one. Duplicates are possible (at least once),
//! loss is not, as long as the broker keeps the session: the session expiry bounds how long a
//! replica that never returns holds its unacknowledged share.

pub mod acks;
pub mod config;
pub mod decode;
pub mod encode;
pub mod http;
pub mod kafka;
pub mod logging;
pub mod metrics;
pub mod mqtt;
pub mod pipeline;
pub mod run;
pub mod secret;
pub mod state;
pub mod timestamp;
pub mod topic;
