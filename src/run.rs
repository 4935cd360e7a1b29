//! One run: a fresh store, the entry loaded, and how it ended; and the runner
//! thread that runs them one at a time.
//!
//! This is the face of the run room: the rest of the program sees only what is
//! declared here. Inside, the kind of the entry is the one branch point: a core
//! module takes the [`core_module`] path (WASI preview 1, `live`), a component
//! the [`component`] path (WASI 0.2, `live:live`); under `--serve`, a run makes
//! the version that answers HTTP requests instead ([`serve`]). All instantiate
//! what they use through the one [`instantiate`] layer, over the run's [`modules`]. The
//! [`Runtime`] lives for the whole session (one engine, the host functions, the
//! compile cache); everything a guest can touch is new in every run.
//!
//! ```text
//! run.rs -> core_module/, component/   (each kind's host functions, entry, `use`)
//!        -> serve                      (`--serve`: versions, a store per request)
//!        -> instantiate -> host        (the store's state, the host functions)
//!                       -> modules     (files, names, instances of one run)
//!        -> files, limits, interrupt, determinism, notes, output, outcome, ...
//! ```

mod backtrace;
mod component;
mod core_module;
mod demangle;
mod describe;
mod determinism;
mod elsewhere;
mod files;
mod handles;
mod host;
mod instantiate;
mod interrupt;
mod limits;
mod live;
mod modules;
mod notes;
mod outcome;
mod output;
mod panic;
mod problem;
mod serve;
mod use_error;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, unbounded};
use wasmtime::{Engine, Store, Trap, UpdateDeadline};

use crate::beneath::ReadFile;
use crate::cache::{Artifact, DiskCache, ModuleCache};
use crate::plan::{Limits, Plan, Sandbox};
use crate::screen::Screen;
use crate::source::ModuleFile;
use crate::transcript::Transcript;
use determinism::Determinism;
use files::FileAccess;
use host::{Host, HostFunctions};
use limits::{MemoryCap, Refusal};
use modules::{ModuleFiles, Modules};
use notes::Notes;
use outcome::Outcome;
use panic::StderrTail;

pub(crate) use describe::{Description, Verdict};
pub(crate) use interrupt::StopReason;
pub(crate) use modules::Compiled;
pub(crate) use notes::Note;
pub(crate) use output::show_again;
pub(crate) use problem::Problem;
pub(crate) use serve::{CLIENT_GONE, Handlers, Served, ServedBy, text_response};
// The fuzzing harness checks the events against them.
#[cfg(feature = "fuzzing")]
pub use outcome::{EXIT_ERROR, EXIT_TIMEOUT, EXIT_TRAP};
#[cfg(feature = "fuzzing")]
pub use problem::ProblemKind;

use interrupt::Interrupt;

/// What a finished run reports.
#[derive(Debug)]
pub(crate) struct RunReport {
    outcome: Outcome,
    memory_refused: Option<Refusal>,
    /// Time spent reading and compiling modules (near zero on cache hits).
    pub(crate) compile: Duration,
    /// Time spent instantiating and running, compile time excluded.
    pub(crate) run: Duration,
    /// The module files the run resolved or tried: the watcher watches them.
    pub(crate) modules: Vec<ModuleFile>,
    /// The files the guest read (or looked for) through WASI and did not
    /// write: watched too.
    pub(crate) read: Vec<ReadFile>,
    /// What of the files it opened was not noted, past the bounds, in words.
    pub(crate) unwatched: Option<String>,
    /// The modules the run loaded, cached or compiled.
    pub(crate) compiled: Vec<Compiled>,
    /// Fuel the run used, when `--fuel` is set.
    pub(crate) fuel_used: Option<u64>,
    /// The most memory (linear memories and tables) the run held, in bytes.
    pub(crate) peak_memory: u64,
    /// What the guest printed, when the session notes it.
    pub(crate) output: Option<Transcript>,
    /// Under `--serve`: the version this run made, now answering requests.
    pub(crate) serving: Option<u64>,
}

impl RunReport {
    /// How the run ended, in words for people and for tools.
    pub(crate) fn describe(&self) -> Description {
        self.outcome.describe(self.memory_refused)
    }

    /// The process exit status for `--once`.
    pub(crate) fn exit_code(&self) -> i32 {
        self.outcome.exit_code()
    }
}

/// The session-long part of running: engine, host functions and compile cache.
pub(crate) struct Runtime {
    /// What every store is made from.
    stores: Arc<Stores>,
    /// `--interpreter`'s script, and how messages name it.
    script: Option<(PathBuf, String)>,
    invoke: Option<String>,
    /// Note what guests print (`--diff`), with its tail in order (`--clear`).
    transcripts: Option<Transcripts>,
    /// `--serve`: what answers requests, which each run gives a new version.
    serve: Option<Arc<Handlers>>,
    /// The other ends of where runs' notes and announced writes go, for the
    /// [`Runner`].
    heard: Option<(Receiver<Note>, Receiver<PathBuf>)>,
}

