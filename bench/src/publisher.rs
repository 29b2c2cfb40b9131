//! Windowed MQTT v5 publisher: many QoS 1 messages in flight at once (bounded by `window` and the
//! broker's receive maximum), optionally paced to a fixed rate for latency measurements.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::v5::mqttbytes::v5::{Packet, PublishProperties};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, ClientError, ConnectionError, Event, MqttOptions};
use rumqttc::Outgoing;

use crate::stack::Stack;
#[cfg(doc)]
use crate::telemetry::payload;
use crate::telemetry::{now_ms, Fleet, SEQ_PROPERTY};

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("publisher `{client_id}` lost its MQTT connection")]
    Connection {
        client_id: String,
        #[source]
        source: ConnectionError,
    },
    #[error("publisher `{client_id}` could not queue a message")]
    Queue {
        client_id: String,
        #[source]
        source: ClientError,
    },
    #[error("publisher `{client_id}` timed out: {done} of {expected} messages completed within {waited:?}")]
    Timeout {
        client_id: String,
        done: u64,
        expected: u64,
        waited: Duration,
    },
    #[error("publisher task failed: {0}")]
    Task(String),
}

/// What to publish: messages `first_index..first_index + count` of `fleet`.
#[derive(Debug, Clone)]
pub struct PublishPlan {
    pub fleet: Fleet,
    pub first_index: u64,
    pub count: u64,
    pub qos: u8,
    /// Messages per second; `None` publishes as fast as the window allows.
    pub rate_per_sec: Option<u32>,
    /// Largest number of QoS 1 messages awaiting PUBACK.
    pub window: u16,
    /// Body of message `seq` sent at the given epoch milliseconds, e.g. [`payload`].
    pub payload: fn(u64, i64) -> String,
}

#[derive(Debug, Clone)]
pub struct PublishReport {
    pub client_id: String,
    pub published: u64,
    /// Wall-clock time of the first publish, milliseconds since the epoch.
    pub started_at_ms: i64,
    /// Wall-clock time the last message was acknowledged (QoS 1) or written (QoS 0).
    pub finished_at_ms: i64,
    /// From the first publish to the last PUBACK (QoS 1) or the last write (QoS 0).
    pub elapsed: Duration,
}

impl PublishReport {
    pub fn rate(&self) -> f64 {
        self.published as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

fn qos_level(qos: u8) -> QoS {
    match qos {
        0 => QoS::AtMostOnce,
        _ => QoS::AtLeastOnce,
    }
}

/// Publishes the plan and returns once the broker has acknowledged every QoS 1 message (or every
/// QoS 0 message has been written to the socket).
pub async fn publish(
    stack: &Stack,
    client_id: &str,
    plan: PublishPlan,
) -> Result<PublishReport, PublishError> {
    if plan.count == 0 {
        let now = now_ms();
        return Ok(PublishReport {
            client_id: client_id.to_owned(),
            published: 0,
            started_at_ms: now,
            finished_at_ms: now,
            elapsed: Duration::ZERO,
        });
    }
    let mut options = MqttOptions::new(client_id, stack.mqtt_host.clone(), stack.mqtt_port);
    options
        .set_keep_alive(Duration::from_secs(30))
        .set_clean_start(true)
        .set_outgoing_inflight_upper_limit(plan.window.max(1));
    let (client, mut event_loop) = AsyncClient::new(options, usize::from(plan.window.max(16)));

    let completed = Arc::new(AtomicU64::new(0));
    let expected = plan.count;
    let count_acks = plan.qos > 0;
    let driver_completed = Arc::clone(&completed);
    let driver_client_id = client_id.to_owned();
    // The event loop runs in its own task so queueing never waits on socket I/O beyond the
    // request channel's capacity. rumqttc flushes after every outgoing request, so an
    // `Outgoing::Publish` event means the bytes reached the socket; once everything is complete
    // the connection is simply dropped.
    let driver = tokio::spawn(async move {
        loop {
            match event_loop.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) if count_acks => {
                    driver_completed.fetch_add(1, Ordering::Release);
                }
                Ok(Event::Outgoing(Outgoing::Publish(_))) if !count_acks => {
                    driver_completed.fetch_add(1, Ordering::Release);
                }
                Ok(_) => {}
                Err(source) => {
                    return Err(PublishError::Connection {
                        client_id: driver_client_id,
                        source,
                    });
                }
            }
            if driver_completed.load(Ordering::Acquire) >= expected {
                return Ok(now_ms());
            }
        }
    });

