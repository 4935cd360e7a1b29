//! The core-module path of a run: the host functions core modules import (WASI
//! preview 1, `live`), and a run of the entry: instantiated (what it imports is
//! linked on demand), then `_initialize`, then `_start` or `--invoke`.

mod clocks;
mod files;
mod invoke;
mod live;
mod uses;
mod waits;

use std::io::Write;

use anyhow::{Context, Result};
use wasmtime::{AsContextMut, Engine, Instance, Linker, Module, Store, TypedFunc, Val};

use super::determinism::Determinism;
use super::host::Host;
use super::instantiate;

/// The session's linker of host functions: WASI preview 1 under both of its
/// module names (with waits that a save can cut short, the files a guest
/// opens noted, and, under `determinism` with fuel, clocks that fuel moves)
/// and `live`.
pub(super) fn linker(engine: &Engine, determinism: Option<&Determinism>) -> Result<Linker<Host>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |host: &mut Host| &mut host.wasi)?;
    wasmtime_wasi::p0::add_to_linker_sync(&mut linker, |host: &mut Host| &mut host.wasi)?;
    waits::shadow(&mut linker)?;
    if determinism.is_some_and(Determinism::counts_fuel) {
        clocks::shadow(&mut linker)?;
    }
    files::shadow(&mut linker)?;
    live::add_to_linker(&mut linker)?;
    Ok(linker)
}

/// Runs the entry `module`: its `_start`, or the export `invoke` names, called
/// with the guest's arguments.
pub(super) fn run(store: &mut Store<Host>, module: &Module, invoke: Option<&str>) -> Result<()> {
    let instance = instantiate::entry(store.as_context_mut(), module)?;
    if let Some(init) = entry_point(store, &instance, "_initialize")? {
        init.call(&mut *store, ())?;
    }
    match invoke {
        Some(name) => call_and_print(store, &instance, name),
        None => match entry_point(store, &instance, "_start")? {
            Some(start) => Ok(start.call(&mut *store, ())?),
            None => Ok(()),
        },
    }
}

/// `--invoke`: calls `name` with the guest args, prints its results.
fn call_and_print(store: &mut Store<Host>, instance: &Instance, name: &str) -> Result<()> {
    let func = instance
        .get_func(&mut *store, name)
        .with_context(|| format!("--invoke {name}: the entry exports no function `{name}`"))?;
    let ty = func.ty(&*store);
    let args = store.data().args.get(1..).unwrap_or_default().to_vec();
    let params = invoke::parse_args(name, &ty, &args)?;
    let mut results = vec![Val::I32(0); ty.results().len()];
    func.call(&mut *store, &params, &mut results)?;
    let mut stdout = std::io::stdout().lock();
    for value in &results {
        writeln!(stdout, "{}", invoke::format_result(value))?;
    }
    Ok(())
}

/// `name` as a `() -> ()` export, if the instance has one.
fn entry_point(
    store: &mut Store<Host>,
    instance: &Instance,
    name: &str,
) -> Result<Option<TypedFunc<(), ()>>> {
    if instance.get_func(&mut *store, name).is_none() {
        return Ok(None);
    }
    let func = instance
        .get_typed_func::<(), ()>(&mut *store, name)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("export `{name}` must take no parameters and return nothing"))?;
    Ok(Some(func))
}
