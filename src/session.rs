//! The session loop: build, run, watch, stop and replace builds and runs, say
//! how they went.
//!
//! Builds are child processes and runs happen on the runner thread, so this
//! loop stays free to notice a save or Ctrl-C while either is going on, stop
//! it, and start the next. Data flows one way: file events -> change set ->
//! build -> run -> report.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use crossbeam_channel::{Receiver, after, at, never, select};

use crate::build::{Build, BuildOutput, Built, Patience};
use crate::plan::{BuildPlan, EventsTarget, Plan};
use crate::progress::{Progress, What};
use crate::report::Reporter;
use crate::run::{RunReport, Runner, Runtime, Stop, StopReason, Transcripts, Verdict};
use crate::screen::Screen;
use crate::serve::Server;
use crate::signals::{self, Signal};
use crate::watch::Trigger;
use crate::watch::Watcher;

pub use crate::report::fatal;

/// The exit status of a watch session ended by Ctrl-C (128 + SIGINT).
pub const EXIT_CTRL_C: i32 = 130;

/// Runs `plan`'s session and returns the process exit status: with `--once` the
/// guest's, else [`EXIT_CTRL_C`] when the user quits, 128 + the signal's number
/// when SIGTERM or SIGHUP ends it.
pub fn run(plan: Plan) -> Result<i32> {
    let screen = Arc::new(Screen::new(&plan));
    let runtime = Runtime::new(&plan, Arc::clone(&screen), transcripts(&plan))?;
    let handlers = runtime.handlers();
    let runner = Runner::spawn(runtime)?;
    let mut reporter = Reporter::new(&plan, screen)?;
    let server = match (&plan.serve, handlers) {
        (Some(serve), Some(handlers)) => Some(Server::start(serve, handlers)?),
        _ => None,
    };
    if let Some(server) = &server {
        reporter.listening(server.url());
    }
    for warning in &plan.warnings {
        reporter.warning(warning);
    }
    if let Some(determinism) = plan.sandbox.determinism {
        reporter.deterministic(determinism.seed);
    }
    let status = if plan.once {
        let status = once(&plan, &runner, &mut reporter);
        runner.finish();
        status
    } else {
        let status = watch(&plan, &runner, &mut reporter, server.as_ref());
        // Requests in flight are stopped before the runner is waited for.
        drop(server);
        runner.finish_within(QUIT_PATIENCE);
        status
    };
    // Quitting in the middle of a long compile: its line goes.
    reporter.progress_line().close();
    status
}

/// How long quitting waits for the runner: to write what the last run compiled
/// to the disk cache, or for a run stopped on the way out to end.
const QUIT_PATIENCE: Duration = Duration::from_secs(5);

/// What of a guest's output each run notes: enough to compare runs under
/// `--diff`, to show the last output again under `--clear`; nothing else.
pub(crate) fn transcripts(plan: &Plan) -> Option<Transcripts> {
    if plan.once {
        return None;
    }
    let clear = plan.presentation.clear;
    (plan.presentation.diff.is_some() || clear).then_some(Transcripts { replay: clear })
}

/// `--once`: one build and one run, the guest's status as ours (1 when the
/// build fails). Ctrl-C ends the process with status 130, as with `wasmtime
/// run`, and a build with it; so do SIGTERM and SIGHUP, with 143 and 129.
/// (The fuzzing harness runs it in-process.)
pub(crate) fn once(plan: &Plan, runner: &Runner, reporter: &mut Reporter) -> Result<i32> {
    let mut built = None;
    let progress = reporter.progress_line();
    if let Some(build) = &plan.build {
        let signals = signals::listen()?;
        reporter.build_started(1, &Trigger::Start);
        let started = start_build(plan, build, &progress);
        let result = loop {
            select! {
                recv(started.finished()) -> result => break result.context("the build's thread has stopped")?,
                recv(signals) -> signal => {
                    started.stop();
                    return Ok(signal.map_or(EXIT_CTRL_C, Signal::exit_status));
                }
                recv(progress.shown()) -> shown => {
                    if let Ok(shown) = shown {
                        reporter.progress(1, &shown);
                    }
                }
            }
        };
        reporter.build_finished(1, &Trigger::Start, &result, None);
        if !result.success {
            return Ok(1);
        }
        warn_if_not_built(plan, reporter, &result);
        built = Some(result.duration);
        // From here on a signal ends the process, as without a build.
        let line = Arc::clone(&progress);
        std::thread::spawn(move || {
            if let Ok(signal) = signals.recv() {
                line.close();
                std::process::exit(signal.exit_status());
            }
        });
    }
    reporter.run_started(1, &Trigger::Start);
    let stop = runner.start(1, true)?;
    let deadline = plan.limits.timeout.map_or_else(never, after);
    loop {
        select! {
            recv(runner.notes()) -> note => {
                if let Ok(note) = note {
                    reporter.note(1, &note);
                }
            }
            recv(runner.reports()) -> report => {
                let mut report = report.context("the runner thread has stopped")?;
                finished(runner, reporter, 1, &Trigger::Start, built, &mut report);
                return Ok(report.exit_code());
            }
            recv(deadline) -> _ => stop.request(StopReason::Timeout),
            recv(progress.shown()) -> shown => {
                if let Ok(shown) = shown {
                    reporter.progress(1, &shown);
                }
            }
        }
    }
}

