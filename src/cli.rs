//! Command line: raw clap flags, resolved once into a checked [`Plan`].
//!
//! Flag names follow `wasmtime run` (`--dir`, `--env`, `--invoke`) and `watchexec`
//! (`--watch`, `--clear`) so users' habits carry over. Everything after this
//! module reads only the [`Plan`], never the raw flags.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser};

use crate::plan::{
    BuildPlan, Compiler, Determinism, DiffMode, EngineOptions, EventsTarget, Limits, Network, Plan,
    Preopen, Presentation, Sandbox, ServePlan, StdinSource, WatcherKind,
};

/// Three ways in, shown under the options of `--help` (and `-h`).
const EXAMPLES: &str = "\
Examples:
  live-wasm main.wat
      Run main.wat, and again on every save of it (or of a module it uses)
  live-wasm --build 'cargo build --target wasm32-wasip2' target/wasm32-wasip2/debug/app.wasm
      Build a Rust project into a component, and build and run it again on every save
  live-wasm --interpreter python.wasm main.py
      Run a Python script with CPython compiled to WebAssembly, again on every save";

/// Live coding with WebAssembly: every save re-runs ENTRY from a clean state, in a sandbox.
#[derive(Debug, Parser)]
#[command(name = "live-wasm", version, about, long_about = None, after_help = EXAMPLES)]
pub struct Cli {
    /// What to run: a core module or component (`.wat` or `.wasm`): a WASI
    /// command with `_start`, a module with a start function, or a
    /// component's `wasi:cli/run`. With `--interpreter`, the script to run.
    #[arg(value_name = "ENTRY")]
    entry: PathBuf,

    /// Run the script ENTRY with WASM, an interpreter compiled to a WASI command
    /// (python.wasm, quickjs.wasm): the script's folder and everything beneath
    /// it are the guest's current directory (read-only, and by its own path),
    /// the script's path its first argument, and every file it reads (a module
    /// it imports) is watched.
    #[arg(long, value_name = "WASM")]
    interpreter: Option<PathBuf>,

    /// Arguments passed to the guest (after `--`); the guest's argv[0] is the module's
    /// file name (with `--interpreter`, the script's path comes next).
    #[arg(value_name = "GUEST_ARGS", last = true)]
    guest_args: Vec<String>,

    /// Run once without watching, and exit with the guest's exit status.
    #[arg(long)]
    once: bool,

    /// Call the exported function NAME instead of `_start` (after the start
    /// function and `_initialize`), with GUEST_ARGS as its arguments; print its
    /// results, one per line.
    #[arg(long, value_name = "NAME")]
    invoke: Option<String>,

    /// Also re-run when this file, or any file under this folder, changes
    /// (repeatable). With `--build`, these are the sources that start a build.
    #[arg(long = "watch", short = 'w', value_name = "PATH")]
    watch: Vec<PathBuf>,

    /// Build ENTRY with CMD (through `sh -c`, in the current folder) at start and
    /// whenever a source changes, then run it. Without `--watch`, the sources are
    /// the current folder's files, minus what `.gitignore` / `.ignore` exclude and
    /// build folders (`target/`, `node_modules/`, `zig-cache/`, `.git/`).
    #[arg(long, value_name = "CMD")]
    build: Option<String>,

    /// Resolve module names (`use`) in DIR instead of the entry's folder: a
    /// program built into `target/` can use modules kept beside its sources.
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,

    /// Look for changes every INTERVAL (default 500ms) instead of waiting for the
    /// system's file events: for network file systems, and container or VM
    /// shares where no event arrives. `--poll` or `--poll=200ms`.
    #[arg(
        long,
        value_name = "INTERVAL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "500ms",
        value_parser = parse_duration
    )]
    poll: Option<Duration>,

    /// What the guest may reach.
    #[command(flatten)]
    sandbox: SandboxArgs,

    /// What each run may use.
    #[command(flatten)]
    limits: LimitArgs,

    /// How guests are compiled.
    #[command(flatten)]
    engine: EngineArgs,

    /// What the guest sees of time and chance.
    #[command(flatten)]
    determinism: DeterminismArgs,

    /// How runs are shown.
    #[command(flatten)]
    presentation: PresentationArgs,

    /// Serving HTTP components.
    #[command(flatten)]
    serve: ServeArgs,
}

