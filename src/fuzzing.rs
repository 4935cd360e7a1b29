//! Hooks for the fuzz targets in `fuzz/` (cargo feature `fuzzing`, off by
//! default; not part of the API): only what needs the crate's insides. The
//! harness itself (scratch roots, the events read back, the invariants) is
//! `fuzz/src/lib.rs`, on the public API.

use std::sync::Arc;

use anyhow::Result;

use crate::plan::Plan;
use crate::report::Reporter;
use crate::run::{Runner, Runtime};

pub use crate::run::{EXIT_ERROR, EXIT_TIMEOUT, EXIT_TRAP, ProblemKind};

/// A `--once` session run again and again in-process: its runner thread,
/// engine, linkers and compile cache live as long as it does (as in a watch
/// session, so a re-run is served by the compile cache), and each
/// [`Once::run`] goes through the session's own `--once` path.
pub struct Once {
    plan: Plan,
    runner: Runner,
}

impl Once {
    /// The session of `plan`, its runner thread started.
    pub fn new(plan: Plan) -> Result<Self> {
        let screen = Arc::default();
        let transcripts = crate::session::transcripts(&plan);
        let runner = Runner::spawn(Runtime::new(&plan, screen, transcripts)?)?;
        Ok(Self { plan, runner })
    }

    /// Runs the entry once, as `live-wasm --once` does (its events written
    /// afresh), and returns the exit status.
    pub fn run(&self) -> Result<i32> {
        let mut reporter = Reporter::new(&self.plan, Arc::default())?;
        crate::session::once(&self.plan, &self.runner, &mut reporter)
    }
}
