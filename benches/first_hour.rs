//! Every example as a new user meets it in their first hour: the first start,
//! the next session's start, and edit-to-output.
//!
//! `cargo bench --bench first_hour [-- --saves N --pause MS]`
//!
//! For each folder of `guest-examples/` (and `guest-examples/components/`), a
//! copy of its sources in a temp dir (no build output), the guest toolchains
//! on PATH (`.toolchains/venv/bin` first; `.ci/install-guests` installs them:
//! an example whose toolchain is missing is skipped, and says why) and a
//! fresh, empty cache folder (`XDG_CACHE_HOME`: live-wasm's disk cache, and Go's
//! and Zig's caches too). The example is started with the arguments the first
//! line of its README gives (`examples::start_args`), as that line has it run:
//! from the example's folder, or from the repository's root (`cargo run --`,
//! the copy then under `guest-examples/<folder>`); an interpreter the README
//! has `./fetch` first is the repository's `guest-examples/<folder>/<name>.wasm`;
//! a scratch folder its line makes (`mkdir -p /tmp/demo`, the 2014 session) is
//! the copy, which holds the session's last step (`test.wat` and `testmod.wat`),
//! not the files it waits for.
//!
//! - First start: from spawning the binary to the first run's status line;
//!   its build, compile and run stages from `--events-file`. It includes the
//!   first build (and a toolchain's first build of its standard library) and
//!   the first compile. The crates cargo downloads are not part of it: they
//!   are already in `~/.cargo`.
//! - Next session start: the same command again, in a new session on the same
//!   copy, with the cache and build output the first left (the next morning;
//!   the first session is stopped once it is idle, its disk cache written).
//! - Edit to output: in that session, `--saves N` (default 5) one-line edits of
//!   the file the README says to edit, each after a `--pause` (default 250 ms),
//!   timed from the save (write and rename) to the changed line on stdout; the
//!   build and compile stages from the events.
//!
//! An example that fails prints a row saying why, and the bench goes on.

#[path = "../tests/e2e/examples.rs"]
#[allow(dead_code)] // What only the tests use.
mod examples;
mod support;

use std::ffi::OsString;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Save, Session, WAIT, ms, option, percentile, save};

/// A first start may build a toolchain's standard library (Go), or a crate's
/// macros (`wit-bindgen`), saying nothing for longer than [`WAIT`].
const FIRST_START_WAIT: Duration = WAIT.saturating_mul(5);

/// An example and the one-line edit its README invites.
struct Example {
    folder: &'static str,
    /// What it needs on PATH (`a|b`: either), a Rust target (`wasm32-…`), or
    /// a file under `guest-examples/` (`python/python.wasm`).
    needs: &'static [&'static str],
    /// The file edited, in the folder the start command runs from.
    file: &'static str,
    /// The text in `file` each edit replaces, and its replacement: `{i}` is
    /// the save's number, three digits (a WAT string keeps its length).
    original: &'static str,
    edited: &'static str,
    /// The line the first run prints that the edit changes, and the line an
    /// edit prints instead (`{i}` as in `edited`).
    hello: &'static str,
    printed: &'static str,
}

