//! `--events json`: one JSON object per line, for editors and scripts.
//!
//! The schema is documented in the README and pinned by the end-to-end tests;
//! add fields freely, never rename or remove one.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};

use crate::build::Built;
use crate::diff::{Diff, StreamDiff};
use crate::progress::Shown;
use crate::run::{Description, Note, Problem, RunReport, Served, StopReason};
use crate::screen::Screen;
use crate::watch::Trigger;

/// Where events go (nowhere without `--events`), and what names files in them.
pub(super) struct Events {
    out: Option<Box<dyn Write + Send>>,
    /// The screen the guest shares, when events go to stderr: each event
    /// starts a line of its own.
    screen: Option<Arc<Screen>>,
    root: PathBuf,
    /// `--deterministic`: the seed, given in each `run-started`.
    seed: Option<u64>,
}

impl Events {
    /// Events written to `out` (none: dropped), naming files relative to
    /// `root`; runs are deterministic from `seed`, if given. `screen` when
    /// `out` is stderr, which the guest writes to as well.
    pub(super) fn new(
        out: Option<Box<dyn Write + Send>>,
        screen: Option<Arc<Screen>>,
        root: &Path,
        seed: Option<u64>,
    ) -> Self {
        Self {
            out,
            screen,
            root: root.to_path_buf(),
            seed,
        }
    }

    /// `waiting`: the entry does not exist yet.
    pub(super) fn waiting_for(&mut self, entry: &Path) {
        let file = self.name(entry);
        self.emit(json!({"event": "waiting", "file": file}));
    }

    /// `listening`: where `--serve` answers.
    pub(super) fn listening(&mut self, url: &str) {
        self.emit(json!({"event": "listening", "url": url}));
    }

    /// `serving`: run `run` made the version that answers now.
    pub(super) fn serving(&mut self, run: u64, url: &str) {
        self.emit(json!({"event": "serving", "run": run, "version": run, "url": url}));
    }

    /// `request`: one request answered, and how the guest failed if it did.
    pub(super) fn request(&mut self, served: &Served) {
        let mut event = json!({
            "event": "request", "version": served.version, "method": served.method,
            "path": served.path, "status": served.status, "elapsed_ms": ms(served.elapsed),
        });
        if let Some(failure) = &served.failure {
            event["outcome"] = json!(failure.outcome);
            event["trap"] = json!(failure.trap);
            event["error"] = failure
                .problem
                .as_ref()
                .map_or(json!(failure.summary), problem_fields);
        }
        self.emit(event);
    }

    /// `build-started`: the run's number and what triggered it.
    pub(super) fn build_started(&mut self, run: u64, trigger: &Trigger) {
        let event = self.started("build-started", run, trigger);
        self.emit(event);
    }

    /// `build-finished`: how the build ended, and its output when captured (null
    /// when it went to stderr).
    pub(super) fn build_finished(&mut self, run: u64, built: &Built, stopped: Option<StopReason>) {
        let outcome = match stopped {
            Some(StopReason::CtrlC) => "stopped-by-ctrl-c",
            Some(_) => "stopped-by-change",
            None if built.success => "ok",
            None => "failed",
        };
        self.emit(json!({
            "event": "build-finished", "run": run, "outcome": outcome,
            "exit_code": built.code, "ms": ms(built.duration), "output": built.output,
            "error": built.error,
        }));
    }

    /// `progress`: something of run `run` takes long: said after half a
    /// second, then every second, as the progress line is drawn.
    pub(super) fn progress(&mut self, run: u64, shown: &Shown) {
        self.emit(json!({
            "event": "progress", "run": run, "stage": shown.stage, "what": shown.what,
            "bytes": shown.bytes, "elapsed_ms": ms(shown.elapsed),
        }));
    }

    /// `run-started`: the run's number and what triggered it; the seed of a
    /// deterministic run.
    pub(super) fn run_started(&mut self, run: u64, trigger: &Trigger) {
        let mut event = self.started("run-started", run, trigger);
        if let Some(seed) = self.seed {
            event["seed"] = json!(seed);
        }
        self.emit(event);
    }

    fn started(&self, event: &str, run: u64, trigger: &Trigger) -> Value {
        let (trigger, changed) = match trigger {
            Trigger::Start => ("start", Vec::new()),
            Trigger::Changed(files) => ("change", files.iter().map(|f| self.name(f)).collect()),
        };
        json!({
            "event": event, "run": run, "trigger": trigger, "changed": changed,
        })
    }

