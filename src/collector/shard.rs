//! Horizontal sharding: each replica keeps the queues whose id hashes to its shard (kube-state-metrics style).
//!
//! FNV-1a 64 of the queue id, then Lamping–Veach jump consistent hash onto the shard count: stable across restarts
//! and independent of which other queues exist, so one shard's restart never moves queues between the others.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub total: u32,
}

impl Shard {
    /// One replica owns everything.
    pub const ALL: Shard = Shard { index: 0, total: 1 };

    pub fn new(index: u32, total: u32) -> Self {
        Shard { index, total: total.max(1) }
    }

    pub fn owns(&self, queue_id: &str) -> bool {
        self.total <= 1 || jump_hash(fnv1a64(queue_id.as_bytes()), self.total) == self.index
    }
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Jump consistent hash (Lamping & Veach, 2014).
fn jump_hash(mut key: u64, buckets: u32) -> u32 {
    let (mut b, mut j): (i64, i64) = (-1, 0);
    while j < i64::from(buckets) {
        b = j;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        j = ((b + 1) as f64 * ((1u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
    }
    b as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_queue_has_exactly_one_owner_and_load_is_even() {
        let ids: Vec<String> = (0..3000).map(|i| format!("{i:08x}-aaaa-bbbb-cccc-{i:012x}")).collect();
        let shards: Vec<Shard> = (0..3).map(|i| Shard::new(i, 3)).collect();
        let mut counts = [0usize; 3];
        for id in &ids {
            let owners: Vec<_> = shards.iter().filter(|s| s.owns(id)).collect();
            assert_eq!(owners.len(), 1, "{id}");
            counts[owners[0].index as usize] += 1;
        }
        for c in counts {
            assert!((800..1200).contains(&c), "{counts:?}");
        }
    }

    #[test]
    fn one_replica_owns_all() {
        assert!(Shard::ALL.owns("anything"));
    }

    #[test]
    fn growing_moves_only_to_the_new_shard() {
        for i in 0..500 {
            let id = format!("queue-{i}");
            let before = (0..4).find(|&s| Shard::new(s, 4).owns(&id)).unwrap();
            let after = (0..5).find(|&s| Shard::new(s, 5).owns(&id)).unwrap();
            assert!(after == before || after == 4);
        }
    }
}