/// A run in progress, as the loop sees it.
struct Running {
    stop: Stop,
    trigger: Trigger,
    /// How long the build before it took, if there was one.
    built: Option<Duration>,
    /// Fires once when `--timeout` runs out; never without one.
    deadline: Receiver<Instant>,
}

/// A build in progress.
struct Building {
    build: Build,
    trigger: Trigger,
    /// Why it was stopped, if it was: by Ctrl-C, or out of date by a change.
    stopped: Option<StopReason>,
    started: Instant,
    /// Fires when an out-of-date build has used its patience and is killed;
    /// never before a change.
    kill_at: Receiver<Instant>,
    /// True once we killed it: it did not run to its end.
    killed: bool,
}

impl Building {
    /// Kills the build and everything it started; its result still comes.
    fn kill(&mut self) {
        self.killed = true;
        self.build.stop();
    }
}

/// What the loop has yet to do.
#[derive(Default)]
struct Pending {
    trigger: Option<Trigger>,
    /// A source changed: build before the run.
    build: bool,
}

impl Pending {
    /// Drops files from the pending run's trigger (changes a build made
    /// itself); with none left, nothing is pending.
    fn forget(&mut self, own: &[PathBuf]) {
        if let Some(Trigger::Changed(files)) = &mut self.trigger {
            files.retain(|file| !own.contains(file));
            if files.is_empty() {
                *self = Pending::default();
            }
        }
    }

    /// Adds changed files to the next run, starting one if none is pending.
    fn add(&mut self, changed: Vec<PathBuf>, build: bool) {
        self.trigger = Some(match self.trigger.take() {
            Some(trigger) => trigger.merge(changed),
            None => Trigger::Changed(changed),
        });
        self.build |= build;
    }
}

