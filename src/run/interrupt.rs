//! Stopping a running guest from another thread: a save or Ctrl-C.
//!
//! Wasm code is stopped by an epoch tick (the store's deadline is one tick away);
//! a guest asleep in the host is woken through a condition variable. The reason is
//! recorded before the tick so the report can say why the run stopped.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use wasmtime::Engine;

/// Why a run was stopped before it finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// A watched file changed: the next run replaces this one.
    Change,
    /// The user pressed Ctrl-C.
    CtrlC,
    /// The run took longer than `--timeout`.
    Timeout,
}

/// The stop switch of one run. Each run gets a fresh one.
pub struct Interrupt {
    engine: Engine,
    reason: Mutex<Option<StopReason>>,
    wake: Condvar,
}

impl Interrupt {
    /// A switch for a run on `engine`.
    pub fn new(engine: &Engine) -> Arc<Self> {
        Arc::new(Self {
            engine: engine.clone(),
            reason: Mutex::new(None),
            wake: Condvar::new(),
        })
    }

    /// Stops the run: the first reason given is the one reported.
    pub fn request(&self, reason: StopReason) {
        self.lock().get_or_insert(reason);
        self.wake.notify_all();
        // After the reason is set: a run that checks `reason()` after arming its
        // epoch deadline either sees the reason or is caught by this tick.
        self.engine.increment_epoch();
    }

    /// Why the run was asked to stop, if it was.
    pub fn reason(&self) -> Option<StopReason> {
        *self.lock()
    }

    /// Sleeps for `duration` unless stopped first; a stop returns its reason.
    pub fn sleep(&self, duration: Duration) -> Result<(), StopReason> {
        let deadline = Instant::now().checked_add(duration);
        let mut reason = self.lock();
        loop {
            if let Some(reason) = *reason {
                return Err(reason);
            }
            let left = match deadline {
                Some(deadline) => deadline.saturating_duration_since(Instant::now()),
                None => Duration::from_secs(3600),
            };
            if left.is_zero() {
                return Ok(());
            }
            reason = self
                .wake
                .wait_timeout(reason, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    fn lock(&self) -> MutexGuard<'_, Option<StopReason>> {
        self.reason.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleep_runs_out_or_is_cut_short() {
        let interrupt = Interrupt::new(&Engine::default());
        assert_eq!(interrupt.sleep(Duration::from_millis(1)), Ok(()));

        let waker = Arc::clone(&interrupt);
        let start = Instant::now();
        let thread = std::thread::spawn(move || waker.request(StopReason::Change));
        assert_eq!(
            interrupt.sleep(Duration::from_secs(60)),
            Err(StopReason::Change)
        );
        assert!(start.elapsed() < Duration::from_secs(30));
        thread.join().expect("waker");

        interrupt.request(StopReason::CtrlC);
        assert_eq!(interrupt.reason(), Some(StopReason::Change));
    }
}
