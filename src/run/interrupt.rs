//! Stopping a running guest from another thread: a save or Ctrl-C.
//!
//! Wasm code is stopped by an epoch tick (the store's deadline is one tick away);
//! a guest asleep in the host is woken through a condition variable, or, when
//! it waits in wasmtime-wasi's async code (a component's pollables), through
//! the wakers of [`Interrupt::stopped`]. The reason is recorded before the tick
//! so the report can say why the run stopped.

use std::future::{Future, poll_fn};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use wasmtime::Engine;

/// Why a run was stopped before it finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopReason {
    /// A watched file changed: the next run replaces this one.
    Change,
    /// The user pressed Ctrl-C.
    CtrlC,
    /// The run took longer than `--timeout`.
    Timeout,
}

/// The stop switch of one run. Each run gets a fresh one.
pub(super) struct Interrupt {
    engine: Engine,
    reason: Mutex<Option<StopReason>>,
    wake: Condvar,
    wakers: Mutex<Vec<Waker>>,
}

impl Interrupt {
    /// A switch for a run on `engine`.
    pub(super) fn new(engine: &Engine) -> Arc<Self> {
        Arc::new(Self {
            engine: engine.clone(),
            reason: Mutex::new(None),
            wake: Condvar::new(),
            wakers: Mutex::new(Vec::new()),
        })
    }

    /// Stops the run: the first reason given is the one reported, unless
    /// Ctrl-C comes after it. Ctrl-C wins, so that a second one, while a run
    /// that cannot stop yet (a long compile) was already stopped by a save,
    /// is seen as the second and quits.
    pub(super) fn request(&self, reason: StopReason) {
        let mut recorded = self.lock();
        if recorded.is_none() || reason == StopReason::CtrlC {
            *recorded = Some(reason);
        }
        drop(recorded);
        self.wake.notify_all();
        let wakers = std::mem::take(&mut *self.wakers());
        wakers.into_iter().for_each(Waker::wake);
        // After the reason is set: a run that checks `reason()` after arming its
        // epoch deadline either sees the reason or is caught by this tick.
        self.engine.increment_epoch();
    }

    /// Why the run was asked to stop, if it was.
    pub(super) fn reason(&self) -> Option<StopReason> {
        *self.lock()
    }

    /// Sleeps for `duration` unless stopped first; a stop returns its reason.
    pub(super) fn sleep(&self, duration: Duration) -> Result<(), StopReason> {
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

    /// Resolves when the run is asked to stop, with the reason.
    pub(super) fn stopped(&self) -> impl Future<Output = StopReason> + '_ {
        poll_fn(|cx| {
            if let Some(reason) = self.reason() {
                return Poll::Ready(reason);
            }
            let mut wakers = self.wakers();
            if !wakers.iter().any(|waker| waker.will_wake(cx.waker())) {
                wakers.push(cx.waker().clone());
            }
            drop(wakers);
            // A request between the first look and the push took no waker of ours.
            match self.reason() {
                Some(reason) => Poll::Ready(reason),
                None => Poll::Pending,
            }
        })
    }

    /// Runs `work` until it finishes or the run is asked to stop. Work done
    /// at once (reading a file) does not ask about a stop first: asking made
    /// a one-byte `fd_read` ~35% slower, and the guest's next instruction
    /// sees the stop anyway.
    pub(super) async fn or_stop<F: Future>(&self, work: F) -> Result<F::Output, StopReason> {
        let mut work = std::pin::pin!(work);
        let mut stopped = std::pin::pin!(self.stopped());
        poll_fn(|cx| {
            if let Poll::Ready(done) = work.as_mut().poll(cx) {
                return Poll::Ready(Ok(done));
            }
            stopped.as_mut().poll(cx).map(Err)
        })
        .await
    }

    /// Runs `work` (one of wasmtime-wasi's waits) on this thread until it is
    /// done or the run is asked to stop, which ends the run as an epoch tick
    /// would.
    pub(super) fn until_stopped<F: Future>(&self, work: F) -> wasmtime::Result<F::Output> {
        wasmtime_wasi::runtime::in_tokio(self.or_stop(work))
            .map_err(|_| wasmtime::Trap::Interrupt.into())
    }

    fn wakers(&self) -> MutexGuard<'_, Vec<Waker>> {
        self.wakers.lock().unwrap_or_else(PoisonError::into_inner)
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

        interrupt.request(StopReason::Timeout);
        assert_eq!(interrupt.reason(), Some(StopReason::Change));
        interrupt.request(StopReason::CtrlC);
        assert_eq!(interrupt.reason(), Some(StopReason::CtrlC), "Ctrl-C wins");
        interrupt.request(StopReason::Change);
        assert_eq!(interrupt.reason(), Some(StopReason::CtrlC));
    }

    #[test]
    fn async_work_is_cut_short_by_a_stop() {
        let interrupt = Interrupt::new(&Engine::default());
        let done = wasmtime_wasi::runtime::in_tokio(interrupt.or_stop(async { 7 }));
        assert_eq!(done, Ok(7));

        let waker = Arc::clone(&interrupt);
        let thread = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            waker.request(StopReason::Timeout);
        });
        let never = std::future::pending::<()>();
        let stopped = wasmtime_wasi::runtime::in_tokio(interrupt.or_stop(never));
        assert_eq!(stopped, Err(StopReason::Timeout));
        thread.join().expect("waker");
    }
}
