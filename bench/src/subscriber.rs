//! A plain MQTT v5 subscriber: the broker's own ceiling, i.e. what a consumer that does nothing
//! but receive (and acknowledge) can take from Mosquitto on this machine.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, ClientError, ConnectionError, Event, MqttOptions};
use tokio::task::JoinHandle;

use crate::stack::Stack;
use crate::telemetry::{now_ms, Fleet, MessageId, SEQ_PROPERTY};

#[derive(Debug, thiserror::Error)]
pub enum SubscribeError {
    #[error("subscriber `{client_id}` lost its MQTT connection")]
    Connection {
        client_id: String,
        #[source]
        source: ConnectionError,
    },
    #[error("subscriber `{client_id}` could not send SUBSCRIBE")]
    Request {
        client_id: String,
        #[source]
        source: ClientError,
    },
    #[error("subscriber `{client_id}` got no SUBACK within {0:?}", WAIT_FOR_SUBACK)]
    NoSubAck { client_id: String },
    #[error("subscriber task failed: {0}")]
    Task(String),
}

const WAIT_FOR_SUBACK: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct SubscribeReport {
    pub received: u64,
    pub distinct: u64,
    pub first_at_ms: Option<i64>,
    pub last_at_ms: Option<i64>,
}

/// What [`Subscriber::finish_group`] returns: the group's merged report (distinct over all
/// members) and each member's own, in the order they were started.
#[derive(Debug, Clone)]
pub struct GroupReport {
    pub merged: SubscribeReport,
    pub members: Vec<SubscribeReport>,
}

/// A running subscriber; [`Subscriber::finish`] waits for its result.
pub struct Subscriber {
    task: JoinHandle<Result<(SubscribeReport, HashSet<MessageId>), SubscribeError>>,
}

/// The shared-subscription group a subscriber belongs to, and the count of distinct messages
/// its members received between them.
struct Group {
    name: Option<String>,
    received: Arc<AtomicU64>,
}