/// What every store of the session is made from (a run's, and under
/// `--serve` a request's): the engine, the host functions, the module files,
/// the grants and limits, and where guests' output, notes and writes go.
pub(super) struct Stores {
    engine: Engine,
    functions: Arc<HostFunctions>,
    module_files: Arc<ModuleFiles>,
    sandbox: Sandbox,
    limits: Limits,
    screen: Arc<Screen>,
    said: Sender<Note>,
    wrote: Sender<PathBuf>,
}

/// What of a guest's output each run notes ([`Transcript`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Transcripts {
    /// Its tail, in order, to show it again.
    pub(crate) replay: bool,
}

impl Runtime {
    /// Builds the engine and defines the host functions, once; guests' output
    /// goes to `screen`, and is noted as `transcripts` says.
    pub(crate) fn new(
        plan: &Plan,
        screen: Arc<Screen>,
        transcripts: Option<Transcripts>,
    ) -> Result<Self> {
        let engine = crate::engine::new_engine(&plan.engine, plan.limits.fuel.is_some())?;
        let determinism = Determinism::new(plan);
        let http = plan.serve.is_some() || plan.sandbox.network.http;
        let functions = Arc::new(HostFunctions::new(
            core_module::linker(&engine, determinism.as_ref())?,
            component::linker(&engine, determinism.as_ref(), http)?,
            determinism,
            http,
        ));
        let disk = (plan.engine.cache_dir.clone())
            .map(|dir| DiskCache::new(dir, plan.engine.cache_size, &engine));
        let cache = ModuleCache::new(disk).show_progress(Arc::clone(screen.progress()), &plan.root);
        let module_files = Arc::new(ModuleFiles::new(
            &plan.entry,
            &plan.root,
            &plan.cwd,
            &engine,
            cache,
        ));
        let (said, notes) = unbounded();
        let (wrote, writes) = unbounded();
        let stores = Arc::new(Stores {
            engine,
            functions,
            module_files,
            sandbox: plan.sandbox.clone(),
            limits: plan.limits,
            screen,
            said,
            wrote,
        });
        let every_request = !plan.presentation.quiet || plan.presentation.events.is_some();
        let serve =
            (plan.serve).map(|_| Arc::new(Handlers::new(Arc::clone(&stores), every_request)));
        Ok(Self {
            stores,
            serve,
            heard: Some((notes, writes)),
            // Named as the status lines name files: from the root when inside it.
            script: (plan.script.clone()).map(|script| {
                let name = match script.starts_with(&plan.root) {
                    true => crate::names::relative(&plan.root, &script),
                    false => crate::nearby::shown(&plan.cwd, &script),
                };
                (script, name)
            }),
            invoke: plan.invoke.clone(),
            transcripts,
        })
    }

    /// Under `--serve`: what answers requests.
    pub(crate) fn handlers(&self) -> Option<Arc<Handlers>> {
        self.serve.clone()
    }

    /// Runs the entry once, from a clean state, as `request` says (under
    /// `--serve`, makes it the version that answers).
    fn run(&self, request: &Request) -> RunReport {
        let stores = &self.stores;
        let started = Instant::now();
        let interrupt = Arc::clone(&request.interrupt);
        let transcript =
            (self.transcripts).map(|what| Arc::new(Mutex::new(Transcript::new(what.replay))));
        let stderr = Arc::new(Mutex::new(StderrTail::default()));
        let sink = output::Sink {
            screen: Arc::clone(&stores.screen),
            transcript: transcript.clone(),
            stderr: Arc::clone(&stderr),
            echo: request.echo,
        };
        let mut store = match stores.new_store(Arc::clone(&interrupt), &sink) {
            Ok(store) => store,
            Err(err) => {
                return RunReport {
                    outcome: Outcome::Failed(err),
                    memory_refused: None,
                    compile: Duration::ZERO,
                    run: started.elapsed(),
                    modules: Vec::new(),
                    read: Vec::new(),
                    unwatched: None,
                    compiled: Vec::new(),
                    fuel_used: None,
                    peak_memory: 0,
                    output: transcript.map(noted),
                    serving: None,
                };
            }
        };
        let mut serving = None;
        let loaded = match &self.serve {
            Some(handlers) => {
                let prepared = serve::prepare(handlers, &mut store, request.number);
                handlers.settled();
                serving = prepared.is_ok().then_some(request.number);
                prepared
            }
            None => self.load_and_run(&mut store, &interrupt),
        };
        let mut outcome = stores.outcome(loaded, &store, &interrupt);
        outcome.read_panic(&stderr.lock().unwrap_or_else(PoisonError::into_inner));
        let fuel_used = stores
            .limits
            .fuel
            .map(|budget| budget.saturating_sub(store.get_fuel().unwrap_or(0)));
        let host = store.data();
        let compile = host.modules.compile_time();
        RunReport {
            outcome,
            memory_refused: host.memory.refused(),
            compile,
            run: started.elapsed().saturating_sub(compile),
            modules: host.modules.files().to_vec(),
            read: host.files.read(),
            unwatched: host.files.overflow().map(str::to_owned),
            compiled: host.modules.compiled().to_vec(),
            fuel_used,
            peak_memory: host.memory.peak(),
            output: transcript.map(noted),
            serving,
        }
    }

