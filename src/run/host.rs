//! What the host gives a guest: the per-store state, and the host functions,
//! defined once per session in one [`Linker`].

use std::sync::Arc;

use anyhow::{Context, Result};
use wasmtime::{Engine, Linker};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::MemoryInputPipe;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use super::interrupt::Interrupt;
use super::limits::MemoryCap;
use super::link::Modules;
use super::notes::Notes;
use super::{live, sleep};
use crate::plan::{Sandbox, StdinSource};

/// The state of one store (`Store<Host>`): one run's WASI context, stop switch
/// and module instances.
pub struct Host {
    /// WASI preview 1 (also serves the older `wasi_unstable`).
    pub wasi: WasiP1Ctx,
    /// Lets a sleeping guest be woken by a save or Ctrl-C.
    pub interrupt: Arc<Interrupt>,
    /// The modules this run instantiated (`use`).
    pub modules: Modules,
    /// The cap on the run's linear memory (`--max-memory`).
    pub memory: MemoryCap,
    /// Where what the run says on its way goes (a failed `live.use`).
    pub notes: Notes,
    /// The guest's argv (`--invoke` reads its arguments from it).
    pub args: Vec<String>,
}

impl Host {
    /// A fresh host state: nothing but what `sandbox` grants.
    pub fn new(
        sandbox: &Sandbox,
        interrupt: Arc<Interrupt>,
        modules: Modules,
        memory: MemoryCap,
        notes: Notes,
    ) -> Result<Self> {
        let mut wasi = WasiCtxBuilder::new();
        wasi.inherit_stdout().inherit_stderr().args(&sandbox.args);
        for (key, value) in &sandbox.env {
            wasi.env(key, value);
        }
        for dir in &sandbox.preopens {
            let perms = if dir.read_only {
                FsPerms::ReadOnly
            } else {
                FsPerms::ReadWrite
            };
            wasi.preopened_dir(&dir.host, &dir.guest, perms)
                .map_err(anyhow::Error::from)
                .with_context(|| format!("--dir {}: cannot open it", dir.host.display()))?;
        }
        match &sandbox.stdin {
            StdinSource::Empty => {}
            StdinSource::Inherit => {
                wasi.inherit_stdin();
            }
            StdinSource::File(path) => {
                let bytes = std::fs::read(path)
                    .with_context(|| format!("--stdin {}: cannot read it", path.display()))?;
                wasi.stdin(MemoryInputPipe::new(bytes));
            }
        }
        Ok(Self {
            wasi: wasi.build_p1(),
            interrupt,
            modules,
            memory,
            notes,
            args: sandbox.args.clone(),
        })
    }
}

/// The session's linker of host functions: WASI preview 1 under both of its
/// module names (with a sleep that a save can cut short) and `live`.
pub fn linker(engine: &Engine) -> Result<Linker<Host>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |host: &mut Host| &mut host.wasi)?;
    wasmtime_wasi::p0::add_to_linker_sync(&mut linker, |host: &mut Host| &mut host.wasi)?;
    sleep::shadow_poll_oneoff(&mut linker)?;
    live::add_to_linker(&mut linker)?;
    Ok(linker)
}
