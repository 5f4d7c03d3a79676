//! The keyed writer's work queue: each key at most once in the queue and
//! never worked on twice at once; a key that failed waits out an exponential
//! backoff; a key that changes while it is being worked on runs again after.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::time::Duration;

use tokio::time::Instant;

/// The queue of keys to reconcile.
#[derive(Debug)]
pub struct Queue<Key> {
    ready: VecDeque<Key>,
    queued: HashSet<Key>,
    running: HashSet<Key>,
    again: HashSet<Key>,
    failures: HashMap<Key, u32>,
    timers: BTreeMap<(Instant, u64), Key>,
    scheduled: HashMap<Key, (Instant, u64)>,
    sequence: u64,
    base: Duration,
    max: Duration,
}

impl<Key: Clone + Eq + Hash> Queue<Key> {
    /// An empty queue whose backoff starts at `base` and doubles up to `max`.
    pub fn new(base: Duration, max: Duration) -> Self {
        Self {
            ready: VecDeque::new(),
            queued: HashSet::new(),
            running: HashSet::new(),
            again: HashSet::new(),
            failures: HashMap::new(),
            timers: BTreeMap::new(),
            scheduled: HashMap::new(),
            sequence: 0,
            base,
            max,
        }
    }

    /// Queues `key` now (a waiting retry is brought forward: what it waited
    /// for changed).
    pub fn add(&mut self, key: Key) {
        if let Some(at) = self.scheduled.remove(&key) {
            self.timers.remove(&at);
        }
        if self.running.contains(&key) {
            self.again.insert(key);
        } else if self.queued.insert(key.clone()) {
            self.ready.push_back(key);
        }
    }

    /// The next key to work on, now marked running.
    pub fn pop(&mut self) -> Option<Key> {
        let key = self.ready.pop_front()?;
        self.queued.remove(&key);
        self.running.insert(key.clone());
        Some(key)
    }

    /// Work on `key` ended; `ok` says whether it succeeded (a failure is
    /// retried after a backoff, unless the key changed meanwhile).
    pub fn done(&mut self, key: Key, ok: bool) {
        self.running.remove(&key);
        if ok {
            self.failures.remove(&key);
        }
        if self.again.remove(&key) {
            self.add(key);
            return;
        }
        if !ok {
            let failures = self.failures.entry(key.clone()).or_insert(0);
            *failures += 1;
            let delay = self
                .base
                .saturating_mul(1 << (*failures - 1).min(20))
                .min(self.max);
            self.schedule(key, Instant::now() + delay);
        }
    }

    /// Forgets the failures of `key` (it is no longer wanted, or was written).
    pub fn forget(&mut self, key: &Key) {
        self.failures.remove(key);
        if let Some(at) = self.scheduled.remove(key) {
            self.timers.remove(&at);
        }
    }

    fn schedule(&mut self, key: Key, at: Instant) {
        self.sequence += 1;
        let slot = (at, self.sequence);
        self.timers.insert(slot, key.clone());
        self.scheduled.insert(key, slot);
    }

    /// Moves the retries that are due to the ready queue.
    pub fn wake(&mut self, now: Instant) {
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let key = entry.remove();
            self.scheduled.remove(&key);
            self.add(key);
        }
    }

    /// When the next retry is due.
    pub fn next_retry(&self) -> Option<Instant> {
        self.timers.keys().next().map(|(at, _)| *at)
    }

    /// Keys failing now, with their count of failed attempts.
    pub fn failing(&self) -> usize {
        self.failures.len()
    }

    /// Whether nothing is queued, running or waiting.
    pub fn is_idle(&self) -> bool {
        self.ready.is_empty() && self.running.is_empty() && self.timers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn keys_are_deduplicated_and_never_run_twice_at_once() {
        let mut q = Queue::new(Duration::from_millis(100), Duration::from_secs(5));
        q.add("a");
        q.add("b");
        q.add("a");
        assert_eq!(q.pop(), Some("a"));
        // Changed while running: runs again after, not beside.
        q.add("a");
        assert_eq!(q.pop(), Some("b"));
        assert_eq!(q.pop(), None);
        q.done("a", true);
        assert_eq!(q.pop(), Some("a"));
    }

    #[tokio::test(start_paused = true)]
    async fn failures_back_off_exponentially_up_to_the_cap() {
        let mut q = Queue::new(Duration::from_millis(100), Duration::from_millis(350));
        let mut delays = Vec::new();
        q.add("a");
        for _ in 0..4 {
            let start = Instant::now();
            let key = q.pop().expect("due");
            q.done(key, false);
            let at = q.next_retry().expect("scheduled");
            delays.push(at - start);
            tokio::time::advance(at - start).await;
            q.wake(Instant::now());
        }
        assert_eq!(
            delays,
            [100, 200, 350, 350].map(Duration::from_millis).to_vec()
        );
        assert_eq!(q.failing(), 1);
        let key = q.pop().expect("due");
        q.done(key, true);
        assert_eq!(q.failing(), 0);
        assert!(q.is_idle());
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_brings_a_waiting_retry_forward() {
        let mut q = Queue::new(Duration::from_secs(10), Duration::from_secs(10));
        q.add("a");
        let key = q.pop().unwrap();
        q.done(key, false);
        assert_eq!(q.pop(), None, "waiting out its backoff");
        q.add("a");
        assert_eq!(q.pop(), Some("a"));
        assert_eq!(q.next_retry(), None);
    }
}
