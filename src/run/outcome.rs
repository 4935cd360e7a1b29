//! How a run ended, decided in one place from the error that ended it.

use std::time::Duration;

use wasmtime::{Module, Trap, WasmBacktrace};
use wasmtime_wasi::I32Exit;

use super::interrupt::{Interrupt, StopReason};
use super::panic::{Panic, StderrTail};
use super::use_error::UseError;

// `--once` exit statuses of our own choosing; the fuzzing harness checks
// the events against them.

/// The run could not get going (the module could not be loaded, linked or
/// instantiated).
#[cfg_attr(not(feature = "fuzzing"), allow(unreachable_pub))]
pub const EXIT_ERROR: i32 = 1;
/// The guest trapped or ran out of fuel: 128 + SIGABRT, as `wasmtime run`.
#[cfg_attr(not(feature = "fuzzing"), allow(unreachable_pub))]
pub const EXIT_TRAP: i32 = 134;
/// The run went over `--timeout`, as `timeout(1)`.
#[cfg_attr(not(feature = "fuzzing"), allow(unreachable_pub))]
pub const EXIT_TIMEOUT: i32 = 124;

/// The script `--interpreter` runs is not there: the run ends before the
/// interpreter is compiled, as a run whose entry is missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct MissingScript {
    /// The script, as the user names it.
    pub(super) file: String,
}

impl std::fmt::Display for MissingScript {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: file not found (the script --interpreter runs)",
            self.file
        )
    }
}

impl std::error::Error for MissingScript {}

/// How a run ended.
#[derive(Debug)]
pub(super) enum Outcome {
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
        /// The Rust panic that ended in this trap, as the guest's stderr said it.
        panic: Option<Panic>,
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

impl Outcome {
    /// Classifies the error that ended a run; `frame` turns wasmtime's frames
    /// into ours (naming modules and files).
    pub(super) fn from_error(
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
        Outcome::Trap {
            kind,
            frames,
            panic: None,
        }
    }

    /// A trap on `unreachable` is how a Rust panic ends on wasm: names the
    /// panic that `stderr` (what the guest wrote there) reports, if it does.
    pub(super) fn read_panic(&mut self, stderr: &StderrTail) {
        if let Outcome::Trap {
            kind: Trap::UnreachableCodeReached,
            panic,
            ..
        } = self
        {
            *panic = stderr.panic();
        }
    }

    /// The process exit status for `--once`, as `wasmtime run` chooses it:
    /// the guest's own status, [`EXIT_TRAP`] for a trap, [`EXIT_ERROR`] for
    /// an error; [`EXIT_TIMEOUT`] for a timeout, as `timeout(1)`.
    pub(super) fn exit_code(&self) -> i32 {
        match self {
            Outcome::Success => 0,
            Outcome::Exit(code) => *code,
            Outcome::Trap { .. } | Outcome::OutOfFuel(_) => EXIT_TRAP,
            Outcome::TimedOut(_) => EXIT_TIMEOUT,
            Outcome::Stopped(_) => 130,
            Outcome::Failed(_) => EXIT_ERROR,
        }
    }
}

/// One frame of a trap's backtrace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Frame {
    /// The module's name (its name section, else its file stem).
    pub module: String,
    /// The function's name, demangled, or `func[N]` when the module has no
    /// name for it.
    pub function: String,
    /// Byte offset of the instruction in the module.
    pub offset: Option<usize>,
    /// Where in the guest's source, from its DWARF, when it carries some.
    pub source: Option<SourcePlace>,
}

/// A place in a source file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SourcePlace {
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
pub(super) fn trap_words(kind: Trap) -> String {
    match kind {
        Trap::StackOverflow => "stack overflow (call stack exhausted: endless recursion?)".into(),
        _ => {
            let text = kind.to_string();
            text.strip_prefix("wasm trap: ").unwrap_or(&text).to_owned()
        }
    }
}

/// Our frame of wasmtime's: `label` names the module, `name_file` the source file.
pub(super) fn frame(
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
            .map(super::demangle::demangle)
            .unwrap_or_else(|| format!("func[{}]", info.func_index())),
        offset: info.module_offset(),
        source,
    }
}
