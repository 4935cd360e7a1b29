//! Save-to-output latency of the real `live-wasm` binary on real files.
//!
//! `cargo bench --bench save_to_output [-- --saves N --reloads N]`
//!
//! Each scenario starts a session in a temp dir, saves a file N times, and times
//! from just before the write to the moment the new run's first line reaches us
//! on its stdout pipe. The runner's status line gives each run's compile and run
//! stages; the rest (file event, read, scheduling, pipe) is what the watcher adds.
//! Prints a table a reader can paste; where `wasmtime` is on PATH it measures a
//! cold `wasmtime run` of the same module for comparison. Components have rows
//! of their own, beside the core module's in the same run; the two built from
//! `guest-examples/components/` (the Rust demo, the Python component) are built
//! in place first, and skipped, saying why, when their toolchain is missing.

#[path = "../tests/e2e/component_wat.rs"]
#[allow(dead_code)] // What only the tests use.
mod component_wat;
#[path = "../tests/e2e/examples.rs"]
#[allow(dead_code)]
mod examples;
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use support::{Samples, Save, Session, ms, on_path, option, percentile, process_stats, save};

fn main() {
    let options = Options::from_args();
    println!(
        "live-wasm save-to-output, {} saves per scenario ({})",
        options.saves,
        env!("CARGO_BIN_EXE_live-wasm")
    );
    println!();
    println!("| scenario | p50 ms | p95 ms | max ms | compile p50 ms | run p50 ms | rest p50 ms |");
    println!("|---|---:|---:|---:|---:|---:|---:|");

    let small = small_edit(&options, Save::InPlace, &[]);
    small.row("small edit, in place");
    small_edit(&options, Save::InPlace, &["--compiler", "winch"])
        .row("small edit, in place (winch)");
    small_edit(&options, Save::InPlace, &["--no-incremental-cache"])
        .row("small edit, in place (no incremental cache)");
    rename_save(&options).row("small edit, atomic rename");
    dependency_edit(&options).row("edit of a used dependency");
    let (samples, megabytes) = big_dependency(&options);
    samples.row(&format!(
        "small edit, {megabytes:.1} MB dependency unchanged"
    ));
    for (label, flags) in [
        (
            "1,000-function module, one function edited (cranelift)",
            &["--compiler", "cranelift", "--no-incremental-cache"][..],
        ),
        (
            "1,000-function module, one function edited (cranelift + incremental cache)",
            &["--compiler", "cranelift"][..],
        ),
        (
            "1,000-function module, one function edited (winch)",
            &["--compiler", "winch"][..],
        ),
    ] {
        big_module_edit(&options, flags).row(label);
    }
    runaway(&options).row("runaway guest replaced by a save");
    let component = component_edit(&options);
    component.row("small edit of a component, in place");
    provider_edit(&options).row("edit of a component's provider (two .wat components)");
    match use_demo_provider_rebuilt(&options) {
        Ok(samples) => samples
            .row("two-component demo (Rust, 3 MB each): the provider rebuilt, one string changed"),
        Err(why) => println!("| two-component demo: skipped, {why} | | | | | | |"),
    }
    match sibling_of_a_big_component(&options) {
        Ok((samples, megabytes)) => samples.row(&format!(
            "edit of a provider, {megabytes:.1} MB Python component unchanged"
        )),
        Err(why) => println!("| Python component: skipped, {why} | | | | | | |"),
    }
    println!();
    println!(
        "a component's small edit takes {:.2}x the core module's (p50)",
        component.p50() / small.p50()
    );
    println!();

    compare_with_wasmtime(&options, small.p50());
    println!();
    reloads(&options);
}

/// Command-line options of the bench.
struct Options {
    saves: usize,
    reloads: usize,
}

impl Options {
    fn from_args() -> Self {
        Options {
            saves: option("--saves", 100) as usize,
            reloads: option("--reloads", 5_000) as usize,
        }
    }
}

/// A WASI command printing `line`, then doing `then`; `imports` go first.
fn printer(imports: &str, line: &str, then: &str) -> String {
    printer_after(imports, "", line, then)
}

