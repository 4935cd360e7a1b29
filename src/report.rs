//! The runner's one voice: everything live-wasm itself says goes through the
//! [`Reporter`], which hands it to the status lines and to the JSON events.
//!
//! Guest output goes straight to our stdout and stderr; this room never touches
//! it. With `--events json` the events take the place of the status lines on
//! stderr, so every line we write there is JSON; with `--quiet`, only the errors
//! that end a run are said.

mod events;
mod status;

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::build::Built;
use crate::plan::{EventsTarget, Plan};
use crate::run::{Note, RunReport, StopReason, Trigger};
use events::Events;
use status::StatusLines;

/// Says what happens in a session, in the forms the user asked for.
pub(crate) struct Reporter {
    status: StatusLines,
    events: Events,
}

impl Reporter {
    /// The voice of `plan`'s session (opening `--events-file`, if given).
    pub(crate) fn new(plan: &Plan) -> Result<Self> {
        let out: Option<Box<dyn Write + Send>> = match &plan.presentation.events {
            None => None,
            Some(EventsTarget::Stderr) => Some(Box::new(std::io::stderr())),
            Some(EventsTarget::File(path)) => {
                Some(Box::new(std::fs::File::create(path).with_context(
                    || format!("--events-file {}: cannot create it", path.display()),
                )?))
            }
        };
        Ok(Self {
            status: StatusLines::new(plan),
            events: Events::new(out, &plan.root),
        })
    }

    /// The entry does not exist yet: say so once, and wait.
    pub(crate) fn waiting_for(&mut self, entry: &Path) {
        self.events.waiting_for(entry);
        self.status.waiting_for(entry);
    }

    /// A build is about to start.
    pub(crate) fn build_started(&mut self, run: u64, trigger: &Trigger) {
        self.events.build_started(run, trigger);
        self.status.run_started();
    }

    /// A build has ended: by itself, or `stopped`.
    pub(crate) fn build_finished(
        &mut self,
        run: u64,
        trigger: &Trigger,
        built: &Built,
        stopped: Option<StopReason>,
    ) {
        self.events.build_finished(run, built, stopped);
        self.status.build_finished(run, trigger, built, stopped);
    }

    /// A run is about to start.
    pub(crate) fn run_started(&mut self, run: u64, trigger: &Trigger) {
        self.events.run_started(run, trigger);
        self.status.run_started();
    }

    /// Something a run said on its way.
    pub(crate) fn note(&mut self, run: u64, note: &Note) {
        self.events.note(run, note);
        self.status.note(note);
    }

    /// Something the user should know; the session goes on.
    pub(crate) fn warning(&mut self, message: &str) {
        self.events.warning(message);
        self.status.warning(message);
    }

    /// A run has finished (after a build that took `built`, if there was one).
    /// Events first: whoever sees the status line finds them written.
    pub(crate) fn run_finished(
        &mut self,
        run: u64,
        trigger: &Trigger,
        built: Option<Duration>,
        report: &RunReport,
    ) {
        let description = report.describe();
        self.events.run_finished(run, built, report, &description);
        self.status
            .run_finished(run, trigger, built, report, &description);
    }
}
