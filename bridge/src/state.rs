//! State shared by the MQTT loop, the Kafka delivery thread, the acknowledger and the HTTP server.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, Semaphore};

use crate::acks::AckTracker;
use crate::metrics::Metrics;

/// How long a Kafka metadata answer counts as "recent" for readiness.
pub const KAFKA_FRESHNESS: Duration = Duration::from_secs(15);
/// The MQTT loop reports in at least this often (keep-alive pings, window waits, drain ticks).
pub const LOOP_STALL_LIMIT: Duration = Duration::from_secs(90);

#[derive(Debug)]
pub struct Shared {
    tracker: Mutex<AckTracker>,
    /// Woken when the head slot may be releasable or a release is due.
    pub head_ready: Notify,
    /// Free places in the in-flight window; a message takes one, the acknowledger returns it.
    pub window: Semaphore,
    pub metrics: Metrics,
    started: Instant,
    mqtt_connected: AtomicBool,
    mqtt_subscribed: AtomicBool,
    draining: AtomicBool,
    /// Milliseconds since `started` (+1, so 0 means never).
    kafka_ok_at: AtomicU64,
    loop_heartbeat: AtomicU64,
    tasks_failed: AtomicBool,
    /// Acks released from the tracker but not yet handed to the MQTT client.
    acks_waiting: AtomicUsize,
}

impl Shared {
    pub fn new(max_in_flight: usize) -> Self {
        Self {
            tracker: Mutex::new(AckTracker::new()),
            head_ready: Notify::new(),
            window: Semaphore::new(max_in_flight),
            metrics: Metrics::new(),
            started: Instant::now(),
            mqtt_connected: AtomicBool::new(false),
            mqtt_subscribed: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            kafka_ok_at: AtomicU64::new(0),
            loop_heartbeat: AtomicU64::new(1),
            tasks_failed: AtomicBool::new(false),
            acks_waiting: AtomicUsize::new(0),
        }
    }

    /// The tracker lock also orders acknowledgements against connection changes: the MQTT loop
    /// bumps the generation and purges queued acks under it, and the acknowledger checks the
    /// generation and queues acks under it.
    pub fn tracker(&self) -> MutexGuard<'_, AckTracker> {
        // A panic while holding the lock leaves the tracker consistent (every method completes
        // its update before returning), so a poisoned lock is safe to keep using.
        self.tracker
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn elapsed_stamp(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX - 1) + 1
    }

    fn fresh(&self, stamp: &AtomicU64, limit: Duration) -> bool {
        let at = stamp.load(Ordering::Relaxed);
        at != 0
            && self.elapsed_stamp().saturating_sub(at)
                <= u64::try_from(limit.as_millis()).unwrap_or(u64::MAX)
    }

    pub fn set_mqtt_connected(&self, connected: bool) {
        self.mqtt_connected.store(connected, Ordering::Relaxed);
        self.metrics.mqtt_connected.set(i64::from(connected));
        if !connected {
            self.set_mqtt_subscribed(false);
        }
    }

    pub fn set_mqtt_subscribed(&self, subscribed: bool) {
        self.mqtt_subscribed.store(subscribed, Ordering::Relaxed);
        self.metrics.mqtt_subscribed.set(i64::from(subscribed));
    }

    pub fn kafka_answered(&self) {
        self.kafka_ok_at
            .store(self.elapsed_stamp(), Ordering::Relaxed);
        self.metrics.kafka_connected.set(1);
    }

    pub fn kafka_silent(&self) {
        if !self.fresh(&self.kafka_ok_at, KAFKA_FRESHNESS) {
            self.metrics.kafka_connected.set(0);
        }
    }

    pub fn heartbeat(&self) {
        self.loop_heartbeat
            .store(self.elapsed_stamp(), Ordering::Relaxed);
    }

    pub fn task_failed(&self) {
        self.tasks_failed.store(true, Ordering::Relaxed);
    }

    pub fn set_acks_waiting(&self, count: usize) {
        self.acks_waiting.store(count, Ordering::SeqCst);
    }

    /// Nothing taken is left unacknowledged: no slot in the tracker, no ack waiting to be queued.
    pub fn all_acknowledged(&self) -> bool {
        self.tracker().is_empty() && self.acks_waiting.load(Ordering::SeqCst) == 0
    }

    pub fn start_draining(&self) -> bool {
        !self.draining.swap(true, Ordering::SeqCst)
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Ready to take traffic: connected and subscribed to MQTT, Kafka answering, not draining.
    pub fn readiness(&self) -> Result<(), &'static str> {
        if self.is_draining() {
            return Err("draining");
        }
        if !self.mqtt_connected.load(Ordering::Relaxed) {
            return Err("mqtt not connected");
        }
        if !self.mqtt_subscribed.load(Ordering::Relaxed) {
            return Err("mqtt subscriptions not granted");
        }
        if !self.fresh(&self.kafka_ok_at, KAFKA_FRESHNESS) {
            return Err("kafka unreachable or a topic missing");
        }
        Ok(())
    }

    /// Alive: no task died and the MQTT loop is turning.
    pub fn liveness(&self) -> Result<(), &'static str> {
        if self.tasks_failed.load(Ordering::Relaxed) {
            return Err("a bridge task stopped");
        }
        if !self.fresh(&self.loop_heartbeat, LOOP_STALL_LIMIT) {
            return Err("mqtt loop stalled");
        }
        Ok(())
    }
}
