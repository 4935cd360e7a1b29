//! What `live.use` answers, for core modules and components alike: each kind
//! defines the function its own way (`core_module/live.rs`, `component/live.rs`),
//! and a failed `use` becomes the same code and the same note.

use wasmtime::Trap;

use super::notes::{Note, Notes};
use super::outcome::trap_words;
use super::problem::{Problem, ProblemKind};
use super::use_error::{TRAPPED, UseError};

/// The code of a failed `use` (`wit/README.md`), its detail said as a note;
/// what must end the run (a stop, out of fuel, an exit in a start function, a
/// host call that failed) passes through.
pub(super) fn failed_use(notes: &Notes, err: wasmtime::Error) -> wasmtime::Result<i32> {
    let (code, problem, detail) = if let Some(use_error) = err.downcast_ref::<UseError>() {
        (use_error.code(), use_error.problem(), use_error.to_string())
    } else {
        match err.downcast_ref::<Trap>() {
            Some(Trap::Interrupt | Trap::OutOfFuel) | None => return Err(err),
            Some(trap) => {
                let message = format!("live.use: its start trapped: {}", trap_words(*trap));
                (TRAPPED, Problem::new(ProblemKind::Trap, &message), message)
            }
        }
    };
    notes.say(Note::UseFailed {
        code,
        problem,
        detail,
    });
    Ok(code)
}
