//! The MQTT side: one task polls the rumqttc event loop (and never waits on an ack), another
//! releases acknowledgements in arrival order.
//!
//! Connection changes bump the tracker's generation under the tracker lock and purge queued
//! acks, so an ack for a message from an earlier connection is never sent on a later one.
//! After every CONNACK the loop subscribes all shared filters again; a persistent session may
//! have lost them (session expired) or never had them.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rumqttc::v5::mqttbytes::v5::{
    ConnAck, Filter, Packet, Publish, SubAck, SubscribeReasonCode, UnsubAck, UnsubAckReason,
};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, ConnectionError, Event, EventLoop, MqttOptions, Request};
use rumqttc::Outgoing;

use crate::acks::{AckToken, Release, Released};
use crate::config::Config;
use crate::pipeline::{ack_token, Processor};
use crate::state::Shared;

/// Pause between the last message and the DISCONNECT of a drain: after the UNSUBACK the broker
/// still hands over what it had queued for this session, a round trip after each ack.
const DRAIN_QUIET: Duration = Duration::from_millis(300);
/// Time kept back from the drain timeout for flushing the producer and disconnecting.
const DRAIN_MARGIN: Duration = Duration::from_secs(1);
/// How often the drain wakes the loop to check its progress.
const DRAIN_TICK: Duration = Duration::from_millis(50);
const KEEP_ALIVE: Duration = Duration::from_secs(30);
/// Longest pause between reconnect attempts during a drain.
const DRAIN_RECONNECT_DELAY: Duration = Duration::from_millis(500);

pub fn options(config: &Config) -> MqttOptions {
    let mut options = MqttOptions::new(
        config.client_id.clone(),
        config.mqtt_host.clone(),
        config.mqtt_port,
    );
    options
        .set_clean_start(false)
        .set_session_expiry_interval(Some(
            u32::try_from(config.session_expiry.as_secs()).unwrap_or(u32::MAX),
        ))
        .set_receive_maximum(Some(config.receive_maximum))
        .set_manual_acks(true)
        .set_read_coalesce(Some(config.read_coalesce))
        .set_keep_alive(KEEP_ALIVE)
        .set_connection_timeout(10)
        .set_max_packet_size(Some(config.mqtt_max_packet_bytes()))
        // Room for one ack per message the broker may have in flight, plus control requests, so
        // the acknowledger's non-blocking sends do not fail in normal operation.
        .set_request_channel_capacity(usize::from(config.receive_maximum) + 256);
    if let Some(credentials) = &config.credentials {
        options.set_credentials(
            credentials.username.clone(),
            credentials.password.expose().to_owned(),
        );
    }
    options
}

/// Exponential backoff with jitter: each delay is drawn from [base/2, base].
#[derive(Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            current: initial,
        }
    }

    pub fn next_delay(&mut self) -> Duration {
        let base = self.current;
        self.current = (self.current * 2).min(self.max);
        let half = base / 2;
        half + half.mul_f64(fastrand::f64())
    }

    pub fn reset(&mut self) {
        self.current = self.initial;
    }
}

/// Wakes the MQTT loop from other tasks. rumqttc's poll only returns on network traffic or a
/// client request, and cancelling it can lose a half-written packet, so the wake-up is a QoS 0
/// publish to this replica's own state topic, which nobody is subscribed to once the filter-set
/// check is over.
#[derive(Clone)]
pub struct Waker {
    client: AsyncClient,
    topic: String,
}

