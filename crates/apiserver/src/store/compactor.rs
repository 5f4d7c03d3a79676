//! The compaction policy and the background task that applies it.

use std::collections::VecDeque;
use std::sync::Weak;
use std::time::Duration;

use tokio::time::Instant;

use super::types::Revision;

/// How much history to keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompactionWindow {
    /// Keep the last N revisions.
    Revisions(i64),
    /// Keep the revisions written during the last `Duration` (kube-apiserver
    /// compacts etcd every 5 minutes to the revision it saw 5 minutes before).
    Duration(Duration),
}

/// When the background compactor runs and what it keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompactionPolicy {
    /// The history to keep.
    pub window: CompactionWindow,
    /// How often the compactor looks.
    pub interval: Duration,
}

impl Default for CompactionPolicy {
    fn default() -> Self {
        CompactionPolicy {
            window: CompactionWindow::Duration(Duration::from_secs(300)),
            interval: Duration::from_secs(60),
        }
    }
}

/// Tracks which revision the window allows compacting to.
#[derive(Debug)]
pub(crate) struct WindowTracker {
    window: CompactionWindow,
    samples: VecDeque<(Instant, Revision)>,
}

impl WindowTracker {
    pub fn new(window: CompactionWindow) -> Self {
        WindowTracker {
            window,
            samples: VecDeque::new(),
        }
    }

    /// Records that `current` was the revision at `now`, and returns the revision
    /// history may be compacted to.
    pub fn target(&mut self, now: Instant, current: Revision) -> Revision {
        match self.window {
            CompactionWindow::Revisions(keep) => current.saturating_sub(keep.max(0)).max(0),
            CompactionWindow::Duration(keep) => {
                self.samples.push_back((now, current));
                let mut expired = None;
                while let Some(&sample) = self.samples.front() {
                    if now.saturating_duration_since(sample.0) < keep {
                        break;
                    }
                    expired = Some(sample);
                    self.samples.pop_front();
                }
                // The newest expired sample stays as the floor for later ticks:
                // compaction targets never go backwards.
                if let Some(sample) = expired {
                    self.samples.push_front(sample);
                }
                expired.map_or(0, |(_, revision)| revision)
            }
        }
    }
}

/// Runs until the store is dropped: every `interval`, compacts to the window's
/// target.
pub(crate) async fn run(store: Weak<super::Inner>, policy: CompactionPolicy) {
    let mut tracker = WindowTracker::new(policy.window);
    let mut ticks = tokio::time::interval(policy.interval.max(Duration::from_millis(1)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(inner) = store.upgrade() else {
            return;
        };
        let store = super::Store { inner };
        let target = tracker.target(Instant::now(), store.current_revision());
        if target > store.compacted_revision()
            && let Err(e) = store.compact(target).await
        {
            tracing::warn!(error = %e, target, "store compaction failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revision_window_keeps_the_last_n() {
        let mut tracker = WindowTracker::new(CompactionWindow::Revisions(100));
        let now = Instant::now();
        assert_eq!(tracker.target(now, 40), 0);
        assert_eq!(tracker.target(now, 250), 150);
    }

    #[test]
    fn duration_window_compacts_to_the_revision_seen_a_window_ago() {
        let mut tracker = WindowTracker::new(CompactionWindow::Duration(Duration::from_secs(300)));
        let t0 = Instant::now();
        assert_eq!(tracker.target(t0, 10), 0);
        assert_eq!(tracker.target(t0 + Duration::from_secs(120), 50), 0);
        assert_eq!(tracker.target(t0 + Duration::from_secs(300), 80), 10);
        assert_eq!(tracker.target(t0 + Duration::from_secs(360), 90), 10);
        assert_eq!(tracker.target(t0 + Duration::from_secs(420), 95), 50);
        assert_eq!(tracker.target(t0 + Duration::from_secs(1000), 95), 95);
    }
}
