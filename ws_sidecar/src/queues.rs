//! Bounded queues with drop counters, and a bounded de-duplication set.

use std::collections::{HashSet, VecDeque};
use std::hash::Hash;

/// A FIFO that keeps at most `cap` items; when full, the oldest item is dropped and counted.
#[derive(Debug)]
pub struct Bounded<T> {
    cap: usize,
    items: VecDeque<T>,
    pub dropped: u64,
    pub pushed: u64,
}

impl<T> Bounded<T> {
    pub fn new(cap: usize) -> Self {
        Bounded { cap: cap.max(1), items: VecDeque::new(), dropped: 0, pushed: 0 }
    }

    pub fn push(&mut self, item: T) {
        if self.items.len() >= self.cap {
            self.items.pop_front();
            self.dropped += 1;
        }
        self.items.push_back(item);
        self.pushed += 1;
    }

    pub fn drain(&mut self, max: usize) -> Vec<T> {
        let n = max.min(self.items.len());
        self.items.drain(..n).collect()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// Remembers the last `cap` keys; `insert` says whether a key is new.
#[derive(Debug)]
pub struct Dedupe<K: Hash + Eq + Clone> {
    cap: usize,
    set: HashSet<K>,
    order: VecDeque<K>,
    pub duplicates: u64,
}

impl<K: Hash + Eq + Clone> Dedupe<K> {
    pub fn new(cap: usize) -> Self {
        Dedupe { cap: cap.max(1), set: HashSet::new(), order: VecDeque::new(), duplicates: 0 }
    }

    pub fn insert(&mut self, k: K) -> bool {
        if self.set.contains(&k) {
            self.duplicates += 1;
            return false;
        }
        if self.order.len() >= self.cap {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        self.set.insert(k.clone());
        self.order.push_back(k);
        true
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bounded_drops_oldest() {
        let mut q = Bounded::new(3);
        for i in 0..5 {
            q.push(i);
        }
        assert_eq!(q.len(), 3);
        assert_eq!(q.dropped, 2);
        assert_eq!(q.drain(2), vec![2, 3]);
        assert_eq!(q.drain(10), vec![4]);
        assert!(q.is_empty());
    }

    #[test]
    fn dedupe() {
        let mut d = Dedupe::new(2);
        assert!(d.insert(("h".to_string(), 1)));
        assert!(!d.insert(("h".to_string(), 1)));
        assert!(d.insert(("h".to_string(), 2)));
        assert!(d.insert(("h".to_string(), 3)));
        assert_eq!(d.len(), 2);
        assert!(d.insert(("h".to_string(), 1)), "evicted keys are forgotten");
        assert_eq!(d.duplicates, 1);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]
        #[test]
        fn queue_never_exceeds_cap(cap in 1usize..50, ops in proptest::collection::vec(0u8..4, 0..300)) {
            let mut q = Bounded::new(cap);
            let mut total = 0u64;
            let mut drained = 0u64;
            for op in ops {
                if op == 0 { drained += q.drain(3).len() as u64; } else { q.push(op); total += 1; }
                prop_assert!(q.len() <= cap);
            }
            prop_assert_eq!(q.pushed, total);
            prop_assert_eq!(total, drained + q.dropped + q.len() as u64);
        }
    }
}
