//! Kafka producer: idempotent, `acks=all`, retried without a deadline, delivery reports feeding
//! the acknowledgement tracker directly (no per-record future or channel).

use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use ehs_contract::headers;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, DeliveryResult, Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;

use crate::acks::Seq;
use crate::config::Config;
use crate::decode::DeadLetterReason;
use crate::state::Shared;

/// librdkafka's local queue: large enough that a full in-flight window of multi-metric messages
/// fits, small enough to keep memory bounded while Kafka is away.
const QUEUE_MAX_MESSAGES: usize = 100_000;
const QUEUE_MAX_KBYTES: usize = 16 * 1024;
/// Short linger: latency matters more than batch size at this message rate.
const LINGER_MS: u32 = 2;

#[derive(Debug, thiserror::Error)]
pub enum KafkaSetupError {
    #[error("cannot create the Kafka producer")]
    Create(#[source] KafkaError),
}

/// Receives delivery reports on librdkafka's polling thread.
pub struct DeliveryContext {
    shared: Arc<Shared>,
    dead_letter_topic: String,
    /// The producer this context belongs to, set once it exists: a record Kafka refuses for good
    /// is produced again to the dead-letter topic, so bad input never stops the stream.
    producer: OnceLock<Weak<BridgeProducer>>,
}

/// Errors that condemn one record, not Kafka: the record goes to the dead-letter topic.
pub fn rejects_the_record(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::MessageSizeTooLarge
                | RDKafkaErrorCode::InvalidMessage
                | RDKafkaErrorCode::InvalidMessageSize
                | RDKafkaErrorCode::InvalidRecord
        )
    )
}

impl DeliveryContext {
    /// Produces the refused reading to the dead-letter topic under the same sequence number, so
    /// the message completes when the dead letter is delivered. False when that is impossible.
    fn dead_letter(&self, message: &BorrowedMessage<'_>, error: &KafkaError, seq: usize) -> bool {
        let Some(producer) = self.producer.get().and_then(Weak::upgrade) else {
            return false;
        };
        let record_headers = message
            .headers()
            .map(|h| h.detach())
            .unwrap_or_default()
            .insert(Header {
                key: headers::DEAD_LETTER_REASON,
                value: Some(DeadLetterReason::KafkaRejected.label()),
            });
        let record = BaseRecord::with_opaque_to(&self.dead_letter_topic, seq)
            .key(message.key().unwrap_or_default())
            .payload(message.payload().unwrap_or_default())
            .headers(record_headers);
        match producer.send(record) {
            Ok(()) => {
                tracing::warn!(%error, topic = message.topic(), "kafka refused a reading; dead-lettering it");
                self.shared
                    .metrics
                    .dead_lettered(DeadLetterReason::KafkaRejected)
                    .inc();
                true
            }
            Err((send_error, _)) => {
                tracing::error!(%error, %send_error, "cannot dead-letter a refused reading");
                false
            }
        }
    }
}

impl ClientContext for DeliveryContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                tracing::error!(target: "librdkafka", facility, "{message}");
            }
            RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", facility, "{message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", facility, "{message}");
            }
            RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", facility, "{message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // Broker-down and transport errors land here; librdkafka keeps retrying on its own.
        tracing::warn!(target: "librdkafka", %error, reason, "kafka client error");
    }
}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, seq: usize) {
        let progress = match result {
            Ok(message) => {
                if message.topic() != self.dead_letter_topic {
                    self.shared.metrics.produced.inc();
                }
                self.shared.tracker().delivered(seq)
            }
            Err((error, message))
                if message.topic() != self.dead_letter_topic
                    && rejects_the_record(error)
                    && self.dead_letter(message, error, seq) =>
            {
                // The dead letter took the record's place in the message's count.
                return;
            }
            Err((error, message)) => {
                // message.timeout.ms is infinite, so only errors Kafka will never accept get here.
                tracing::error!(%error, topic = message.topic(), "kafka rejected a record; acknowledgements stop behind it");
                self.shared.metrics.delivery_failures.inc();
                self.shared.tracker().failed(seq)
            }
        };
        if let Some(arrival) = progress.delivered_arrival {
            self.shared
                .metrics
                .latency
                .observe(arrival.elapsed().as_secs_f64());
        }
        if progress.head_ready {
            self.shared.head_ready.notify_one();
        }
    }
}

pub type BridgeProducer = ThreadedProducer<DeliveryContext>;

