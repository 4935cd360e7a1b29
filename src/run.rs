//! One run: a fresh store, the entry instantiated (and what it uses, on demand),
//! `_initialize` and `_start` called, and how it ended.
//!
//! The [`Runtime`] lives for the whole session (one engine, one linker, the
//! compile cache); everything a guest can touch is new in every run.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use wasmtime::{AsContextMut, Engine, Instance, Store, Trap};

use crate::cache::ModuleCache;
use crate::host::{self, Host};
use crate::interrupt::Interrupt;
use crate::invoke;
use crate::limits::{Limits, MemoryCap, Refusal};
use crate::link::{self, Compiled, Linking, ModuleFile, Modules, Site};
use crate::outcome::Outcome;
use crate::plan::{Plan, Sandbox};

/// What a finished run reports.
#[derive(Debug)]
pub struct RunReport {
    /// How it ended.
    pub outcome: Outcome,
    /// Time spent reading and compiling modules (near zero on cache hits).
    pub compile: Duration,
    /// Time spent instantiating and running, compile time excluded.
    pub run: Duration,
    /// The module files the run resolved or tried: the watcher watches them.
    pub modules: Vec<ModuleFile>,
    /// The modules the run loaded, cached or compiled.
    pub compiled: Vec<Compiled>,
    /// Fuel the run used, when `--fuel` is set.
    pub fuel_used: Option<u64>,
    /// The most linear memory the run held, in bytes.
    pub peak_memory: u64,
    /// A memory request `--max-memory` refused, if any.
    pub memory_refused: Option<Refusal>,
}

/// The session-long part of running: engine, host functions and compile cache.
pub struct Runtime {
    engine: Engine,
    linking: Arc<Linking>,
    sandbox: Sandbox,
    limits: Limits,
    invoke: Option<String>,
}

impl Runtime {
    /// Builds the engine and defines the host functions, once.
    pub fn new(plan: &Plan) -> Result<Self> {
        let engine = crate::engine::new_engine(&plan.engine, plan.limits.fuel.is_some())?;
        let linker = host::linker(&engine)?;
        let cache = ModuleCache::new(plan.engine.cache_dir.clone());
        let linking = Arc::new(Linking::new(&plan.entry, &engine, linker, cache));
        Ok(Self {
            engine,
            linking,
            sandbox: plan.sandbox.clone(),
            limits: plan.limits,
            invoke: plan.invoke.clone(),
        })
    }

    /// The session's engine (to make an [`Interrupt`] for a run).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Runs the entry once, from a clean state; `interrupt` can stop it from
    /// another thread.
    pub fn run(&self, interrupt: Arc<Interrupt>) -> RunReport {
        let started = Instant::now();
        let modules = Modules::new(Arc::clone(&self.linking));
        let mut store = match self.new_store(Arc::clone(&interrupt), modules) {
            Ok(store) => store,
            Err(err) => {
                return RunReport {
                    outcome: Outcome::Failed(err),
                    compile: Duration::ZERO,
                    run: started.elapsed(),
                    modules: Vec::new(),
                    compiled: Vec::new(),
                    fuel_used: None,
                    peak_memory: 0,
                    memory_refused: None,
                };
            }
        };
        let outcome = match self.instantiate_and_run(&mut store, &interrupt) {
            Ok(()) => Outcome::Success,
            Err(err) => {
                let modules = &store.data().modules;
                Outcome::from_error(err, &interrupt, &|module| modules.label(module))
            }
        };
        let fuel_used = self
            .limits
            .fuel
            .map(|budget| budget.saturating_sub(store.get_fuel().unwrap_or(0)));
        let host = store.data();
        let compile = host.modules.compile_time();
        RunReport {
            outcome,
            compile,
            run: started.elapsed().saturating_sub(compile),
            modules: host.modules.files().to_vec(),
            compiled: host.modules.compiled().to_vec(),
            fuel_used,
            peak_memory: host.memory.peak(),
            memory_refused: host.memory.refused(),
        }
    }

    fn new_store(&self, interrupt: Arc<Interrupt>, modules: Modules) -> Result<Store<Host>> {
        let memory = MemoryCap::new(self.limits.max_memory);
        let host = Host::new(&self.sandbox, interrupt, modules, memory)?;
        let mut store = Store::new(&self.engine, host);
        store.set_epoch_deadline(1);
        store.limiter(|host| &mut host.memory);
        if let Some(fuel) = self.limits.fuel {
            store.set_fuel(fuel)?;
        }
        Ok(store)
    }

    fn instantiate_and_run(&self, store: &mut Store<Host>, interrupt: &Interrupt) -> Result<()> {
        // A stop requested before the deadline was armed would never tick again.
        if interrupt.reason().is_some() {
            return Err(Trap::Interrupt.into());
        }
        let entry = self.linking.entry_name().to_owned();
        let instance = link::instance(store.as_context_mut(), &entry, &Site::entry())?;
        if let Some(init) = entry_point(store, &instance, "_initialize")? {
            init.call(&mut *store, ())?;
        }
        match &self.invoke {
            Some(name) => self.invoke(store, &instance, name),
            None => match entry_point(store, &instance, "_start")? {
                Some(start) => Ok(start.call(&mut *store, ())?),
                None => Ok(()),
            },
        }
    }

    /// `--invoke`: calls `name` with the guest args, prints its results.
    fn invoke(&self, store: &mut Store<Host>, instance: &Instance, name: &str) -> Result<()> {
        let func = instance
            .get_func(&mut *store, name)
            .with_context(|| format!("--invoke {name}: the entry exports no function `{name}`"))?;
        let ty = func.ty(&*store);
        let args = self.sandbox.args.get(1..).unwrap_or_default();
        let params = invoke::parse_args(name, &ty, args)?;
        let mut results = vec![wasmtime::Val::I32(0); ty.results().len()];
        func.call(&mut *store, &params, &mut results)?;
        let mut stdout = std::io::stdout().lock();
        for value in &results {
            writeln!(stdout, "{}", invoke::format_result(value))?;
        }
        Ok(())
    }
}

/// `name` as a `() -> ()` export, if the instance has one.
fn entry_point(
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