/// `--serve`: ENTRY answers HTTP requests instead of running.
#[derive(Debug, Args)]
#[command(next_help_heading = "Serving HTTP")]
struct ServeArgs {
    /// Serve ENTRY, a component exporting `wasi:http/incoming-handler` (the
    /// `wasi:http/proxy` world), on ADDR (default 127.0.0.1:8080; port 0
    /// picks a free one): every request runs in a fresh instance of the
    /// latest good version, a save swaps the next one in when it is ready.
    /// Limits apply per request.
    #[arg(
        long,
        value_name = "ADDR",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "127.0.0.1:8080",
        conflicts_with_all = ["once", "invoke", "stdin", "diff", "interpreter"]
    )]
    serve: Option<String>,

    /// Leave HTML responses as the component wrote them: no script that
    /// reloads the page when a new version is ready.
    #[arg(long, requires = "serve")]
    no_reload: bool,

    /// Requests run at most N at a time; the others wait their turn.
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096), requires = "serve")]
    max_concurrent_requests: u32,

    /// Refuse a request body past SIZE (413): bytes, or `64KiB`, `16MiB`.
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes, default_value = "16MiB", requires = "serve")]
    max_request_body: u64,
}

/// What each run may use, all its modules together.
#[derive(Debug, Args)]
#[command(next_help_heading = "Limits per run")]
struct LimitArgs {
    /// Stop a run after this long: `300ms`, `2s`, `1m`.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    timeout: Option<Duration>,

    /// Stop a run after N units of fuel (about one per wasm instruction).
    #[arg(long, value_name = "N")]
    fuel: Option<u64>,

    /// Cap the run's linear memory: bytes, or `64KiB`, `16MiB`, `1GiB`.
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes)]
    max_memory: Option<u64>,
}

/// How guests are compiled.
#[derive(Debug, Args)]
#[command(next_help_heading = "Engine")]
struct EngineArgs {
    /// Code generator: `cranelift` (fast code) or `winch` (fast compiles, for big modules).
    #[arg(long, value_enum, default_value_t = Compiler::Cranelift)]
    compiler: Compiler,

    /// Turn off Cranelift's incremental cache (which recompiles only the functions
    /// an edit changed).
    #[arg(long)]
    no_incremental_cache: bool,

    /// Keep compiled modules in DIR (default: `$XDG_CACHE_HOME/live-wasm`, else
    /// `~/.cache/live-wasm`), so a new session does not compile them again.
    /// Trust DIR as you trust this binary: its files are loaded as code.
    #[arg(long = "cache", value_name = "DIR")]
    cache_dir: Option<PathBuf>,

    /// Keep no compiled code on disk.
    #[arg(long, conflicts_with = "cache_dir")]
    no_cache: bool,

    /// Bound the disk cache: past SIZE the entries used least recently go.
    #[arg(long, value_name = "SIZE", value_parser = parse_bytes, default_value = "1GiB")]
    cache_size: u64,
}

/// Same code, same output: what the guest sees of time and chance, fixed.
#[derive(Debug, Args)]
#[command(next_help_heading = "Deterministic runs")]
struct DeterminismArgs {
    /// Same code, same output: the guest's clocks are virtual (from
    /// 2000-01-01T00:00:00Z, and 0, in every run; moved only by its sleeps,
    /// and with `--fuel` by its work) and its randomness comes from `--seed`;
    /// NaNs are canonicalised. Sleeps still take their time and stop on a save.
    #[arg(long)]
    deterministic: bool,

    /// The seed of the guest's randomness (default 0); implies `--deterministic`.
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
}

impl DeterminismArgs {
    /// `--deterministic`, or a `--seed` (which implies it).
    fn resolve(&self) -> Option<Determinism> {
        (self.deterministic || self.seed.is_some()).then(|| Determinism {
            seed: self.seed.unwrap_or(0),
        })
    }
}

