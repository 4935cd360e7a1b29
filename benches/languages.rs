//! Save-to-output of the compiled-language examples under `--build`, the build
//! included, and what live-wasm adds to the build.
//!
//! `cargo bench --bench languages [-- --saves N --pause MS]`
//!
//! Per language whose toolchain is found (`.ci/install-guests` installs them;
//! `.toolchains/venv/bin` goes first on PATH), two copies of its example: one in
//! a live-wasm session, one built by hand. Interleaved N times, after a pause
//! (a person saves after thinking, default 250 ms): edit the program's first
//! line in the live copy and time the save to that line on stdout; read the
//! run's build, compile and run stages from its events (`--events-file`);
//! then make the same edit in the other copy and, after the same pause, time
//! its `./build` run by hand. Our overhead is save-to-output minus the build as live-wasm timed it;
//! the rest is that overhead minus the compile and run stages (the file event,
//! starting the build, reading the output, instantiating, the pipe).
//!
//! Then the big guests, for this build and the one `LIVE_WASM_BENCH_BASELINE`
//! names (the code before a change), interleaved: the Python component
//! (`guest-examples/components/python`, CPython inside, 18 MB) from its
//! README's line, its first compile and then `--component-saves N` (default 5)
//! edits of `app.py`, each timed from the save to its line (componentize-py's
//! build, our compile, the run); and the interpreters (`python.wasm`,
//! `quickjs.wasm`) started `--starts N` times (default 10) by new `--once`
//! sessions with the disk cache warm, each timed from the start of the
//! process to its end.

#[path = "../tests/e2e/examples.rs"]
#[allow(dead_code)] // What only the tests use.
mod examples;
mod support;

use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Save, Session, WAIT, ms, option, percentile, save};

/// A language's example: its folder, live-wasm's arguments after `--build`,
/// the source edited and the line it prints first.
struct Example {
    folder: &'static str,
    args: &'static [&'static str],
    source: &'static str,
    hello: &'static str,
    entry: &'static str,
}

const EXAMPLES: &[Example] = &[
    Example {
        folder: "c",
        args: &[],
        source: "main.c",
        hello: "Hello from C!",
        entry: "main.wasm",
    },
    Example {
        folder: "rust",
        args: &["--root", "."],
        source: "src/main.rs",
        hello: "Hello from Rust!",
        entry: "target/wasm32-wasip1/debug/hello-live.wasm",
    },
    Example {
        folder: "zig",
        args: &[],
        source: "main.zig",
        hello: "Hello from Zig!",
        entry: "main.wasm",
    },
    Example {
        folder: "assemblyscript",
        args: &[],
        source: "assembly/index.ts",
        hello: "Hello from AssemblyScript!",
        entry: "main.wasm",
    },
    Example {
        folder: "go",
        args: &[],
        source: "main.go",
        hello: "Hello from Go!",
        entry: "main.wasm",
    },
];

fn main() {
    let saves = option("--saves", 20) as usize;
    let pause = Duration::from_millis(option("--pause", 250));
    let path = examples::toolchain_path().to_string_lossy().into_owned();
    println!(
        "live-wasm --build, one-line edits: {saves} saves per language after a {} ms pause ({})",
        pause.as_millis(),
        env!("CARGO_BIN_EXE_live-wasm")
    );
    println!();
    println!(
        "| language | module | save-to-output p50 / p95 ms | build (as timed by live-wasm) p50 / p95 ms \
         | build by hand p50 / p95 ms | overhead p50 / p95 ms | compile p50 ms | run p50 ms | rest p50 ms |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for example in EXAMPLES {
        match measure(example, saves, pause, &path) {
            Ok(row) => println!("{row}"),
            Err(why) => println!("| {} | skipped: {why} |", example.folder),
        }
    }

    let mut builds = vec![("this build".to_owned(), support::live_wasm())];
    if let Some(baseline) = support::baseline() {
        builds.push(("baseline".to_owned(), baseline));
    }
    println!();
    python_component(
        &builds,
        option("--component-saves", 5) as usize,
        pause,
        &path,
    );
    println!();
    interpreter_starts(&builds, option("--starts", 10) as usize);
}

/// The line the Python component prints first, and its edit number `i`.
const COMPONENT_HELLO: &str = "hello from Python, as a WASI 0.2 component";

