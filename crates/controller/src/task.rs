//! Tasks tied to the scope that spawned them.

use tokio::task::JoinHandle;

/// Aborts its task when dropped, so a task ends with the one that owns it
/// (a remote's watches with its sync, the writer's watches with the writer).
pub(crate) struct AbortOnDrop(pub(crate) JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