/// What the guest may reach. Nothing is granted unless asked for.
#[derive(Debug, Args)]
#[command(next_help_heading = "Sandbox (deny by default)")]
struct SandboxArgs {
    /// Preopen a host directory for the guest, as GUEST (default: the same path).
    /// A trailing `:ro` makes it read-only: `--dir data::/data:ro`.
    #[arg(long = "dir", value_name = "HOST[::GUEST][:ro]")]
    dirs: Vec<String>,

    /// Give the guest an environment variable: `KEY=VALUE`, or `KEY` to pass ours on.
    #[arg(long = "env", value_name = "KEY[=VALUE]")]
    env: Vec<String>,

    /// Watch mode: feed FILE to the guest's stdin on every run (and re-run when it
    /// changes). Without it the guest's stdin is empty; with `--once` it reads ours.
    #[arg(long = "stdin", value_name = "FILE")]
    stdin: Option<PathBuf>,

    /// Grant a WASI 0.2 capability, named as `wasmtime run -S` names it:
    /// `inherit-network` (sockets may reach any address),
    /// `allow-ip-name-lookup` (resolve host names) or `http` (outgoing HTTP
    /// requests, `wasi:http`). `NAME=n` turns one off.
    #[arg(short = 'S', value_name = "NAME[=y|n]")]
    wasi: Vec<String>,
}

/// How runs are shown.
#[derive(Debug, Args)]
#[command(next_help_heading = "Presentation")]
struct PresentationArgs {
    /// Clear the screen for each run, once it has something to show; a save
    /// that fails to build or link leaves the last run's output on screen,
    /// marked stale, under its error.
    #[arg(long, short = 'c')]
    clear: bool,

    /// After each run, show how its output, exit and fuel differ from the
    /// previous run's; `--diff=only` shows the difference instead of the
    /// output (the first run's output in full).
    #[arg(
        long,
        value_enum,
        value_name = "WHEN",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "after"
    )]
    diff: Option<DiffMode>,

    /// Print only guest output and errors, no status lines.
    #[arg(long, short = 'q')]
    quiet: bool,

    /// Write one JSON object per line for each run (started, compiled, error,
    /// finished) to stderr, instead of the status lines.
    #[arg(long, value_enum, value_name = "FORMAT")]
    events: Option<EventFormat>,

    /// Write the `--events` lines to PATH instead (status lines stay on stderr).
    #[arg(long, value_name = "PATH")]
    events_file: Option<PathBuf>,
}

/// The format of `--events`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum EventFormat {
    /// One JSON object per line.
    Json,
}

impl Cli {
    /// True when `--events json` writes to stderr: then even a fatal error is
    /// said as JSON.
    pub fn events_on_stderr(&self) -> bool {
        self.presentation.events.is_some() && self.presentation.events_file.is_none()
    }