impl Waker {
    pub fn wake(&self) {
        // A full channel already wakes the loop.
        let _ = self
            .client
            .try_publish(self.topic.clone(), QoS::AtMostOnce, false, Bytes::new());
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    DataSubscribe,
    StateSubscribe,
    StaleUnsubscribe,
    StateUnsubscribe,
    DrainUnsubscribe,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PublishPurpose {
    Probe,
    StoreFilters,
}

/// Removing filters an earlier configuration left in the persistent session.
#[derive(Debug, Clone, PartialEq, Eq)]
enum FilterSync {
    /// To start at the next CONNACK.
    Pending,
    AwaitingSubAck,
    /// Subscribed to the state topic and published `nonce` after it: a retained state, if any,
    /// arrives before the nonce.
    AwaitingProbe {
        stored: Option<Vec<String>>,
        nonce: String,
    },
    AwaitingStore,
    Done,
}

/// Subscriptions to remove: stored ones no longer configured.
pub fn stale_subscriptions(stored: &[String], configured: &[String]) -> Vec<String> {
    stored
        .iter()
        .filter(|s| !configured.contains(s))
        .cloned()
        .collect()
}

pub struct MqttLoop {
    config: Arc<Config>,
    client: AsyncClient,
    eventloop: EventLoop,
    shared: Arc<Shared>,
    processor: Processor,
    reconnect_requested: Arc<AtomicBool>,
    state_topic: String,
    subscriptions: Vec<String>,
    sent: VecDeque<Purpose>,
    by_pkid: HashMap<u16, Purpose>,
    publishes_sent: VecDeque<PublishPurpose>,
    publishes_by_pkid: HashMap<u16, PublishPurpose>,
    sync: FilterSync,
    connected: bool,
    backoff: Backoff,
    failure_backoff: Backoff,
    last_forced_reconnect: Option<Instant>,
    drain: Option<Drain>,
}

#[derive(Debug)]
struct Drain {
    deadline: Instant,
    unsubscribed_on_this_connection: bool,
    unsubacks_pending: usize,
    last_message: Instant,
    disconnect_sent: bool,
}

impl MqttLoop {
    pub fn new(
        config: Arc<Config>,
        client: AsyncClient,
        eventloop: EventLoop,
        shared: Arc<Shared>,
        processor: Processor,
        reconnect_requested: Arc<AtomicBool>,
    ) -> Self {
        let state_topic = ehs_contract::mqtt::session_state_topic(&config.client_id);
        let subscriptions = config.shared_subscriptions();
        Self {
            config,
            client,
            eventloop,
            shared,
            processor,
            reconnect_requested,
            state_topic,
            subscriptions,
            sent: VecDeque::new(),
            by_pkid: HashMap::new(),
            publishes_sent: VecDeque::new(),
            publishes_by_pkid: HashMap::new(),
            sync: FilterSync::Pending,
            connected: false,
            backoff: Backoff::new(Duration::from_millis(100), Duration::from_secs(30)),
            failure_backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(60)),
            last_forced_reconnect: None,
            drain: None,
        }
    }

    pub fn waker(&self) -> Waker {
        Waker {
            client: self.client.clone(),
            topic: self.state_topic.clone(),
        }
    }

    /// Runs until a drain has finished (or timed out) and the DISCONNECT went out.
    pub async fn run(mut self, drain_timeout: Duration) {
        loop {
            let event = self.eventloop.poll().await;
            self.shared.heartbeat();
            match event {
                Ok(Event::Incoming(packet)) => self.on_incoming(packet).await,
                Ok(Event::Outgoing(outgoing)) => {
                    if self.on_outgoing(outgoing) {
                        tracing::info!("drain finished; disconnected from MQTT");
                        return;
                    }
                }
                Err(error) => self.on_connection_error(&error).await,
            }
            if self.reconnect_requested.swap(false, Ordering::SeqCst) {
                self.force_reconnect().await;
            }
            if self.shared.is_draining() {
                if self.drain.is_none() {
                    self.start_drain(drain_timeout);
                }
                if self.drain_step() {
                    return;
                }
            }
        }
    }

    async fn on_incoming(&mut self, packet: Packet) {
        match packet {
            Packet::Publish(publish) => self.on_publish(publish).await,
            Packet::ConnAck(connack) => self.on_connack(&connack),
            Packet::SubAck(suback) => self.on_suback(&suback),
            Packet::UnsubAck(unsuback) => self.on_unsuback(&unsuback),
            Packet::PubAck(puback)
                if self.publishes_by_pkid.remove(&puback.pkid)
                    == Some(PublishPurpose::StoreFilters) =>
            {
                tracing::info!(topic = %self.state_topic, "stored the subscribed filter set");
                self.sync = FilterSync::Done;
            }
            _ => {}
        }
    }

    /// True when the DISCONNECT that ends a drain went out.
    fn on_outgoing(&mut self, outgoing: Outgoing) -> bool {
        match outgoing {
            Outgoing::Subscribe(pkid) | Outgoing::Unsubscribe(pkid) => {
                if let Some(purpose) = self.sent.pop_front() {
                    self.by_pkid.insert(pkid, purpose);
                }
            }
            Outgoing::Publish(pkid) if pkid != 0 => {
                if let Some(purpose) = self.publishes_sent.pop_front() {
                    self.publishes_by_pkid.insert(pkid, purpose);
                }
            }
            Outgoing::Disconnect => return self.drain.as_ref().is_some_and(|d| d.disconnect_sent),
            _ => {}
        }
        false
    }

    fn on_connack(&mut self, connack: &ConnAck) {
        self.connected = true;
        self.backoff.reset();
        self.shared.set_mqtt_connected(true);
        tracing::info!(
            session_present = connack.session_present,
            client_id = %self.config.client_id,
            "connected to MQTT"
        );
        if self.drain.is_some() {
            // Reconnected mid-drain: the drain step unsubscribes again.
            return;
        }
        let filters: Vec<Filter> = self
            .subscriptions
            .iter()
            .map(|s| Filter::new(s.clone(), QoS::AtLeastOnce))
            .collect();
        self.request(Purpose::DataSubscribe, |client| {
            client
                .try_subscribe_many(filters)
                .map_err(|e| e.to_string())
        });
        let retain_available = connack
            .properties
            .as_ref()
            .and_then(|p| p.retain_available)
            .is_none_or(|available| available != 0);
        if self.sync == FilterSync::Pending && !retain_available {
            // Publishing the retained filter set would get the connection closed (0x9A).
            tracing::warn!("broker has no retained messages; filters removed from the configuration stay subscribed");
            self.sync = FilterSync::Done;
        }
        if self.sync == FilterSync::Pending {
            self.sync = FilterSync::AwaitingSubAck;
            let topic = self.state_topic.clone();
            self.request(Purpose::StateSubscribe, |client| {
                client
                    .try_subscribe(topic, QoS::AtLeastOnce)
                    .map_err(|e| e.to_string())
            });
        }
    }

    fn request(&mut self, purpose: Purpose, send: impl FnOnce(&AsyncClient) -> Result<(), String>) {
        match send(&self.client) {
            Ok(()) => self.sent.push_back(purpose),
            // Only a full request channel gets here; the next CONNACK repeats the request.
            Err(error) => tracing::error!(?purpose, %error, "could not queue an MQTT request"),
        }
    }

    fn publish(&mut self, purpose: PublishPurpose, retain: bool, payload: Vec<u8>) {
        let topic = self.state_topic.clone();
        match self
            .client
            .try_publish(topic, QoS::AtLeastOnce, retain, payload)
        {
            Ok(()) => self.publishes_sent.push_back(purpose),
            Err(error) => tracing::error!(?purpose, %error, "could not queue an MQTT publish"),
        }
    }

    fn on_suback(&mut self, suback: &SubAck) {
        match self.by_pkid.remove(&suback.pkid) {
            Some(Purpose::DataSubscribe) => {
                let refused: Vec<_> = self
                    .subscriptions
                    .iter()
                    .zip(&suback.return_codes)
                    .filter(|(_, code)| !matches!(code, SubscribeReasonCode::Success(_)))
                    .map(|(subscription, code)| format!("{subscription}: {code:?}"))
                    .collect();
                let granted =
                    refused.is_empty() && suback.return_codes.len() == self.subscriptions.len();
                self.shared.set_mqtt_subscribed(granted);
                if granted {
                    tracing::info!(subscriptions = ?self.subscriptions, "subscribed");
                } else {
                    tracing::error!(?refused, "broker refused shared subscriptions; not ready");
                }
            }
            Some(Purpose::StateSubscribe) => {
                if matches!(
                    suback.return_codes.first(),
                    Some(SubscribeReasonCode::Success(_))
                ) {
                    let nonce = format!("probe-{:016x}", fastrand::u64(..));
                    self.publish(PublishPurpose::Probe, false, nonce.clone().into_bytes());
                    self.sync = FilterSync::AwaitingProbe {
                        stored: None,
                        nonce,
                    };
                } else {
                    tracing::warn!(
                        topic = %self.state_topic,
                        code = ?suback.return_codes.first(),
                        "cannot read the stored filter set (check the ACL); filters removed from the configuration stay subscribed"
                    );
                    self.sync = FilterSync::Done;
                }
            }
            _ => {}
        }
    }

    fn on_unsuback(&mut self, unsuback: &UnsubAck) {
        let purpose = self.by_pkid.remove(&unsuback.pkid);
        let ok = unsuback.reasons.iter().all(|r| {
            matches!(
                r,
                UnsubAckReason::Success | UnsubAckReason::NoSubscriptionExisted
            )
        });
        if !ok {
            tracing::warn!(?purpose, reasons = ?unsuback.reasons, "broker refused an unsubscribe");
        }
        if purpose == Some(Purpose::DrainUnsubscribe) {
            if let Some(drain) = &mut self.drain {
                drain.unsubacks_pending = drain.unsubacks_pending.saturating_sub(1);
            }
        }
    }

    async fn on_publish(&mut self, publish: Publish) {
        take_window_place(&self.shared).await;
        if let Some(drain) = &mut self.drain {
            drain.last_message = Instant::now();
        }
        if publish.topic.as_ref() == self.state_topic.as_bytes() {
            self.on_state_message(&publish);
        } else {
            self.processor.process(&publish).await;
        }
        let in_flight = self.shared.tracker().len();
        self.shared
            .metrics
            .in_flight
            .set(i64::try_from(in_flight).unwrap_or(i64::MAX));
    }

    /// Messages on the state topic carry no readings; they are acknowledged in order like the rest.
    fn on_state_message(&mut self, publish: &Publish) {
        self.shared
            .tracker()
            .push(ack_token(publish), 0, Instant::now());
        self.shared.head_ready.notify_one();
        let FilterSync::AwaitingProbe { stored, nonce } = &mut self.sync else {
            return;
        };
        if publish.retain {
            match serde_json::from_slice::<Vec<String>>(&publish.payload) {
                Ok(previous) => *stored = Some(previous),
                Err(error) => tracing::warn!(%error, "ignoring an unreadable stored filter set"),
            }
            return;
        }
        if publish.payload.as_ref() != nonce.as_bytes() {
            return;
        }
        let previous = stored.take().unwrap_or_default();
        let stale = stale_subscriptions(&previous, &self.subscriptions);
        for subscription in stale {
            tracing::info!(%subscription, "unsubscribing a filter no longer configured");
            self.shared.metrics.filters_removed.inc();
            self.request(Purpose::StaleUnsubscribe, |client| {
                client
                    .try_unsubscribe(subscription)
                    .map_err(|e| e.to_string())
            });
        }
        let topic = self.state_topic.clone();
        self.request(Purpose::StateUnsubscribe, |client| {
            client.try_unsubscribe(topic).map_err(|e| e.to_string())
        });
        if previous == self.subscriptions {
            self.sync = FilterSync::Done;
        } else {
            // Serializing a list of strings cannot fail.
            let payload = serde_json::to_vec(&self.subscriptions).unwrap_or_default();
            self.publish(PublishPurpose::StoreFilters, true, payload);
            self.sync = FilterSync::AwaitingStore;
        }
    }

    /// Forget the connection: bump the generation and purge queued acks under the tracker lock,
    /// and drop packets read from the dead connection (the broker redelivers them).
    fn drop_connection(&mut self) {
        {
            let mut tracker = self.shared.tracker();
            tracker.next_generation();
            self.eventloop.clean();
            self.eventloop.state.events.clear();
            // Subscriptions are re-issued at the next CONNACK; acks of the old connection must not
            // be replayed on the new one.
            self.eventloop.pending.retain(|request| {
                !matches!(
                    request,
                    Request::Subscribe(_)
                        | Request::Unsubscribe(_)
                        | Request::PubAck(_)
                        | Request::PubRec(_)
                )
            });
        }
        // Stale slots at the head can now be released without an ack.
        self.shared.head_ready.notify_one();
        self.sent.clear();
        self.by_pkid.clear();
        self.publishes_sent.clear();
        self.publishes_by_pkid.clear();
        if self.sync != FilterSync::Done {
            self.sync = FilterSync::Pending;
        }
        if let Some(drain) = &mut self.drain {
            drain.unsubscribed_on_this_connection = false;
            drain.unsubacks_pending = 0;
            drain.disconnect_sent = false;
        }
        if self.connected {
            self.shared.metrics.mqtt_reconnects.inc();
        }
        self.connected = false;
        self.shared.set_mqtt_connected(false);
    }

    async fn on_connection_error(&mut self, error: &ConnectionError) {
        let was_connected = self.connected;
        self.drop_connection();
        let mut delay = self.backoff.next_delay();
        if self.drain.is_some() {
            // A drain has seconds, not minutes: reconnect quickly to unsubscribe and ack.
            delay = delay.min(DRAIN_RECONNECT_DELAY);
        }
        if was_connected {
            tracing::warn!(%error, ?delay, "MQTT connection lost; reconnecting");
        } else {
            tracing::warn!(%error, ?delay, "cannot connect to MQTT; retrying");
        }
        sleep_with_heartbeat(&self.shared, delay).await;
    }

    /// A record failed for good: nothing behind it may be acknowledged on this connection. A new
    /// connection lets the broker redeliver everything unacknowledged, the failed message included.
    async fn force_reconnect(&mut self) {
        if self
            .last_forced_reconnect
            .is_some_and(|at| at.elapsed() > Duration::from_secs(60))
        {
            self.failure_backoff.reset();
        }
        self.last_forced_reconnect = Some(Instant::now());
        let delay = self.failure_backoff.next_delay();
        tracing::warn!(
            ?delay,
            "delivery failed; reconnecting to MQTT so the broker redelivers"
        );
        self.drop_connection();
        sleep_with_heartbeat(&self.shared, delay).await;
    }

    fn start_drain(&mut self, drain_timeout: Duration) {
        let deadline = Instant::now() + drain_timeout.saturating_sub(DRAIN_MARGIN);
        tracing::info!(
            ?drain_timeout,
            in_flight = self.shared.tracker().len(),
            "draining: unsubscribing shared filters"
        );
        self.drain = Some(Drain {
            deadline,
            unsubscribed_on_this_connection: false,
            unsubacks_pending: 0,
            last_message: Instant::now(),
            disconnect_sent: false,
        });
        // Wake-ups during the drain, so its quiet period and deadline are noticed.
        let waker = self.waker();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(DRAIN_TICK).await;
                waker.wake();
            }
        });
    }

    /// True when the loop should stop (the drain ended without a connection to disconnect).
    fn drain_step(&mut self) -> bool {
        let connected = self.connected;
        let in_flight = self.shared.tracker().len();
        let all_acknowledged = self.shared.all_acknowledged();
        let subscriptions = self.subscriptions.clone();
        let Some(drain) = &mut self.drain else {
            return false;
        };
        if drain.disconnect_sent {
            return false;
        }
        let timed_out = Instant::now() >= drain.deadline;
        if !connected {
            if timed_out {
                tracing::warn!(in_flight, "drain timed out while disconnected");
                return true;
            }
            return false;
        }
        if !drain.unsubscribed_on_this_connection {
            drain.unsubscribed_on_this_connection = true;
            drain.unsubacks_pending = subscriptions.len();
            drain.last_message = Instant::now();
            for subscription in subscriptions {
                self.request(Purpose::DrainUnsubscribe, |client| {
                    client
                        .try_unsubscribe(subscription)
                        .map_err(|e| e.to_string())
                });
            }
            return false;
        }
        let quiet = drain.last_message.elapsed() >= DRAIN_QUIET;
        let done = drain.unsubacks_pending == 0 && all_acknowledged && quiet;
        if done || timed_out {
            if timed_out && !done {
                tracing::warn!(
                    in_flight,
                    "drain timed out; the broker redelivers the unacknowledged rest"
                );
            }
            drain.disconnect_sent = true;
            if self.client.try_disconnect().is_err() {
                return true;
            }
        }
        false
    }
}

