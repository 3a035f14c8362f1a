//! Topic messages held back while a complete REST read of their queue is in flight, so that the read (which may
//! have been answered before them) lands first and they are applied after it: topic messages are deltas sent only
//! on change, so a read landing over a newer one would stand until the queue's next change.
//!
//! Kept per queue, because a channel can have several reads in flight at once (a re-seed of added queues during a
//! reconcile, a re-seed retry): a message waits until every read covering its queue has ended, and only for those.

use crate::genesys::decode::Decoded;
use std::collections::HashMap;

/// Messages held back at most (all queues). Past this they are applied at once: a rare, tiny race is better than
/// unbounded memory.
const MAX_HELD_BACK: usize = 100_000;

#[derive(Default)]
pub struct HoldBack {
    /// Reads in flight per queue.
    reading: HashMap<String, usize>,
    /// Messages per queue, in arrival order.
    held: HashMap<String, Vec<Decoded>>,
    total: usize,
}

impl HoldBack {
    /// A complete read of `ids` is about to be asked for.
    pub fn begin(&mut self, ids: &[String]) {
        for id in ids {
            *self.reading.entry(id.clone()).or_default() += 1;
        }
    }

    /// Keep `d` if a read of its queue is in flight; otherwise (or when full) hand it back to be applied now.
    pub fn hold(&mut self, d: Decoded) -> Option<Decoded> {
        if self.total >= MAX_HELD_BACK || !self.reading.contains_key(&d.update.queue_id) {
            return Some(d);
        }
        self.total += 1;
        self.held.entry(d.update.queue_id.clone()).or_default().push(d);
        None
    }

    /// The read of `ids` begun earlier has landed (or failed). Returns the messages to apply now: those of the
    /// queues no other read covers any more, each queue's in arrival order.
    pub fn end(&mut self, ids: &[String]) -> Vec<Decoded> {
        let mut out = Vec::new();
        for id in ids {
            let Some(n) = self.reading.get_mut(id) else { continue };
            *n -= 1;
            if *n == 0 {
                self.reading.remove(id);
                if let Some(msgs) = self.held.remove(id) {
                    self.total -= msgs.len();
                    out.extend(msgs);
                }
            }
        }
        out
    }

    /// Whether any read is in flight.
    pub fn reading(&self) -> bool {
        !self.reading.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{QueueUpdate, Source};

    fn msg(queue: &str, event_ms: i64) -> Decoded {
        Decoded {
            update: QueueUpdate {
                queue_id: queue.to_owned(),
                source: Source::Stream,
                event_ms: Some(event_ms),
                complete: false,
                groups: vec![],
            },
            unknown_metrics: vec![],
            bad_metrics: vec![],
        }
    }

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    fn events(v: &[Decoded]) -> Vec<(String, i64)> {
        v.iter().map(|d| (d.update.queue_id.clone(), d.update.event_ms.unwrap_or(0))).collect()
    }

    #[test]
    fn a_message_waits_for_every_read_of_its_queue_and_only_those() {
        let mut h = HoldBack::default();
        assert!(h.hold(msg("a", 1)).is_some(), "no read in flight: applied at once");
        // A reconcile of a and b, then a re-seed of the added queue c (and a retry of a's) while it is in flight.
        h.begin(&ids(&["a", "b"]));
        h.begin(&ids(&["c", "a"]));
        assert!(h.hold(msg("a", 2)).is_none());
        assert!(h.hold(msg("b", 3)).is_none());
        assert!(h.hold(msg("c", 4)).is_none());
        assert!(h.hold(msg("d", 5)).is_some(), "a queue no read covers is not held");
        assert!(h.hold(msg("a", 6)).is_none());
        // The reconcile lands first: b's message follows it; a's and c's wait for the re-seed still in flight.
        assert_eq!(events(&h.end(&ids(&["a", "b"]))), vec![("b".to_owned(), 3)]);
        assert!(h.reading());
        assert!(h.hold(msg("c", 7)).is_none(), "c's read is still in flight");
        assert!(h.hold(msg("b", 8)).is_some(), "b's read has landed");
        let mut out = events(&h.end(&ids(&["c", "a"])));
        out.sort_by_key(|(q, _)| q.clone());
        assert_eq!(out, vec![("a".into(), 2), ("a".into(), 6), ("c".into(), 4), ("c".into(), 7)]);
        assert!(!h.reading());
        assert_eq!(h.total, 0);
        assert!(h.end(&ids(&["a"])).is_empty(), "an unmatched end is harmless");
    }
}
