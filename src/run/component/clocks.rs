//! `wasi:clocks` under `--deterministic`: sleeps on the run's virtual clock.
//!
//! wasmtime-wasi's `subscribe-duration` and `subscribe-instant` make pollables
//! that wait for the host's time and move no clock; these make a
//! [`Deadline`](crate::run::determinism::Deadline) on the virtual one instead
//! (which `poll` and `block`, shadowed in `component/waits.rs`, wait on until
//! a save). With `--fuel` the clock also moves with the fuel used, which only
//! the store knows: then `now` of both clocks, and `pollable.ready`, fold it in
//! first. Without `--deterministic` nothing here is linked.

use std::sync::Arc;

use anyhow::Result;
use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::WasiView;
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi::p2::bindings::clocks::wall_clock::Datetime;
use wasmtime_wasi_io::bindings::wasi::io::poll::HostPollable as _;

use crate::run::determinism::{Determinism, VirtualClock};
use crate::run::host::Host;

/// The interfaces as wasmtime-wasi 50 defines them (imports of other 0.2
/// versions resolve to them).
const MONOTONIC_CLOCK: &str = "wasi:clocks/monotonic-clock@0.2.12";
const WALL_CLOCK: &str = "wasi:clocks/wall-clock@0.2.12";
const POLL: &str = "wasi:io/poll@0.2.12";

/// Replaces the subscriptions of `wasi:clocks/monotonic-clock` in `linker`;
/// with fuel counted, the reads of both clocks and `pollable.ready` too.
pub(super) fn shadow(linker: &mut Linker<Host>, determinism: &Determinism) -> Result<()> {
    linker.allow_shadowing(true);
    let mut monotonic = linker.instance(MONOTONIC_CLOCK)?;
    monotonic.func_wrap(
        "subscribe-duration",
        |mut store: StoreContextMut<'_, Host>, (duration,): (u64,)| {
            let clock = the_clock(&store)?;
            let deadline = clock.now().saturating_add(duration);
            Ok((subscribe(&mut store, &clock, deadline)?,))
        },
    )?;
    monotonic.func_wrap(
        "subscribe-instant",
        |mut store: StoreContextMut<'_, Host>, (deadline,): (u64,)| {
            let clock = the_clock(&store)?;
            Ok((subscribe(&mut store, &clock, deadline)?,))
        },
    )?;
    if determinism.counts_fuel() {
        monotonic.func_wrap("now", |store: StoreContextMut<'_, Host>, (): ()| {
            Ok((the_clock(&store)?.now(),))
        })?;
        linker.instance(WALL_CLOCK)?.func_wrap(
            "now",
            |store: StoreContextMut<'_, Host>, (): ()| {
                let now = the_clock(&store)?.wall();
                Ok((Datetime {
                    seconds: now.as_secs(),
                    nanoseconds: now.subsec_nanos(),
                },))
            },
        )?;
        linker.instance(POLL)?.func_wrap(
            "[method]pollable.ready",
            |mut store: StoreContextMut<'_, Host>, (pollable,): (Resource<DynPollable>,)| {
                the_clock(&store)?;
                let table = store.data_mut().ctx().table;
                let ready = wasmtime_wasi::runtime::in_tokio(table.ready(pollable))?;
                Ok((ready,))
            },
        )?;
    }
    linker.allow_shadowing(false);
    Ok(())
}

/// Under `--deterministic`, the run's virtual clock, the fuel used so far
/// folded in (what it reads, and the deadlines waited for, are measured from
/// it).
pub(super) fn virtual_clock(store: &StoreContextMut<'_, Host>) -> Option<Arc<VirtualClock>> {
    let clock = store.data().clock.as_ref()?;
    clock.fold_fuel(store.get_fuel().ok());
    Some(Arc::clone(clock))
}

/// The run's virtual clock, for what is linked only when it has one.
fn the_clock(store: &StoreContextMut<'_, Host>) -> wasmtime::Result<Arc<VirtualClock>> {
    virtual_clock(store)
        .ok_or_else(|| wasmtime::format_err!("a deterministic run without its virtual clock"))
}

/// A pollable ready when `clock` reads `deadline`.
fn subscribe(
    store: &mut StoreContextMut<'_, Host>,
    clock: &Arc<VirtualClock>,
    deadline: u64,
) -> wasmtime::Result<Resource<DynPollable>> {
    let table = store.data_mut().ctx().table;
    let deadline = table.push(clock.pollable(deadline))?;
    wasmtime_wasi_io::poll::subscribe(table, deadline)
}
