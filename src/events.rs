//! `--events json`: one JSON object per line, for editors and scripts.
//!
//! The schema is documented in the README and pinned by the end-to-end tests;
//! add fields freely, never rename or remove one.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::interrupt::StopReason;
use crate::limits::Limits;
use crate::link::UseError;
use crate::outcome::{Outcome, trap_words};
use crate::report::Trigger;
use crate::run::RunReport;

/// Where events go (nowhere without `--events`), and what names files in them.
pub struct Events {
    out: Option<Box<dyn Write + Send>>,
    root: PathBuf,
    limits: Limits,
}

impl Events {
    /// Events written to `out` (none: dropped), naming files relative to `root`.
    pub fn new(out: Option<Box<dyn Write + Send>>, root: &Path, limits: Limits) -> Self {
        Self {
            out,
            root: root.to_path_buf(),
            limits,
        }
    }

    /// `run-started`: the run's number and what triggered it.
    pub fn run_started(&mut self, run: u64, trigger: &Trigger) {
        let (trigger, changed) = match trigger {
            Trigger::Start => ("start", Vec::new()),
            Trigger::Changed(files) => ("change", files.iter().map(|f| self.name(f)).collect()),
        };
        self.emit(json!({
            "event": "run-started", "run": run, "trigger": trigger, "changed": changed,
        }));
    }

    /// `compiled` for each module loaded, `error` if the run failed, then
    /// `run-finished`.
    pub fn run_finished(&mut self, run: u64, report: &RunReport) {
        for module in &report.compiled {
            self.emit(json!({
                "event": "compiled", "run": run, "module": module.name, "file": module.file,
                "cache": if module.cache_hit { "hit" } else { "miss" },
                "ms": ms(module.duration),
            }));
        }
        if let Some(mut error) = self.error(report) {
            error["event"] = json!("error");
            error["run"] = json!(run);
            self.emit(error);
        }
        let (outcome, exit_code, trap) = match &report.outcome {
            Outcome::Success => ("ok", Some(0), None),
            Outcome::Exit(code) => ("exit", Some(*code), None),
            Outcome::OutOfFuel => ("out-of-fuel", None, None),
            Outcome::Trap { kind, .. } => ("trap", None, Some(trap_words(*kind))),
            Outcome::Stopped(StopReason::Timeout) => ("timeout", None, None),
            Outcome::Stopped(StopReason::Change) => ("stopped-by-change", None, None),
            Outcome::Stopped(StopReason::CtrlC) => ("stopped-by-ctrl-c", None, None),
            Outcome::Failed(_) => ("error", None, None),
        };
        self.emit(json!({
            "event": "run-finished", "run": run, "outcome": outcome,
            "exit_code": exit_code, "trap": trap,
            "compile_ms": ms(report.compile), "run_ms": ms(report.run),
            "fuel_used": report.fuel_used, "peak_memory": report.peak_memory,
        }));
    }

    /// The `error` event's fields for a failed run: kind, file, line, col, message.
    fn error(&self, report: &RunReport) -> Option<Value> {
        // Messages are one line: a `.wat` error's source snippet stays in the
        // status output; line and col say where.
        let error =
            |kind: &str, file: Option<&str>, place: Option<(usize, usize)>, message: String| {
                json!({
                    "kind": kind, "file": file,
                    "line": place.map(|(line, _)| line), "col": place.map(|(_, col)| col),
                    "message": message.lines().next().unwrap_or_default(),
                })
            };
        if let Some(refusal) = report.memory_refused
            && report.outcome.is_failure()
        {
            let message = format!(
                "the run asked for {} bytes of memory, over --max-memory {}",
                refusal.wanted, refusal.limit
            );
            return Some(error("memory", None, None, message));
        }
        match &report.outcome {
            Outcome::Success | Outcome::Exit(_) | Outcome::Stopped(StopReason::Change) => None,
            Outcome::Stopped(StopReason::CtrlC) => None,
            Outcome::Stopped(StopReason::Timeout) => {
                let timeout = self.limits.timeout.unwrap_or_default();
                let message = format!("stopped after {}", humantime::format_duration(timeout));
                Some(error("timeout", None, None, message))
            }
            Outcome::OutOfFuel => {
                let budget = self.limits.fuel.unwrap_or_default();
                Some(error(
                    "out-of-fuel",
                    None,
                    None,
                    format!("used all {budget} units"),
                ))
            }
            Outcome::Trap { kind, frames } => {
                let source = frames.iter().find_map(|frame| frame.source.as_ref());
                let file = source.map(|place| self.name(Path::new(&place.file)));
                let place = source.and_then(|place| {
                    Some((place.line? as usize, place.col.unwrap_or(0) as usize))
                });
                Some(error("trap", file.as_deref(), place, trap_words(*kind)))
            }
            Outcome::Failed(err) => Some(match err.downcast_ref::<UseError>() {
                Some(use_error) => {
                    let (kind, file, place) = use_error_fields(use_error);
                    error(kind, file, place, use_error.to_string())
                }
                None => {
                    let wat = err.downcast_ref::<crate::source::WatError>();
                    let file = wat.map(|wat| self.name(&wat.path));
                    let place = wat.map(|wat| (wat.line, wat.col));
                    let kind = if wat.is_some() { "syntax" } else { "error" };
                    error(kind, file.as_deref(), place, format!("{err:#}"))
                }
            }),
        }
    }

    fn emit(&mut self, event: Value) {
        let Some(out) = &mut self.out else { return };
        // Events are best effort: a closed reader must not end the session.
        let _ = writeln!(out, "{event}");
        let _ = out.flush();
    }

    fn name(&self, path: &Path) -> String {
        crate::names::relative(&self.root, path)
    }
}

/// (kind, file, line and column) of a `use` failure.
fn use_error_fields(error: &UseError) -> (&'static str, Option<&str>, Option<(usize, usize)>) {
    fn importer(site: &crate::link::Site) -> Option<&str> {
        site.file.as_deref()
    }
    match error {
        UseError::Invalid {
            file,
            place,
            validation,
            ..
        } => {
            let kind = match (place, validation) {
                (Some(_), true) => "validation",
                (Some(_), false) => "syntax",
                (None, _) => "invalid",
            };
            (kind, Some(file.as_str()), *place)
        }
        UseError::NotFound { site, .. } => ("not-found", importer(site), None),
        UseError::BadName { site, .. } => ("bad-name", importer(site), None),
        UseError::Cycle { site, .. } => ("cycle", importer(site), None),
        UseError::MissingExport { site, .. }
        | UseError::TypeMismatch { site, .. }
        | UseError::UnknownHostImport { site } => ("link", importer(site), None),
    }
}

fn ms(duration: std::time::Duration) -> f64 {
    // Microsecond precision is plenty, and keeps lines short.
    (duration.as_secs_f64() * 1e6).round() / 1e3
}
