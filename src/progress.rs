//! Progress reporting: the library ticks a [`Progress`]; only the command line draws a bar
//! (an indicatif bar, in `cmd/bar.rs`).

/// Something that wants to hear about progress. Implementations must be cheap and thread-safe.
pub trait Progress: Sync {
    /// `n` more units done.
    fn inc(&self, n: u64);
}

/// Progress nobody watches (tests, non-terminal stderr, JSON runs into pipes).
#[derive(Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn inc(&self, _n: u64) {}
}