    /// `diff`: how the run differs from the last one that ran.
    fn diff(&mut self, run: u64, diff: &Diff) {
        self.emit(json!({
            "event": "diff", "run": run, "against": diff.against,
            "output_unchanged": diff.output_unchanged(),
            "stdout": stream_diff(&diff.stdout), "stderr": stream_diff(&diff.stderr),
            "ended_before": diff.ended_before,
            "fuel_before": diff.fuel.map(|(before, _)| before),
        }));
    }

    /// `use-failed`: a `live.use` the guest survived.
    pub(super) fn note(&mut self, run: u64, note: &Note) {
        match note {
            Note::UseFailed { code, problem, .. } => {
                let mut event = problem_fields(problem);
                event["event"] = json!("use-failed");
                event["run"] = json!(run);
                event["code"] = json!(code);
                self.emit(event);
            }
        }
    }

    /// `warning`: something the user should know; the session goes on.
    pub(super) fn warning(&mut self, message: &str) {
        self.emit(json!({"event": "warning", "message": message}));
    }

    /// `compiled` for each module loaded, `error` if the run failed, `diff`
    /// under `--diff`, then `run-finished`.
    pub(super) fn run_finished(
        &mut self,
        run: u64,
        built: Option<std::time::Duration>,
        report: &RunReport,
        described: &Description,
        diff: Option<&Diff>,
    ) {
        for module in &report.compiled {
            self.emit(json!({
                "event": "compiled", "run": run, "module": module.name, "file": module.file,
                "cache": if module.cache_hit { "hit" } else { "miss" },
                "ms": ms(module.duration),
            }));
        }
        if let Some(problem) = &described.problem {
            let mut error = problem_fields(problem);
            error["event"] = json!("error");
            error["run"] = json!(run);
            self.emit(error);
        }
        if let Some(diff) = diff {
            self.diff(run, diff);
        }
        self.emit(json!({
            "event": "run-finished", "run": run, "outcome": described.outcome,
            "exit_code": described.exit_code, "trap": described.trap,
            "compile_ms": ms(report.compile), "run_ms": ms(report.run),
            "fuel_used": report.fuel_used, "peak_memory": report.peak_memory,
            "build_ms": built.map(ms),
        }));
    }

    fn emit(&mut self, mut event: Value) {
        let Some(out) = &mut self.out else { return };
        clip_strings(&mut event);
        // One write per line, so guest output cannot cut into it. Events are
        // best effort: a closed reader must not end the session.
        let start = self
            .screen
            .as_ref()
            .map_or("", |screen| screen.line_start());
        let _ = out.write_all(format!("{start}{event}\n").as_bytes());
        let _ = out.flush();
    }

    fn name(&self, path: &Path) -> String {
        crate::names::relative(&self.root, path)
    }
}

/// `fatal`: the session could not start, or broke; to stderr, as there may be
/// no plan saying where events go.
pub(super) fn fatal(message: &str) {
    let mut event = json!({"event": "fatal", "message": message});
    clip_strings(&mut event);
    let _ = std::io::stderr()
        .lock()
        .write_all(format!("{event}\n").as_bytes());
}

/// The longest string an event carries whole, in bytes: a backtrace fits,
/// a guest's megabyte-long export name does not.
const MAX_STRING: usize = 64 * 1024;

/// Cuts every over-long string in `value` (JSON escapes control characters).
fn clip_strings(value: &mut Value) {
    match value {
        Value::String(text) if text.len() > MAX_STRING => {
            *text = super::clipped(text, MAX_STRING).into_owned();
        }
        Value::Array(items) => items.iter_mut().for_each(clip_strings),
        Value::Object(fields) => fields.values_mut().for_each(clip_strings),
        _ => {}
    }
}

/// kind, file, line, col and message: the fields every problem has.
fn problem_fields(problem: &Problem) -> Value {
    json!({
        "kind": problem.kind.as_str(), "file": problem.file,
        "line": problem.place.map(|(line, _)| line), "col": problem.place.map(|(_, col)| col),
        "message": problem.message,
    })
}

/// One stream's part of a `diff` event.
fn stream_diff(diff: &StreamDiff) -> Value {
    let hunks: Vec<Value> = (diff.hunks.iter())
        .map(|hunk| {
            let lines: Vec<Value> = (hunk.lines.iter())
                .map(|line| {
                    json!({"change": line.change.as_str(), "line": line.number, "text": line.text})
                })
                .collect();
            json!({"unchanged_before": hunk.unchanged_before, "lines": lines})
        })
        .collect();
    json!({
        "added": diff.added, "removed": diff.removed, "hunks": hunks,
        "not_shown": diff.not_shown, "unchanged_after": diff.unchanged_after,
        "coarse": diff.coarse,
    })
}

fn ms(duration: std::time::Duration) -> f64 {
    // Microsecond precision is plenty, and keeps lines short.
    (duration.as_secs_f64() * 1e6).round() / 1e3
}