    /// Checks the flags against the file system and the environment, once.
    pub fn into_plan(self) -> Result<Plan> {
        let cwd = std::env::current_dir().context("cannot read the current directory")?;
        let (module, script) = match &self.interpreter {
            Some(interpreter) => (interpreter, Some(absolute_file(&cwd, &self.entry)?)),
            None => (&self.entry, None),
        };
        let entry = absolute_file(&cwd, module)?;
        if entry.is_dir() {
            bail!(
                "{} is a directory: ENTRY is a .wat or .wasm file",
                module.display()
            );
        }
        let root = match &self.root {
            Some(dir) => absolute_existing(&cwd, dir)
                .ok()
                .filter(|dir| dir.is_dir())
                .with_context(|| format!("--root {}: no such directory", dir.display()))?,
            None => entry
                .parent()
                .map(Path::to_path_buf)
                .context("the entry has no parent directory")?,
        };
        let file_name = |path: &Path| {
            path.file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .with_context(|| format!("{} must name a file", path.display()))
        };
        let mut args = vec![file_name(module)?];
        let mut preopens = Vec::new();
        let mut watch = Vec::new();
        let mut warnings = Vec::new();
        if let Some(script) = &script {
            let folder = script.parent().context("the script has no folder")?;
            // An interpreter reads the modules beside its script, so it is
            // given the script's whole folder: said first, with the folder named.
            let guest = guest_path(folder);
            warnings.push(interpreter_grant(folder, guest.is_some()));
            preopens.push(Preopen {
                host: folder.to_path_buf(),
                guest: ".".to_owned(),
                read_only: true,
            });
            // The folder again under its own path, and the script by its
            // path: an interpreter names files in errors by their absolute
            // path (CPython makes the script's absolute against the guest's
            // `/`, which gave `//main.py`), and these are the files the user
            // edits, as the interpreter run natively names them.
            match guest {
                Some(guest) => {
                    preopens.push(Preopen {
                        host: folder.to_path_buf(),
                        guest,
                        read_only: true,
                    });
                    args.push(script.to_string_lossy().into_owned());
                }
                None => args.push(file_name(script)?),
            }
            watch.push(script.clone());
        }
        args.extend(self.guest_args);

        let cache_dir = match &self.engine.cache_dir {
            _ if self.engine.no_cache => None,
            Some(dir) => Some(cwd.join(dir)),
            None => user_cache_dir(),
        };
        for spec in &self.sandbox.dirs {
            let preopen = parse_preopen(&cwd, spec)?;
            if let Some(cache) = &cache_dir
                && !preopen.read_only
            {
                refuse_reaching_cache(&cwd, spec, &preopen.host, cache)?;
            }
            preopens.push(preopen);
        }
        let cache_dir = cache_dir.filter(|dir| match crate::cache::distrust(dir) {
            None => true,
            Some(why) => {
                warnings.push(why);
                false
            }
        });
        if self.once && self.presentation.diff.is_some() {
            warnings.push(
                "--diff compares a run with the one before it; under --once there is none"
                    .to_owned(),
            );
        }
        let mut env = Vec::new();
        for spec in &self.sandbox.env {
            match parse_env(spec)? {
                Ok(pair) => env.push(pair),
                Err(warning) => warnings.push(warning),
            }
        }
        let watcher = match self.poll {
            Some(interval) if interval.is_zero() => {
                bail!("--poll: the interval must be above zero")
            }
            Some(interval) => WatcherKind::Poll(interval),
            None => WatcherKind::Native,
        };

        let stdin = match (self.once, self.sandbox.stdin) {
            (_, Some(file)) => StdinSource::File(absolute_file(&cwd, &file)?),
            (true, None) => StdinSource::Inherit,
            (false, None) => StdinSource::Empty,
        };
        for path in &self.watch {
            watch.push(absolute_existing(&cwd, path).with_context(|| {
                format!("--watch {}: no such file or directory", path.display())
            })?);
        }
        if let StdinSource::File(file) = &stdin {
            watch.push(file.clone());
        }

        let determinism = self.determinism.resolve();
        let build = self.build.map(|command| BuildPlan {
            command,
            dir: cwd.clone(),
            watch_sources: self.watch.is_empty(),
        });

        Ok(Plan {
            entry,
            script,
            root,
            cwd: cwd.clone(),
            once: self.once,
            invoke: self.invoke,
            watch,
            build,
            watcher,
            sandbox: Sandbox {
                args,
                env,
                preopens,
                stdin,
                network: parse_network(&self.sandbox.wasi)?,
                determinism,
            },
            limits: Limits {
                timeout: self.limits.timeout,
                fuel: self.limits.fuel,
                max_memory: self.limits.max_memory,
            },
            engine: EngineOptions {
                compiler: self.engine.compiler,
                incremental_cache: !self.engine.no_incremental_cache,
                cache_dir,
                cache_size: self.engine.cache_size,
                deterministic: determinism.is_some(),
            },
            presentation: Presentation {
                clear: self.presentation.clear,
                diff: self.presentation.diff,
                quiet: self.presentation.quiet,
                events: match (self.presentation.events, self.presentation.events_file) {
                    (_, Some(file)) => Some(EventsTarget::File(cwd.join(file))),
                    (Some(EventFormat::Json), None) => Some(EventsTarget::Stderr),
                    (None, None) => None,
                },
            },
            serve: self
                .serve
                .serve
                .as_deref()
                .map(|addr| -> Result<ServePlan> {
                    Ok(ServePlan {
                        addr: parse_listen_address(addr)?,
                        reload: !self.serve.no_reload,
                        max_concurrent_requests: self.serve.max_concurrent_requests as usize,
                        max_request_body: self.serve.max_request_body,
                    })
                })
                .transpose()?,
            warnings,
        })
    }
}

