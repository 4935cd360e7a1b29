//! How a run ended, decided in one place from the error that ended it, and
//! described once ([`Description`]) for both the status lines and the events.

use std::fmt::Write as _;
use std::time::Duration;

use wasmtime::{Module, Trap, WasmBacktrace};
use wasmtime_wasi::I32Exit;

use super::interrupt::{Interrupt, StopReason};
use super::limits::Refusal;
use super::problem::Problem;
use super::use_error::UseError;

/// How a run ended.
#[derive(Debug)]
pub enum Outcome {
    /// `_start` returned, or the module had nothing to run.
    Success,
    /// The guest called `proc_exit`.
    Exit(i32),
    /// The guest trapped.
    Trap {
        /// What went wrong.
        kind: Trap,
        /// The wasm backtrace, innermost frame first (empty if none was captured).
        frames: Vec<Frame>,
    },
    /// Stopped from outside before it finished: a save or Ctrl-C.
    Stopped(StopReason),
    /// Ran longer than `--timeout` (this long).
    TimedOut(Duration),
    /// Used all of `--fuel` (this many units).
    OutOfFuel(u64),
    /// The module could not be loaded, compiled, linked or instantiated, or a
    /// host call failed.
    Failed(anyhow::Error),
}

/// A run's end in words, for people and for tools: the status line and the
/// `run-finished` / `error` events are both rendered from this, never from the
/// [`Outcome`] itself, so the two can never tell different stories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description {
    /// One word for tools: `ok`, `exit`, `trap`, `timeout`, `out-of-fuel`,
    /// `stopped-by-change`, `stopped-by-ctrl-c`, `error`.
    pub outcome: &'static str,
    /// The status line's words: `trap: integer divide by zero`.
    pub summary: String,
    /// How it went, to colour it.
    pub verdict: Verdict,
    /// `ok`: 0, `exit`: the guest's code; otherwise none.
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
pub enum Verdict {
    /// It ran to its end (a zero exit included).
    Good,
    /// Stopped from outside: a save or Ctrl-C. Not a failure.
    Stopped,
    /// It failed, or went over a limit.
    Failed,
}

impl Outcome {
    /// Classifies the error that ended a run; `frame` turns wasmtime's frames
    /// into ours (naming modules and files).
    pub fn from_error(
        err: anyhow::Error,
        interrupt: &Interrupt,
        timeout: Option<Duration>,
        fuel: Option<u64>,
        frame: &dyn Fn(&wasmtime::FrameInfo) -> Frame,
    ) -> Self {
        if let Some(exit) = err.downcast_ref::<I32Exit>() {
            return Outcome::Exit(exit.0);
        }
        // The message names the importing file and import: the wasm backtrace
        // wasmtime wraps around a host function's error adds nothing.
        if let Some(use_error) = err.downcast_ref::<UseError>() {
            return Outcome::Failed(anyhow::Error::new(use_error.clone()));
        }
        let Some(&kind) = err.downcast_ref::<Trap>() else {
            return Outcome::Failed(err);
        };
        match (kind, interrupt.reason()) {
            (Trap::Interrupt, Some(StopReason::Timeout)) => {
                return Outcome::TimedOut(timeout.unwrap_or_default());
            }
            (Trap::Interrupt, Some(reason)) => return Outcome::Stopped(reason),
            (Trap::OutOfFuel, _) => return Outcome::OutOfFuel(fuel.unwrap_or_default()),
            _ => {}
        }
        let frames = err
            .downcast_ref::<WasmBacktrace>()
            .map(|backtrace| backtrace.frames().iter().map(frame).collect())
            .unwrap_or_default();
        Outcome::Trap { kind, frames }
    }

    /// The process exit status for `--once`, as `wasmtime run` chooses it:
    /// the guest's own status, 134 (128 + SIGABRT) for a trap, 1 for an error;
    /// 124 for a timeout, as `timeout(1)`.
    pub fn exit_code(&self) -> i32 {
        match self {
            Outcome::Success => 0,
            Outcome::Exit(code) => *code,
            Outcome::Trap { .. } | Outcome::OutOfFuel(_) => 134,
            Outcome::TimedOut(_) => 124,
            Outcome::Stopped(_) => 130,
            Outcome::Failed(_) => 1,
        }
    }