    /// Loads the entry and takes the path its kind calls for.
    fn load_and_run(&self, store: &mut Store<Host>, interrupt: &Interrupt) -> Result<()> {
        // A stop requested before the deadline was armed would never tick again.
        if interrupt.reason().is_some() {
            return Err(Trap::Interrupt.into());
        }
        // Before the interpreter is compiled (CPython's takes seconds).
        if let Some((script, name)) = &self.script
            && !script.is_file()
        {
            return Err(outcome::MissingScript { file: name.clone() }.into());
        }
        match store.data_mut().modules.load_entry()? {
            Artifact::Module(module) => core_module::run(store, &module, self.invoke.as_deref()),
            Artifact::Component(component) => {
                component::run(store, &component, self.invoke.as_deref())
            }
        }
    }
}

impl Stores {
    /// A fresh store: nothing in it but what the sandbox grants, stopped by
    /// `interrupt`, held to the limits, its guest's output going to `output`.
    fn new_store(&self, interrupt: Arc<Interrupt>, output: &output::Sink) -> Result<Store<Host>> {
        let (wasi, clock) = Host::wasi_context(&self.sandbox, output, &self.functions)?;
        let host = Host {
            wasi,
            clock,
            interrupt,
            modules: Modules::new(Arc::clone(&self.module_files)),
            memory: MemoryCap::new(self.limits.max_memory),
            notes: Notes::new(self.said.clone()),
            args: self.sandbox.args.clone(),
            functions: Arc::clone(&self.functions),
            files: FileAccess::new(&self.sandbox.preopens, self.wrote.clone()),
            http: wasmtime_wasi_http::WasiHttpCtx::new(),
            outgoing_http: host::OutgoingHttp {
                granted: self.sandbox.network.http,
            },
        };
        let mut store = Store::new(&self.engine, host);
        // The epoch is the engine's: another store's stop (a request timed out
        // beside this one) ticks it too. Only this store's own stop ends it.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|store| {
            Ok(match store.data().interrupt.reason() {
                Some(_) => UpdateDeadline::Interrupt,
                None => UpdateDeadline::Continue(1),
            })
        });
        store.limiter(|host| &mut host.memory);
        if let Some(fuel) = self.limits.fuel {
            store.set_fuel(fuel)?;
        }
        Ok(store)
    }

    /// How what ran in `store` ended, `ended` being what it returned: a
    /// trap's frames named from the root.
    fn outcome(&self, ended: Result<()>, store: &Store<Host>, interrupt: &Interrupt) -> Outcome {
        let Err(err) = ended else {
            return Outcome::Success;
        };
        let modules = &store.data().modules;
        let root = self.module_files.root();
        let frame = |info: &wasmtime::FrameInfo| {
            outcome::frame(info, &|module| modules.module_label(module), &|file| {
                crate::names::relative(root, Path::new(file))
            })
        };
        let limits = self.limits;
        Outcome::from_error(err, interrupt, limits.timeout, limits.fuel, &frame)
    }
}

/// What the guest printed, taken from the run's context (which may still hold
/// the transcript) and its last lines ended.
fn noted(transcript: Arc<Mutex<Transcript>>) -> Transcript {
    let mut transcript = transcript.lock().unwrap_or_else(PoisonError::into_inner);
    let mut noted = std::mem::take(&mut *transcript);
    noted.finish();
    noted
}

/// A run to do.
struct Request {
    /// The run's number (under `--serve`, the version it makes).
    number: u64,
    /// How to stop it from another thread.
    interrupt: Arc<Interrupt>,
    /// Whether the guest's output is shown as it comes.
    echo: bool,
}

