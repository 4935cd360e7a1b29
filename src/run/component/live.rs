//! The `live` host interface for components: `live:live/live.use`, the WIT of
//! `wit/live.wit`. It instantiates a sibling component now, as its first
//! called function would.

use anyhow::Result;
use wasmtime::component::{ComponentType, Linker, Lower};
use wasmtime::{AsContextMut, StoreContextMut, Trap};

use super::link::instance;
use crate::run::host::Host;
use crate::run::notes::Note;
use crate::run::outcome::trap_words;
use crate::run::problem::{Problem, ProblemKind};
use crate::run::use_error::{self, Site, UseError};

/// The interface as `wit/live.wit` declares it.
const LIVE: &str = "live:live/live@0.1.0";

/// `use-error` of `wit/live.wit`.
#[derive(ComponentType, Lower, Clone, Copy, Debug, PartialEq, Eq)]
#[component(enum)]
#[repr(u8)]
enum Failure {
    #[component(name = "not-found")]
    NotFound,
    #[component(name = "invalid")]
    Invalid,
    #[component(name = "trapped")]
    Trapped,
    #[component(name = "cycle")]
    Cycle,
    #[component(name = "bad-name")]
    BadName,
}

impl Failure {
    /// The enum case for a core-module code of `wit/README.md`.
    fn of_code(code: i32) -> Failure {
        match code {
            use_error::NOT_FOUND => Failure::NotFound,
            use_error::TRAPPED => Failure::Trapped,
            use_error::CYCLE => Failure::Cycle,
            use_error::BAD_NAME => Failure::BadName,
            _ => Failure::Invalid,
        }
    }
}

/// Defines `live:live/live.use: func(name: string) -> result<_, use-error>`.
pub fn add_to_linker(linker: &mut Linker<Host>) -> Result<()> {
    linker.instance(LIVE)?.func_wrap(
        "use",
        |mut store: StoreContextMut<'_, Host>, (name,): (String,)| {
            let site = Site::live_use(&name);
            match instance(store.as_context_mut(), &name, &site) {
                Ok(_) => Ok((Ok(()),)),
                Err(err) => failure(&store, err).map(|failure| (Err(failure),)),
            }
        },
    )?;
    Ok(())
}

/// The `use-error` for a failed `use`, with the detail said as a note; errors
/// that must end the run (a stop, out of fuel, `exit`) pass through.
fn failure(store: &StoreContextMut<'_, Host>, err: wasmtime::Error) -> wasmtime::Result<Failure> {
    let (code, problem, detail) = if let Some(use_error) = err.downcast_ref::<UseError>() {
        (use_error.code(), use_error.problem(), use_error.to_string())
    } else {
        match err.downcast_ref::<Trap>() {
            Some(Trap::Interrupt | Trap::OutOfFuel) | None => return Err(err),
            Some(trap) => {
                let message = format!("live.use: the component trapped: {}", trap_words(*trap));
                (
                    use_error::TRAPPED,
                    Problem::new(ProblemKind::Trap, &message),
                    message,
                )
            }
        }
    };
    store.data().notes.say(Note::UseFailed {
        code,
        problem,
        detail,
    });
    Ok(Failure::of_code(code))
}