const EXAMPLES: &[Example] = &[
    Example {
        folder: "hello",
        needs: &[],
        file: "guest-examples/hello/main.wat",
        original: "Hello from live-wasm!",
        edited: "Hello #{i} live-wasm!",
        hello: "Hello from live-wasm!",
        printed: "Hello #{i} live-wasm!",
    },
    Example {
        folder: "demo2014",
        needs: &[],
        file: "testmod.wat",
        original: "test function",
        edited: "function #{i}",
        hello: "test function",
        printed: "function #{i}",
    },
    Example {
        folder: "rust",
        needs: &["cargo", "wasm32-wasip1"],
        file: "src/main.rs",
        original: "Hello from Rust!",
        edited: "Hello #{i} from Rust!",
        hello: "Hello from Rust!",
        printed: "Hello #{i} from Rust!",
    },
    Example {
        folder: "c",
        needs: &["clang"],
        file: "main.c",
        original: "Hello from C!",
        edited: "Hello #{i} from C!",
        hello: "Hello from C!",
        printed: "Hello #{i} from C!",
    },
    Example {
        folder: "zig",
        needs: &["zig|python-zig"],
        file: "main.zig",
        original: "Hello from Zig!",
        edited: "Hello #{i} from Zig!",
        hello: "Hello from Zig!",
        printed: "Hello #{i} from Zig!",
    },
    Example {
        folder: "assemblyscript",
        needs: &["node", "assemblyscript/node_modules/assemblyscript"],
        file: "assembly/index.ts",
        original: "Hello from AssemblyScript!",
        edited: "Hello #{i} from AssemblyScript!",
        hello: "Hello from AssemblyScript!",
        printed: "Hello #{i} from AssemblyScript!",
    },
    Example {
        folder: "go",
        needs: &["go"],
        file: "main.go",
        original: "Hello from Go!",
        edited: "Hello #{i} from Go!",
        hello: "Hello from Go!",
        printed: "Hello #{i} from Go!",
    },
    Example {
        folder: "rust-calls-c",
        needs: &["cargo", "clang", "wasm32-wasip1"],
        file: "src/main.rs",
        original: "Hello from Rust, with C!",
        edited: "Hello #{i} from Rust, with C!",
        hello: "Hello from Rust, with C!",
        printed: "Hello #{i} from Rust, with C!",
    },
    Example {
        folder: "python",
        needs: &["python/python.wasm"],
        file: "main.py",
        original: "greet(\"Python\")",
        edited: "greet(\"Python #{i}\")",
        hello: "Hello from Python!",
        printed: "Hello from Python #{i}!",
    },
    Example {
        folder: "javascript",
        needs: &["javascript/quickjs.wasm"],
        file: "main.js",
        original: "greet(\"JavaScript\")",
        edited: "greet(\"JavaScript #{i}\")",
        hello: "Hello from JavaScript!",
        printed: "Hello from JavaScript #{i}!",
    },
    Example {
        folder: "clock-and-dice",
        needs: &["cargo", "wasm32-wasip1"],
        file: "src/main.rs",
        original: "println!(\"Clock and dice\");",
        edited: "println!(\"Clock and dice #{i}\");",
        hello: "Clock and dice",
        printed: "Clock and dice #{i}",
    },
    Example {
        folder: "components/rust",
        needs: &["cargo", "wasm32-wasip2"],
        file: "src/main.rs",
        original: "hello from a WASI 0.2 component",
        edited: "hello #{i} from a WASI 0.2 component",
        hello: "hello from a WASI 0.2 component",
        printed: "hello #{i} from a WASI 0.2 component",
    },
    Example {
        folder: "components/python",
        needs: &["componentize-py"],
        file: "app.py",
        original: "hello from Python, as a WASI 0.2 component",
        edited: "hello #{i} from Python, as a WASI 0.2 component",
        hello: "hello from Python, as a WASI 0.2 component",
        printed: "hello #{i} from Python, as a WASI 0.2 component",
    },
    Example {
        folder: "components/use-demo",
        needs: &["cargo", "wasm32-wasip2"],
        file: "main/src/main.rs",
        original: "api::greet(\"live-wasm\")",
        edited: "api::greet(\"edit #{i}\")",
        hello: "hello, live-wasm, from testmod",
        printed: "hello, edit #{i}, from testmod",
    },
];