/// `--serve`'s ADDR: `HOST:PORT` with an IP address (`127.0.0.1:8080`,
/// `[::1]:8080`), or a bare `:PORT` for 127.0.0.1; no names, so nothing is
/// looked up.
fn parse_listen_address(spec: &str) -> Result<std::net::SocketAddr> {
    let spec_with_host = match spec.strip_prefix(':') {
        Some(port) => format!("127.0.0.1:{port}"),
        None => spec.to_owned(),
    };
    spec_with_host.parse().with_context(|| {
        format!("--serve={spec}: not an address to listen on; give IP:PORT, like 127.0.0.1:8080")
    })
}

/// The user's cache folder for live-wasm: `$XDG_CACHE_HOME/live-wasm`, else
/// `~/.cache/live-wasm` (`~/Library/Caches/live-wasm` on macOS). None where
/// no folder is trusted (Windows: `cache/disk/private.rs`), rather than a
/// warning every session.
fn user_cache_dir() -> Option<PathBuf> {
    if cfg!(not(unix)) {
        return None;
    }
    let xdg = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute());
    let home = || {
        let home = PathBuf::from(std::env::var_os("HOME")?);
        let cache = if cfg!(target_os = "macos") {
            home.join("Library/Caches")
        } else {
            home.join(".cache")
        };
        home.is_absolute().then_some(cache)
    };
    Some(xdg.or_else(home)?.join("live-wasm"))
}

/// Refuses the writable `--dir spec` (host folder `host`) if it holds the
/// cache folder `cache` or lies inside it: a guest could write code there that
/// sessions then load and run natively. Real paths are compared (the cache
/// folder may not exist yet: its nearest existing ancestor's is used).
fn refuse_reaching_cache(cwd: &Path, spec: &str, host: &Path, cache: &Path) -> Result<()> {
    let host = absolute_existing(cwd, host)
        .with_context(|| format!("--dir {spec}: cannot resolve {}", host.display()))?;
    let cache = absolute_file(cwd, cache).with_context(|| {
        format!(
            "cannot tell where the cache folder {} is, to keep it out of --dir {spec}",
            cache.display()
        )
    })?;
    let relation = if cache.starts_with(&host) {
        "holds"
    } else if host.starts_with(&cache) {
        "lies inside"
    } else {
        return Ok(());
    };
    bail!(
        "--dir {spec}: {} {relation} the cache folder {}, whose files this program \
         runs as code: a guest could plant code there that sessions run outside the \
         sandbox. Grant it read-only (--dir {spec}:ro), keep the cache elsewhere \
         (--cache DIR), or turn it off (--no-cache)",
        host.display(),
        cache.display()
    )
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|err| format!("{err} (try `300ms`, `2s`, `1m`)"))
}

fn parse_bytes(text: &str) -> Result<u64, String> {
    parse_size::parse_size(text).map_err(|err| format!("{err} (try `65536`, `64KiB`, `16MiB`)"))
}

/// The path the guest knows `folder` by, besides `.`: its own, when the guest
/// can name it so (a Unix path in UTF-8, with no `.` or `..` in it).
fn guest_path(folder: &Path) -> Option<String> {
    let plain = folder.components().all(|part| {
        matches!(
            part,
            std::path::Component::RootDir | std::path::Component::Normal(_)
        )
    });
    let text = folder.to_str().filter(|_| cfg!(unix) && plain)?;
    text.starts_with('/').then(|| text.to_owned())
}