/// Holds the loop while the in-flight window is full. QoS 1 traffic rarely gets here (the
/// receive maximum is at most the window); QoS 0 floods and redeliveries after a reconnect do.
async fn take_window_place(shared: &Shared) {
    // The common case, without arming a timer.
    if let Ok(permit) = shared.window.try_acquire() {
        permit.forget();
        return;
    }
    loop {
        match tokio::time::timeout(Duration::from_secs(1), shared.window.acquire()).await {
            Ok(Ok(permit)) => {
                permit.forget();
                return;
            }
            Ok(Err(_closed)) => return,
            Err(_elapsed) => shared.heartbeat(),
        }
    }
}

async fn sleep_with_heartbeat(shared: &Shared, delay: Duration) {
    let until = Instant::now() + delay;
    while Instant::now() < until {
        tokio::time::sleep((until - Instant::now()).min(Duration::from_secs(5))).await;
        shared.heartbeat();
    }
}

/// A PUBACK (or PUBREC) request for `token`; rumqttc reads only the QoS and packet id.
fn ack_publish(token: AckToken) -> Publish {
    let mut publish = Publish::new(String::new(), token.qos, Bytes::new(), None);
    publish.pkid = token.pkid;
    publish
}

/// Releases acknowledgements in arrival order as Kafka completes messages, and returns their
/// places in the in-flight window.
pub async fn run_acknowledger(
    shared: Arc<Shared>,
    client: AsyncClient,
    reconnect_requested: Arc<AtomicBool>,
    waker: Waker,
) {
    let mut released: Vec<Release> = Vec::with_capacity(1024);
    let mut queued: VecDeque<(u64, AckToken)> = VecDeque::new();
    let mut blocked_generation = None;
    loop {
        if queued.is_empty() {
            shared.head_ready.notified().await;
        } else {
            // The request channel was full; try again shortly.
            let _ =
                tokio::time::timeout(Duration::from_millis(2), shared.head_ready.notified()).await;
        }
        let (blocked, generation, in_flight) = {
            let mut tracker = shared.tracker();
            let blocked = tracker.release(&mut released);
            let generation = tracker.generation();
            for release in &released {
                match release.outcome {
                    Released::Ack(token) => queued.push_back((generation, token)),
                    Released::NoAck => {}
                    Released::Stale => {
                        shared.metrics.stale_acks_dropped.inc();
                    }
                }
            }
            // Queued under the lock: the MQTT loop changes connections under it too.
            while let Some(&(ack_generation, token)) = queued.front() {
                if ack_generation != generation {
                    queued.pop_front();
                    shared.metrics.stale_acks_dropped.inc();
                    continue;
                }
                if client.try_ack(&ack_publish(token)).is_err() {
                    break;
                }
                queued.pop_front();
                shared.metrics.acked.inc();
            }
            shared.set_acks_waiting(queued.len());
            (blocked, generation, tracker.len())
        };
        shared.window.add_permits(released.len());
        released.clear();
        shared
            .metrics
            .in_flight
            .set(i64::try_from(in_flight).unwrap_or(i64::MAX));
        if blocked && blocked_generation != Some(generation) {
            blocked_generation = Some(generation);
            reconnect_requested.store(true, Ordering::SeqCst);
            waker.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_subscriptions_are_the_stored_ones_no_longer_configured() {
        let stored = vec![
            "$share/g/a/#".to_owned(),
            "$share/g/b/#".to_owned(),
            "$share/old/a/#".to_owned(),
        ];
        let configured = vec!["$share/g/a/#".to_owned(), "$share/g/c/#".to_owned()];
        assert_eq!(
            stale_subscriptions(&stored, &configured),
            vec!["$share/g/b/#", "$share/old/a/#"]
        );
        assert!(stale_subscriptions(&[], &configured).is_empty());
    }

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(800));
        let delays: Vec<_> = (0..6).map(|_| backoff.next_delay()).collect();
        for (delay, base) in delays.iter().zip([100u64, 200, 400, 800, 800, 800]) {
            assert!(
                *delay >= Duration::from_millis(base / 2) && *delay <= Duration::from_millis(base),
                "{delay:?} vs {base}"
            );
        }
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(100));
    }

    #[test]
    fn ack_request_carries_packet_id_and_qos() {
        let publish = ack_publish(AckToken {
            pkid: 77,
            qos: QoS::AtLeastOnce,
        });
        assert_eq!((publish.pkid, publish.qos), (77, QoS::AtLeastOnce));
    }

    #[test]
    fn shared_subscription_form() {
        assert_eq!(
            crate::config::shared_subscription("g", "ehs/+/+/telemetry"),
            "$share/g/ehs/+/+/telemetry"
        );
    }
}
