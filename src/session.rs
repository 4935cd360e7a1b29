//! The session loop: watch, run, report, forever (or once).
//!
//! Runs happen on a runner thread so this loop stays free to notice a save or
//! Ctrl-C while a guest is still running, stop it, and start the next run.
//! Data flows one way: events -> change set -> run request -> report.

use std::sync::Arc;
use std::thread;
use std::time::Instant;

use anyhow::{Context, Result};
use crossbeam_channel::{
    Receiver, RecvTimeoutError, Sender, after, bounded, never, select, unbounded,
};

use crate::events::Events;
use crate::interrupt::{Interrupt, StopReason};
use crate::plan::{EventsTarget, Plan};
use crate::report::{Reporter, Trigger};
use crate::run::{RunReport, Runtime};
use crate::watch::Watcher;

/// The exit status of a watch session ended by Ctrl-C (128 + SIGINT).
pub const EXIT_CTRL_C: i32 = 130;

/// Runs `plan` and returns the process exit status.
pub fn run(plan: Plan) -> Result<i32> {
    if plan.once {
        run_once(&plan)
    } else {
        watch(plan)
    }
}

/// `--once`: one run, the guest's status as ours. Ctrl-C keeps its default
/// meaning (the process ends, status 130), as with `wasmtime run`.
fn run_once(plan: &Plan) -> Result<i32> {
    let runtime = Runtime::new(plan)?;
    let reporter = Reporter::new(plan, true);
    let mut events = open_events(plan)?;
    let interrupt = Interrupt::new(runtime.engine());
    let (finished, done) = bounded::<()>(0);
    if let Some(timeout) = plan.limits.timeout {
        let interrupt = Arc::clone(&interrupt);
        thread::spawn(move || {
            if done.recv_timeout(timeout) == Err(RecvTimeoutError::Timeout) {
                interrupt.request(StopReason::Timeout);
            }
        });
    }
    events.run_started(1, &Trigger::Start);
    let report = runtime.run(interrupt);
    drop(finished);
    // Events first: whoever sees the status line finds them written.
    events.run_finished(1, &report);
    reporter.run_finished(1, &Trigger::Start, &report);
    Ok(report.outcome.exit_code())
}

/// A run in progress, as the loop sees it.
struct Running {
    interrupt: Arc<Interrupt>,
    trigger: Trigger,
    /// Fires once when `--timeout` runs out; never without one.
    deadline: Receiver<Instant>,
}

fn watch(plan: Plan) -> Result<i32> {
    let runtime = Runtime::new(&plan)?;
    let engine = runtime.engine().clone();
    let reporter = Reporter::new(&plan, false);
    let mut events = open_events(&plan)?;
    let no_deadline = never();

    let mut watcher = Watcher::new()?;
    for path in &plan.watch {
        watcher.watch_path(path)?;
    }
    watcher.watch_file(&plan.entry)?;

    let ctrl_c = ctrl_c_events()?;
    let (requests, done) = spawn_runner(runtime)?;

    let mut pending = if plan.entry.exists() {
        Some(Trigger::Start)
    } else {
        reporter.waiting_for(&plan.entry);
        None
    };
    let mut running: Option<Running> = None;
    let mut runs = 0u64;

    loop {
        if running.is_none()
            && let Some(trigger) = pending.take()
        {
            runs += 1;
            reporter.run_starting();
            events.run_started(runs, &trigger);
            let interrupt = Interrupt::new(&engine);
            requests
                .send(Arc::clone(&interrupt))
                .context("the runner thread has stopped")?;
            let deadline = plan.limits.timeout.map_or_else(never, after);
            running = Some(Running {
                interrupt,
                trigger,
                deadline,
            });
        }

        select! {
            recv(watcher.events()) -> event => {
                let Ok(event) = event else { continue };
                let changes = watcher.changes(event);
                for err in &changes.errors {
                    reporter.watch_error(err);
                }
                if changes.changed.is_empty() {
                    continue;
                }
                if let Some(run) = &running {
                    run.interrupt.request(StopReason::Change);
                }
                queue(&mut pending, changes.changed);
            }
            recv(ctrl_c) -> _ => match &running {
                // A second Ctrl-C while the first has not yet stopped the guest: quit.
                Some(run) if run.interrupt.reason() == Some(StopReason::CtrlC) => return Ok(EXIT_CTRL_C),
                Some(run) => run.interrupt.request(StopReason::CtrlC),
                None => return Ok(EXIT_CTRL_C),
            },
            recv(running.as_ref().map_or(&no_deadline, |run| &run.deadline)) -> _ => {
                if let Some(run) = &running {
                    run.interrupt.request(StopReason::Timeout);
                }
            }
            recv(done) -> report => {
                let report = report.context("the runner thread has stopped")?;
                // Events first: whoever sees the status line finds them written.
                events.run_finished(runs, &report);
                if let Some(run) = running.take() {
                    reporter.run_finished(runs, &run.trigger, &report);
                }
                match watcher.set_modules(&report.modules) {
                    Ok(changed) if !changed.is_empty() => queue(&mut pending, changed),
                    Ok(_) => {}
                    Err(err) => reporter.warning(&format!("{err:#}")),
                }
            }
        }
    }
}

/// The `--events` sink (a silent one without `--events`).
fn open_events(plan: &Plan) -> Result<Events> {
    let out: Option<Box<dyn std::io::Write + Send>> = match &plan.presentation.events {
        None => None,
        Some(EventsTarget::Stderr) => Some(Box::new(std::io::stderr())),
        Some(EventsTarget::File(path)) => Some(Box::new(
            std::fs::File::create(path)
                .with_context(|| format!("--events-file {}: cannot create it", path.display()))?,
        )),
    };
    Ok(Events::new(out, &plan.root, plan.limits))
}

/// Adds changed files to the next run, starting one if none is pending.
fn queue(pending: &mut Option<Trigger>, changed: Vec<std::path::PathBuf>) {
    *pending = Some(match pending.take() {
        Some(trigger) => trigger.merge(changed),
        None => Trigger::Changed(changed),
    });
}

/// The runner thread: takes run requests, one at a time, and sends back reports.
fn spawn_runner(runtime: Runtime) -> Result<(Sender<Arc<Interrupt>>, Receiver<RunReport>)> {
    let (requests, incoming) = unbounded::<Arc<Interrupt>>();
    let (reports, done) = unbounded();
    thread::Builder::new()
        .name("live-wasm-runner".to_owned())
        .spawn(move || {
            for interrupt in incoming {
                if reports.send(runtime.run(interrupt)).is_err() {
                    break;
                }
            }
        })
        .context("cannot start the runner thread")?;
    Ok((requests, done))
}

/// Ctrl-C presses, as a channel the loop can select on.
fn ctrl_c_events() -> Result<Receiver<()>> {
    let (sender, presses) = bounded(4);
    ctrlc::set_handler(move || {
        let _ = sender.try_send(());
    })
    .context("cannot install the Ctrl-C handler")?;
    Ok(presses)
}
