//! ehs-bridge: MQTT v5 shared subscription to Kafka, at least once, acknowledgements in order.
//!
//! Data path: [`mqtt::MqttLoop`] takes a PUBLISH, [`pipeline::Processor`] decodes it with the
//! route's adapter ([`decode`]), encodes readings ([`encode`]) and hands them to the producer
//! ([`kafka`]) after registering the message with the [`acks::AckTracker`]; delivery reports
//! complete it, and [`mqtt::run_acknowledger`] releases PUBACKs in arrival order.

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
pub mod state;
pub mod timestamp;
pub mod topic;
