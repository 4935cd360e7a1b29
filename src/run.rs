//! One run: load the entry, make a fresh store, instantiate, call `_start`, and
//! say how it ended.
//!
//! The [`Runtime`] lives for the whole session (one engine, one linker, the
//! compile cache); everything a guest can touch is new in every run.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use wasmtime::{Config, Engine, Instance, Linker, Module, Store, Trap};

use crate::cache::ModuleCache;
use crate::host::{self, Host};
use crate::interrupt::Interrupt;
use crate::outcome::Outcome;
use crate::plan::{Plan, Sandbox};

/// What a finished run reports.
#[derive(Debug)]
pub struct RunReport {
    /// How it ended.
    pub outcome: Outcome,
    /// Time spent reading and compiling (near zero on a cache hit).
    pub compile: Duration,
    /// Time spent instantiating and running the guest.
    pub run: Duration,
}

/// The session-long part of running: engine, linker and compile cache.
pub struct Runtime {
    engine: Engine,
    linker: Linker<Host>,
    cache: ModuleCache,
    entry: PathBuf,
    sandbox: Sandbox,
}

impl Runtime {
    /// Builds the engine and defines the host functions, once.
    pub fn new(plan: &Plan) -> Result<Self> {
        let engine = new_engine()?;
        let linker = host::linker(&engine)?;
        Ok(Self {
            engine,
            linker,
            cache: ModuleCache::default(),
            entry: plan.entry.clone(),
            sandbox: plan.sandbox.clone(),
        })
    }

    /// The session's engine (to make an [`Interrupt`] for a run).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Runs the entry once, from a clean state; `interrupt` can stop it from
    /// another thread.
    pub fn run(&mut self, interrupt: Arc<Interrupt>) -> RunReport {
        let started = Instant::now();
        let module = match self.cache.load(&self.engine, &self.entry) {
            Ok(loaded) => loaded.module,
            Err(err) => return report(Outcome::Failed(err), started.elapsed(), Duration::ZERO),
        };
        let compile = started.elapsed();

        let started = Instant::now();
        let outcome = match self.instantiate_and_run(&module, Arc::clone(&interrupt)) {
            Ok(()) => Outcome::Success,
            Err(err) => Outcome::from_error(err, &interrupt, &|module| self.module_label(module)),
        };
        report(outcome, compile, started.elapsed())
    }

    fn instantiate_and_run(&self, module: &Module, interrupt: Arc<Interrupt>) -> Result<()> {
        let mut store = self.new_store(Arc::clone(&interrupt))?;
        // A stop requested before the deadline was armed would never tick again.
        if interrupt.reason().is_some() {
            return Err(Trap::Interrupt.into());
        }
        let instance = self
            .linker
            .instantiate(&mut store, module)
            .map_err(anyhow::Error::from)
            .with_context(|| link_context(&self.entry))?;
        for name in ["_initialize", "_start"] {
            if let Some(func) = instance_func(&mut store, &instance, name)? {
                func.call(&mut store, ())?;
            }
        }
        Ok(())
    }

    /// How a module is named in backtraces: its name section, else its file stem.
    fn module_label(&self, module: &Module) -> String {
        module
            .name()
            .map(str::to_owned)
            .or_else(|| Some(self.entry.file_stem()?.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "?".to_owned())
    }

    fn new_store(&self, interrupt: Arc<Interrupt>) -> Result<Store<Host>> {
        let host = Host::new(&self.sandbox, interrupt)?;
        let mut store = Store::new(&self.engine, host);
        store.set_epoch_deadline(1);
        Ok(store)
    }
}

/// One engine for the whole session: epoch interruption on (how a save stops a
/// running guest), backtraces with source lines when the guest has DWARF.
fn new_engine() -> Result<Engine> {
    let mut config = Config::new();
    config.epoch_interruption(true);
    config.wasm_backtrace_details(wasmtime::WasmBacktraceDetails::Enable);
    Ok(Engine::new(&config)?)
}

/// `name` as a `() -> ()` export, if the instance has one.
fn instance_func(
    store: &mut Store<Host>,
    instance: &Instance,
    name: &str,
) -> Result<Option<wasmtime::TypedFunc<(), ()>>> {
    if instance.get_func(&mut *store, name).is_none() {
        return Ok(None);
    }
    let func = instance
        .get_typed_func::<(), ()>(&mut *store, name)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("export `{name}` must take no parameters and return nothing"))?;
    Ok(Some(func))
}

fn link_context(entry: &Path) -> String {
    format!("{}: cannot instantiate", entry.display())
}

fn report(outcome: Outcome, compile: Duration, run: Duration) -> RunReport {
    RunReport {
        outcome,
        compile,
        run,
    }
}
