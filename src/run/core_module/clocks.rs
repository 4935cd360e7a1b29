//! `clock_time_get` under `--deterministic --fuel`: the virtual clock moves with
//! the fuel the run has used, which only the store knows, so a read folds it in
//! first. (Without `--fuel` the clock needs nothing from the store, and
//! wasmtime-wasi's own call reads it; nothing is shadowed.)

use anyhow::Result;
use wasmtime::{Caller, Linker};
use wasmtime_wasi::p0::wasi_unstable;
use wasmtime_wasi::p1::wasi_snapshot_preview1 as preview1;
use wiggle::GuestMemory;

use crate::run::host::{Host, memory_and_host};

/// Replaces `clock_time_get` of both WASI preview 1 namespaces in `linker`.
pub(super) fn shadow(linker: &mut Linker<Host>) -> Result<()> {
    linker.allow_shadowing(true);
    linker.func_wrap(
        "wasi_snapshot_preview1",
        "clock_time_get",
        |mut caller: Caller<'_, Host>, id: i32, precision: i64, out: i32| {
            fold_fuel(&caller);
            let (memory, host) = memory_and_host(&mut caller)?;
            let mut memory = GuestMemory::Unshared(memory);
            preview1::clock_time_get(&mut host.wasi, &mut memory, id, precision, out)
        },
    )?;
    linker.func_wrap(
        "wasi_unstable",
        "clock_time_get",
        |mut caller: Caller<'_, Host>, id: i32, precision: i64, out: i32| {
            fold_fuel(&caller);
            let (memory, host) = memory_and_host(&mut caller)?;
            let mut memory = GuestMemory::Unshared(memory);
            wasi_unstable::clock_time_get(&mut host.wasi, &mut memory, id, precision, out)
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// Moves the run's virtual clock, if it has one, by the fuel used so far.
pub(super) fn fold_fuel(caller: &Caller<'_, Host>) {
    if let Some(clock) = &caller.data().clock {
        clock.fold_fuel(caller.get_fuel().ok());
    }
}