/// What `--interpreter` grants the guest, with `folder` named: the first status
/// line says it in the words SECURITY.md and the README use.
fn interpreter_grant(folder: &Path, by_its_path: bool) -> String {
    let also = if by_its_path {
        " and by its own path"
    } else {
        ""
    };
    format!(
        "--interpreter grants the guest {}: the script's folder and everything beneath \
         it, read-only, as `.`{also}",
        folder.display()
    )
}

/// `HOST[::GUEST][:ro]`: the host directory must exist when the session starts.
fn parse_preopen(cwd: &Path, spec: &str) -> Result<Preopen> {
    let (spec, read_only) = match spec.strip_suffix(":ro") {
        Some(rest) if !rest.is_empty() => (rest, true),
        _ => (spec, false),
    };
    let (host, guest) = match spec.split_once("::") {
        Some((host, guest)) => (host, guest),
        None => (spec, spec),
    };
    if host.is_empty() || guest.is_empty() {
        bail!("--dir {spec}: expected HOST[::GUEST][:ro]");
    }
    let host_path = cwd.join(host);
    if !host_path.is_dir() {
        bail!("--dir {spec}: {} is not a directory", host_path.display());
    }
    Ok(Preopen {
        host: host_path,
        guest: guest.to_owned(),
        read_only,
    })
}

/// The `-S` grants: the network ones and outgoing HTTP; the rest are not offered.
fn parse_network(specs: &[String]) -> Result<Network> {
    let mut network = Network::default();
    for spec in specs {
        let (name, value) = spec.split_once('=').unwrap_or((spec, "y"));
        let on = match value {
            "y" | "yes" | "true" => true,
            "n" | "no" | "false" => false,
            _ => bail!("-S {spec}: the value must be y or n"),
        };
        match name {
            "inherit-network" => network.inherit = on,
            "allow-ip-name-lookup" => network.name_lookup = on,
            "http" => network.http = on,
            _ => bail!(
                "-S {name}: not a grant live-wasm offers; it knows inherit-network, \
                 allow-ip-name-lookup and http (no other WASI proposals)"
            ),
        }
    }
    Ok(network)
}

/// `KEY=VALUE`, or `KEY` to pass on ours; when we have none, the warning to give
/// instead.
fn parse_env(spec: &str) -> Result<Result<(String, String), String>> {
    let (key, value) = match spec.split_once('=') {
        Some((key, value)) => (key, Some(value.to_owned())),
        None => (spec, None),
    };
    if key.is_empty() {
        bail!("--env {spec}: expected KEY=VALUE or KEY");
    }
    let value = match value {
        Some(value) => value,
        None => match std::env::var(key) {
            Ok(value) => value,
            Err(_) => {
                return Ok(Err(format!(
                    "--env {key}: not set here, so the guest won't see it"
                )));
            }
        },
    };
    Ok(Ok((key.to_owned(), value)))
}

/// An absolute path with symlinks resolved as far as the path exists: the file,
/// and even its folders, may not exist yet (a build will make them).
fn absolute_file(cwd: &Path, path: &Path) -> Result<PathBuf> {
    let joined = cwd.join(path);
    let mut missing = Vec::new();
    let mut existing = joined.as_path();
    loop {
        if let Ok(real) = existing.canonicalize() {
            return Ok(missing
                .iter()
                .rev()
                .fold(real, |path, part| path.join(part)));
        }
        let part = existing
            .file_name()
            .with_context(|| format!("{}: not a file name", path.display()))?;
        missing.push(part);
        existing = existing.parent().unwrap_or(cwd);
    }
}