    /// Describes the run's end; `refused` is a memory request `--max-memory`
    /// turned down during the run, which makes even a clean end a failure.
    pub fn describe(&self, refused: Option<Refusal>) -> Description {
        let mut description = self.describe_alone();
        if let Some(refusal) = refused {
            description.detail.insert_str(
                0,
                &format!(
                    "memory: the run asked for {} in all, over --max-memory {} \
                     (a module needing it fails to instantiate; memory.grow returns -1)\n",
                    size(refusal.wanted),
                    size(refusal.limit)
                ),
            );
            if description.verdict == Verdict::Failed {
                description.problem = Some(Problem::new(
                    "memory",
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
            Outcome::Success => Description {
                exit_code: Some(0),
                ..plain("ok", "ok".into(), Verdict::Good)
            },
            Outcome::Exit(code) => Description {
                exit_code: Some(*code),
                ..plain(
                    "exit",
                    format!("exit {code}"),
                    if *code == 0 {
                        Verdict::Good
                    } else {
                        Verdict::Failed
                    },
                )
            },
            Outcome::Trap { kind, frames } => {
                let words = trap_words(*kind);
                let source = frames.iter().find_map(|frame| frame.source.as_ref());
                Description {
                    trap: Some(words.clone()),
                    problem: Some(Problem {
                        file: source.map(|place| place.file.clone()),
                        place: source.and_then(|place| {
                            Some((place.line? as usize, place.col.unwrap_or(0) as usize))
                        }),
                        ..Problem::new("trap", words.clone())
                    }),
                    detail: backtrace(frames),
                    ..plain("trap", format!("trap: {words}"), Verdict::Failed)
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
                    problem: Some(Problem::new("timeout", format!("stopped after {after}"))),
                    ..plain(
                        "timeout",
                        format!("timed out: stopped after {after} (--timeout)"),
                        Verdict::Failed,
                    )
                }
            }
            Outcome::OutOfFuel(budget) => Description {
                problem: Some(Problem::new(
                    "out-of-fuel",
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
    match err.downcast_ref::<UseError>() {
        Some(use_error) => use_error.problem(),
        None => Problem::new("error", format!("{err:#}")),
    }
}

/// A trap's backtrace, innermost first: `0: divide (main @ 0x33) at main.wat:4:5`.
fn backtrace(frames: &[Frame]) -> String {
    let mut text = String::new();
    if !frames.is_empty() {
        text.push_str("wasm backtrace:\n");
    }
    for (index, frame) in frames.iter().enumerate() {
        let _ = write!(text, "  {index}: {} ({}", frame.function, frame.module);
        if let Some(offset) = frame.offset {
            let _ = write!(text, " @ {offset:#x}");
        }
        text.push(')');
        if let Some(source) = &frame.source {
            let _ = write!(text, " at {source}");
        }
        text.push('\n');
    }
    text
}

/// A size for humans: `640 B`, `64.0 KiB`, `16.0 MiB`.
fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// One frame of a trap's backtrace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The module's name (its name section, else its file stem).
    pub module: String,
    /// The function's name, or `func[N]` when the module has no name for it.
    pub function: String,
    /// Byte offset of the instruction in the module.
    pub offset: Option<usize>,
    /// Where in the guest's source, from its DWARF, when it carries some.
    pub source: Option<SourcePlace>,
}

/// A place in a source file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcePlace {
    /// The file, as the guest's debug info names it.
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<u32>,
    /// 1-based column, when known.
    pub col: Option<u32>,
}

impl std::fmt::Display for SourcePlace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.col {
                write!(f, ":{col}")?;
            }
        }
        Ok(())
    }
}

/// A trap's kind in words, without wasmtime's "wasm trap: " prefix.
pub fn trap_words(kind: Trap) -> String {
    match kind {
        Trap::StackOverflow => "stack overflow (call stack exhausted: endless recursion?)".into(),
        _ => {
            let text = kind.to_string();
            text.strip_prefix("wasm trap: ").unwrap_or(&text).to_owned()
        }
    }
}

/// Our frame of wasmtime's: `label` names the module, `name_file` the source file.
pub fn frame(
    info: &wasmtime::FrameInfo,
    label: &dyn Fn(&Module) -> String,
    name_file: &dyn Fn(&str) -> String,
) -> Frame {
    let source = info.symbols().iter().find_map(|symbol| {
        Some(SourcePlace {
            file: name_file(symbol.file()?),
            line: symbol.line(),
            col: symbol.column(),
        })
    });
    Frame {
        module: label(info.module()),
        function: info
            .func_name()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("func[{}]", info.func_index())),
        offset: info.module_offset(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_well() {
        assert_eq!(size(640), "640 B");
        assert_eq!(size(65536), "64.0 KiB");
        assert_eq!(size(16 << 20), "16.0 MiB");
    }

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
        assert_eq!(problem.kind, "memory");
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
