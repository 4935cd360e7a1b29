//! The session's one [`Engine`], configured for a reload loop.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use anyhow::Result;
use wasmtime::{
    CacheStore, Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Strategy,
    WasmBacktraceDetails,
};

use crate::huge_pages::HugeStack;
use crate::plan::{Compiler, EngineOptions};

/// The engine: epoch interruption on (how a save stops a running guest),
/// backtraces with source lines when the guest has DWARF, the chosen compiler,
/// and fuel metering only when a run has a fuel limit (it slows guests down).
pub fn new_engine(options: &EngineOptions, consume_fuel: bool) -> Result<Engine> {
    let mut config = Config::new();
    config.epoch_interruption(true);
    config.consume_fuel(consume_fuel);
    if options.deterministic {
        // What the spec leaves to the machine, fixed: the bits of a NaN an
        // operation makes, and what relaxed SIMD gives for edge inputs. Both
        // compilers take the first (Winch checks it at each float operation);
        // Winch has no relaxed SIMD at all (a module using it fails to
        // compile), so the second is Cranelift's alone. Both change the
        // compatibility hash, so code compiled without them, in the disk
        // cache, is not loaded (`cache/disk.rs`).
        config.cranelift_nan_canonicalization(true);
        config.relaxed_simd_deterministic(true);
    }
    if options.pooling {
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(
            PoolingAllocationConfig::default(),
        ));
    }
    config.wasm_backtrace_details(WasmBacktraceDetails::Enable);
    // Only for native unwinders (debuggers, the `backtrace` crate); wasmtime's
    // own backtraces and host panics do without. Registering and
    // unregistering it with libgcc is ~75 us of a compile after a pause.
    config.native_unwind_info(false);
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

/// Modules this big or bigger are compiled on all cores ([`compile`]).
const PARALLEL_FROM: usize = 16 << 10;

/// The stack of each compile thread.
const COMPILE_THREAD_STACK: usize = 4 << 20;

/// Makes the calling thread (the runner) compile small modules by itself: the
/// only thread of a rayon pool of its own, so wasmtime's parallel compile runs
/// on it without waking a thread that went to sleep during the pause (a hop
/// there and back, and a thread spinning on the other core while the guest's
/// output is on its way). Keep the pool while the thread compiles; `None`
/// when the thread is in a pool already.
#[must_use]
pub fn compile_small_modules_here() -> Option<rayon::ThreadPool> {
    if rayon::current_thread_index().is_some() {
        return None;
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .use_current_thread()
        .build()
        .ok()
}

/// Runs `compile`, the compile of `wasm_len` bytes of wasm: a small module
/// where it is called ([`compile_small_modules_here`]), a big one on the
/// compile threads, one per core, on huge-page stacks (a compile touches ~50
/// pages of their stacks). Without those threads, where it is called.
pub(crate) fn compile<R: Send>(wasm_len: usize, compile: impl FnOnce() -> R + Send) -> R {
    static THREADS: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    if wasm_len < PARALLEL_FROM {
        return compile();
    }
    let threads = THREADS.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .thread_name(|index| format!("live-wasm-compile-{index}"))
            .spawn_handler(|thread| {
                let mut builder = std::thread::Builder::new();
                if let Some(name) = thread.name() {
                    builder = builder.name(name.to_owned());
                }
                builder.spawn(move || HugeStack::new(COMPILE_THREAD_STACK).run(|| thread.run()))?;
                Ok(())
            })
            .build()
            .ok()
    });
    match threads {
        Some(threads) => threads.install(compile),
        None => compile(),
    }
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
                deterministic: false,
                pooling: false,
            };
            let engine = new_engine(&options, false).expect("engine");
            let wasm = wat::parse_str("(module (func (export \"f\")))").expect("wat");
            wasmtime::Module::new(&engine, wasm).expect("compiles");
        }
    }

    /// The bits of the NaN `0/0` makes, in `f32` and in each lane of an
    /// `f32x4`, compiled by an engine with `options`.
    fn nan_bits(options: &EngineOptions) -> (u32, u32) {
        let engine = new_engine(options, false).expect("engine");
        let wasm = wat::parse_str(
            r#"(module
              (func (export "scalar") (param f32) (result i32)
                (i32.reinterpret_f32 (f32.div (local.get 0) (local.get 0))))
              (func (export "lane") (param f32) (result i32)
                (i32x4.extract_lane 0 (f32x4.div (f32x4.splat (local.get 0)) (f32x4.splat (local.get 0))))))"#,
        )
        .expect("wat");
        let module = wasmtime::Module::new(&engine, wasm).expect("compiles");
        let mut store = wasmtime::Store::new(&engine, ());
        store.set_epoch_deadline(1);
        let instance = wasmtime::Instance::new(&mut store, &module, &[]).expect("instance");
        let mut call = |name: &str| {
            let func = instance
                .get_typed_func::<f32, i32>(&mut store, name)
                .expect("export");
            // The zero comes in as an argument: nothing to fold at compile time.
            func.call(&mut store, 0.0).expect("call") as u32
        };
        (call("scalar"), call("lane"))
    }

    #[test]
    fn a_deterministic_engine_makes_canonical_nans_with_either_compiler() {
        const CANONICAL: u32 = 0x7fc0_0000;
        for compiler in [Compiler::Cranelift, Compiler::Winch] {
            let mut options = EngineOptions {
                compiler,
                incremental_cache: false,
                cache_dir: None,
                cache_size: 0,
                deterministic: true,
                pooling: false,
            };
            assert_eq!(nan_bits(&options), (CANONICAL, CANONICAL), "{compiler:?}");
            // x86's own NaN has the sign bit set: canonicalising is what
            // made the difference.
            if cfg!(target_arch = "x86_64") {
                options.deterministic = false;
                assert_eq!(nan_bits(&options).0, 0xffc0_0000, "{compiler:?}");
            }
        }
    }
}