fn watch(
    plan: &Plan,
    runner: &Runner,
    reporter: &mut Reporter,
    server: Option<&Server>,
) -> Result<i32> {
    let builds = plan.build.is_some();
    let mut watcher = Watcher::new(plan.watcher, &plan.root)?;
    for path in &plan.watch {
        watcher.watch_path(path, builds)?;
    }
    if let Some(build) = plan.build.as_ref().filter(|build| build.watch_sources) {
        watcher.watch_path(&build.dir, true)?;
    }
    watcher.watch_file(&plan.entry)?;
    let signals = signals::listen()?;
    let no_deadline = never();
    let no_build = never();
    let no_requests = never();
    let served = server.map_or(&no_requests, Server::served);
    let progress = reporter.progress_line();

    let mut pending = Pending::default();
    // The entry, and the script an interpreter entry runs.
    let missing = (std::iter::once(&plan.entry).chain(&plan.script)).find(|file| !file.exists());
    match missing {
        Some(file) if !builds => reporter.waiting_for(file),
        _ => {
            pending.trigger = Some(Trigger::Start);
            pending.build = builds;
        }
    }
    let mut building: Option<Building> = None;
    let mut running: Option<Running> = None;
    let mut runs = 0u64;
    let mut patience = Patience::default();

    loop {
        if running.is_none()
            && building.is_none()
            && let Some(trigger) = pending.trigger.take()
        {
            runs += 1;
            match plan.build.as_ref().filter(|_| pending.build) {
                Some(build) => {
                    reporter.build_started(runs, &trigger);
                    // Without its barrier the build's last events may come
                    // late, as saves: worth a word, not the end of the session.
                    if let Err(err) = watcher.build_started() {
                        reporter.warning(&format!("{err:#}"));
                    }
                    building = Some(Building {
                        build: start_build(plan, build, &progress),
                        trigger,
                        stopped: None,
                        started: Instant::now(),
                        kill_at: never(),
                        killed: false,
                    });
                }
                None => running = Some(start_run(plan, runner, reporter, runs, trigger, None)?),
            }
            pending.build = false;
        }

        select! {
            recv(watcher.events()) -> event => {
                let Ok(event) = event else { continue };
                let changes = watcher.changes(event, runner.writes().try_iter());
                for warning in &changes.warnings {
                    reporter.warning(warning);
                }
                if changes.changed.is_empty() {
                    continue;
                }
                // Out of date: killed once it has used its patience, unless it
                // ends by itself first (see `build.rs`).
                if let Some(build) = &mut building
                    && build.stopped.is_none()
                {
                    build.stopped = Some(StopReason::Change);
                    build.kill_at = at(build.started + patience.allowed());
                }
                if let Some(run) = &running {
                    run.stop.request(StopReason::Change);
                }
                pending.add(changes.changed, changes.rebuild);
            }
            recv(signals) -> signal => {
                if let Ok(signal @ Signal::Terminate(_)) = signal {
                    // The guest is stopped, so that the runner can finish
                    // on the way out (`run`); the build must be stopped.
                    if let Some(run) = &running {
                        run.stop.request(StopReason::CtrlC);
                    }
                    if let Some(build) = &building {
                        build.build.stop();
                    }
                    return Ok(signal.exit_status());
                }
                if let Some(build) = &mut building {
                    if build.stopped == Some(StopReason::CtrlC) {
                        return Ok(EXIT_CTRL_C);
                    }
                    build.stopped = Some(StopReason::CtrlC);
                    build.kill();
                    continue;
                }
                match &running {
                    // A second Ctrl-C while the first has not yet stopped the guest: quit.
                    Some(run) if run.stop.reason() == Some(StopReason::CtrlC) => return Ok(EXIT_CTRL_C),
                    Some(run) => run.stop.request(StopReason::CtrlC),
                    None => return Ok(EXIT_CTRL_C),
                }
            }
            recv(running.as_ref().map_or(&no_deadline, |run| &run.deadline)) -> _ => {
                if let Some(run) = &running {
                    run.stop.request(StopReason::Timeout);
                }
            }
            recv(building.as_ref().map_or(&no_deadline, |build| &build.kill_at)) -> _ => {
                if let Some(build) = &mut building {
                    build.kill();
                }
            }
            recv(building.as_ref().map_or(&no_build, |build| build.build.finished())) -> result => {
                let Some(build) = building.take() else { continue };
                let result = result.context("the build's thread has stopped")?;
                patience.ended(build.killed, result.duration);
                let settled = watcher.build_finished(!build.killed);
                // The changes it made itself call for nothing: with no other,
                // it is not out of date.
                pending.forget(&settled.own);
                let stopped = match build.stopped {
                    Some(StopReason::Change) if !build.killed && pending.trigger.is_none() => None,
                    stopped => stopped,
                };
                reporter.build_finished(runs, &build.trigger, &result, stopped);
                for warning in &settled.late.warnings {
                    reporter.warning(warning);
                }
                let late = settled.late;
                if !late.changed.is_empty() {
                    // A source saved as the build ended: build again.
                    pending.add(late.changed, late.rebuild);
                    continue;
                }
                match stopped {
                    // Out of date or stopped by Ctrl-C: the pending build, if
                    // any, starts next.
                    Some(_) => {}
                    None if result.success => {
                        warn_if_not_built(plan, reporter, &result);
                        let built = Some(result.duration);
                        running = Some(start_run(plan, runner, reporter, runs, build.trigger, built)?);
                    }
                    // A failed build: the previous program is not run again
                    // (under `--serve`, the last good version answers on).
                    None => {
                        if let Some(server) = server {
                            server.failed(build_failure(&result));
                        }
                    }
                }
            }
            recv(runner.notes()) -> note => {
                if let Ok(note) = note {
                    reporter.note(runs, &note);
                }
            }
            recv(progress.shown()) -> shown => {
                if let Ok(shown) = shown {
                    reporter.progress(runs, &shown);
                }
            }
            recv(served) -> served => {
                if let Ok(served) = served {
                    reporter.request(&served);
                }
            }
            recv(runner.reports()) -> report => {
                let mut report = report.context("the runner thread has stopped")?;
                let Some(run) = running.take() else { continue };
                // Watched before the status line says the run is over: a save
                // made after that line is always seen.
                let writes = runner.writes().try_iter();
                watcher.modules_used(&report.modules);
                let watched = watcher.run_finished(&report.modules, &report.read, writes);
                finished(runner, reporter, runs, &run.trigger, run.built, &mut report);
                if let Some(server) = server {
                    tell_pages(server, &report);
                }
                match watched {
                    Ok(watched) => {
                        for warning in report.unwatched.iter().chain(&watched.unwatched) {
                            reporter.warning(warning);
                        }
                        if !watched.changed.is_empty() {
                            pending.add(watched.changed, false);
                        }
                    }
                    Err(err) => reporter.warning(&format!("{err:#}")),
                }
            }
        }
    }
}

