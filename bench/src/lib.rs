//! Harness for running `ehs-bridge` against the real local brokers (`scripts/local-stack`):
//! a windowed MQTT publisher, a plain subscriber for the broker's own ceiling, a Kafka reader,
//! bridge processes that can be killed or drained, and the checks that compare what arrived in
//! Kafka with what was published. The bridge's integration tests and the `ehs-bench` binary
//! share it.

pub mod bridge_process;
pub mod cpu;
pub mod kafka;
pub mod publisher;
pub mod readings;
pub mod scenario;
pub mod stack;
pub mod subscriber;
pub mod telemetry;
pub mod verify;
