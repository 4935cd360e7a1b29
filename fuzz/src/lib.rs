//! The in-process harness the fuzz targets share, on live-wasm's public API
//! and the few hooks of `live_wasm::fuzzing` (live-wasm's `src/fuzzing.rs`,
//! cargo feature `fuzzing`), which need the crate's insides.
//!
//! A [`Harness`] is one `--once` session that is run again and again: the plan
//! comes from the real command line (`--once --fuel --timeout --max-memory
//! --events json --events-file`), the runner thread, engine, linkers and compile
//! cache live as long as the harness ([`live_wasm::fuzzing::Once`]), and each
//! [`Harness::run`] lays the given files in a fresh root and goes through the
//! session's own `--once` path (resolution, compile cache, linking, `live.use`,
//! limits, the reporter). What the run said is read back from its JSON events,
//! the documented contract, and checked: every run must keep the invariants of
//! [`Run::check`]. A broken invariant panics, which the fuzzer reports as a
//! crash. The exit statuses and problem kinds it checks against are the
//! crate's own.
//!
//! Beside the root the harness lays a module that must never run: the target
//! of symlinks in the root ([`ESCAPES`]), so that a name reaching it shows up as
//! a compiled file outside the root.

#![warn(missing_docs, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use serde_json::Value;

use live_wasm::fuzzing::{EXIT_ERROR, EXIT_TIMEOUT, EXIT_TRAP, Once};
use live_wasm::plan::StdinSource;

pub use live_wasm::fuzzing::ProblemKind;

/// Fuel of every run: enough for a few hundred thousand instructions.
pub const FUEL: u64 = 2_000_000;
/// Wall-clock limit of every run (a guest asleep in the host uses no fuel).
pub const TIMEOUT: Duration = Duration::from_secs(1);
/// Linear memory every run may hold.
pub const MAX_MEMORY: u64 = 64 << 20;
/// How much longer than [`TIMEOUT`] the running part of a run may take (the
/// machine is shared) before the harness calls it a limit not kept.
pub const SLACK: Duration = Duration::from_secs(2);
/// How long a whole run (compiling included, which no limit interrupts) may
/// take before the harness calls it a hang.
pub const HANG: Duration = Duration::from_secs(30);

/// The exit status of the module outside the root, should it ever run.
pub const OUTSIDE_EXIT: i32 = 113;

/// Module names that lead outside the root through symlinks the harness lays
/// in it: `escape.wat` -> `../outside.wat`, `escape_abs.wat` -> the same by an
/// absolute path, `up` -> `..`. Each must be "not found", never loaded.
pub const ESCAPES: &[&str] = &["escape", "escape_abs", "up/outside", "up/root/main"];

/// Names of the root's own fixtures: the files given to [`Harness::run`] may
/// not use them.
const FIXTURES: &[&str] = &["escape.wat", "escape_abs.wat", "up"];

/// The module beside the root: it exits with [`OUTSIDE_EXIT`] from its start
/// function, and exports what the fuzzed modules tend to import.
const OUTSIDE_MODULE: &str = r#"(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func $start (call $exit (i32.const 113)))
  (start $start)
  (func (export "f"))
  (func (export "_start")))
"#;

/// One `--once` session over a scratch root, run as often as wanted.
pub struct Harness {
    base: PathBuf,
    root: PathBuf,
    events: PathBuf,
    session: Once,
}

