//! Kafka side of the harness: per-run topics, and a reader that collects every record of a topic
//! (key, payload, headers, timestamp) in a background thread.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication, TopicResult};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message, Timestamp};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use crate::telemetry::now_ms;

#[derive(Debug, thiserror::Error)]
pub enum KafkaHarnessError {
    #[error("cannot create Kafka client for {bootstrap}")]
    Client {
        bootstrap: String,
        #[source]
        source: KafkaError,
    },
    #[error("cannot create topic `{topic}`")]
    CreateTopic {
        topic: String,
        #[source]
        source: KafkaError,
    },
    #[error("cannot delete topics {topics}")]
    DeleteTopic {
        topics: String,
        #[source]
        source: KafkaError,
    },
    #[error("topic `{topic}` was rejected: {code}")]
    TopicRejected {
        topic: String,
        code: RDKafkaErrorCode,
    },
    #[error("cannot read metadata of topic `{topic}`")]
    Metadata {
        topic: String,
        #[source]
        source: KafkaError,
    },
    #[error("topic `{topic}` has no partitions (does it exist?)")]
    NoPartitions { topic: String },
    #[error("cannot assign partitions of `{topic}`")]
    Assign {
        topic: String,
        #[source]
        source: KafkaError,
    },
}

/// Creates `topic` with `partitions` partitions, replication 1.
///
/// With `log_append_time` the broker stamps each record when it appends it, which makes the
/// record timestamp "the moment the record was in Kafka", independent of what the producer set.
pub async fn create_topic(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    log_append_time: bool,
) -> Result<(), KafkaHarnessError> {
    let mut new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    if log_append_time {
        new_topic = new_topic.set("message.timestamp.type", "LogAppendTime");
    }
    let results = admin(bootstrap)?
        .create_topics([&new_topic], &admin_options())
        .await
        .map_err(|source| KafkaHarnessError::CreateTopic {
            topic: topic.to_owned(),
            source,
        })?;
    accept(results, RDKafkaErrorCode::TopicAlreadyExists)
}

/// Deletes `topics`; a topic that is already gone is fine.
pub async fn delete_topics(bootstrap: &str, topics: &[&str]) -> Result<(), KafkaHarnessError> {
    let results = admin(bootstrap)?
        .delete_topics(topics, &admin_options())
        .await
        .map_err(|source| KafkaHarnessError::DeleteTopic {
            topics: topics.join(", "),
            source,
        })?;
    accept(results, RDKafkaErrorCode::UnknownTopicOrPartition)
}

fn admin(bootstrap: &str) -> Result<AdminClient<DefaultClientContext>, KafkaHarnessError> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .map_err(|source| KafkaHarnessError::Client {
            bootstrap: bootstrap.to_owned(),
            source,
        })
}

fn admin_options() -> AdminOptions {
    AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)))
}

/// Per-topic results of an admin operation; `harmless` (the state already being as wanted)
/// counts as success.
fn accept(results: Vec<TopicResult>, harmless: RDKafkaErrorCode) -> Result<(), KafkaHarnessError> {
    for result in results {
        match result {
            Ok(_) => {}
            Err((_, code)) if code == harmless => {}
            Err((name, code)) => {
                return Err(KafkaHarnessError::TopicRejected { topic: name, code })
            }
        }
    }
    Ok(())
}

/// One consumed record.
#[derive(Debug, Clone)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
    /// Record timestamp, milliseconds since the epoch.
    pub timestamp_ms: Option<i64>,
    /// True when [`Record::timestamp_ms`] is the broker's append time.
    pub log_append_time: bool,
    /// When this reader received it, milliseconds since the epoch.
    pub consumed_at_ms: i64,
}

impl Record {
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_slice())
    }

    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name)
            .and_then(|value| std::str::from_utf8(value).ok())
    }
}

/// Where a [`TopicReader`] starts.
#[derive(Debug, Clone)]
pub enum StartAt {
    Beginning,
    /// Per-partition offsets, e.g. the [`high_watermarks`] taken before a run started.
    Offsets(HashMap<i32, i64>),
}

fn consumer(bootstrap: &str) -> Result<BaseConsumer, KafkaHarnessError> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        // Partitions are assigned explicitly and nothing is committed; the group id is only
        // there because librdkafka insists on one.
        .set(
            "group.id",
            crate::telemetry::unique_name("ehs-bench-reader"),
        )
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("fetch.wait.max.ms", "50")
        .set("reconnect.backoff.max.ms", "1000")
        .create()
        .map_err(|source| KafkaHarnessError::Client {
            bootstrap: bootstrap.to_owned(),
            source,
        })
}

