//! The waits of `wasi:io` that a save can cut short.
//!
//! Epoch interruption stops wasm code, not a host call: a component asleep in
//! `wasi:clocks` (a pollable it blocks on), waiting on any other pollable, or
//! blocked reading stdin would hold the next run (or `--timeout`, or Ctrl-C)
//! back until it woke. So `poll`, `pollable.block` and the blocking reads of
//! an input stream run wasmtime-wasi's own async implementation raced against
//! the run's stop switch, and a stop wakes them at once. (Under
//! `--deterministic` a clock's pollables are the virtual clock's, see
//! `component/clocks.rs`: waited on here alike.)

use std::sync::Arc;

use anyhow::Result;
use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource, ResourceTable};
use wasmtime_wasi::WasiView;
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi_io::bindings::wasi::io::poll::{Host as _, HostPollable as _};
use wasmtime_wasi_io::bindings::wasi::io::streams::{self, Host as _, HostInputStream as _};
use wasmtime_wasi_io::streams::{DynInputStream, StreamResult};

use super::clocks::virtual_clock;
use crate::run::host::Host;

/// The interfaces as wasmtime-wasi 50 (and 48) defines them; imports of other 0.2
/// versions resolve to them (the linker matches semver-compatible names).
const POLL: &str = "wasi:io/poll@0.2.12";
const STREAMS: &str = "wasi:io/streams@0.2.12";

/// What a blocking read returns to the guest.
type Read<T> = wasmtime::Result<(Result<T, streams::StreamError>,)>;

/// Replaces `poll`, `[method]pollable.block` and the blocking reads of
/// `[method]input-stream` in `linker`.
pub(super) fn shadow(linker: &mut Linker<Host>) -> Result<()> {
    linker.allow_shadowing(true);
    let mut poll = linker.instance(POLL)?;
    poll.func_wrap(
        "poll",
        |mut store: StoreContextMut<'_, Host>, (pollables,): (Vec<Resource<DynPollable>>,)| {
            let ready = match virtual_clock(&store) {
                None => until_stopped(&mut store, async move |table| table.poll(pollables).await)?,
                Some(clock) => until_stopped(&mut store, async move |table| {
                    (clock.wait(table, async |table| {
                        table.poll(pollables.iter().map(borrow).collect()).await
                    }))
                    .await
                })?,
            };
            Ok((ready?,))
        },
    )?;
    poll.func_wrap(
        "[method]pollable.block",
        |mut store: StoreContextMut<'_, Host>, (pollable,): (Resource<DynPollable>,)| {
            match virtual_clock(&store) {
                None => until_stopped(&mut store, async move |table| table.block(pollable).await)?,
                Some(clock) => until_stopped(&mut store, async move |table| {
                    (clock.wait(table, async |table| table.block(borrow(&pollable)).await)).await
                })?,
            }
        },
    )?;
    let mut streams = linker.instance(STREAMS)?;
    streams.func_wrap(
        "[method]input-stream.blocking-read",
        |mut store: StoreContextMut<'_, Host>,
         (stream, len): (Resource<DynInputStream>, u64)|
         -> Read<Vec<u8>> {
            let read = until_stopped(&mut store, async move |table| {
                table.blocking_read(stream, len).await
            })?;
            to_guest(&mut store, read)
        },
    )?;
    streams.func_wrap(
        "[method]input-stream.blocking-skip",
        |mut store: StoreContextMut<'_, Host>,
         (stream, len): (Resource<DynInputStream>, u64)|
         -> Read<u64> {
            let skipped = until_stopped(&mut store, async move |table| {
                table.blocking_skip(stream, len).await
            })?;
            to_guest(&mut store, skipped)
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// Another handle on the guest's `pollable`, for a look that runs again.
fn borrow(pollable: &Resource<DynPollable>) -> Resource<DynPollable> {
    Resource::new_borrow(pollable.rep())
}

/// Runs `wait` on the run's resource table until it is done or the run is
/// asked to stop.
fn until_stopped<T>(
    store: &mut StoreContextMut<'_, Host>,
    wait: impl AsyncFnOnce(&mut ResourceTable) -> T,
) -> wasmtime::Result<T> {
    let interrupt = Arc::clone(&store.data().interrupt);
    let table = store.data_mut().ctx().table;
    interrupt.until_stopped(wait(table))
}

/// A stream's result as the guest receives it: an error becomes a
/// `stream-error` (its detail a resource of the guest's), or a trap.
fn to_guest<T>(store: &mut StoreContextMut<'_, Host>, result: StreamResult<T>) -> Read<T> {
    match result {
        Ok(value) => Ok((Ok(value),)),
        Err(err) => {
            let table = store.data_mut().ctx().table;
            Ok((Err(table.convert_stream_error(err)?),))
        }
    }
}
