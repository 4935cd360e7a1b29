//! A run's end described once ([`Description`]): the status lines and the
//! JSON events both render this, never the [`Outcome`] itself.

use super::interrupt::StopReason;
use super::limits::{Refusal, size};
use super::outcome::{MissingScript, Outcome, trap_words};
use super::problem::{Problem, ProblemKind};
use super::use_error::UseError;

/// A run's end in words, for people and for tools, so the status line and the
/// `run-finished` / `error` events can never tell different stories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Description {
    /// One word for tools: `ok` (it returned, or exited with 0), `exit` (a
    /// nonzero exit status), `trap`, `timeout`, `out-of-fuel`,
    /// `stopped-by-change`, `stopped-by-ctrl-c`, `error`.
    pub outcome: &'static str,
    /// The status line's words: `trap: integer divide by zero`.
    pub summary: String,
    /// How it went, to colour it.
    pub verdict: Verdict,
    /// `ok`: 0, `exit`: the guest's nonzero code; otherwise none.
    pub exit_code: Option<i32>,
    /// The trap in words, for a trap.
    pub trap: Option<String>,
    /// What went wrong, when something did (the `error` event).
    pub problem: Option<Problem>,
    /// Lines for people under the status line: a backtrace, the whole error
    /// with its source line, a refused memory request. Empty when all went well.
    pub detail: String,
}

/// How a run went, in one of three colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// It ran to its end (a zero exit included).
    Good,
    /// Stopped from outside: a save or Ctrl-C. Not a failure.
    Stopped,
    /// It failed, or went over a limit.
    Failed,
}

impl Outcome {
    /// Describes the run's end; `refused` is a memory request `--max-memory`
    /// turned down during the run, which makes even a clean end a failure.
    pub(super) fn describe(&self, refused: Option<Refusal>) -> Description {
        let mut description = self.describe_alone();
        if let Some(refusal) = refused {
            description.detail.insert_str(
                0,
                &format!(
                    "memory: the run asked for {} in all, over --max-memory {} \
                     (memories and tables count together; a module needing more fails \
                     to instantiate; memory.grow and table.grow return -1)\n",
                    size(refusal.wanted),
                    size(refusal.limit)
                ),
            );
            if description.verdict == Verdict::Failed {
                description.problem = Some(Problem::new(
                    ProblemKind::Memory,
                    format!(
                        "the run asked for {} bytes of memory, over --max-memory {}",
                        refusal.wanted, refusal.limit
                    ),
                ));
            }
            description.verdict = Verdict::Failed;
        }
        description
    }