/// Tells `--serve`'s open pages how run `report` went: a new version to
/// reload for, or why there is none (shown over the page).
fn tell_pages(server: &Server, report: &RunReport) {
    if let Some(version) = report.serving {
        server.ready(version);
        return;
    }
    let description = report.describe();
    if description.verdict == Verdict::Failed {
        let mut why = description.summary;
        if !description.detail.is_empty() {
            why.push_str("\n\n");
            why.push_str(&description.detail);
        }
        server.failed(why);
    }
}

/// A failed build in words, for `--serve`'s open pages.
fn build_failure(built: &Built) -> String {
    let how = match (&built.error, built.code) {
        (Some(error), _) => error.clone(),
        (None, Some(code)) => format!("exit {code}"),
        (None, None) => "ended by a signal".to_owned(),
    };
    format!("the build failed ({how}): its output is on the terminal")
}

/// Starts run `number`.
fn start_run(
    plan: &Plan,
    runner: &Runner,
    reporter: &mut Reporter,
    number: u64,
    trigger: Trigger,
    built: Option<Duration>,
) -> Result<Running> {
    reporter.run_started(number, &trigger);
    Ok(Running {
        stop: runner.start(number, reporter.shows_output())?,
        trigger,
        built,
        deadline: plan.limits.timeout.map_or_else(never, after),
    })
}

/// A build that succeeded without writing the entry most likely writes it
/// elsewhere, or the entry is mistyped: say so beside the run's "file not
/// found", with the `.wasm` files it wrote (nearest first).
fn warn_if_not_built(plan: &Plan, reporter: &mut Reporter, built: &Built) {
    if plan.entry.exists() {
        return;
    }
    let entry = crate::nearby::shown(&plan.cwd, &plan.entry);
    let since = std::time::SystemTime::now()
        .checked_sub(built.duration + BUILD_CLOCK_SLACK)
        .unwrap_or(std::time::UNIX_EPOCH);
    let written = crate::nearby::files(&plan.cwd, |path| {
        path.extension().is_some_and(|ext| ext == "wasm")
            && path
                .metadata()
                .and_then(|meta| meta.modified())
                .is_ok_and(|modified| modified >= since)
    });
    let message = match written.as_slice() {
        [] => format!(
            "the build succeeded but did not write {entry}: is that where it puts its output?"
        ),
        [nearest, others @ ..] => {
            let others = match others.len() {
                0 => String::new(),
                1 => " (and 1 other .wasm)".to_owned(),
                n => format!(" (and {n} other .wasm files)"),
            };
            format!(
                "the build succeeded but did not write {entry}; it wrote {}{others}: is that \
                 the entry?",
                crate::nearby::shown(&plan.cwd, nearest)
            )
        }
    };
    reporter.warning(&message);
}

/// How much older than the build's start a file it wrote may look: file
/// systems keep times coarser than our clock (a second, two on FAT).
const BUILD_CLOCK_SLACK: Duration = Duration::from_secs(1);

/// Starts `build`, a stage of the `progress` line; its output is captured
/// when our stderr carries JSON events, passed on around the progress line
/// when that is drawn. One that cannot start is a failed build, reported as
/// it ends.
fn start_build(plan: &Plan, build: &BuildPlan, progress: &Arc<Progress>) -> Build {
    let output = if plan.presentation.events == Some(EventsTarget::Stderr) {
        BuildOutput::Captured
    } else if progress.draws() {
        BuildOutput::Relayed(Arc::clone(progress))
    } else {
        BuildOutput::Stderr
    };
    let stage = progress.begin(What::build(&build.command));
    Build::start(&build.command, &build.dir, output, stage)
}

/// Says the rest of what run `number` said on its way, then how it ended
/// (handing the reporter what it printed).
fn finished(
    runner: &Runner,
    reporter: &mut Reporter,
    number: u64,
    trigger: &Trigger,
    built: Option<Duration>,
    report: &mut RunReport,
) {
    for note in runner.notes().try_iter() {
        reporter.note(number, &note);
    }
    let output = report.output.take();
    reporter.run_finished(number, trigger, built, report, output);
}
