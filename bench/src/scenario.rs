//! One integration-test scenario: exclusive use of the local stack, its own Kafka topics, MQTT
//! share group, home and client ids, and bridge replicas configured for them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ehs_contract::{OutputEncoding, PayloadAdapter};
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

use crate::bridge_process::{BridgeProcess, BridgeProcessError, BridgeSpec};
use crate::kafka::{create_topic, delete_topics, KafkaHarnessError, StartAt, TopicReader};
use crate::publisher::{publish, PublishError, PublishPlan, PublishReport};
use crate::stack::{Stack, StackError, StackLock};
use crate::telemetry::{payload, unique_name, Fleet, TOPIC_PATTERN};
use crate::verify::{deliveries, distinct, Delivery};

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error(transparent)]
    Stack(#[from] StackError),
    #[error(transparent)]
    Kafka(#[from] KafkaHarnessError),
    #[error("cannot start an async runtime")]
    Runtime(#[source] std::io::Error),
}

/// Bridge settings a scenario varies; the rest follows from the scenario itself.
#[derive(Debug, Clone)]
pub struct ReplicaSettings {
    pub session_expiry_secs: u32,
    pub receive_maximum: u16,
    pub max_in_flight: usize,
    pub drain_timeout_secs: u32,
}

impl Default for ReplicaSettings {
    fn default() -> Self {
        Self {
            session_expiry_secs: 300,
            receive_maximum: 100,
            max_in_flight: 500,
            drain_timeout_secs: 20,
        }
    }
}

pub struct Scenario {
    pub stack: Stack,
    pub name: String,
    pub topic: String,
    pub dead_letters: String,
    pub fleet: Fleet,
    pub share_group: String,
    pub runtime: Runtime,
    bridge_binary: PathBuf,
    log_dir: PathBuf,
    // Last, so the lock is released after everything above is torn down.
    _lock: StackLock,
}

impl Scenario {
    /// Waits for exclusive use of the stack, then creates the scenario's topics.
    /// `workspace_root` locates `scripts/local-stack`; logs go under `log_root/<name>`.
    pub fn new(
        name: &str,
        workspace_root: &Path,
        bridge_binary: &Path,
        log_root: &Path,
        devices: u32,
        partitions: i32,
    ) -> Result<Self, ScenarioError> {
        let stack = Stack::require_running(workspace_root)?;
        let lock = stack.exclusive()?;
        let name = unique_name(name);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(ScenarioError::Runtime)?;
        let topic = format!("{name}-readings");
        let dead_letters = format!("{name}-dlq");
        runtime.block_on(async {
            create_topic(&stack.kafka_bootstrap, &topic, partitions, true).await?;
            create_topic(&stack.kafka_bootstrap, &dead_letters, 1, false).await
        })?;
        Ok(Self {
            fleet: Fleet::new(name.clone(), "dev", devices),
            share_group: format!("{name}-group"),
            log_dir: log_root.join(&name),
            bridge_binary: bridge_binary.to_owned(),
            stack,
            name,
            topic,
            dead_letters,
            runtime,
            _lock: lock,
        })
    }

    /// Replica `ordinal`'s configuration: its client id is stable across restarts, like a
    /// StatefulSet pod name.
    pub fn replica(&self, ordinal: u32, settings: &ReplicaSettings) -> BridgeSpec {
        BridgeSpec {
            binary: self.bridge_binary.clone(),
            mqtt_url: self.stack.mqtt_url.clone(),
            client_id: format!("{}-bridge-{ordinal}", self.name),
            share_group: self.share_group.clone(),
            filters: vec![self.fleet.filter()],
            session_expiry_secs: settings.session_expiry_secs,
            receive_maximum: settings.receive_maximum,
            topic_pattern: TOPIC_PATTERN.to_owned(),
            payload_routes: format!(
                "{}={}",
                self.fleet.filter(),
                PayloadAdapter::FlatJson.name()
            ),
            max_payload_bytes: None,
            kafka_bootstrap: self.stack.kafka_bootstrap.clone(),
            kafka_topic: self.topic.clone(),
            dead_letter_topic: self.dead_letters.clone(),
            output_encoding: OutputEncoding::Json,
            max_in_flight: settings.max_in_flight,
            drain_timeout_secs: settings.drain_timeout_secs,
            log_dir: self.log_dir.clone(),
        }
    }

    pub fn start(&self, spec: &BridgeSpec) -> Result<BridgeProcess, BridgeProcessError> {
        BridgeProcess::start(spec, Duration::from_secs(60))
    }

    /// Publishes messages `first..first + count` of the fleet at QoS 1 and `rate` msg/s in the
    /// background.
    pub fn publish_in_background(
        &self,
        first: u64,
        count: u64,
        rate: u32,
    ) -> JoinHandle<Result<PublishReport, PublishError>> {
        let stack = self.stack.clone();
        let client_id = unique_name(&format!("{}-pub", self.name));
        let plan = PublishPlan {
            fleet: self.fleet.clone(),
            first_index: first,
            count,
            qos: 1,
            rate_per_sec: Some(rate),
            window: 200,
            payload,
        };
        self.runtime
            .spawn(async move { publish(&stack, &client_id, plan).await })
    }

    /// Waits for a background publish to finish.
    pub fn join(&self, handle: JoinHandle<Result<PublishReport, PublishError>>) -> PublishReport {
        match self.runtime.block_on(handle) {
            Ok(Ok(report)) => report,
            Ok(Err(error)) => panic!("publishing failed: {}", error_chain(&error)),
            Err(join) => panic!("publisher task failed: {join}"),
        }
    }

    /// Reads the readings topic from the beginning.
    pub fn readings(&self) -> Result<TopicReader, KafkaHarnessError> {
        TopicReader::start(&self.stack.kafka_bootstrap, &self.topic, StartAt::Beginning)
    }

    pub fn dead_letter_reader(&self) -> Result<TopicReader, KafkaHarnessError> {
        TopicReader::start(
            &self.stack.kafka_bootstrap,
            &self.dead_letters,
            StartAt::Beginning,
        )
    }

    /// Waits until `expected` distinct fleet messages are in `reader` (or it stays quiet for
    /// `quiet`, or `deadline` passes), then lingers `linger` for late duplicates, and returns
    /// the fleet's deliveries.
    pub fn settle(
        &self,
        reader: &TopicReader,
        expected: u64,
        deadline: Duration,
        quiet: Duration,
        linger: Duration,
    ) -> Vec<Delivery> {
        let fleet = &self.fleet;
        reader.wait_for(deadline, quiet, |records| {
            records.len() as u64 >= expected
                && distinct(&deliveries(records, fleet)) as u64 >= expected
        });
        std::thread::sleep(linger);
        deliveries(&reader.snapshot(), fleet)
    }
}

impl Drop for Scenario {
    /// A passing scenario removes its topics; a failing one leaves them for inspection.
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let topics = [self.topic.as_str(), self.dead_letters.as_str()];
        if let Err(error) = self
            .runtime
            .block_on(delete_topics(&self.stack.kafka_bootstrap, &topics))
        {
            eprintln!(
                "[{}] could not delete its topics: {}",
                self.name,
                error_chain(&error)
            );
        }
    }
}

/// `error: cause: cause`, for panic messages in tests.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