fn main() {
    let saves = option("--saves", 5) as usize;
    let pause = Duration::from_millis(option("--pause", 250));
    let path = examples::toolchain_path();
    println!(
        "Every example as a new user meets it: first start (fresh cache, no build output), \
         next session start, {saves} one-line edits after a {} ms pause ({})",
        pause.as_millis(),
        support::live_wasm().to_string_lossy()
    );
    println!();
    println!(
        "| example | start command | first start s (build / compile / run) \
         | next session start ms (compile) | edit-to-output p50 / p95 ms (build p50, compile p50) |"
    );
    println!("|---|---|---:|---:|---:|");
    for folder in folders() {
        let command = readme_line(&folder);
        let Some(example) = EXAMPLES.iter().find(|example| example.folder == folder) else {
            println!(
                "| {folder} | `{command}` | skipped: no edit defined for it in benches/first_hour.rs | | |"
            );
            continue;
        };
        if let Some(missing) = missing(example.needs, &path) {
            println!("| {folder} | `{command}` | skipped: {missing} not found | | |");
            continue;
        }
        let row = catch_unwind(AssertUnwindSafe(|| measure(example, saves, pause, &path)));
        match row {
            Ok(Ok(cells)) => println!("| {folder} | `{command}` | {cells} |"),
            Ok(Err(why)) => println!(
                "| {folder} | `{command}` | failed: {} | | |",
                why.replace('|', "\\|")
            ),
            Err(panic) => println!(
                "| {folder} | `{command}` | failed: {} | | |",
                summary(&*panic)
            ),
        }
    }
}

/// The examples: each folder under `guest-examples/`,
/// `guest-examples/components/` and `guest-examples/http/`, sorted.
fn folders() -> Vec<String> {
    let mut found = Vec::new();
    for parent in ["", "components", "http"] {
        let entries = std::fs::read_dir(examples::examples().join(parent)).expect("guest-examples");
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.path().is_dir() && name != "components" && name != "http" {
                found.push(if parent.is_empty() {
                    name
                } else {
                    format!("{parent}/{name}")
                });
            }
        }
    }
    found.sort();
    found
}

/// The first line of example `folder`'s README: its start command.
fn readme_line(folder: &str) -> String {
    let readme = examples::examples().join(folder).join("README.md");
    let text = std::fs::read_to_string(readme).unwrap_or_default();
    text.lines().next().unwrap_or_default().trim().to_owned()
}

/// The first of `needs` this machine lacks, if any.
fn missing(needs: &[&str], path: &OsString) -> Option<String> {
    needs.iter().find_map(|need| {
        let found = if need.starts_with("wasm32-") {
            rust_target(need, path)
        } else if need.contains('/') {
            examples::examples().join(need).exists()
        } else {
            need.split('|')
                .any(|program| std::env::split_paths(path).any(|dir| dir.join(program).is_file()))
        };
        (!found).then(|| format!("`{need}`"))
    })
}

/// Whether the Rust target `target` is installed for the rustc on `path`.
fn rust_target(target: &str, path: &OsString) -> bool {
    let output = Command::new("rustc")
        .args(["--print", "target-libdir", "--target", target])
        .env("PATH", path)
        .stdin(Stdio::null())
        .output();
    output.is_ok_and(|output| {
        let libdir = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        output.status.success() && Path::new(&libdir).is_dir()
    })
}

/// Where a start command runs, and live-wasm's arguments there.
struct Start {
    /// Kept for the copy's lifetime.
    _root: tempfile::TempDir,
    dir: PathBuf,
    args: Vec<String>,
}