    let started = Instant::now();
    let started_at_ms = now_ms();
    let qos = qos_level(plan.qos);
    for offset in 0..plan.count {
        if let Some(rate) = plan.rate_per_sec {
            // Pace by the schedule, not by per-message sleeps: the timer only has millisecond
            // resolution, so late messages go out in a small burst to catch up.
            let due = started + Duration::from_secs_f64(offset as f64 / f64::from(rate.max(1)));
            if due > Instant::now() {
                tokio::time::sleep_until(due.into()).await;
            }
        }
        let id = plan.fleet.message(plan.first_index + offset);
        let body = (plan.payload)(id.seq, now_ms());
        let properties = PublishProperties {
            user_properties: vec![(SEQ_PROPERTY.to_owned(), id.seq.to_string())],
            ..PublishProperties::default()
        };
        let topic = plan.fleet.topic(id.device);
        if let Err(source) = client
            .publish_with_properties(topic, qos, false, body, properties)
            .await
        {
            // The event loop ended first; its error says why.
            return match driver.await {
                Ok(Err(error)) => Err(error),
                _ => Err(PublishError::Queue {
                    client_id: client_id.to_owned(),
                    source,
                }),
            };
        }
    }

    let deadline = Duration::from_secs(60 + plan.count / 1000);
    let finished_at_ms = match tokio::time::timeout(deadline, driver).await {
        Ok(Ok(result)) => result?,
        Ok(Err(join)) => return Err(PublishError::Task(join.to_string())),
        Err(_) => {
            return Err(PublishError::Timeout {
                client_id: client_id.to_owned(),
                done: completed.load(Ordering::Acquire),
                expected,
                waited: deadline,
            })
        }
    };
    let elapsed = started.elapsed();
    Ok(PublishReport {
        client_id: client_id.to_owned(),
        published: plan.count,
        started_at_ms,
        finished_at_ms,
        elapsed,
    })
}

/// One hand-made message, e.g. a malformed payload for the dead-letter test.
#[derive(Debug, Clone)]
pub struct RawMessage {
    pub topic: String,
    pub payload: Vec<u8>,
    pub user_properties: Vec<(String, String)>,
}

/// Publishes `messages` at QoS 1 and returns once the broker acknowledged all of them.
pub async fn publish_raw(
    stack: &Stack,
    client_id: &str,
    messages: Vec<RawMessage>,
) -> Result<(), PublishError> {
    let expected = messages.len() as u64;
    if expected == 0 {
        return Ok(());
    }
    let mut options = MqttOptions::new(client_id, stack.mqtt_host.clone(), stack.mqtt_port);
    options
        .set_keep_alive(Duration::from_secs(30))
        .set_clean_start(true);
    let (client, mut event_loop) = AsyncClient::new(options, messages.len().max(1));
    for message in messages {
        let properties = PublishProperties {
            user_properties: message.user_properties,
            ..PublishProperties::default()
        };
        client
            .publish_with_properties(
                message.topic,
                QoS::AtLeastOnce,
                false,
                message.payload,
                properties,
            )
            .await
            .map_err(|source| PublishError::Queue {
                client_id: client_id.to_owned(),
                source,
            })?;
    }
    let waited = Duration::from_secs(30);
    let mut acked = 0;
    let outcome = tokio::time::timeout(waited, async {
        while acked < expected {
            match event_loop.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => acked += 1,
                Ok(_) => {}
                Err(source) => {
                    return Err(PublishError::Connection {
                        client_id: client_id.to_owned(),
                        source,
                    })
                }
            }
        }
        Ok(())
    })
    .await;
    match outcome {
        Ok(result) => result,
        Err(_) => Err(PublishError::Timeout {
            client_id: client_id.to_owned(),
            done: acked,
            expected,
            waited,
        }),
    }
}
