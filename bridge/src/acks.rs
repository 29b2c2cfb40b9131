//! Ordered end-to-end acknowledgements.
//!
//! Every MQTT message taken gets a slot, in PUBLISH arrival order, holding how many Kafka records
//! made from it are still undelivered. Slots leave only from the head, so acknowledgements go out
//! in arrival order even when Kafka confirms out of order (MQTT 5 §4.6). A failed slot at the head
//! stops all acknowledgements behind it. Slots carry the connection generation they arrived on:
//! the packet id of a message from an earlier connection means nothing on the current one, so its
//! ack is dropped and the broker redelivers the message.

use std::collections::VecDeque;
use std::time::Instant;

use rumqttc::v5::mqttbytes::QoS;

/// What is needed to acknowledge one QoS 1 message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckToken {
    pub pkid: u16,
    pub qos: QoS,
}

/// Position of a message in the arrival order; Kafka delivery reports carry it.
pub type Seq = usize;

#[derive(Debug)]
struct Slot {
    generation: u64,
    /// None for QoS 0 messages, which need no acknowledgement but still occupy the window.
    ack: Option<AckToken>,
    outstanding: u32,
    failed: bool,
    arrival: Instant,
}

/// What one delivery report changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// The head slot is complete: the acknowledger has work.
    pub head_ready: bool,
    /// The message is now fully delivered; it arrived at this instant.
    pub delivered_arrival: Option<Instant>,
}

/// A slot that left the head of the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Released {
    /// Delivered; send this ack on the current connection.
    Ack(AckToken),
    /// Delivered; QoS 0, nothing to send.
    NoAck,
    /// From an earlier connection: do not ack, the broker redelivers it.
    Stale,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Release {
    pub outcome: Released,
    pub arrival: Instant,
}

#[derive(Debug, Default)]
pub struct AckTracker {
    head: Seq,
    slots: VecDeque<Slot>,
    generation: u64,
}

