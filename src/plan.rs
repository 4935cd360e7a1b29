//! The checked plan of a session: what the command line asked for, resolved once.
//!
//! The library is driven by a [`Plan`]; the binary builds one from flags
//! ([`crate::cli`]), a program embedding live-wasm can build one by hand.

use std::path::PathBuf;
use std::time::Duration;

/// Everything a session needs to know, with paths absolute and values checked.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The entry module (absolute; it may not exist yet in watch mode).
    pub entry: PathBuf,
    /// With `--interpreter`, the script the entry runs (absolute; it may not
    /// exist yet in watch mode): waited for as the entry is, and checked
    /// before the interpreter is compiled.
    pub script: Option<PathBuf>,
    /// Where module names resolve: the entry's directory, or `--root`.
    pub root: PathBuf,
    /// Where live-wasm was started: files outside the root are named from here.
    pub cwd: PathBuf,
    /// Run once and exit instead of watching.
    pub once: bool,
    /// Call this export (with the guest args as its arguments) instead of `_start`.
    pub invoke: Option<String>,
    /// Extra files or folders whose change triggers a run (absolute); with a
    /// build, a build and a run.
    pub watch: Vec<PathBuf>,
    /// `--build`: the command that builds the entry, run before each run.
    pub build: Option<BuildPlan>,
    /// How changes are noticed.
    pub watcher: WatcherKind,
    /// What the guest may reach.
    pub sandbox: Sandbox,
    /// How guests are compiled.
    pub engine: EngineOptions,
    /// What each run may use.
    pub limits: Limits,
    /// How runs are shown.
    pub presentation: Presentation,
    /// `--serve`: answer HTTP requests with the entry instead of running it.
    pub serve: Option<ServePlan>,
    /// What the user should know about the plan itself (an `--env KEY` we do not
    /// have, say); the session says it through the status lines or the events.
    pub warnings: Vec<String>,
}

/// `--build CMD`: what to run, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildPlan {
    /// The command, run through `sh -c`.
    pub command: String,
    /// The folder it runs in (the current one).
    pub dir: PathBuf,
    /// Watch the sources under `dir` (all files but ignored ones and build
    /// folders): when no `--watch` was given.
    pub watch_sources: bool,
}

/// How the watcher notices changes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WatcherKind {
    /// The operating system's events (inotify on Linux): instant, and free at rest.
    #[default]
    Native,
    /// Looking at the watched files every interval (`--poll`), for file systems
    /// that send no events: network mounts, some container and VM shares.
    Poll(Duration),
}

/// The limits of every run (all modules of the run together).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time a run may take.
    pub timeout: Option<Duration>,
    /// Instructions a run may execute, in wasmtime's fuel units.
    pub fuel: Option<u64>,
    /// Bytes of linear memory all the run's memories may hold together.
    pub max_memory: Option<u64>,
}

/// The guest's grants: deny by default, so an empty `Sandbox` grants nothing.
#[derive(Debug, Clone, Default)]
pub struct Sandbox {
    /// argv, argv[0] included.
    pub args: Vec<String>,
    /// Environment variables the guest sees.
    pub env: Vec<(String, String)>,
    /// Host directories the guest may open.
    pub preopens: Vec<Preopen>,
    /// Where the guest's stdin comes from.
    pub stdin: StdinSource,
    /// What of the host's network a component may use (WASI 0.2 sockets).
    pub network: Network,
    /// `--deterministic`: virtual clocks and seeded randomness, the same in every run.
    pub determinism: Option<Determinism>,
}

/// What `--deterministic` gives the guest in place of the host's time and
/// randomness (see `run/determinism`): clocks that start at the same instant
/// in every run and move only with its sleeps (and its fuel), and every
/// source of randomness drawn from one seed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Determinism {
    /// Where every source of randomness starts (`--seed`).
    pub seed: u64,
}

impl Determinism {
    /// Where the guest's wall clock starts in every run, in seconds since the
    /// Unix epoch: 2000-01-01T00:00:00Z. (Its monotonic clock starts at 0.)
    pub const WALL_CLOCK_START: u64 = 946_684_800;
}

/// The network grants of `-S`: none by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Network {
    /// Sockets may connect to and bind any address (`-S inherit-network`).
    pub inherit: bool,
    /// Host names may be resolved (`-S allow-ip-name-lookup`).
    pub name_lookup: bool,
    /// Outgoing HTTP requests (`wasi:http/outgoing-handler`, `-S http`).
    pub http: bool,
}

/// `--serve`: where and how HTTP requests reach the entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServePlan {
    /// Where to listen.
    pub addr: std::net::SocketAddr,
    /// Reload HTML pages when a new version is ready (not `--no-reload`).
    pub reload: bool,
    /// How many requests run at once; the others wait.
    pub max_concurrent_requests: usize,
    /// The largest request body a guest is given, in bytes.
    pub max_request_body: u64,
}

/// A host directory made visible to the guest.
#[derive(Debug, Clone)]
pub struct Preopen {
    /// The directory on the host.
    pub host: PathBuf,
    /// The name the guest opens it by.
    pub guest: String,
    /// The guest may read but not change it.
    pub read_only: bool,
}

/// The guest's stdin.
#[derive(Debug, Clone, Default)]
pub enum StdinSource {
    /// Closed: reads see end of file at once (watch mode's default).
    #[default]
    Empty,
    /// Ours (`--once`, as `wasmtime run` does).
    Inherit,
    /// A file, read afresh for every run.
    File(PathBuf),
}

/// Presentation switches.
#[derive(Debug, Clone, Default)]
pub struct Presentation {
    /// Clear the screen for each run, once it has something to show.
    pub clear: bool,
    /// Compare each run's output with the previous run's.
    pub diff: Option<DiffMode>,
    /// Status lines off: only guest output and errors.
    pub quiet: bool,
    /// Machine-readable events, and where they go.
    pub events: Option<EventsTarget>,
}

/// How `--diff` shows a run's difference from the previous one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DiffMode {
    /// After the output, which streams as it comes.
    After,
    /// Instead of the output.
    Only,
}

/// Where `--events json` writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventsTarget {
    /// Our stderr, instead of the status lines.
    Stderr,
    /// A file (`--events-file`), the status lines staying on stderr.
    File(PathBuf),
}

/// How guests are compiled.
#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    /// The code generator.
    pub compiler: Compiler,
    /// Cranelift's incremental cache: an edit recompiles only the functions it changed.
    pub incremental_cache: bool,
    /// Where compiled modules are kept across sessions, if anywhere.
    pub cache_dir: Option<PathBuf>,
    /// How many bytes the disk cache may hold.
    pub cache_size: u64,
    /// Compile for the same results on every machine (`--deterministic`):
    /// NaNs canonicalised, relaxed SIMD given its deterministic lowering.
    pub deterministic: bool,
}

/// A code generator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Compiler {
    /// Optimising: the fastest code, the default.
    #[default]
    Cranelift,
    /// Baseline: compiles several times faster, runs slower.
    Winch,
}