fn min_some(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl Subscriber {
    /// Subscribes to the fleet's filter and returns once the broker confirmed it, so nothing
    /// published afterwards is missed. It stops after `expected` distinct messages or after
    /// `idle` without any message.
    pub async fn start(
        stack: &Stack,
        client_id: &str,
        fleet: Fleet,
        qos: u8,
        receive_maximum: u16,
        expected: u64,
        idle: Duration,
    ) -> Result<Self, SubscribeError> {
        let group = Group {
            name: None,
            received: Arc::new(AtomicU64::new(0)),
        };
        Self::start_in(
            stack,
            client_id,
            fleet,
            qos,
            receive_maximum,
            expected,
            idle,
            group,
        )
        .await
    }

    /// `members` subscribers in one shared-subscription group: the broker splits the stream
    /// between them, so no single subscriber's receive loop limits the rate measured. They stop
    /// together once they received `expected` messages between them.
    #[allow(clippy::too_many_arguments)]
    pub async fn start_group(
        stack: &Stack,
        client_id: &str,
        fleet: Fleet,
        qos: u8,
        receive_maximum: u16,
        expected: u64,
        idle: Duration,
        members: u32,
    ) -> Result<Vec<Self>, SubscribeError> {
        let received = Arc::new(AtomicU64::new(0));
        let mut subscribers = Vec::new();
        for member in 0..members.max(1) {
            let group = Group {
                name: Some(format!("{client_id}-group")),
                received: Arc::clone(&received),
            };
            subscribers.push(
                Self::start_in(
                    stack,
                    &format!("{client_id}-{member}"),
                    fleet.clone(),
                    qos,
                    receive_maximum,
                    expected,
                    idle,
                    group,
                )
                .await?,
            );
        }
        Ok(subscribers)
    }

    /// Waits for every member of a group and merges their reports; each member's own report
    /// stays available (how the broker spread the stream).
    pub async fn finish_group(subscribers: Vec<Self>) -> Result<GroupReport, SubscribeError> {
        let mut seen = HashSet::new();
        let mut members = Vec::with_capacity(subscribers.len());
        let mut merged = SubscribeReport {
            received: 0,
            distinct: 0,
            first_at_ms: None,
            last_at_ms: None,
        };
        for subscriber in subscribers {
            let (report, ids) = subscriber.finish_ids().await?;
            merged.received += report.received;
            merged.first_at_ms = min_some(merged.first_at_ms, report.first_at_ms);
            merged.last_at_ms = merged.last_at_ms.max(report.last_at_ms);
            seen.extend(ids);
            members.push(report);
        }
        merged.distinct = seen.len() as u64;
        Ok(GroupReport { merged, members })
    }

    #[allow(clippy::too_many_arguments)]
    async fn start_in(
        stack: &Stack,
        client_id: &str,
        fleet: Fleet,
        qos: u8,
        receive_maximum: u16,
        expected: u64,
        idle: Duration,
        group: Group,
    ) -> Result<Self, SubscribeError> {
        let mut options = MqttOptions::new(client_id, stack.mqtt_host.clone(), stack.mqtt_port);
        options
            .set_keep_alive(Duration::from_secs(30))
            .set_clean_start(true)
            .set_receive_maximum(Some(receive_maximum.max(1)));
        let (client, mut event_loop) = AsyncClient::new(options, 64);
        let level = if qos == 0 {
            QoS::AtMostOnce
        } else {
            QoS::AtLeastOnce
        };
        let filter = match &group.name {
            Some(name) => format!("$share/{name}/{}", fleet.filter()),
            None => fleet.filter(),
        };
        client
            .subscribe(filter, level)
            .await
            .map_err(|source| SubscribeError::Request {
                client_id: client_id.to_owned(),
                source,
            })?;

        let subscribed = tokio::time::timeout(WAIT_FOR_SUBACK, async {
            loop {
                match event_loop.poll().await {
                    Ok(Event::Incoming(Packet::SubAck(_))) => return Ok(()),
                    Ok(_) => {}
                    Err(source) => {
                        return Err(SubscribeError::Connection {
                            client_id: client_id.to_owned(),
                            source,
                        })
                    }
                }
            }
        })
        .await;
        match subscribed {
            Ok(result) => result?,
            Err(_) => {
                return Err(SubscribeError::NoSubAck {
                    client_id: client_id.to_owned(),
                })
            }
        }

        let client_id = client_id.to_owned();
        let task = tokio::spawn(async move {
            let _client = client;
            let mut seen: HashSet<MessageId> = HashSet::with_capacity(expected as usize);
            let mut report = SubscribeReport {
                received: 0,
                distinct: 0,
                first_at_ms: None,
                last_at_ms: None,
            };
            while group.received.load(Ordering::Relaxed) < expected {
                let deadline = Instant::now() + idle;
                let event = match tokio::time::timeout_at(deadline.into(), event_loop.poll()).await
                {
                    Ok(event) => event,
                    Err(_) => break,
                };
                match event {
                    Ok(Event::Incoming(Packet::Publish(publish))) => {
                        let at = now_ms();
                        report.first_at_ms.get_or_insert(at);
                        report.last_at_ms = Some(at);
                        report.received += 1;
                        let device = std::str::from_utf8(&publish.topic)
                            .ok()
                            .and_then(|topic| topic.split('/').nth(2))
                            .and_then(|name| fleet.parse_device(name));
                        let seq = publish.properties.as_ref().and_then(|p| {
                            p.user_properties
                                .iter()
                                .find(|(k, _)| k == SEQ_PROPERTY)?
                                .1
                                .parse()
                                .ok()
                        });
                        if let (Some(device), Some(seq)) = (device, seq) {
                            if seen.insert(MessageId { device, seq }) {
                                group.received.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(source) => return Err(SubscribeError::Connection { client_id, source }),
                }
            }
            report.distinct = seen.len() as u64;
            Ok((report, seen))
        });
        Ok(Self { task })
    }

    pub async fn finish(self) -> Result<SubscribeReport, SubscribeError> {
        Ok(self.finish_ids().await?.0)
    }

    async fn finish_ids(self) -> Result<(SubscribeReport, HashSet<MessageId>), SubscribeError> {
        self.task
            .await
            .map_err(|join| SubscribeError::Task(join.to_string()))?
    }
}