/// The runner thread: runs one request at a time, off the session's thread, so
/// the session stays free to notice a save or Ctrl-C and stop a run.
pub(crate) struct Runner {
    engine: Engine,
    requests: Sender<Request>,
    notes: Receiver<Note>,
    writes: Receiver<PathBuf>,
    reports: Receiver<RunReport>,
    thread: thread::JoinHandle<()>,
    /// Disconnected when the runner thread ends.
    ended: Receiver<()>,
}

/// The stack runs take place on: room for wasmtime's 512 KiB of guest stack
/// above the host's frames (the compiler's, deep `.wat` nesting's).
const RUNNER_STACK: usize = 8 << 20;

/// A compile this long (a 26 MB interpreter's) leaves hundreds of MB that the
/// compiler freed in the allocator's arenas.
const BIG_COMPILE: Duration = Duration::from_millis(200);

/// Gives memory the allocator holds but no longer uses back to the system:
/// mimalloc's (the binary's allocator) and glibc's (the tests', and what C
/// code allocates).
fn release_free_memory() {
    // SAFETY: both only return free pages to the kernel; neither touches
    // memory in use.
    unsafe {
        libmimalloc_sys::mi_collect(true);
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        libc::malloc_trim(0);
    }
}

/// A run in progress: how to stop it.
#[derive(Clone)]
pub(crate) struct Stop(Arc<Interrupt>);

impl Stop {
    /// Stops the run: the first reason given is the one reported, unless
    /// Ctrl-C comes after it.
    pub(crate) fn request(&self, reason: StopReason) {
        self.0.request(reason);
    }

    /// Why the run was asked to stop, if it was.
    pub(crate) fn reason(&self) -> Option<StopReason> {
        self.0.reason()
    }
}

impl Runner {
    /// Starts the thread that will run `runtime`'s entry on request.
    pub(crate) fn spawn(mut runtime: Runtime) -> Result<Self> {
        let engine = runtime.stores.engine.clone();
        let (requests, incoming) = unbounded::<Request>();
        let (notes, writes) = runtime
            .heard
            .take()
            .context("the runner was started twice")?;
        let (finished, reports) = unbounded();
        let (ending, ended) = crossbeam_channel::bounded::<()>(0);
        let thread = thread::Builder::new()
            .name("live-wasm-runner".to_owned())
            .spawn(move || {
                let _ending = ending;
                let _small_compiles = crate::engine::compile_small_modules_here();
                let mut stack = crate::huge_pages::HugeStack::new(RUNNER_STACK);
                for request in incoming {
                    let report = stack.run(|| runtime.run(&request));
                    let compiled_long = report.compile >= BIG_COMPILE;
                    if finished.send(report).is_err() {
                        break;
                    }
                    // After the report: the guest's output is not held up by it.
                    runtime.stores.module_files.after_run();
                    if compiled_long {
                        release_free_memory();
                    }
                }
            })
            .context("cannot start the runner thread")?;
        Ok(Self {
            engine,
            requests,
            notes,
            writes,
            reports,
            thread,
            ended,
        })
    }

    /// Waits for the runner to finish what it does after a run (writing the
    /// disk cache): for a session that ends after one run.
    pub(crate) fn finish(self) {
        drop(self.requests);
        let _ = self.thread.join();
    }

    /// [`Self::finish`], for at most `patience`: a session quit moments after
    /// a run still leaves its compiled code in the disk cache (the Python
    /// component's is written for a second after its first run), and a run
    /// stopped on the way out that does not end soon is left to the process.
    pub(crate) fn finish_within(self, patience: Duration) {
        drop(self.requests);
        if self.ended.recv_timeout(patience) != Err(RecvTimeoutError::Timeout) {
            let _ = self.thread.join();
        }
    }

    /// Starts run `number`, its output shown as it comes when `echo`; its
    /// report will come on [`Self::reports`].
    pub(crate) fn start(&self, number: u64, echo: bool) -> Result<Stop> {
        let interrupt = Interrupt::new(&self.engine);
        let request = Request {
            number,
            interrupt: Arc::clone(&interrupt),
            echo,
        };
        self.requests
            .send(request)
            .context("the runner thread has stopped")?;
        Ok(Stop(interrupt))
    }

    /// What runs say on their way. A run's notes are all sent before its report:
    /// drain them when the report comes.
    pub(crate) fn notes(&self) -> &Receiver<Note> {
        &self.notes
    }

    /// The files guests are about to write through WASI: announced before the
    /// write, so its file event can be known for the guest's own.
    pub(crate) fn writes(&self) -> &Receiver<PathBuf> {
        &self.writes
    }

    /// The reports of finished runs, one per [`Self::start`].
    pub(crate) fn reports(&self) -> &Receiver<RunReport> {
        &self.reports
    }
}
