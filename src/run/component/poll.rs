//! `wasi:io/poll` that a save can cut short.
//!
//! Epoch interruption stops wasm code, not a host call: a component asleep in
//! `wasi:clocks` (a pollable it blocks on) or waiting on any other pollable
//! would hold the next run back until it woke. So `poll` and `pollable.block`
//! run wasmtime-wasi's own async implementation raced against the run's stop
//! switch, and a save or Ctrl-C wakes them at once.

use anyhow::Result;
use wasmtime::StoreContextMut;
use wasmtime::Trap;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::WasiView;
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi::runtime::in_tokio;
use wasmtime_wasi_io::bindings::wasi::io::poll::{Host as _, HostPollable as _};

use crate::run::host::Host;

/// The interface as wasmtime-wasi 48 defines it; imports of other 0.2
/// versions resolve to it (the linker matches semver-compatible names).
const POLL: &str = "wasi:io/poll@0.2.12";

/// Replaces `poll` and `[method]pollable.block` in `linker`.
pub fn shadow(linker: &mut Linker<Host>) -> Result<()> {
    linker.allow_shadowing(true);
    let mut poll = linker.instance(POLL)?;
    poll.func_wrap(
        "poll",
        |mut store: StoreContextMut<'_, Host>, (pollables,): (Vec<Resource<DynPollable>>,)| {
            let interrupt = std::sync::Arc::clone(&store.data().interrupt);
            let table = store.data_mut().ctx().table;
            match in_tokio(interrupt.or_stop(table.poll(pollables))) {
                Ok(ready) => Ok((ready?,)),
                Err(_) => Err(Trap::Interrupt.into()),
            }
        },
    )?;
    poll.func_wrap(
        "[method]pollable.block",
        |mut store: StoreContextMut<'_, Host>, (pollable,): (Resource<DynPollable>,)| {
            let interrupt = std::sync::Arc::clone(&store.data().interrupt);
            let table = store.data_mut().ctx().table;
            match in_tokio(interrupt.or_stop(table.block(pollable))) {
                Ok(done) => done,
                Err(_) => Err(Trap::Interrupt.into()),
            }
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}