fn absolute_existing(cwd: &Path, path: &Path) -> Result<PathBuf> {
    Ok(cwd.join(path).canonicalize()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }

    #[test]
    fn a_seed_makes_a_run_deterministic() {
        let determinism = |args: &[&str]| {
            let mut all = vec!["live-wasm"];
            all.extend(args);
            let cli = Cli::try_parse_from(all).expect("parses");
            cli.determinism
                .resolve()
                .map(|determinism| determinism.seed)
        };
        assert_eq!(determinism(&["m.wat"]), None);
        assert_eq!(determinism(&["--deterministic", "m.wat"]), Some(0));
        assert_eq!(determinism(&["--seed", "7", "m.wat"]), Some(7));
        assert_eq!(
            determinism(&["--deterministic", "--seed=18446744073709551615", "m.wat"]),
            Some(u64::MAX)
        );
        let mut negative = vec!["live-wasm", "--seed", "-1", "m.wat"];
        assert!(Cli::try_parse_from(&negative).is_err());
        negative[2] = "lots";
        assert!(Cli::try_parse_from(&negative).is_err());
    }

    #[test]
    fn network_grants() {
        let grant = |specs: &[&str]| {
            parse_network(&specs.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        };
        assert_eq!(grant(&[]).expect("none"), Network::default());
        let both = grant(&["inherit-network", "allow-ip-name-lookup=y"]).expect("both");
        assert!(both.inherit && both.name_lookup);
        let off = grant(&["inherit-network", "inherit-network=n"]).expect("off again");
        assert!(!off.inherit);
        let http = grant(&["http"]).expect_err("no http");
        assert!(http.to_string().contains("not a grant"), "{http}");
        assert!(grant(&["inherit-network=maybe"]).is_err());
    }

    #[test]
    fn preopen_forms() {
        let cwd = std::env::temp_dir();
        let tmp = cwd.to_string_lossy().into_owned();
        let plain = parse_preopen(&cwd, &tmp).expect("plain");
        assert_eq!(
            (plain.guest.as_str(), plain.read_only),
            (tmp.as_str(), false)
        );
        let mapped = parse_preopen(&cwd, &format!("{tmp}::/data:ro")).expect("mapped");
        assert_eq!((mapped.guest.as_str(), mapped.read_only), ("/data", true));
        assert!(parse_preopen(&cwd, "::/data").is_err());
        assert!(parse_preopen(&cwd, "/no/such/dir/here").is_err());
    }

    #[test]
    fn poll_takes_an_optional_interval() {
        let interval = |args: &[&str]| {
            let mut all = vec!["live-wasm"];
            all.extend(args);
            Cli::try_parse_from(all).map(|cli| cli.poll)
        };
        assert_eq!(interval(&["m.wat"]).expect("ok"), None);
        assert_eq!(
            interval(&["--poll", "m.wat"]).expect("ok"),
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            interval(&["--poll=2s", "m.wat"]).expect("ok"),
            Some(Duration::from_secs(2))
        );
        assert!(interval(&["--poll=soon", "m.wat"]).is_err());
    }

    #[test]
    fn a_file_in_folders_not_made_yet_has_an_absolute_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cwd = dir.path().canonicalize().expect("canonical");
        let path = absolute_file(&cwd, Path::new("target/wasm/main.wasm")).expect("path");
        assert_eq!(path, cwd.join("target/wasm/main.wasm"));
        assert!(absolute_file(&cwd, Path::new("target/..")).is_err());
    }

    #[test]
    fn limits_read_like_people_write_them() {
        assert_eq!(parse_duration("300ms"), Ok(Duration::from_millis(300)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert!(parse_duration("soon").is_err());
        assert_eq!(parse_bytes("64KiB"), Ok(65536));
        assert_eq!(parse_bytes("16MiB"), Ok(16 << 20));
        assert_eq!(parse_bytes("1000"), Ok(1000));
        assert!(parse_bytes("lots").is_err());
    }

    #[test]
    fn env_forms() {
        assert_eq!(
            parse_env("A=b=c").expect("ok"),
            Ok(("A".to_owned(), "b=c".to_owned()))
        );
        assert!(
            parse_env("LIVE_WASM_SURELY_UNSET_VAR")
                .expect("ok")
                .is_err()
        );
        assert!(parse_env("=x").is_err());
    }
}
