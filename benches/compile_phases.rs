//! Where the compile of a small edit goes: the save-to-output bench's module (a
//! WASI command printing a line), edited as there, taken through each phase a
//! run takes it through, with the session's own engine and settings.
//!
//! `cargo bench --bench compile_phases [-- --saves N --paused-saves N --pause MS]`
//!
//! Each phase is timed on a fresh edit (nothing is reused but wasmtime's
//! incremental cache, which every function body of the edit hits, as in a
//! session), back to back and after a pause (a person saves after thinking,
//! default 250 ms), in the same process and conditions as the binary: our code
//! and heap on huge pages, each compile on a huge-page stack, on one thread.
//! The phases, as far as wasmtime's API lets them be timed apart:
//!
//! - `.wat -> wasm`: our parse and encode, line tables included;
//! - `validate`: wasmparser alone, a part of the next phase;
//! - `translate + compile + object`: `Engine::precompile_module`, which does
//!   what `Module::new` does up to the ELF image (and serialises it);
//! - `load`: `Module::deserialize` of that image (checked to be this engine's,
//!   copied into fresh memory, made executable, its types registered): about
//!   the rest of `Module::new`;
//! - `Module::new`, whole, with and without the incremental cache.

mod support;

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Result;
use live_wasm::internals::{HugeStack, compile_small_modules_here, new_engine, to_wasm};
use live_wasm::plan::{Compiler, EngineOptions};
use support::{option, percentile, printer};
use wasmtime::{Engine, Module};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// What a phase is given: the edit's text and wasm, and, for `Load`, the
/// image `Precompile` made of it.
struct Edit {
    text: String,
    wasm: Vec<u8>,
    image: Vec<u8>,
}

#[derive(Clone, Copy)]
enum Phase {
    WatToWasm,
    Validate,
    Precompile,
    Load,
    ModuleNew,
    ModuleNewUncached,
}

/// The session's engine, and one without the incremental cache.
struct Engines {
    cached: Engine,
    uncached: Engine,
}

impl Phase {
    const ALL: [Phase; 6] = [
        Phase::WatToWasm,
        Phase::Validate,
        Phase::Precompile,
        Phase::Load,
        Phase::ModuleNew,
        Phase::ModuleNewUncached,
    ];

    fn name(self) -> &'static str {
        match self {
            Phase::WatToWasm => ".wat -> wasm",
            Phase::Validate => "validate",
            Phase::Precompile => "translate + compile + object",
            Phase::Load => "load (map, publish, register)",
            Phase::ModuleNew => "Module::new",
            Phase::ModuleNewUncached => "Module::new, no incremental cache",
        }
    }

    fn run(self, engines: &Engines, edit: &Edit) -> Result<()> {
        match self {
            Phase::WatToWasm => drop(to_wasm(Path::new("main.wat"), edit.text.as_bytes())?),
            Phase::Validate => drop(wasmparser::Validator::new().validate_all(&edit.wasm)?),
            Phase::Precompile => drop(engines.cached.precompile_module(&edit.wasm)?),
            // SAFETY: the image was made by this engine, just now, in memory.
            Phase::Load => drop(unsafe { Module::deserialize(&engines.cached, &edit.image) }?),
            Phase::ModuleNew => drop(Module::new(&engines.cached, &edit.wasm)?),
            Phase::ModuleNewUncached => drop(Module::new(&engines.uncached, &edit.wasm)?),
        }
        Ok(())
    }
}

fn engine(incremental_cache: bool) -> Result<Engine> {
    let options = EngineOptions {
        compiler: Compiler::Cranelift,
        incremental_cache,
        cache_dir: None,
        cache_size: 0,
        deterministic: false,
        pooling: false,
    };
    new_engine(&options, false)
}

/// Times every phase on `saves` fresh edits, the phases interleaved, after
/// `pause` each; returns each phase's times in µs.
fn measure(
    engines: &Engines,
    saves: usize,
    pause: Duration,
    edits: &mut usize,
) -> Result<Vec<Vec<f64>>> {
    let mut stack = HugeStack::new(8 << 20);
    let mut times = vec![Vec::new(); Phase::ALL.len()];
    for _ in 0..saves {
        for (phase, times) in Phase::ALL.into_iter().zip(&mut times) {
            *edits += 1;
            // The save-to-output bench's small edit.
            let text = printer("", &format!("v{edits}"), "");
            let wasm = wat::parse_str(&text)?;
            let image = if matches!(phase, Phase::Load) {
                engines.cached.precompile_module(&wasm)?
            } else {
                Vec::new()
            };
            let edit = Edit { text, wasm, image };
            thread::sleep(pause);
            let started = Instant::now();
            stack.run(|| phase.run(engines, &edit))?;
            times.push(started.elapsed().as_secs_f64() * 1e6);
        }
    }
    Ok(times)
}

fn main() -> Result<()> {
    // SAFETY: first thing, while this is the only thread.
    unsafe { live_wasm::move_code() };
    let saves = option("--saves", 300) as usize;
    let paused_saves = option("--paused-saves", 40) as usize;
    let pause = Duration::from_millis(option("--pause", 250));
    // As the runner: a small module is compiled on the calling thread.
    let _one_thread = compile_small_modules_here();
    let engines = Engines {
        cached: engine(true)?,
        uncached: engine(false)?,
    };
    // The first compiles fill the incremental cache and warm what stays warm.
    let mut edits = 0;
    measure(&engines, 20, Duration::ZERO, &mut edits)?;
    let back_to_back = measure(&engines, saves, Duration::ZERO, &mut edits)?;
    let paused = measure(&engines, paused_saves, pause, &mut edits)?;
    println!(
        "compile phases of a small edit, µs: {saves} back to back, {paused_saves} after {} ms",
        pause.as_millis()
    );
    println!();
    println!("| phase | back to back p50 | p95 | after a pause p50 | p95 |");
    println!("|---|---:|---:|---:|---:|");
    for ((phase, warm), cold) in Phase::ALL.iter().zip(&back_to_back).zip(&paused) {
        println!(
            "| {} | {:.0} | {:.0} | {:.0} | {:.0} |",
            phase.name(),
            percentile(warm, 50.0),
            percentile(warm, 95.0),
            percentile(cold, 50.0),
            percentile(cold, 95.0),
        );
    }
    Ok(())
}