/// A copy of `folder` laid out as its README's start command expects it.
fn copy(folder: &str) -> Result<Start, String> {
    let root = tempfile::tempdir().map_err(|err| err.to_string())?;
    let line = readme_line(folder);
    let mut args = examples::start_args(folder);
    let dir = root.path().to_path_buf();
    // `cargo run --` runs from the repository's root, the example in its place
    // there; `live-wasm` from the example's folder.
    let from_root = line.contains("cargo run --") && !line.contains("mkdir -p ");
    let at = if from_root {
        dir.join("guest-examples").join(folder)
    } else {
        dir.clone()
    };
    std::fs::create_dir_all(&at).map_err(|err| err.to_string())?;
    examples::copy_example(folder, &at);
    // A scratch folder the line makes is the copy.
    if let Some(scratch) = line
        .split(" && ")
        .find_map(|step| step.strip_prefix("mkdir -p "))
    {
        let scratch = scratch.trim().trim_end_matches('/');
        for arg in &mut args {
            if let Some(rest) = arg.strip_prefix(scratch) {
                *arg = format!("{}{rest}", dir.display());
            }
        }
    }
    // The interpreter `./fetch` put beside the README.
    if line.starts_with("./fetch && ")
        && let Some(at) = args.iter().position(|arg| arg == "--interpreter")
    {
        let name = args.get(at + 1).ok_or("--interpreter without a file")?;
        let fetched = examples::examples().join(folder).join(name);
        args[at + 1] = fetched.to_string_lossy().into_owned();
    }
    Ok(Start {
        _root: root,
        dir,
        args,
    })
}

/// One example's cells after its name and command.
fn measure(
    example: &Example,
    saves: usize,
    pause: Duration,
    path: &OsString,
) -> Result<String, String> {
    let start = copy(example.folder)?;
    let cache = tempfile::tempdir().map_err(|err| err.to_string())?;
    let env = [
        ("PATH".to_owned(), path.to_string_lossy().into_owned()),
        (
            "XDG_CACHE_HOME".to_owned(),
            cache.path().to_string_lossy().into_owned(),
        ),
    ];
    let events = tempfile::tempdir().map_err(|err| err.to_string())?;

    // The first start, then the next morning's.
    let first = start_session(&start, &env, &events.path().join("first.jsonl"), example)?;
    // A person does not quit the moment the output shows: the runner writes
    // what it compiled to the disk cache after the status line.
    settle(&first.session, &cache.path().join("live-wasm"));
    drop(first.session);
    let next = start_session(&start, &env, &events.path().join("next.jsonl"), example)?;

    let file = start.dir.join(example.file);
    let original =
        std::fs::read_to_string(&file).map_err(|err| format!("{}: {err}", example.file))?;
    if !original.contains(example.original) {
        return Err(format!(
            "{} does not hold {:?}",
            example.file, example.original
        ));
    }
    let (mut total, mut build, mut compile) = (vec![], vec![], vec![]);
    for i in 0..saves {
        let number = format!("{i:03}");
        let edited =
            original.replacen(example.original, &example.edited.replace("{i}", &number), 1);
        let printed = example.printed.replace("{i}", &number);
        thread::sleep(pause);
        let saved = Instant::now();
        save(&file, &edited, Save::Rename);
        let arrived = next.session.output(&printed);
        let status = next.session.status_line();
        let run = finished(&next.events, run_number(&status)?)?;
        total.push(ms(arrived - saved));
        build.push(run.build);
        compile.push(run.compile);
    }

    Ok(format!(
        "{:.3} ({} / {:.3} / {:.3}) | {:.0} ({:.1}) | {:.0} / {:.0} ({}, {:.1})",
        first.total / 1000.0,
        or_dash(first.run.build / 1000.0, 3),
        first.run.compile / 1000.0,
        first.run.run / 1000.0,
        next.total,
        next.run.compile,
        percentile(&total, 50.0),
        percentile(&total, 95.0),
        or_dash(percentile(&build, 50.0), 0),
        percentile(&compile, 50.0),
    ))
}

/// A session started, and what its first run took.
struct Started {
    session: Session,
    events: PathBuf,
    /// Spawn to status line, ms.
    total: f64,
    run: Stages,
}