/// The Python component's first compile and its edits, per build.
fn python_component(builds: &[(String, OsString)], saves: usize, pause: Duration, path: &str) {
    println!(
        "Python component (componentize-py, CPython inside), {saves} edits of app.py after a {} ms pause:",
        pause.as_millis()
    );
    println!();
    println!(
        "| build | first compile ms | edit: save-to-output p50 / p95 ms | build p50 / p95 ms \
         | compile p50 / p95 ms | run p50 ms |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    let env = [("PATH".to_owned(), path.to_owned())];
    let readme = examples::start_args("components/python");
    let sessions: Vec<_> = builds
        .iter()
        .map(|(_, binary)| {
            let dir = tempfile::tempdir().expect("tempdir");
            examples::copy_example("components/python", dir.path());
            let events = dir.path().join("events.jsonl");
            let mut args = vec![
                "--events-file".to_owned(),
                events.to_string_lossy().into_owned(),
            ];
            args.extend(readme.iter().cloned());
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let session = Session::start_binary(binary, dir.path(), &env, &args);
            session.output(COMPONENT_HELLO);
            let status = session.status_line();
            let first_compile = stages(&events, run_number(&status))[1];
            let original = std::fs::read_to_string(dir.path().join("app.py")).expect("app.py");
            (dir, events, session, first_compile, original)
        })
        .collect();
    let mut samples = vec![[vec![], vec![], vec![], vec![]]; builds.len()];
    for i in 0..saves {
        for ((dir, events, session, _, original), [total, build, compile, run]) in
            sessions.iter().zip(&mut samples)
        {
            let app = dir.path().join("app.py");
            let line = format!("edit #{i} of the Python component");
            let edited = original.replacen(COMPONENT_HELLO, &line, 1);
            thread::sleep(pause);
            let saved = Instant::now();
            save(&app, &edited, Save::Rename);
            let printed = session.output(&line);
            let status = session.status_line();
            let [build_ms, compile_ms, run_ms] = stages(events, run_number(&status));
            total.push(ms(printed - saved));
            build.push(build_ms);
            compile.push(compile_ms);
            run.push(run_ms);
        }
    }
    for ((label, _), ((_, _, _, first, _), [total, build, compile, run])) in
        builds.iter().zip(sessions.iter().zip(&samples))
    {
        println!(
            "| {label} | {first:.0} | {} | {} | {} | {:.1} |",
            both(total),
            both(build),
            both(compile),
            percentile(run, 50.0)
        );
    }
}

/// New `--once` sessions of each interpreter on its example, the disk cache
/// warm, per build.
fn interpreter_starts(builds: &[(String, OsString)], starts: usize) {
    println!("Interpreters started by a new session, disk cache warm ({starts} starts, `--once`):");
    println!();
    println!("| interpreter | build | start-to-exit p50 / p95 ms | compile p50 / p95 ms |");
    println!("|---|---|---:|---:|");
    for (folder, interpreter, script) in [
        ("python", "python.wasm", "main.py"),
        ("javascript", "quickjs.wasm", "main.js"),
    ] {
        let wasm = examples::examples().join(folder).join(interpreter);
        if !wasm.is_file() {
            println!("| {interpreter} | skipped: run guest-examples/{folder}/fetch |");
            continue;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        examples::copy_example(folder, dir.path());
        let wasm = wasm.to_string_lossy().into_owned();
        let caches: Vec<_> = builds
            .iter()
            .map(|_| tempfile::tempdir().expect("tempdir"))
            .collect();
        let start = |binary: &OsString, cache: &Path| -> [f64; 2] {
            let events = cache.join("events.jsonl");
            let started = Instant::now();
            let output = Command::new(binary)
                .args(["--once", "--events-file"])
                .arg(&events)
                .args(["--interpreter", &wasm, script])
                .env("XDG_CACHE_HOME", cache)
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .output()
                .expect("start live-wasm");
            let took = ms(started.elapsed());
            assert!(
                output.status.success(),
                "{interpreter}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            [took, stages(&events, 1)[1]]
        };
        // Each build's first session fills its cache.
        for ((_, binary), cache) in builds.iter().zip(&caches) {
            start(binary, cache.path());
        }
        let mut samples = vec![[vec![], vec![]]; builds.len()];
        for _ in 0..starts {
            for (((_, binary), cache), [total, compile]) in
                builds.iter().zip(&caches).zip(&mut samples)
            {
                let [took, compile_ms] = start(binary, cache.path());
                total.push(took);
                compile.push(compile_ms);
            }
        }
        for ((label, _), [total, compile]) in builds.iter().zip(&samples) {
            println!(
                "| {interpreter} | {label} | {} | {} |",
                both(total),
                both(compile)
            );
        }
    }
}

/// `p50 / p95` of `values`.
fn both(values: &[f64]) -> String {
    format!(
        "{:.1} / {:.1}",
        percentile(values, 50.0),
        percentile(values, 95.0)
    )
}

/// One language's row, or why it was skipped.
fn measure(example: &Example, saves: usize, pause: Duration, path: &str) -> Result<String, String> {
    let env = [("PATH".to_owned(), path.to_owned())];
    let by_hand = copy_example(example);
    let hand_source = by_hand.path().join(example.source);
    let original = std::fs::read_to_string(&hand_source).map_err(|err| err.to_string())?;
    build_by_hand(by_hand.path(), path)?;
    let module_mb = std::fs::metadata(by_hand.path().join(example.entry))
        .map_err(|err| format!("{}: {err}", example.entry))?
        .len() as f64
        / 1e6;

    let live = copy_example(example);
    let live_source = live.path().join(example.source);
    let events_dir = tempfile::tempdir().map_err(|err| err.to_string())?;
    let events = events_dir.path().join("events.jsonl");
    let events_arg = events.to_string_lossy().into_owned();
    let mut args = vec!["--events-file", &events_arg, "--build", "./build"];
    args.extend(example.args);
    args.push(example.entry);
    let session = Session::start_with_env(live.path(), &env, &args);
    session.output(example.hello);
    session.status_line();

    let (mut total, mut built, mut hand, mut overhead) = (vec![], vec![], vec![], vec![]);
    let (mut compile, mut run, mut rest) = (vec![], vec![], vec![]);
    for i in 0..saves {
        let line = format!("Hello #{i}");
        let edited = original.replace(example.hello, &line);
        thread::sleep(pause);
        let saved = Instant::now();
        save(&live_source, &edited, Save::Rename);
        let printed = session.output(&line);
        let status = session.status_line();
        let [build_ms, compile_ms, run_ms] = stages(&events, run_number(&status));
        total.push(ms(printed - saved));
        built.push(build_ms);
        overhead.push(ms(printed - saved) - build_ms);
        compile.push(compile_ms);
        run.push(run_ms);
        rest.push(ms(printed - saved) - build_ms - compile_ms - run_ms);

        thread::sleep(pause);
        save(&hand_source, &edited, Save::Rename);
        hand.push(build_by_hand(by_hand.path(), path)?);
    }
    Ok(format!(
        "| {} | {module_mb:.2} MB | {} | {} | {} | {} | {:.2} | {:.2} | {:.2} |",
        example.folder,
        both(&total),
        both(&built),
        both(&hand),
        both(&overhead),
        percentile(&compile, 50.0),
        percentile(&run, 50.0),
        percentile(&rest, 50.0),
    ))
}

/// `7` from `[live-wasm] #7 main.c changed: ...`.
fn run_number(status: &str) -> u64 {
    status
        .strip_prefix("[live-wasm] #")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|number| number.parse().ok())
        .unwrap_or_else(|| panic!("not a run's status line: {status:?}"))
}

/// Run `number`'s build, compile and run times in ms, exact, from the events
/// file (a status line rounds a build over a second to 10 ms).
fn stages(events: &Path, number: u64) -> [f64; 3] {
    let deadline = Instant::now() + WAIT;
    let field = |event: &Value, name: &str| event[name].as_f64().unwrap_or(f64::NAN);
    loop {
        let text = std::fs::read_to_string(events).unwrap_or_default();
        let mut build = f64::NAN;
        for event in text
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        {
            if event["run"] != number {
                continue;
            }
            match event["event"].as_str() {
                Some("build-finished") => build = field(&event, "ms"),
                Some("run-finished") => {
                    return [build, field(&event, "compile_ms"), field(&event, "run_ms")];
                }
                _ => {}
            }
        }
        assert!(
            Instant::now() < deadline,
            "no run-finished event for run {number}"
        );
        thread::sleep(Duration::from_millis(5));
    }
}

/// Runs `./build` in `dir` as a person would; returns how long it took in ms.
fn build_by_hand(dir: &Path, path: &str) -> Result<f64, String> {
    let started = Instant::now();
    let output = Command::new("./build")
        .current_dir(dir)
        .env("PATH", path)
        .stdin(Stdio::null())
        .output()
        .map_err(|err| format!("./build: {err}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().last().unwrap_or("no output");
        return Err(format!("its build failed ({}): {last}", output.status));
    }
    Ok(ms(started.elapsed()))
}

/// A temp copy of the example's sources.
fn copy_example(example: &Example) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    examples::copy_example(example.folder, dir.path());
    dir
}