impl AckTracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Messages taken and not yet released.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The connection changed: everything taken so far can no longer be acknowledged.
    pub fn next_generation(&mut self) -> u64 {
        self.generation += 1;
        self.generation
    }

    /// Registers a message whose `records` Kafka records are about to be produced.
    pub fn push(&mut self, ack: Option<AckToken>, records: u32, arrival: Instant) -> Seq {
        let seq = self.head.wrapping_add(self.slots.len());
        self.slots.push_back(Slot {
            generation: self.generation,
            ack,
            outstanding: records,
            failed: false,
            arrival,
        });
        seq
    }

    fn slot_mut(&mut self, seq: Seq) -> Option<&mut Slot> {
        let index = seq.checked_sub(self.head)?;
        self.slots.get_mut(index)
    }

    /// One record of `seq` was delivered.
    pub fn delivered(&mut self, seq: Seq) -> Progress {
        self.record_done(seq, false)
    }

    /// One record of `seq` failed for good.
    pub fn failed(&mut self, seq: Seq) -> Progress {
        self.record_done(seq, true)
    }

    fn record_done(&mut self, seq: Seq, failed: bool) -> Progress {
        let head = self.head;
        let Some(slot) = self.slot_mut(seq) else {
            return Progress::default();
        };
        slot.failed |= failed;
        slot.outstanding = slot.outstanding.saturating_sub(1);
        let complete = slot.outstanding == 0;
        Progress {
            head_ready: complete && seq == head,
            delivered_arrival: (complete && !slot.failed).then_some(slot.arrival),
        }
    }

    /// Releases complete slots from the head into `out`. Returns true when the head is a failed
    /// message of the current connection: nothing behind it may be acknowledged until the
    /// connection is replaced and the broker redelivers it.
    pub fn release(&mut self, out: &mut Vec<Release>) -> bool {
        while let Some(slot) = self.slots.front() {
            if slot.outstanding > 0 {
                return false;
            }
            let outcome = if slot.generation != self.generation {
                Released::Stale
            } else if slot.failed {
                return true;
            } else {
                slot.ack.map_or(Released::NoAck, Released::Ack)
            };
            out.push(Release {
                outcome,
                arrival: slot.arrival,
            });
            self.slots.pop_front();
            self.head = self.head.wrapping_add(1);
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(pkid: u16) -> Option<AckToken> {
        Some(AckToken {
            pkid,
            qos: QoS::AtLeastOnce,
        })
    }

    fn outcomes(tracker: &mut AckTracker) -> (Vec<Released>, bool) {
        let mut out = Vec::new();
        let blocked = tracker.release(&mut out);
        (out.into_iter().map(|r| r.outcome).collect(), blocked)
    }

    #[test]
    fn out_of_order_completions_release_in_arrival_order() {
        let now = Instant::now();
        let mut tracker = AckTracker::new();
        let a = tracker.push(token(1), 1, now);
        let b = tracker.push(token(2), 2, now);
        let c = tracker.push(token(3), 1, now);

        assert!(!tracker.delivered(c).head_ready, "c is not at the head");
        assert!(!tracker.delivered(b).head_ready);
        assert_eq!(
            outcomes(&mut tracker),
            (vec![], false),
            "a is still undelivered"
        );
        assert!(!tracker.delivered(b).head_ready, "b is not at the head yet");
        assert!(tracker.delivered(a).head_ready, "a completes the head");
        let (acks, blocked) = outcomes(&mut tracker);
        assert!(!blocked);
        assert_eq!(
            acks,
            vec![
                Released::Ack(AckToken {
                    pkid: 1,
                    qos: QoS::AtLeastOnce
                }),
                Released::Ack(AckToken {
                    pkid: 2,
                    qos: QoS::AtLeastOnce
                }),
                Released::Ack(AckToken {
                    pkid: 3,
                    qos: QoS::AtLeastOnce
                }),
            ]
        );
        assert!(tracker.is_empty());
    }

    #[test]
    fn multi_record_message_waits_for_all_records() {
        let mut tracker = AckTracker::new();
        let a = tracker.push(token(9), 3, Instant::now());
        assert!(!tracker.delivered(a).head_ready);
        assert!(!tracker.delivered(a).head_ready);
        assert_eq!(outcomes(&mut tracker).0, vec![]);
        assert!(tracker.delivered(a).head_ready);
        assert_eq!(outcomes(&mut tracker).0.len(), 1);
    }

    #[test]
    fn failure_blocks_later_acks() {
        let now = Instant::now();
        let mut tracker = AckTracker::new();
        let a = tracker.push(token(1), 1, now);
        let b = tracker.push(token(2), 1, now);
        let c = tracker.push(token(3), 1, now);
        tracker.delivered(a);
        tracker.failed(b);
        tracker.delivered(c);
        let (acks, blocked) = outcomes(&mut tracker);
        assert_eq!(
            acks,
            vec![Released::Ack(AckToken {
                pkid: 1,
                qos: QoS::AtLeastOnce
            })]
        );
        assert!(blocked, "b failed: c must not be acknowledged past it");
        assert_eq!(tracker.len(), 2);
        // Still blocked on a second look.
        assert_eq!(outcomes(&mut tracker), (vec![], true));
    }

    #[test]
    fn failed_record_among_several_still_fails_the_message() {
        let mut tracker = AckTracker::new();
        let a = tracker.push(token(1), 2, Instant::now());
        tracker.failed(a);
        tracker.delivered(a);
        assert_eq!(outcomes(&mut tracker), (vec![], true));
    }

    #[test]
    fn new_generation_drops_old_acks_and_unblocks() {
        let now = Instant::now();
        let mut tracker = AckTracker::new();
        let a = tracker.push(token(1), 1, now);
        let b = tracker.push(token(2), 1, now);
        tracker.failed(a);
        tracker.delivered(b);
        assert!(outcomes(&mut tracker).1);

        tracker.next_generation();
        let c = tracker.push(token(1), 1, now);
        tracker.delivered(c);
        let (acks, blocked) = outcomes(&mut tracker);
        assert!(!blocked);
        assert_eq!(
            acks,
            vec![
                Released::Stale,
                Released::Stale,
                Released::Ack(AckToken {
                    pkid: 1,
                    qos: QoS::AtLeastOnce
                })
            ],
            "pkid 1 of the old connection is never acknowledged on the new one"
        );
    }

    #[test]
    fn stale_slot_still_waits_for_its_records() {
        let now = Instant::now();
        let mut tracker = AckTracker::new();
        let a = tracker.push(token(5), 1, now);
        tracker.next_generation();
        let b = tracker.push(token(5), 1, now);
        tracker.delivered(b);
        assert_eq!(
            outcomes(&mut tracker).0,
            vec![],
            "the old record still holds its place in the window"
        );
        tracker.delivered(a);
        assert_eq!(
            outcomes(&mut tracker).0,
            vec![
                Released::Stale,
                Released::Ack(AckToken {
                    pkid: 5,
                    qos: QoS::AtLeastOnce
                })
            ]
        );
    }

    #[test]
    fn qos0_and_zero_record_messages() {
        let now = Instant::now();
        let mut tracker = AckTracker::new();
        tracker.push(None, 0, now);
        tracker.push(token(4), 0, now);
        assert_eq!(
            outcomes(&mut tracker).0,
            vec![
                Released::NoAck,
                Released::Ack(AckToken {
                    pkid: 4,
                    qos: QoS::AtLeastOnce
                })
            ]
        );
    }

    #[test]
    fn unknown_sequence_numbers_are_ignored() {
        let mut tracker = AckTracker::new();
        let a = tracker.push(token(1), 1, Instant::now());
        assert!(!tracker.delivered(a + 10).head_ready);
        assert!(tracker.delivered(a).head_ready);
        assert_eq!(outcomes(&mut tracker).0.len(), 1);
        assert!(!tracker.delivered(a).head_ready, "already released");
    }
}