/// A WASI command doing `first`, printing `line`, then doing `then`.
fn printer_after(imports: &str, first: &str, line: &str, then: &str) -> String {
    format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  {imports}
  (memory (export "memory") 1)
  (data (i32.const 64) "{line}\n")
  (func (export "_start")
    {first}
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const {len}))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    {then}))
"#,
        len = line.len() + 1
    )
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

fn small_edit(options: &Options, how: Save, extra: &[&str]) -> Samples {
    let dir = temp_dir();
    let main = dir.path().join("main.wat");
    std::fs::write(&main, printer("", "start", "")).expect("write");
    let mut args = extra.to_vec();
    args.push("main.wat");
    let session = Session::start(dir.path(), &args);
    session.output("start");
    session.status();
    session.measure_saves(options.saves, &main, how, |i| {
        let line = format!("v{i}");
        (printer("", &line, ""), line)
    })
}

fn rename_save(options: &Options) -> Samples {
    small_edit(options, Save::Rename, &[])
}

fn dependency_edit(options: &Options) -> Samples {
    let dir = temp_dir();
    let dep = dir.path().join("dep.wat");
    let dep_source = |line: &str| printer("", line, "").replace("\"_start\"", "\"say\"");
    std::fs::write(&dep, dep_source("dep start")).expect("write");
    std::fs::write(
        dir.path().join("main.wat"),
        printer(r#"(import "dep" "say" (func $say))"#, "main", "(call $say)"),
    )
    .expect("write");
    let session = Session::start(dir.path(), &["main.wat"]);
    session.output("dep start");
    session.status();
    session.measure_saves(options.saves, &dep, Save::InPlace, |i| {
        let line = format!("d{i}");
        (dep_source(&line), line)
    })
}

/// A module of `count` functions with some arithmetic each, each calling the
/// next, `edited` changing one. Like compiled code, it exports few of them (every
/// export costs a host trampoline, which would dominate the compile time).
fn many_functions(count: usize, edited: usize) -> String {
    let mut text = String::from("(module\n");
    for index in 0..count {
        let constant = if index == edited { 7 } else { 3 };
        let export = if index < 10 {
            format!("(export \"f{index}\")")
        } else {
            String::new()
        };
        let next = (index + 1) % count;
        text.push_str(&format!(
            "  (func $f{index} {export} (param i32) (result i32)
    (local i32)
    (local.set 1 (i32.mul (local.get 0) (i32.const {constant})))
    (if (i32.gt_s (local.get 1) (i32.const 100000))
      (then (local.set 1 (call $f{next} (i32.sub (local.get 1) (i32.const {index}))))))
    (i32.add (local.get 1) (i32.rem_u (local.get 0) (i32.const 13))))\n"
        ));
    }
    text.push(')');
    text
}

/// Returns the samples and the dependency's size in MB.
fn big_dependency(options: &Options) -> (Samples, f64) {
    let dir = temp_dir();
    let big = wat::parse_str(many_functions(100_000, 0)).expect("valid");
    let megabytes = big.len() as f64 / 1e6;
    std::fs::write(dir.path().join("big.wasm"), big).expect("write");
    let main = dir.path().join("main.wat");
    // The entry calls into the big module before it prints: its output shows
    // that the big module is linked, not only that the entry ran.
    let source = |line: &str| {
        printer_after(
            r#"(import "big" "f1" (func $f1 (param i32) (result i32)))"#,
            "(drop (call $f1 (i32.const 5)))",
            line,
            "",
        )
    };
    std::fs::write(&main, source("start")).expect("write");
    let session = Session::start(dir.path(), &["main.wat"]);
    session.output("start");
    session.status();
    let samples = session.measure_saves(options.saves, &main, Save::InPlace, |i| {
        let line = format!("v{i}");
        (source(&line), line)
    });
    (samples, megabytes)
}

