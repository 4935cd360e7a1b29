//! The component path of a run: the host functions components import (WASI
//! 0.2, `live:live`), and a run of the entry: instantiated (the interfaces it
//! imports from sibling components are linked on demand, see [`uses`]), then
//! its `wasi:cli/run` export, or the function `--invoke` names.

mod clocks;
mod files;
mod invoke;
mod live;
pub(super) mod uses;
mod values;
mod waits;

use anyhow::{Context, Result};
use wasmtime::component::{Component, Linker};
use wasmtime::{AsContextMut, Engine, Store};
use wasmtime_wasi::I32Exit;
use wasmtime_wasi::p2::bindings::sync::Command;

use super::determinism::Determinism;
use super::host::Host;
use super::instantiate;
use super::use_error::Site;

/// The session's linker for components: WASI 0.2 (its waits on pollables and
/// stdin cut short by the run's stop switch, the files it opens and changes
/// noted, and under `determinism` its clocks virtual) and `live:live`; with
/// `http`, `wasi:http` (under `--serve`, or granted by `-S http`).
pub(super) fn linker(
    engine: &Engine,
    determinism: Option<&Determinism>,
    http: bool,
) -> Result<Linker<Host>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    if http {
        wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker)?;
    }
    waits::shadow(&mut linker)?;
    if let Some(determinism) = determinism {
        clocks::shadow(&mut linker, determinism)?;
    }
    files::shadow(&mut linker)?;
    live::add_to_linker(&mut linker)?;
    Ok(linker)
}

/// Runs the entry `component`: its `wasi:cli/run`, or the call `invoke` spells
/// in WAVE (`add(1, 2)`), whose results are printed in WAVE.
pub(super) fn run(
    store: &mut Store<Host>,
    component: &Component,
    invoke: Option<&str>,
) -> Result<()> {
    let call = invoke.map(invoke::Call::parse).transpose()?;
    run_parsed(store, component, call).map_err(|err| {
        // The entry's own call passed or got more values than the bound.
        let entry = store.data().modules.files.entry_label();
        match values::refusal(store.data(), err.chain(), &Site::entry(), &entry) {
            Some(refusal) => refusal.into(),
            None => err,
        }
    })
}

fn run_parsed(
    store: &mut Store<Host>,
    component: &Component,
    call: Option<invoke::Call>,
) -> Result<()> {
    // From here on, what a host call copies out of a guest is bounded.
    values::set_fuel(store.as_context_mut());
    let instance = instantiate::entry(store.as_context_mut(), component)?;
    if let Some(call) = call {
        return call.run(store, component, &instance);
    }
    let label = store.data().modules.files.entry_label();
    let without_run = || {
        format!(
            "{label} is a component without `wasi:cli/run`: run a command component \
             (for Rust, a `bin` built for wasm32-wasip2), or call one of its functions \
             with --invoke 'NAME(ARGS)'"
        )
    };
    let command = Command::new(&mut *store, &instance)
        .map_err(anyhow::Error::from)
        .with_context(without_run)?;
    match command.wasi_cli_run().call_run(&mut *store)? {
        Ok(()) => Ok(()),
        // `run` returned `err`: a failed command, status 1, as `wasmtime run` says.
        Err(()) => Err(I32Exit(1).into()),
    }
}

/// From here on, what a host call copies out of a guest is bounded (as for
/// a run's entry: `--serve`'s requests).
pub(super) fn values_bounded(store: wasmtime::StoreContextMut<'_, Host>) {
    values::set_fuel(store);
}

/// An interface name without its version: `demo:math/api@0.1.0` ->
/// `demo:math/api`. Imports and exports match across versions.
fn unversioned(name: &str) -> &str {
    name.split_once('@')
        .map_or(name, |(unversioned, _)| unversioned)
}