pub fn client_config(config: &Config) -> ClientConfig {
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", &config.bootstrap_servers)
        .set("client.id", &config.client_id)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        // 0 = no deadline: an outage only delays; the MQTT broker keeps the unacknowledged rest.
        .set("message.timeout.ms", "0")
        .set("compression.type", "lz4")
        .set("linger.ms", LINGER_MS.to_string())
        .set(
            "queue.buffering.max.messages",
            QUEUE_MAX_MESSAGES.to_string(),
        )
        .set("queue.buffering.max.kbytes", QUEUE_MAX_KBYTES.to_string())
        // Dead-lettered payloads are at most --max-payload-bytes plus headers.
        .set(
            "message.max.bytes",
            (config.max_payload_bytes + 64 * 1024).to_string(),
        )
        .set("socket.keepalive.enable", "true")
        .set("reconnect.backoff.ms", "100")
        .set("reconnect.backoff.max.ms", "5000");
    for (key, value) in &config.producer_overrides {
        client.set(key, value);
    }
    if let Some(sasl) = &config.kafka_sasl {
        // TLS is asked for through the overrides (`security.protocol=ssl`); SASL rides on it.
        let tls = client
            .get("security.protocol")
            .is_some_and(|protocol| protocol.to_ascii_lowercase().ends_with("ssl"));
        client
            .set(
                "security.protocol",
                if tls { "SASL_SSL" } else { "SASL_PLAINTEXT" },
            )
            .set("sasl.mechanism", sasl.mechanism.name())
            .set("sasl.username", &sasl.credentials.username)
            .set("sasl.password", sasl.credentials.password.expose());
    }
    client
}

pub fn create_producer(
    config: &Config,
    shared: Arc<Shared>,
) -> Result<Arc<BridgeProducer>, KafkaSetupError> {
    let context = DeliveryContext {
        shared,
        dead_letter_topic: config.dead_letter_topic.clone(),
        producer: OnceLock::new(),
    };
    let producer: Arc<BridgeProducer> = Arc::new(
        client_config(config)
            .create_with_context(context)
            .map_err(KafkaSetupError::Create)?,
    );
    let _ = producer.context().producer.set(Arc::downgrade(&producer));
    Ok(producer)
}

/// One record to produce; `seq` ties its delivery report to the MQTT message.
pub struct Outgoing<'a> {
    pub topic: &'a str,
    pub key: &'a [u8],
    pub payload: &'a [u8],
    pub headers: OwnedHeaders,
    pub timestamp_ms: i64,
    pub seq: Seq,
}

/// Enqueues a record. A full local queue is waited out (it drains as Kafka acknowledges); any
/// other error is returned and means the record will never be delivered.
pub async fn send(
    producer: &BridgeProducer,
    record: Outgoing<'_>,
    shared: &Shared,
) -> Result<(), KafkaError> {
    let mut base = BaseRecord::with_opaque_to(record.topic, record.seq)
        .key(record.key)
        .payload(record.payload)
        .headers(record.headers)
        .timestamp(record.timestamp_ms);
    loop {
        match producer.send(base) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                base = returned;
                shared.heartbeat();
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            Err((error, _)) => return Err(error),
        }
    }
}

/// Asks Kafka for the metadata of `topics` on a blocking thread, so a hung broker cannot stall
/// the runtime. True when Kafka answered in time and every topic exists and is readable: a
/// missing or forbidden topic would fail every record, so it counts as Kafka being unusable.
pub async fn probe(producer: &Arc<BridgeProducer>, topics: &[String], timeout: Duration) -> bool {
    let producer = Arc::clone(producer);
    let topics = topics.to_vec();
    let task = tokio::task::spawn_blocking(move || {
        topics.iter().try_fold(true, |usable, topic| {
            let metadata = producer.client().fetch_metadata(Some(topic), timeout)?;
            let present = metadata
                .topics()
                .iter()
                .any(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty());
            if !present {
                tracing::debug!(%topic, "kafka topic missing or not authorized");
            }
            Ok::<bool, KafkaError>(usable && present && !metadata.brokers().is_empty())
        })
    });
    match tokio::time::timeout(timeout * 2 + Duration::from_secs(1), task).await {
        Ok(Ok(Ok(usable))) => usable,
        Ok(Ok(Err(error))) => {
            tracing::debug!(%error, "kafka metadata probe failed");
            false
        }
        Ok(Err(_)) | Err(_) => false,
    }
}

/// Waits for everything enqueued to be delivered, on a blocking thread.
pub async fn flush(producer: &Arc<BridgeProducer>, timeout: Duration) -> Result<(), KafkaError> {
    let producer = Arc::clone(producer);
    tokio::task::spawn_blocking(move || producer.flush(timeout))
        .await
        .unwrap_or(Err(KafkaError::Canceled))
}