fn big_module_edit(options: &Options, flags: &[&str]) -> Samples {
    let dir = temp_dir();
    // Written as a compiler would write it: a `.wasm` binary.
    let module = dir.path().join("big.wasm");
    let binary = |edited: usize| wat::parse_str(many_functions(1_000, edited)).expect("valid");
    std::fs::write(&module, binary(0)).expect("write");
    let main = dir.path().join("main.wat");
    std::fs::write(
        &main,
        printer_after(
            r#"(import "big" "f1" (func $f1 (param i32) (result i32)))"#,
            "(drop (call $f1 (i32.const 5)))",
            "ran",
            "",
        ),
    )
    .expect("write");
    let mut args = flags.to_vec();
    args.push("main.wat");
    let session = Session::start(dir.path(), &args);
    session.output("ran");
    session.status();
    let mut samples = Samples::default();
    for i in 0..options.saves.min(50) {
        // Edit another function each time: every save is new code, as a
        // person's edits are (alternating two versions measured cache hits
        // once the compile cache kept the version before).
        session.measure(
            &mut samples,
            &module,
            binary(1 + i % 999),
            Save::InPlace,
            "ran",
        );
    }
    samples
}

fn runaway(options: &Options) -> Samples {
    let dir = temp_dir();
    let main = dir.path().join("main.wat");
    std::fs::write(&main, printer("", "spin start", "(loop $spin (br $spin))")).expect("write");
    let session = Session::start(dir.path(), &["main.wat"]);
    session.output("spin start");
    let mut samples = Samples::default();
    for i in 0..options.saves {
        let line = format!("spin {i}");
        let saved = Instant::now();
        save(
            &main,
            printer("", &line, "(loop $spin (br $spin))"),
            Save::InPlace,
        );
        let printed = session.output(&line);
        // The stopped run's status line: its stages are the old run's, not ours.
        session.status();
        samples.total.push(ms(printed - saved));
        samples.compile.push(0.0);
        samples.run.push(0.0);
    }
    samples
}

fn component_edit(options: &Options) -> Samples {
    let dir = temp_dir();
    let main = dir.path().join("main.wat");
    std::fs::write(&main, component_wat::command("start", "", 0)).expect("write");
    let session = Session::start(dir.path(), &["main.wat"]);
    session.output("start");
    session.status();
    session.measure_saves(options.saves, &main, Save::InPlace, |i| {
        let line = format!("v{i}");
        (component_wat::command(&line, "", 0), line)
    })
}

/// The provider of the Python example: `greeting()` returns its text.
fn greeter(text: &str) -> String {
    let example = examples::examples().join("components/python/greeter.wat");
    let source = std::fs::read_to_string(example).expect("greeter.wat");
    source.replace("hello from greeter.wat", text)
}

fn provider_edit(options: &Options) -> Samples {
    let dir = temp_dir();
    std::fs::write(
        dir.path().join("main.wat"),
        component_wat::greeting_printer(),
    )
    .expect("write");
    let provider = dir.path().join("greeter.wat");
    std::fs::write(&provider, greeter("start")).expect("write");
    let session = Session::start(dir.path(), &["main.wat"]);
    session.output("start");
    session.status();
    session.measure_saves(options.saves, &provider, Save::InPlace, |i| {
        let line = format!("g{i}");
        (greeter(&line), line)
    })
}

/// Runs the `build` script of component example `folder` in place (quick when
/// it is built already); the example's folder, or why it could not be built.
fn build_example(folder: &str) -> Result<PathBuf, String> {
    let dir = examples::examples().join(folder);
    let built = Command::new(dir.join("build"))
        .current_dir(&dir)
        .env("PATH", examples::toolchain_path())
        .output()
        .map_err(|err| format!("cannot run its build: {err}"))?;
    if !built.status.success() {
        let stderr = String::from_utf8_lossy(&built.stderr);
        return Err(format!(
            "its build failed (toolchain missing?): {}",
            stderr.trim()
        ));
    }
    Ok(dir)
}

