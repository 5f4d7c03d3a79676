//! A work queue of keys, as client-go's rate-limited work queue: a key is
//! queued at most once however often it is added, is never handed to two
//! workers at once (an add while it is processed queues it again once the
//! worker is done), and can be added after a delay: the backoff of a failed
//! key, or the next look at a key waiting on something else.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::time::Instant;

/// Growth of a key's delay: `base * 2^n` after its `n`th failure or
/// requeue in a row, never above `cap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Backoff {
    /// The first delay.
    pub base: Duration,
    /// The longest delay.
    pub cap: Duration,
}

impl Backoff {
    /// The delay after `n` earlier attempts.
    pub fn delay(self, n: u32) -> Duration {
        let factor = 1u32.checked_shl(n.min(20)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }
}

/// How failing keys are retried.
const FAILURE_BACKOFF: Backoff = Backoff {
    base: Duration::from_millis(10),
    cap: Duration::from_secs(10),
};
/// After this many failures in a row a key is dropped until an event adds
/// it again (kube-controller-manager gives up after 15).
const MAX_FAILURES: u32 = 16;

#[derive(Debug)]
struct State<K> {
    ready: VecDeque<K>,
    /// Keys to process: in `ready`, or to be put there when their worker
    /// is done.
    dirty: HashSet<K>,
    processing: HashSet<K>,
    /// Keys added with a delay, by when they are due (and a sequence
    /// number, so that equal instants keep their order).
    delayed: BTreeMap<(Instant, u64), K>,
    due: HashMap<K, (Instant, u64)>,
    seq: u64,
    failures: HashMap<K, u32>,
    requeues: HashMap<K, u32>,
}

impl<K: Clone + Eq + Hash> State<K> {
    fn new() -> Self {
        State {
            ready: VecDeque::new(),
            dirty: HashSet::new(),
            processing: HashSet::new(),
            delayed: BTreeMap::new(),
            due: HashMap::new(),
            seq: 0,
            failures: HashMap::new(),
            requeues: HashMap::new(),
        }
    }

    fn add(&mut self, key: K) -> bool {
        if !self.dirty.insert(key.clone()) {
            return false;
        }
        if self.processing.contains(&key) {
            return false;
        }
        self.ready.push_back(key);
        true
    }

    fn add_at(&mut self, key: K, at: Instant) {
        if let Some(&(when, seq)) = self.due.get(&key) {
            if when <= at {
                return;
            }
            self.delayed.remove(&(when, seq));
        }
        self.seq += 1;
        self.delayed.insert((at, self.seq), key.clone());
        self.due.insert(key, (at, self.seq));
    }

    /// Moves due keys to `ready`.
    fn promote(&mut self, now: Instant) {
        while let Some(entry) = self.delayed.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let key = entry.remove();
            self.due.remove(&key);
            self.add(key);
        }
    }

    fn pop(&mut self, now: Instant) -> Option<K> {
        self.promote(now);
        let key = self.ready.pop_front()?;
        self.dirty.remove(&key);
        self.processing.insert(key.clone());
        Some(key)
    }

    fn done(&mut self, key: &K) -> bool {
        self.processing.remove(key);
        if self.dirty.contains(key) {
            self.ready.push_back(key.clone());
            return true;
        }
        false
    }

    fn next_due(&self) -> Option<Instant> {
        self.delayed.first_key_value().map(|((at, _), _)| *at)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.dirty.len() + self.due.len()
    }
}

/// The queue; share it behind an `Arc`.
#[derive(Debug)]
pub(super) struct WorkQueue<K> {
    state: Mutex<State<K>>,
    wake: Notify,
}

