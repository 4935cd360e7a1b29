//! The state of one store: what the host gives a guest in one run (its WASI
//! context, stop switch, module instances, memory cap), and the session's
//! [`HostFunctions`], defined once, with what was linked to them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{Context, Result};
use wasmtime::{AsContextMut, Caller, Extern, InstancePre, Linker, component};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p1::wasi_snapshot_preview1::WasiSnapshotPreview1;
use wasmtime_wasi::p2::pipe::MemoryInputPipe;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{
    RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView,
};

use super::determinism::{Determinism, VirtualClock};
use super::files::FileAccess;
use super::handles;
use super::interrupt::Interrupt;
use super::limits::MemoryCap;
use super::modules::Modules;
use super::notes::Notes;
use super::output;
use crate::plan::{Sandbox, StdinSource};
use crate::source::ContentHash;

/// The host functions of the session, defined once: what core modules import
/// (WASI preview 1, `live`) and what components import (WASI 0.2, `live:live`);
/// and the module files linked to them, ready to instantiate.
pub(super) struct HostFunctions {
    /// For core modules.
    pub(super) core: Linker<Host>,
    /// For components.
    pub(super) component: component::Linker<Host>,
    /// What each file was linked to, with the hash of the version linked: a
    /// new version is linked again, and the old one's code let go.
    prelinked: Mutex<HashMap<String, (ContentHash, Prelinked)>>,
    /// `--deterministic`, which the linkers were built for (their clocks
    /// shadowed): each run's clocks and randomness.
    determinism: Option<Determinism>,
    /// The component linker has `wasi:http` (`--serve`, `-S http`).
    pub(super) http: bool,
}

/// A module file linked to the host's functions (and a component's to
/// trampolines for what it imports from siblings), only to be instantiated.
#[derive(Clone)]
pub(super) enum Prelinked {
    /// A core module that imports only the host's functions.
    Core(InstancePre<Host>),
    /// A component.
    Component(component::InstancePre<Host>),
}

impl HostFunctions {
    /// Both linkers, built for `determinism`; nothing linked to them yet.
    pub(super) fn new(
        core: Linker<Host>,
        component: component::Linker<Host>,
        determinism: Option<Determinism>,
        http: bool,
    ) -> Self {
        Self {
            core,
            component,
            prelinked: Mutex::new(HashMap::new()),
            determinism,
            http,
        }
    }

    /// What `file` was linked to at the version of `hash`.
    pub(super) fn prelinked(&self, file: &str, hash: ContentHash) -> Option<Prelinked> {
        let prelinked = self
            .prelinked
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (linked, pre) = prelinked.get(file)?;
        (*linked == hash).then(|| pre.clone())
    }

    /// Keeps what `file` at the version of `hash` was linked to.
    pub(super) fn keep(&self, file: &str, hash: ContentHash, pre: Prelinked) {
        let mut prelinked = self
            .prelinked
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        prelinked.insert(file.to_owned(), (hash, pre));
    }
}

/// The state of one store (`Store<Host>`): one run's WASI context, stop switch
/// and module instances.
pub(super) struct Host {
    /// WASI preview 1 (also serves the older `wasi_unstable`), over the WASI
    /// 0.2 context and resource table that components use.
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
    /// The host functions, to bind the imports of what the run instantiates.
    pub functions: Arc<HostFunctions>,
    /// The files the guest opened through WASI.
    pub files: FileAccess,
    /// `--deterministic`: the run's virtual time, which its sleeps move.
    pub clock: Option<Arc<VirtualClock>>,
    /// `wasi:http`'s state: under `--serve`, or with `-S http`.
    pub http: WasiHttpCtx,
    /// Whether the guest's outgoing HTTP requests go out (`-S http`).
    pub outgoing_http: OutgoingHttp,
}

/// What becomes of a guest's outgoing HTTP requests: refused, unless `-S
/// http` granted them (then sent as `wasmtime serve` sends them).
pub(super) struct OutgoingHttp {
    pub(super) granted: bool,
}

impl WasiHttpHooks for OutgoingHttp {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (
                        http::Response<WasiBody>,
                        Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                    ),
                    wasmtime_wasi_http::Error,
                >,
            > + Send,
    > {
        if !self.granted {
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        let granted: &mut dyn WasiHttpHooks = wasmtime_wasi_http::default_hooks();
        granted.send_request(request, options, fut)
    }
}

impl Host {
    /// A fresh WASI context for a run's host: nothing but what `sandbox`
    /// grants, its output going to `output`; with virtual time and seeded
    /// randomness when the host `functions` were built for `--deterministic`
    /// (the run's clock is returned for the waits to move).
    pub(super) fn wasi_context(
        sandbox: &Sandbox,
        output: &output::Sink,
        functions: &HostFunctions,
    ) -> Result<(WasiP1Ctx, Option<Arc<VirtualClock>>)> {
        let mut wasi = WasiCtxBuilder::new();
        // File operations run on the runner's thread, as `wasmtime run` does,
        // not on a thread pool: a hop to another thread per call made each
        // `path_open` cost ~45 µs instead of ~1.5 µs. (Set before the preopens,
        // which take it.)
        wasi.allow_blocking_current_thread(true);
        output::connect(&mut wasi, output);
        wasi.args(&sandbox.args);
        if sandbox.network.inherit {
            // TCP and UDP are off in wasmtime-wasi until allowed; `wasmtime run`
            // allows both and checks addresses, which this grant lets through.
            wasi.inherit_network().allow_tcp(true).allow_udp(true);
        }
        wasi.allow_ip_name_lookup(sandbox.network.name_lookup);
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
                // Only a regular file: a FIFO put in its place must not block the run.
                let bytes = crate::source::open_regular(path)
                    .and_then(|mut file| {
                        let mut bytes = Vec::new();
                        std::io::Read::read_to_end(&mut file, &mut bytes).map(|_| bytes)
                    })
                    .with_context(|| format!("--stdin {}: cannot read it", path.display()))?;
                wasi.stdin(MemoryInputPipe::new(bytes));
            }
        }
        let clock =
            (functions.determinism.as_ref()).map(|determinism| determinism.start_run(&mut wasi));
        let mut wasi = wasi.build_p1();
        handles::bound(wasi.ctx().table);
        Ok((wasi, clock))
    }
}

/// Components reach the same WASI context as core modules: one sandbox.
impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        self.wasi.ctx()
    }
}

/// `wasi:http` shares the WASI context's resource table (its bodies are WASI
/// streams).
impl WasiHttpView for Host {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: self.wasi.ctx().table,
            hooks: &mut self.outgoing_http,
        }
    }
}

/// The caller's memory and the store's state, ready for one of wasmtime-wasi's
/// own WASI functions: given the store's host-call fuel, as its linker does
/// (the fuel bounds what the host copies out of the guest).
pub(super) fn memory_and_host<'a>(
    caller: &'a mut Caller<'_, Host>,
) -> wasmtime::Result<(&'a mut [u8], &'a mut Host)> {
    let fuel = caller.as_context_mut().hostcall_fuel();
    let Some(memory) = caller.get_export("memory").and_then(Extern::into_memory) else {
        wasmtime::bail!("missing required memory export");
    };
    let (bytes, host) = memory.data_and_store_mut(caller);
    host.wasi.set_hostcall_fuel(fuel);
    Ok((bytes, host))
}
