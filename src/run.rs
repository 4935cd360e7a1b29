//! One run: load the entry, make a fresh store, instantiate, call `_start`, and
//! say how it ended.
//!
//! The [`Runtime`] lives for the whole session (one engine, one linker, the
//! compile cache); everything a guest can touch is new in every run.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use wasmtime::{Config, Engine, Instance, Linker, Module, Store, Trap, WasmBacktrace};
use wasmtime_wasi::I32Exit;

use crate::cache::ModuleCache;
use crate::host::{self, Host};
use crate::interrupt::{Interrupt, StopReason};
use crate::plan::{Plan, Sandbox};

/// How a run ended. Decided in one place, [`Outcome::from_error`].
#[derive(Debug)]
pub enum Outcome {
    /// `_start` returned, or the module had nothing to run.
    Success,
    /// The guest called `proc_exit`.
    Exit(i32),
    /// The guest trapped.
    Trap {
        /// What went wrong, in words.
        kind: Trap,
        /// The wasm backtrace, innermost frame first, if one was captured.
        backtrace: Option<String>,
    },
    /// Stopped from outside before it finished.
    Stopped(StopReason),
    /// The module could not be loaded, compiled, linked or instantiated.
    Failed(anyhow::Error),
}

impl Outcome {
    /// Classifies the error that ended a run.
    fn from_error(err: anyhow::Error, interrupt: &Interrupt) -> Self {
        if let Some(exit) = err.downcast_ref::<I32Exit>() {
            return Outcome::Exit(exit.0);
        }
        if let Some(&kind) = err.downcast_ref::<Trap>() {
            if let (Trap::Interrupt, Some(reason)) = (kind, interrupt.reason()) {
                return Outcome::Stopped(reason);
            }
            let backtrace = err
                .downcast_ref::<WasmBacktrace>()
                .map(ToString::to_string)
                .filter(|text| !text.trim().is_empty());
            return Outcome::Trap { kind, backtrace };
        }
        Outcome::Failed(err)
    }

    /// The process exit status for `--once`, as `wasmtime run` chooses it:
    /// the guest's own status, 134 (128 + SIGABRT) for a trap, 1 for an error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Outcome::Success => 0,
            Outcome::Exit(code) => *code,
            Outcome::Trap { .. } => 134,
            Outcome::Stopped(_) => 130,
            Outcome::Failed(_) => 1,
        }
    }

    /// True when the run went wrong (what `--quiet` still shows).
    pub fn is_failure(&self) -> bool {
        matches!(self, Outcome::Trap { .. } | Outcome::Failed(_))
            || matches!(self, Outcome::Exit(code) if *code != 0)
    }
}

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
            Err(err) => Outcome::from_error(err, &interrupt),
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