impl<K: Clone + Eq + Hash> WorkQueue<K> {
    /// An empty queue.
    pub fn new() -> Self {
        WorkQueue {
            state: Mutex::new(State::new()),
            wake: Notify::new(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State<K>> {
        // The state stays consistent between statements, so a panic in
        // another holder leaves nothing half done.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `key` (once, however often it is added before a worker takes it).
    pub fn add(&self, key: K) {
        if self.state().add(key) {
            self.wake.notify_one();
        }
    }

    /// Queues every key.
    pub fn add_all(&self, keys: impl IntoIterator<Item = K>) {
        let mut added = false;
        {
            let mut state = self.state();
            for key in keys {
                added |= state.add(key);
            }
        }
        if added {
            self.wake.notify_one();
        }
    }

    /// Queues `key` once `delay` has passed (an earlier pending add wins).
    pub fn add_after(&self, key: K, delay: Duration) {
        if delay.is_zero() {
            return self.add(key);
        }
        self.state().add_at(key, Instant::now() + delay);
        // A worker sleeping until a later deadline must recompute it.
        self.wake.notify_one();
    }

    /// The next key to process, taken from the queue until [`WorkQueue::done`];
    /// `None` once `shutdown` turns true.
    pub async fn next(&self, shutdown: &mut watch::Receiver<bool>) -> Option<K> {
        loop {
            if *shutdown.borrow() {
                return None;
            }
            let due = {
                let mut state = self.state();
                if let Some(key) = state.pop(Instant::now()) {
                    if !state.ready.is_empty() {
                        // Another worker may take the rest.
                        self.wake.notify_one();
                    }
                    return Some(key);
                }
                state.next_due()
            };
            let sleep = async {
                match due {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = crate::server::stopped(shutdown) => return None,
                () = self.wake.notified() => {}
                () = sleep => {}
            }
        }
    }

    /// Marks `key` processed; if it was added meanwhile it is queued again.
    pub fn done(&self, key: &K) {
        if self.state().done(key) {
            self.wake.notify_one();
        }
    }

    /// The key was processed successfully: its failure and requeue counts
    /// start over.
    pub fn forget(&self, key: &K) {
        let mut state = self.state();
        state.failures.remove(key);
        state.requeues.remove(key);
    }

    /// Processing `key` failed: it is queued again after a growing delay,
    /// or dropped after [`MAX_FAILURES`] failures in a row (returns false).
    pub fn retry(&self, key: K) -> bool {
        let delay = {
            let mut state = self.state();
            let n = state.failures.entry(key.clone()).or_insert(0);
            *n += 1;
            if *n >= MAX_FAILURES {
                state.failures.remove(&key);
                return false;
            }
            FAILURE_BACKOFF.delay(*n - 1)
        };
        self.add_after(key, delay);
        true
    }

    /// `key` waits on something that events do not announce (a namespace
    /// being emptied): look again after a delay growing up to `backoff.cap`.
    pub fn requeue(&self, key: K, backoff: Backoff) {
        let delay = {
            let mut state = self.state();
            let n = state.requeues.entry(key.clone()).or_insert(0);
            *n = n.saturating_add(1);
            backoff.delay(*n - 1)
        };
        self.add_after(key, delay);
    }

    /// Keys queued or waiting for their delay (not those being processed).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.state().len()
    }

    /// Takes the next key due by `now` without waiting (tests drive the
    /// queue with it).
    #[cfg(test)]
    pub fn try_next(&self, now: Instant) -> Option<K> {
        self.state().pop(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_added_twice_is_processed_once() {
        let q = WorkQueue::new();
        q.add("a");
        q.add("b");
        q.add("a");
        let now = Instant::now();
        assert_eq!(q.try_next(now), Some("a"));
        assert_eq!(q.try_next(now), Some("b"));
        assert_eq!(q.try_next(now), None);
    }

    #[test]
    fn a_key_added_while_processed_comes_back_after_done() {
        let q = WorkQueue::new();
        q.add("a");
        let now = Instant::now();
        assert_eq!(q.try_next(now), Some("a"));
        q.add("a");
        // Not handed out again while a worker holds it.
        assert_eq!(q.try_next(now), None);
        q.done(&"a");
        assert_eq!(q.try_next(now), Some("a"));
        q.done(&"a");
        assert_eq!(q.try_next(now), None);
    }

    #[test]
    fn delayed_keys_wait_and_the_earliest_add_wins() {
        let q = WorkQueue::new();
        let before = Instant::now();
        q.add_after("a", Duration::from_millis(100));
        q.add_after("a", Duration::from_millis(500));
        q.add_after("b", Duration::from_millis(50));
        let after = Instant::now();
        assert_eq!(q.try_next(before), None);
        assert_eq!(q.try_next(after + Duration::from_millis(60)), Some("b"));
        assert_eq!(q.try_next(after + Duration::from_millis(60)), None);
        assert_eq!(q.try_next(after + Duration::from_millis(100)), Some("a"));
        // The later add was merged into the earlier one.
        assert_eq!(q.try_next(after + Duration::from_secs(1)), None);
    }

    #[test]
    fn failures_back_off_and_are_dropped_after_the_limit() {
        let q = WorkQueue::new();
        let mut delays = Vec::new();
        for n in 0..MAX_FAILURES - 1 {
            let before = Instant::now();
            assert!(q.retry("k"));
            let expected = FAILURE_BACKOFF.delay(n);
            assert_eq!(q.try_next(before + expected / 2), None);
            let k = q
                .try_next(Instant::now() + expected)
                .expect("due after its backoff");
            q.done(&k);
            delays.push(expected);
        }
        assert_eq!(delays[0], Duration::from_millis(10));
        assert_eq!(delays[1], Duration::from_millis(20));
        assert_eq!(*delays.last().unwrap(), FAILURE_BACKOFF.cap);
        assert!(!q.retry("k"), "dropped after {MAX_FAILURES} failures");
        assert_eq!(q.len(), 0);
        // Success resets the count.
        assert!(q.retry("k"));
        q.forget(&"k");
        for _ in 0..MAX_FAILURES - 1 {
            assert!(q.retry("k"));
        }
    }

    #[tokio::test]
    async fn next_waits_for_a_delayed_key_and_stops_on_shutdown() {
        let q = std::sync::Arc::new(WorkQueue::new());
        let (tx, mut rx) = watch::channel(false);
        let started = Instant::now();
        q.add_after("late", Duration::from_millis(50));
        assert_eq!(q.next(&mut rx).await, Some("late"));
        assert!(started.elapsed() >= Duration::from_millis(50));
        let waiter = {
            let q = q.clone();
            let mut rx = rx.clone();
            tokio::spawn(async move { q.next(&mut rx).await })
        };
        tx.send(true).unwrap();
        assert_eq!(waiter.await.unwrap(), None);
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let b = Backoff {
            base: Duration::from_millis(50),
            cap: Duration::from_secs(1),
        };
        assert_eq!(b.delay(0), Duration::from_millis(50));
        assert_eq!(b.delay(3), Duration::from_millis(400));
        assert_eq!(b.delay(5), Duration::from_secs(1));
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(1));
    }
}