    fn describe_alone(&self) -> Description {
        let plain = |outcome, summary: String, verdict| Description {
            outcome,
            summary,
            verdict,
            exit_code: None,
            trap: None,
            problem: None,
            detail: String::new(),
        };
        match self {
            // One word for a good end, however the language ends a program:
            // Go's and Zig's runtimes call `proc_exit(0)`, C's `main` returns.
            Outcome::Success | Outcome::Exit(0) => Description {
                exit_code: Some(0),
                ..plain("ok", "ok".into(), Verdict::Good)
            },
            Outcome::Exit(code) => Description {
                exit_code: Some(*code),
                ..plain("exit", format!("exit {code}"), Verdict::Failed)
            },
            Outcome::Trap {
                kind,
                frames,
                panic,
            } => {
                let words = trap_words(*kind);
                // The program's own place, not one inside the Rust runtime.
                let source = (frames.iter())
                    .filter(|frame| !super::backtrace::is_runtime(frame))
                    .chain(frames)
                    .find_map(|frame| frame.source.as_ref());
                let mut problem = Problem {
                    file: source.map(|place| place.file.clone()),
                    place: source.and_then(|place| {
                        Some((place.line? as usize, place.col.unwrap_or(0) as usize))
                    }),
                    ..Problem::new(ProblemKind::Trap, words.clone())
                };
                // A Rust panic is said in its own words, at its own place.
                let summary = match panic {
                    Some(panic) => {
                        problem = Problem {
                            file: Some(panic.file.clone()),
                            place: Some((panic.line, panic.col)),
                            ..Problem::new(ProblemKind::Trap, panic.to_string())
                        };
                        panic.to_string()
                    }
                    None => format!("trap: {words}"),
                };
                Description {
                    trap: Some(words),
                    problem: Some(problem),
                    detail: super::backtrace::render(frames),
                    ..plain("trap", summary, Verdict::Failed)
                }
            }
            Outcome::Stopped(StopReason::CtrlC) => plain(
                "stopped-by-ctrl-c",
                "stopped by Ctrl-C; waiting for changes (Ctrl-C again to quit)".into(),
                Verdict::Stopped,
            ),
            // A timeout is recorded as `TimedOut`; this arm is a change.
            Outcome::Stopped(StopReason::Change | StopReason::Timeout) => plain(
                "stopped-by-change",
                "stopped by a change".into(),
                Verdict::Stopped,
            ),
            Outcome::TimedOut(after) => {
                let after = humantime::format_duration(*after);
                Description {
                    problem: Some(Problem::new(
                        ProblemKind::Timeout,
                        format!("stopped after {after}"),
                    )),
                    ..plain(
                        "timeout",
                        format!("timed out: stopped after {after} (--timeout)"),
                        Verdict::Failed,
                    )
                }
            }
            Outcome::OutOfFuel(budget) => Description {
                problem: Some(Problem::new(
                    ProblemKind::OutOfFuel,
                    format!("used all {budget} units"),
                )),
                ..plain(
                    "out-of-fuel",
                    format!(
                        "out of fuel: used all {budget} units (--fuel); raise it, or look for an endless loop"
                    ),
                    Verdict::Failed,
                )
            },
            Outcome::Failed(err) => Description {
                problem: Some(failure_problem(err)),
                detail: format!("{err:#}"),
                ..plain("error", "error".into(), Verdict::Failed)
            },
        }
    }
}

/// The problem of a run that could not get going.
fn failure_problem(err: &anyhow::Error) -> Problem {
    if let Some(missing) = err.downcast_ref::<MissingScript>() {
        return Problem {
            file: Some(missing.file.clone()),
            ..Problem::new(ProblemKind::NotFound, missing.to_string())
        };
    }
    match err.downcast_ref::<UseError>() {
        Some(use_error) => use_error.problem(),
        None => Problem::new(ProblemKind::Error, format!("{err:#}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_refused_memory_request_fails_a_clean_run_but_names_no_problem() {
        let refusal = Refusal {
            wanted: 4 << 16,
            limit: 3 << 16,
        };
        let clean = Outcome::Success.describe(Some(refusal));
        assert_eq!((clean.outcome, clean.verdict), ("ok", Verdict::Failed));
        assert!(
            clean
                .detail
                .starts_with("memory: the run asked for 256.0 KiB")
        );
        assert_eq!(clean.problem, None);

        let failed = Outcome::Failed(anyhow::anyhow!("no")).describe(Some(refusal));
        let problem = failed.problem.expect("a problem");
        assert_eq!(problem.kind, ProblemKind::Memory);
        assert_eq!(
            problem.message,
            "the run asked for 262144 bytes of memory, over --max-memory 196608"
        );
    }

    #[test]
    fn limits_say_which_limit() {
        let timeout = Outcome::TimedOut(Duration::from_millis(100)).describe(None);
        assert_eq!(
            timeout.summary,
            "timed out: stopped after 100ms (--timeout)"
        );
        assert_eq!(
            timeout.problem.expect("problem").message,
            "stopped after 100ms"
        );
        let fuel = Outcome::OutOfFuel(5).describe(None);
        assert_eq!(fuel.problem.expect("problem").message, "used all 5 units");
        assert_eq!(
            Outcome::Stopped(StopReason::Change).describe(None).verdict,
            Verdict::Stopped
        );
    }
}
