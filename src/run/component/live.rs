//! The `live` host interface for components: `live:live/live.use`, the WIT of
//! `wit/live.wit`. It instantiates a sibling component now, as its first
//! called function would.

use anyhow::Result;
use wasmtime::component::{Component, ComponentType, Linker, Lower};
use wasmtime::{AsContextMut, StoreContextMut};

use crate::run::host::Host;
use crate::run::instantiate;
use crate::run::live::failed_use;
use crate::run::use_error::{self, Site};

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
pub(super) fn add_to_linker(linker: &mut Linker<Host>) -> Result<()> {
    linker.instance(LIVE)?.func_wrap(
        "use",
        |mut store: StoreContextMut<'_, Host>, (name,): (String,)| {
            let site = Site::live_use(&name);
            match instantiate::instance::<Component>(store.as_context_mut(), &name, &site) {
                Ok(_) => Ok((Ok(()),)),
                Err(err) => {
                    failed_use(&store.data().notes, err).map(|code| (Err(Failure::of_code(code)),))
                }
            }
        },
    )?;
    Ok(())
}