/// `guest-examples/components/use-demo`: its provider rebuilt with one string
/// literal changed (the bytes a one-line edit gives), without cargo's time.
fn use_demo_provider_rebuilt(options: &Options) -> Result<Samples, String> {
    let example = build_example("components/use-demo")?;
    let built = example.join("target/wasm32-wasip2/debug");
    let dir = temp_dir();
    for file in ["main.wasm", "testmod.wasm"] {
        std::fs::copy(built.join(file), dir.path().join(file)).map_err(|e| e.to_string())?;
    }
    let original = std::fs::read(built.join("testmod.wasm")).map_err(|e| e.to_string())?;
    let literal = b", from testmod";
    let at = original
        .windows(literal.len())
        .position(|window| window == literal)
        .ok_or("no \", from testmod\" in testmod.wasm")?;
    let provider = dir.path().join("testmod.wasm");
    let session = Session::start(dir.path(), &["main.wasm"]);
    session.output("hello, live-wasm, from testmod");
    session.status();
    let saves = options.saves.min(50);
    Ok(session.measure_saves(saves, &provider, Save::InPlace, |i| {
        let edited = format!(", from t{i:05}d");
        let mut bytes = original.clone();
        bytes[at..at + literal.len()].copy_from_slice(edited.as_bytes());
        (bytes, format!("hello, live-wasm{edited}"))
    }))
}

/// `guest-examples/components/python`: `app.wasm` (CPython inside) stays as it
/// is while the provider it imports is edited. Returns its size in MB.
fn sibling_of_a_big_component(options: &Options) -> Result<(Samples, f64), String> {
    let example = build_example("components/python")?;
    let app = example.join("app.wasm");
    let dir = temp_dir();
    std::fs::copy(&app, dir.path().join("app.wasm")).map_err(|e| e.to_string())?;
    let megabytes = file_megabytes(&app);
    let provider = dir.path().join("greeter.wat");
    std::fs::write(&provider, greeter("start")).expect("write");
    // The first run compiles CPython (seconds); then every save is timed.
    let session = Session::start(dir.path(), &["app.wasm"]);
    session.output("greeter.wat says: start");
    session.status();
    let saves = options.saves.min(50);
    let samples = session.measure_saves(saves, &provider, Save::InPlace, |i| {
        let text = format!("p{i}");
        (greeter(&text), format!("greeter.wat says: {text}"))
    });
    Ok((samples, megabytes))
}

fn file_megabytes(path: &Path) -> f64 {
    std::fs::metadata(path).map_or(0.0, |meta| meta.len() as f64 / 1e6)
}

/// Where `wasmtime` is on PATH: a cold `wasmtime run` of the same module.
fn compare_with_wasmtime(options: &Options, small_p50: f64) {
    let Some(wasmtime) = on_path("wasmtime") else {
        println!("wasmtime: not on PATH, no comparison measured");
        return;
    };
    let dir = temp_dir();
    let main = dir.path().join("main.wat");
    std::fs::write(&main, printer("", "cold", "")).expect("write");
    let mut cold = Vec::new();
    for _ in 0..options.saves.min(50) {
        let started = Instant::now();
        let output = Command::new(&wasmtime)
            .arg("run")
            .arg(&main)
            .output()
            .expect("wasmtime run");
        assert!(output.status.success());
        cold.push(ms(started.elapsed()));
    }
    let p50 = percentile(&cold, 50.0);
    println!(
        "cold `wasmtime run` of the same module: p50 {p50:.2} ms, p95 {:.2} ms; \
         live-wasm small edit p50 is {:.3}x of it",
        percentile(&cold, 95.0),
        small_p50 / p50
    );
}

/// RSS, open fds and threads of one session across many reloads.
fn reloads(options: &Options) {
    let dir = temp_dir();
    let main = dir.path().join("main.wat");
    std::fs::write(&main, printer("", "r start", "")).expect("write");
    let session = Session::start(dir.path(), &["main.wat"]);
    session.output("r start");
    session.status();
    let mut warm = None;
    for i in 0..options.reloads {
        let line = format!("r{i}");
        save(&main, printer("", &line, ""), Save::InPlace);
        session.output(&line);
        session.status();
        if i == 99 {
            warm = Some(process_stats(session.pid()));
        }
    }
    let end = process_stats(session.pid());
    let warm = warm.unwrap_or(end);
    println!(
        "after 100 reloads: RSS {:.1} MiB, {} fds, {} threads; after {}: RSS {:.1} MiB \
         (+{:.2} MiB), {} fds, {} threads",
        warm.rss_kib as f64 / 1024.0,
        warm.fds,
        warm.threads,
        options.reloads,
        end.rss_kib as f64 / 1024.0,
        (end.rss_kib as f64 - warm.rss_kib as f64) / 1024.0,
        end.fds,
        end.threads
    );
}