fn partitions(consumer: &BaseConsumer, topic: &str) -> Result<Vec<i32>, KafkaHarnessError> {
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(15))
        .map_err(|source| KafkaHarnessError::Metadata {
            topic: topic.to_owned(),
            source,
        })?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic)
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        return Err(KafkaHarnessError::NoPartitions {
            topic: topic.to_owned(),
        });
    }
    Ok(partitions)
}

/// Current end offset of every partition of `topic`.
pub fn high_watermarks(
    bootstrap: &str,
    topic: &str,
) -> Result<HashMap<i32, i64>, KafkaHarnessError> {
    let consumer = consumer(bootstrap)?;
    partitions(&consumer, topic)?
        .into_iter()
        .map(|partition| {
            consumer
                .fetch_watermarks(topic, partition, Duration::from_secs(15))
                .map(|(_, high)| (partition, high))
                .map_err(|source| KafkaHarnessError::Metadata {
                    topic: topic.to_owned(),
                    source,
                })
        })
        .collect()
}

/// Reads a topic in a background thread until dropped; records accumulate in memory. The
/// consumer rides out broker outages on its own (librdkafka reconnects), which the failure
/// tests rely on.
pub struct TopicReader {
    topic: String,
    records: Arc<Mutex<Vec<Record>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TopicReader {
    pub fn start(bootstrap: &str, topic: &str, start: StartAt) -> Result<Self, KafkaHarnessError> {
        let consumer = consumer(bootstrap)?;
        let mut assignment = TopicPartitionList::new();
        for partition in partitions(&consumer, topic)? {
            let offset = match &start {
                StartAt::Beginning => Offset::Beginning,
                StartAt::Offsets(offsets) => offsets
                    .get(&partition)
                    .map_or(Offset::Beginning, |&offset| Offset::Offset(offset)),
            };
            assignment
                .add_partition_offset(topic, partition, offset)
                .map_err(|source| KafkaHarnessError::Assign {
                    topic: topic.to_owned(),
                    source,
                })?;
        }
        consumer
            .assign(&assignment)
            .map_err(|source| KafkaHarnessError::Assign {
                topic: topic.to_owned(),
                source,
            })?;

        let records = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let records = Arc::clone(&records);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut batch = Vec::with_capacity(1024);
                while !stop.load(Ordering::Relaxed) {
                    // Transport errors during an outage are expected and retried by librdkafka.
                    if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) {
                        batch.push(to_record(&message));
                        // Drain what is already buffered before taking the lock.
                        while batch.len() < 1024 {
                            match consumer.poll(Duration::ZERO) {
                                Some(Ok(message)) => batch.push(to_record(&message)),
                                _ => break,
                            }
                        }
                        lock(&records).append(&mut batch);
                    }
                }
            })
        };
        Ok(Self {
            topic: topic.to_owned(),
            records,
            stop,
            thread: Some(thread),
        })
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    pub fn len(&self) -> usize {
        lock(&self.records).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn snapshot(&self) -> Vec<Record> {
        lock(&self.records).clone()
    }

    /// Polls until `done` holds for the records read so far, or until `quiet` passed without a
    /// new record, or `deadline` passed. Returns whether `done` held.
    pub fn wait_for(
        &self,
        deadline: Duration,
        quiet: Duration,
        mut done: impl FnMut(&[Record]) -> bool,
    ) -> bool {
        let started = Instant::now();
        let mut last_len = 0;
        let mut last_change = Instant::now();
        loop {
            {
                let records = lock(&self.records);
                if done(&records) {
                    return true;
                }
                if records.len() != last_len {
                    last_len = records.len();
                    last_change = Instant::now();
                }
            }
            if started.elapsed() >= deadline || last_change.elapsed() >= quiet {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for TopicReader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn lock(records: &Mutex<Vec<Record>>) -> MutexGuard<'_, Vec<Record>> {
    // A panicking reader thread leaves the records intact; keep using them.
    records
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn to_record<M: Message>(message: &M) -> Record {
    let (timestamp_ms, log_append_time) = match message.timestamp() {
        Timestamp::LogAppendTime(ms) => (Some(ms), true),
        other => (other.to_millis(), false),
    };
    Record {
        partition: message.partition(),
        offset: message.offset(),
        key: message
            .key()
            .map(|key| String::from_utf8_lossy(key).into_owned()),
        payload: message.payload().map(<[u8]>::to_vec).unwrap_or_default(),
        headers: message
            .headers()
            .map(|headers| {
                headers
                    .iter()
                    .map(|h| {
                        (
                            h.key.to_owned(),
                            h.value.map(<[u8]>::to_vec).unwrap_or_default(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
        timestamp_ms,
        log_append_time,
        consumed_at_ms: now_ms(),
    }
}
