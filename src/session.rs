//! The session loop: start runs, watch, stop and replace runs, say how they went.
//!
//! Runs happen on the runner thread so this loop stays free to notice a save or
//! Ctrl-C while a guest is still running, stop it, and start the next run.
//! Data flows one way: file events -> change set -> run -> report.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use crossbeam_channel::{Receiver, after, bounded, never, select};

use crate::plan::Plan;
use crate::report::Reporter;
use crate::run::{RunReport, Runner, Runtime, Stop, StopReason, Trigger};
use crate::watch::Watcher;

/// The exit status of a watch session ended by Ctrl-C (128 + SIGINT).
pub const EXIT_CTRL_C: i32 = 130;

/// Runs `plan`'s session and returns the process exit status: with `--once` the
/// guest's, else [`EXIT_CTRL_C`] when the user quits.
pub fn run(plan: Plan) -> Result<i32> {
    let runner = Runner::spawn(Runtime::new(&plan)?)?;
    let mut reporter = Reporter::new(&plan)?;
    for warning in &plan.warnings {
        reporter.warning(warning);
    }
    if plan.once {
        once(&plan, &runner, &mut reporter)
    } else {
        watch(&plan, &runner, &mut reporter)
    }
}

/// `--once`: one run, the guest's status as ours. Ctrl-C keeps its default
/// meaning (the process ends, status 130), as with `wasmtime run`.
fn once(plan: &Plan, runner: &Runner, reporter: &mut Reporter) -> Result<i32> {
    reporter.run_started(1, &Trigger::Start);
    let stop = runner.start()?;
    let deadline = plan.limits.timeout.map_or_else(never, after);
    loop {
        select! {
            recv(runner.notes()) -> note => {
                if let Ok(note) = note {
                    reporter.note(1, &note);
                }
            }
            recv(runner.reports()) -> report => {
                let report = report.context("the runner thread has stopped")?;
                finished(runner, reporter, 1, &Trigger::Start, &report);
                return Ok(report.exit_code());
            }
            recv(deadline) -> _ => stop.request(StopReason::Timeout),
        }
    }
}

/// A run in progress, as the loop sees it.
struct Running {
    stop: Stop,
    trigger: Trigger,
    /// Fires once when `--timeout` runs out; never without one.
    deadline: Receiver<Instant>,
}

fn watch(plan: &Plan, runner: &Runner, reporter: &mut Reporter) -> Result<i32> {
    let mut watcher = Watcher::new(plan.watcher)?;
    for path in &plan.watch {
        watcher.watch_path(path)?;
    }
    watcher.watch_file(&plan.entry)?;
    let ctrl_c = ctrl_c_events()?;
    let no_deadline = never();

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
            reporter.run_started(runs, &trigger);
            running = Some(Running {
                stop: runner.start()?,
                trigger,
                deadline: plan.limits.timeout.map_or_else(never, after),
            });
        }

        select! {
            recv(watcher.events()) -> event => {
                let Ok(event) = event else { continue };
                let changes = watcher.changes(event);
                for warning in &changes.warnings {
                    reporter.warning(warning);
                }
                if changes.changed.is_empty() {
                    continue;
                }
                if let Some(run) = &running {
                    run.stop.request(StopReason::Change);
                }
                queue(&mut pending, changes.changed);
            }
            recv(ctrl_c) -> _ => match &running {
                // A second Ctrl-C while the first has not yet stopped the guest: quit.
                Some(run) if run.stop.reason() == Some(StopReason::CtrlC) => return Ok(EXIT_CTRL_C),
                Some(run) => run.stop.request(StopReason::CtrlC),
                None => return Ok(EXIT_CTRL_C),
            },
            recv(running.as_ref().map_or(&no_deadline, |run| &run.deadline)) -> _ => {
                if let Some(run) = &running {
                    run.stop.request(StopReason::Timeout);
                }
            }
            recv(runner.notes()) -> note => {
                if let Ok(note) = note {
                    reporter.note(runs, &note);
                }
            }
            recv(runner.reports()) -> report => {
                let report = report.context("the runner thread has stopped")?;
                let trigger = running.take().map_or(Trigger::Start, |run| run.trigger);
                finished(runner, reporter, runs, &trigger, &report);
                match watcher.set_modules(&report.modules) {
                    Ok(changed) if !changed.is_empty() => queue(&mut pending, changed),
                    Ok(_) => {}
                    Err(err) => reporter.warning(&format!("{err:#}")),
                }
            }
        }
    }
}

/// Says the rest of what run `number` said on its way, then how it ended.
fn finished(
    runner: &Runner,
    reporter: &mut Reporter,
    number: u64,
    trigger: &Trigger,
    report: &RunReport,
) {
    for note in runner.notes().try_iter() {
        reporter.note(number, &note);
    }
    reporter.run_finished(number, trigger, report);
}

/// Adds changed files to the next run, starting one if none is pending.
fn queue(pending: &mut Option<Trigger>, changed: Vec<PathBuf>) {
    *pending = Some(match pending.take() {
        Some(trigger) => trigger.merge(changed),
        None => Trigger::Changed(changed),
    });
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