/// Starts the example's session; waits for its first run's status line.
fn start_session(
    start: &Start,
    env: &[(String, String)],
    events: &Path,
    example: &Example,
) -> Result<Started, String> {
    let mut args = vec![
        "--events-file".to_owned(),
        events.to_string_lossy().into_owned(),
    ];
    args.extend(start.args.iter().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let spawned = Instant::now();
    let session = Session::start_with_env(&start.dir, env, &args);
    let (at, status) = session.status_line_within(FIRST_START_WAIT);
    let run = finished(events, run_number(&status)?)?;
    if run.outcome == "error" {
        return Err(format!("its first run: {status}{}", run.error));
    }
    session.output(example.hello);
    Ok(Started {
        session,
        events: events.to_path_buf(),
        total: ms(at - spawned),
        run,
    })
}

/// How long the first session is given to write its disk cache.
const SETTLE: Duration = WAIT;

/// How long a session and its disk cache stay unchanged before it is taken to
/// be done with them.
const QUIET: Duration = Duration::from_millis(500);

/// Waits, up to [`SETTLE`], until `session` is idle: its CPU time and the
/// files of the disk cache under `dir` unchanged for [`QUIET`], none of them
/// half-written. (The entries are written one after another after the run,
/// the CPython component's in several parts: a count of entries, or a moment
/// with no temporary file, can come before the last one.)
fn settle(session: &Session, dir: &Path) {
    let deadline = Instant::now() + SETTLE;
    let look = || (support::process_stats(session.pid()).cpu, walk(dir));
    let (mut last, mut since) = (look(), Instant::now());
    while Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
        let now = look();
        if now != last {
            (last, since) = (now, Instant::now());
        } else if since.elapsed() >= QUIET
            && !now
                .1
                .iter()
                .any(|file| file.to_string_lossy().ends_with(".tmp"))
        {
            return;
        }
    }
}

/// The files under `dir`, at any depth.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// A run's stages in ms (NaN for a build that did not happen), from its
/// `run-finished` event; its outcome, and its error's message if any.
struct Stages {
    build: f64,
    compile: f64,
    run: f64,
    outcome: String,
    error: String,
}

/// Run `number`'s stages from the events file, waiting for them in bounds.
fn finished(events: &Path, number: u64) -> Result<Stages, String> {
    let deadline = Instant::now() + WAIT;
    let field = |event: &Value, name: &str| event[name].as_f64().unwrap_or(f64::NAN);
    loop {
        let text = std::fs::read_to_string(events).unwrap_or_default();
        let mut error = String::new();
        for event in text
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|event| event["run"] == number)
        {
            match event["event"].as_str() {
                Some("error") => {
                    error = format!(": {}", event["message"].as_str().unwrap_or_default());
                }
                Some("run-finished") => {
                    return Ok(Stages {
                        build: field(&event, "build_ms"),
                        compile: field(&event, "compile_ms"),
                        run: field(&event, "run_ms"),
                        outcome: event["outcome"].as_str().unwrap_or_default().to_owned(),
                        error: error.lines().next().unwrap_or_default().to_owned(),
                    });
                }
                _ => {}
            }
        }
        if Instant::now() >= deadline {
            return Err(format!("no run-finished event for run {number}"));
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// `7` from `[live-wasm] #7 main.c changed: ...`.
fn run_number(status: &str) -> Result<u64, String> {
    status
        .strip_prefix("[live-wasm] #")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|number| number.parse().ok())
        .ok_or_else(|| format!("not a run's status line: {status:?}"))
}

/// `value` to `decimals` places, or `–` when there was none (no build).
fn or_dash(value: f64, decimals: usize) -> String {
    if value.is_nan() {
        "–".to_owned()
    } else {
        format!("{value:.decimals$}")
    }
}

/// A panic's message in one line: its first line, and its last when it
/// quotes the session's stderr.
fn summary(panic: &(dyn std::any::Any + Send)) -> String {
    let text = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("a panic");
    let mut lines = text.lines().filter(|line| !line.trim().is_empty());
    let first = lines.next().unwrap_or_default().to_owned();
    match lines.next_back() {
        Some(last) => format!("{first} … {}", last.trim()),
        None => first,
    }
    .replace('|', "\\|")
}
