//! The session's one [`Engine`], configured for a reload loop.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Result;
use wasmtime::{CacheStore, Config, Engine, Strategy, WasmBacktraceDetails};

use crate::huge_pages::HugeStack;
use crate::plan::{Compiler, EngineOptions};

/// The engine: epoch interruption on (how a save stops a running guest),
/// backtraces with source lines when the guest has DWARF, the chosen compiler,
/// and fuel metering only when a run has a fuel limit (it slows guests down).
pub fn new_engine(options: &EngineOptions, consume_fuel: bool) -> Result<Engine> {
    let mut config = Config::new();
    config.epoch_interruption(true);
    config.consume_fuel(consume_fuel);
    config.wasm_backtrace_details(WasmBacktraceDetails::Enable);
    match options.compiler {
        Compiler::Cranelift => {
            config.strategy(Strategy::Cranelift);
            if options.incremental_cache {
                config.enable_incremental_compilation(Arc::new(IncrementalCache::default()))?;
            }
        }
        // Winch has no incremental cache.
        Compiler::Winch => {
            config.strategy(Strategy::Winch);
        }
    }
    Ok(Engine::new(&config)?)
}

/// The stack of each compile thread but the runner.
const COMPILE_THREAD_STACK: usize = 4 << 20;

/// Starts the threads wasmtime compiles on (rayon's global pool), with the
/// calling thread, the runner, as the first of them: a compile splits its work
/// on the runner itself and lends the rest to the others, instead of handing
/// all of it over and sleeping until it is done, so a small module's compile
/// waits for no other thread to wake up. The others run on huge-page stacks
/// ([`HugeStack`]): a compile touches ~50 pages of their stacks. Does nothing
/// if the pool is already running (another session in this process).
pub(crate) fn start_compile_threads() {
    let _ = rayon::ThreadPoolBuilder::new()
        .use_current_thread()
        .thread_name(|index| format!("live-wasm-compile-{index}"))
        .spawn_handler(|thread| {
            let mut builder = std::thread::Builder::new();
            if let Some(name) = thread.name() {
                builder = builder.name(name.to_owned());
            }
            builder.spawn(move || HugeStack::new(COMPILE_THREAD_STACK).run(|| thread.run()))?;
            Ok(())
        })
        .build_global();
}

/// Cranelift's per-function compile results, in memory, bounded.
///
/// Two generations: entries go into `current`; when it outgrows half the budget
/// it becomes `previous` and the older generation is dropped. A hit in `previous`
/// moves back to `current`, so what recent saves use stays.
#[derive(Debug, Default)]
struct IncrementalCache {
    generations: Mutex<Generations>,
}

#[derive(Debug, Default)]
struct Generations {
    current: HashMap<Vec<u8>, Vec<u8>>,
    current_bytes: usize,
    previous: HashMap<Vec<u8>, Vec<u8>>,
}

/// Memory the cache may hold (two generations of half this each).
const INCREMENTAL_CACHE_BYTES: usize = 64 << 20;

impl Generations {
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.current_bytes += key.len() + value.len();
        self.current.insert(key, value);
        if self.current_bytes > INCREMENTAL_CACHE_BYTES / 2 {
            self.previous = std::mem::take(&mut self.current);
            self.current_bytes = 0;
        }
    }
}

impl CacheStore for IncrementalCache {
    fn get(&self, key: &[u8]) -> Option<Cow<'_, [u8]>> {
        let mut generations = self
            .generations
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(value) = generations.current.get(key) {
            return Some(Cow::Owned(value.clone()));
        }
        let value = generations.previous.remove(key)?;
        generations.put(key.to_vec(), value.clone());
        Some(Cow::Owned(value))
    }

    fn insert(&self, key: &[u8], value: Vec<u8>) -> bool {
        let mut generations = self
            .generations
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        generations.put(key.to_vec(), value);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_stays_bounded_and_keeps_recent_entries() {
        let cache = IncrementalCache::default();
        let chunk = INCREMENTAL_CACHE_BYTES / 8;
        for key in 0u8..20 {
            assert!(cache.insert(&[key], vec![0; chunk]));
            // The first key is used on every save: it must survive.
            assert!(cache.get(&[0]).is_some(), "lost the hot key at {key}");
        }
        let generations = cache.generations.lock().expect("lock");
        let held: usize = generations
            .current
            .values()
            .chain(generations.previous.values())
            .map(Vec::len)
            .sum();
        assert!(held <= INCREMENTAL_CACHE_BYTES + chunk, "{held}");
    }

    #[test]
    fn both_compilers_build_an_engine() {
        for compiler in [Compiler::Cranelift, Compiler::Winch] {
            let options = EngineOptions {
                compiler,
                incremental_cache: true,
                cache_dir: None,
                cache_size: 0,
            };
            let engine = new_engine(&options, false).expect("engine");
            let wasm = wat::parse_str("(module (func (export \"f\")))").expect("wat");
            wasmtime::Module::new(&engine, wasm).expect("compiles");
        }
    }
}