impl Harness {
    /// A harness whose entry is `entry` (`main.wat`, `main.wasm`) in a fresh
    /// scratch root under the temporary folder.
    pub fn new(entry: &str) -> Result<Self> {
        static HARNESSES: AtomicUsize = AtomicUsize::new(0);
        let number = HARNESSES.fetch_add(1, Ordering::Relaxed);
        let tmp = std::env::temp_dir().canonicalize()?;
        let base = tmp.join(format!("live-wasm-fuzz-{}-{number}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base)?;
        std::fs::write(base.join("outside.wat"), OUTSIDE_MODULE)?;
        let root = base.join("root");
        std::fs::create_dir_all(&root)?;
        let events = base.join("events.jsonl");
        let entry_path = root.join(entry);
        let (fuel, timeout, memory) = (
            FUEL.to_string(),
            format!("{}ms", TIMEOUT.as_millis()),
            MAX_MEMORY.to_string(),
        );
        let args = [
            "live-wasm".as_ref(),
            "--once".as_ref(),
            "--quiet".as_ref(),
            "--fuel".as_ref(),
            fuel.as_ref(),
            "--timeout".as_ref(),
            timeout.as_ref(),
            "--max-memory".as_ref(),
            memory.as_ref(),
            "--events".as_ref(),
            "json".as_ref(),
            "--events-file".as_ref(),
            events.as_os_str(),
            entry_path.as_os_str(),
        ];
        let cli = live_wasm::cli::Cli::try_parse_from(args)?;
        let mut plan = cli.into_plan()?;
        // Started in the scratch folder: the hint of a module not found looks
        // at its few files, not at the fuzzer's folder at every run.
        plan.cwd = base.clone();
        // `--once` hands the guest our stdin: a fuzzer's may block or be the
        // terminal. A closed one is what a watch session gives.
        plan.sandbox.stdin = StdinSource::Empty;
        Ok(Self {
            base,
            root,
            events,
            session: Once::new(plan)?,
        })
    }

    /// The root, where module names resolve.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Lays `files` (relative path, bytes) in a fresh root beside the
    /// fixtures, runs the entry once, and checks the run's invariants.
    pub fn run(&self, files: &[(String, Vec<u8>)]) -> Run {
        if let Err(err) = self.lay(files) {
            panic!("the harness cannot lay the files: {err:#}");
        }
        self.rerun()
    }

    /// Runs the entry once more over the files as they are.
    pub fn rerun(&self) -> Run {
        let started = Instant::now();
        let status = self.session.run();
        let elapsed = started.elapsed();
        let status = status.unwrap_or_else(|err| panic!("the session failed: {err:#}"));
        let text = std::fs::read_to_string(&self.events).unwrap_or_default();
        let run = Run::from_events(status, elapsed, &text)
            .unwrap_or_else(|err| panic!("bad events: {err:#}\n{text}"));
        if let Err(err) = run.check() {
            panic!("invariant broken: {err:#}\n{text}");
        }
        run
    }

    fn lay(&self, files: &[(String, Vec<u8>)]) -> Result<()> {
        std::fs::remove_dir_all(&self.root)?;
        std::fs::create_dir(&self.root)?;
        let link =
            |target: &Path, name: &str| std::os::unix::fs::symlink(target, self.root.join(name));
        link(Path::new("../outside.wat"), "escape.wat")?;
        link(&self.base.join("outside.wat"), "escape_abs.wat")?;
        link(Path::new(".."), "up")?;
        for (name, bytes) in files {
            let plain = !name.is_empty()
                && !name.starts_with('/')
                && name.split('/').all(|part| !matches!(part, "" | "." | ".."))
                && !name.contains('\0');
            let first = name.split('/').next().unwrap_or_default();
            if !plain || FIXTURES.contains(&first) {
                bail!("{name:?} is not a plain name beneath the root");
            }
            let path = self.root.join(name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&path, bytes).with_context(|| path.display().to_string())?;
        }
        Ok(())
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

/// A module a run loaded, as its `compiled` event says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// The module's name.
    pub module: String,
    /// Its file, relative to the root (absolute if it were outside).
    pub file: String,
    /// Nothing was compiled.
    pub cache_hit: bool,
}

/// What a run said in its events, and its exit status.
#[derive(Debug, Clone)]
pub struct Run {
    /// The `--once` exit status.
    pub status: i32,
    /// `run-finished`'s `outcome`: `ok`, `exit`, `trap`, `timeout`, ...
    pub outcome: String,
    /// `run-finished`'s `exit_code`.
    pub exit_code: Option<i64>,
    /// `run-finished`'s `trap`.
    pub trap: Option<String>,
    /// The `error` event's problem, if the run failed.
    pub error: Option<Problem>,
    /// The codes of the `use-failed` events, in order.
    pub use_codes: Vec<i32>,
    /// The `use-failed` events' problems, in order.
    pub use_problems: Vec<Problem>,
    /// The `compiled` events, in order.
    pub loaded: Vec<Loaded>,
    /// `run-finished`'s `fuel_used`.
    pub fuel_used: Option<u64>,
    /// `run-finished`'s `peak_memory`.
    pub peak_memory: u64,
    /// `run-finished`'s `run_ms`.
    pub run_ms: f64,
    /// Wall-clock time of the whole run, as the harness saw it.
    pub elapsed: Duration,
}

impl Run {
    fn from_events(status: i32, elapsed: Duration, text: &str) -> Result<Run> {
        let mut run = Run {
            status,
            outcome: String::new(),
            exit_code: None,
            trap: None,
            error: None,
            use_codes: Vec::new(),
            use_problems: Vec::new(),
            loaded: Vec::new(),
            fuel_used: None,
            peak_memory: 0,
            run_ms: 0.0,
            elapsed,
        };
        let mut started = 0;
        let mut finished = 0;
        for (index, line) in text.lines().enumerate() {
            let event: Value = serde_json::from_str(line).context("an event is not JSON")?;
            let kind = event["event"].as_str().context("an event without a name")?;
            if finished > 0 {
                bail!("{kind} after run-finished");
            }
            match kind {
                "run-started" if index == 0 => started += 1,
                "run-started" => bail!("run-started is not the first event"),
                "use-failed" => {
                    let code = event["code"].as_i64().context("use-failed without code")?;
                    run.use_codes.push(i32::try_from(code)?);
                    run.use_problems.push(problem(&event)?);
                }
                "compiled" => run.loaded.push(Loaded {
                    module: text_field(&event, "module")?,
                    file: text_field(&event, "file")?,
                    cache_hit: match event["cache"].as_str() {
                        Some("hit") => true,
                        Some("miss") => false,
                        other => bail!("compiled with cache {other:?}"),
                    },
                }),
                "error" => {
                    if run.error.is_some() {
                        bail!("two error events");
                    }
                    run.error = Some(problem(&event)?);
                }
                "run-finished" => {
                    finished += 1;
                    run.outcome = text_field(&event, "outcome")?;
                    run.exit_code = event["exit_code"].as_i64();
                    run.trap = event["trap"].as_str().map(str::to_owned);
                    run.fuel_used = event["fuel_used"].as_u64();
                    run.peak_memory = event["peak_memory"].as_u64().context("no peak_memory")?;
                    run.run_ms = event["run_ms"].as_f64().context("no run_ms")?;
                }
                other => bail!("unexpected event {other}"),
            }
        }
        if (started, finished) != (1, 1) {
            bail!("{started} run-started and {finished} run-finished events");
        }
        Ok(run)
    }

    /// Every problem the run told of: its `use-failed` events, then its `error`.
    pub fn problems(&self) -> impl Iterator<Item = &Problem> {
        self.use_problems.iter().chain(&self.error)
    }

    /// The invariants of every run, whatever the guest:
    /// - the exit status is the one `--once` documents for the outcome, and
    ///   nothing but `--timeout` stopped the run;
    /// - it kept its limits: fuel, memory, and time (the running part within
    ///   `--timeout` and [`SLACK`], all of it within [`HANG`]);
    /// - `live.use` codes are the documented ones, and a cycle is said as
    ///   `a -> b -> a` (that every problem kind is one of ours is checked as
    ///   the events are read);
    /// - nothing outside the root was loaded: every compiled file is a plain
    ///   path beneath it, and none reached through the escaping symlinks.
    pub fn check(&self) -> Result<()> {
        let expected_status = match self.outcome.as_str() {
            "ok" => 0,
            "exit" => i32::try_from(self.exit_code.context("exit without a code")?)?,
            "trap" | "out-of-fuel" => EXIT_TRAP,
            "timeout" => EXIT_TIMEOUT,
            "error" => EXIT_ERROR,
            other => bail!("outcome {other}: nothing but --timeout may stop a run"),
        };
        if self.status != expected_status {
            bail!("status {} for outcome {}", self.status, self.outcome);
        }
        if self.outcome == "error" && self.error.is_none() {
            bail!("an error outcome without an error event");
        }
        if self.fuel_used.is_none_or(|used| used > FUEL) {
            bail!("fuel used {:?} of {FUEL}", self.fuel_used);
        }
        if self.outcome == "out-of-fuel" && self.fuel_used != Some(FUEL) {
            bail!("out of fuel after {:?} of {FUEL}", self.fuel_used);
        }
        if self.peak_memory > MAX_MEMORY {
            bail!("peak memory {} over {MAX_MEMORY}", self.peak_memory);
        }
        let ran = Duration::from_secs_f64(self.run_ms / 1e3);
        if ran > TIMEOUT + SLACK {
            bail!("ran {ran:?}, over --timeout {TIMEOUT:?}");
        }
        if self.elapsed > HANG {
            bail!("the run took {:?}", self.elapsed);
        }
        for code in &self.use_codes {
            if !(-5..=-1).contains(code) {
                bail!("live.use code {code} is not a documented failure");
            }
        }
        for problem in self.problems() {
            if problem.kind == ProblemKind::Cycle {
                check_cycle(&problem.message)?;
            }
        }
        for loaded in &self.loaded {
            let file = Path::new(&loaded.file);
            let plain = file
                .components()
                .all(|part| matches!(part, std::path::Component::Normal(_)));
            if !plain {
                bail!("loaded {}, which is not beneath the root", loaded.file);
            }
            let escaped = ESCAPES.iter().any(|name| {
                [".wat", ".wasm"]
                    .iter()
                    .any(|ext| loaded.file == format!("{name}{ext}"))
            });
            if escaped {
                bail!(
                    "loaded {} through a symlink leading out of the root",
                    loaded.file
                );
            }
        }
        Ok(())
    }

    /// Runs of the same files tell the same story: a re-run of unchanged files
    /// (served by the compile cache) ends the same way and compiles nothing the
    /// first run compiled. Runs stopped by `--timeout` are not compared.
    pub fn check_same_as(&self, first: &Run) -> Result<()> {
        if self.outcome == "timeout" || first.outcome == "timeout" {
            return Ok(());
        }
        let story = |run: &Run| {
            (
                run.outcome.clone(),
                run.exit_code,
                run.trap.clone(),
                run.error.as_ref().map(|problem| problem.kind),
                run.use_codes.clone(),
            )
        };
        if story(self) != story(first) {
            bail!(
                "a re-run differs: {:?}, then {:?}",
                story(first),
                story(self)
            );
        }
        let files =
            |run: &Run| -> Vec<String> { run.loaded.iter().map(|l| l.file.clone()).collect() };
        if files(self) != files(first) {
            bail!("a re-run loaded {:?}, then {:?}", files(first), files(self));
        }
        // Files that failed to load are not cached: they are compiled again.
        let failed: Vec<&String> = (first.problems())
            .filter(|problem| {
                matches!(
                    problem.kind,
                    ProblemKind::Syntax | ProblemKind::Validation | ProblemKind::Invalid
                )
            })
            .filter_map(|problem| problem.file.as_ref())
            .collect();
        for loaded in &self.loaded {
            if !loaded.cache_hit && !failed.contains(&&loaded.file) {
                bail!("a re-run compiled {} again: {:?}", loaded.file, self.loaded);
            }
        }
        Ok(())
    }
}

/// `import cycle a -> b -> a: ...`: at least two names, the first and last the same.
fn check_cycle(message: &str) -> Result<()> {
    let Some((_, rest)) = message.split_once("import cycle ") else {
        bail!("a cycle said without its path: {message}");
    };
    let path = rest.split(": each module").next().unwrap_or_default();
    let names: Vec<&str> = path.split(" -> ").collect();
    if names.len() < 2 || names.first() != names.last() {
        bail!("a cycle that does not close: {message}");
    }
    Ok(())
}

fn text_field(event: &Value, field: &str) -> Result<String> {
    Ok(event[field]
        .as_str()
        .with_context(|| format!("no {field} in {event}"))?
        .to_owned())
}

/// The kind an event names, which must be one of [`ProblemKind::ALL`].
fn kind(word: &str) -> Result<ProblemKind> {
    match ProblemKind::ALL
        .into_iter()
        .find(|kind| kind.as_str() == word)
    {
        Some(kind) => Ok(kind),
        None => bail!("problem kind {word}"),
    }
}

fn problem(event: &Value) -> Result<Problem> {
    Ok(Problem {
        kind: kind(&text_field(event, "kind")?)?,
        file: event["file"].as_str().map(str::to_owned),
        message: text_field(event, "message")?,
    })
}

/// A problem an `error` or `use-failed` event tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// What sort of problem: the event's `kind` is one of ours.
    pub kind: ProblemKind,
    /// The file at fault, relative to the root, when known.
    pub file: Option<String>,
    /// What went wrong, in one line.
    pub message: String,
}
