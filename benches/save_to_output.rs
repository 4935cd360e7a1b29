//! Save-to-output latency of the real `live-wasm` binary on real files, as a
//! person sees it: against the floor of this machine and the loops a user
//! would otherwise run.
//!
//! `cargo bench --bench save_to_output [-- --saves N --pause MS --reloads N --only TEXT]`
//! (`LIVE_WASM_BENCH_BASELINE=path/to/another/live-wasm` measures that build
//! too, save by save beside this one)
//!
//! Each scenario saves a file N times after a pause (250 ms: a person saves
//! after a moment's thought, when the machine's threads have gone idle), then N
//! times back to back, and times from just before the write to the moment the
//! run's first line can be read from its stdout. Every save goes in turn to
//! live-wasm, to the floor (a minimal inotify -> read -> write program, see
//! `support/floor.rs`) and, where `watchexec` and `wasmtime` are on PATH, to
//! `watchexec -r [--debounce 0] -- wasmtime run` doing the same job, each in a
//! folder of its own. live-wasm's figures are printed as `floor + X ms`, the
//! peers' with how many times live-wasm's they are. The runner's status line
//! gives each run's compile and run stages. The scenarios built from
//! `guest-examples/components/` are built in place first, and skipped, saying
//! why, when their toolchain is missing. Then one session is reloaded many
//! times: its RSS, fds and threads, and its CPU while idle.

#[path = "../tests/e2e/component_wat.rs"]
#[allow(dead_code)] // What only the tests use.
mod component_wat;
#[path = "../tests/e2e/examples.rs"]
#[allow(dead_code)]
mod examples;
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::interleaved::{self, Measured, Peers, Scenario};
use support::{Save, Session, floor, option, printer, printer_after, process_stats, save};

fn main() {
    floor::serve_if_asked();
    let options = Options::from_args();
    let peers = Peers::find();
    println!(
        "live-wasm save-to-output, {} saves per scenario and spacing ({})",
        options.saves,
        support::live_wasm().to_string_lossy()
    );
    if let Some(baseline) = support::baseline() {
        println!(
            "baseline, interleaved save by save: {}",
            baseline.to_string_lossy()
        );
    }
    if let Err(why) = &peers {
        println!("peers not measured: {why}");
    }
    println!();
    let mut measured: Vec<Measured> = Vec::new();
    for (name, make) in scenarios() {
        if !options.only.as_ref().is_none_or(|only| name.contains(only)) {
            continue;
        }
        let scenario = match make() {
            Ok(scenario) => scenario,
            Err(why) => {
                println!("skipped: {why}");
                continue;
            }
        };
        eprintln!("measuring: {}", scenario.label);
        measured.push(interleaved::measure(
            &scenario,
            options.saves,
            options.pause,
            &peers,
        ));
    }
    let paused: Vec<_> = measured
        .iter()
        .map(|m| (m.label.as_str(), &m.paused))
        .collect();
    let title = format!(
        "After a {} ms pause (p50 and p95 in ms)",
        options.pause.as_millis()
    );
    interleaved::print_table(&title, &paused);
    let back: Vec<_> = measured
        .iter()
        .map(|m| (m.label.as_str(), &m.back_to_back))
        .collect();
    interleaved::print_table("Back to back (p50 and p95 in ms)", &back);
    component_ratio(&measured);
    if options.reloads > 0 {
        reloads(&options);
    }
}

/// Command-line options of the bench.
struct Options {
    saves: usize,
    pause: Duration,
    reloads: usize,
    /// Only the scenarios whose name contains this.
    only: Option<String>,
}

impl Options {
    fn from_args() -> Self {
        Options {
            saves: option("--saves", 40) as usize,
            pause: Duration::from_millis(option("--pause", 250)),
            reloads: option("--reloads", 5_000) as usize,
            only: support::only(),
        }
    }
}

/// A component's small edit against a core module's, as the issue that added
/// components asked (p50, both spacings).
fn component_ratio(measured: &[Measured]) {
    let find = |label: &str| measured.iter().find(|m| m.label == label);
    if let (Some(core), Some(component)) = (find(SMALL_EDIT), find(COMPONENT_EDIT)) {
        println!(
            "a component's small edit takes {:.2}x the core module's after a pause, {:.2}x back to back (p50)",
            component.paused.live.p50() / core.paused.live.p50(),
            component.back_to_back.live.p50() / core.back_to_back.live.p50(),
        );
        println!();
    }
}

const SMALL_EDIT: &str = "small edit, in place";
const COMPONENT_EDIT: &str = "small edit of a component, in place";

/// Makes a scenario, or says why it cannot be run here.
type Make = Box<dyn Fn() -> Result<Scenario, String>>;

/// Every scenario, by a name `--only` matches, made only when measured (a big
/// dependency or an example's build takes a while).
fn scenarios() -> Vec<(&'static str, Make)> {
    fn ok(make: impl Fn() -> Scenario + 'static) -> Make {
        Box::new(move || Ok(make()))
    }
    let small = |label: &'static str,
                 how,
                 flags: &'static [&'static str],
                 peer: &'static [&'static str]| {
        (label, ok(move || small_edit(label, how, flags, peer)))
    };
    let big_module =
        |label: &'static str, flags: &'static [&'static str], peer: &'static [&'static str]| {
            (label, ok(move || big_module_edit(label, flags, peer)))
        };
    vec![
        small(SMALL_EDIT, Save::InPlace, &[], &[]),
        small(
            "small edit, in place (winch)",
            Save::InPlace,
            &["--compiler", "winch"],
            &["-C", "compiler=winch"],
        ),
        small(
            "small edit, in place (no incremental cache)",
            Save::InPlace,
            &["--no-incremental-cache"],
            &[],
        ),
        small("small edit, atomic rename", Save::Rename, &[], &[]),
        ("edit of a used dependency", ok(dependency_edit)),
        ("small edit, big dependency unchanged", ok(big_dependency)),
        big_module(
            "1,000-function module, one function edited (cranelift)",
            &["--compiler", "cranelift", "--no-incremental-cache"],
            &[],
        ),
        big_module(
            "1,000-function module, one function edited (cranelift + incremental cache)",
            &["--compiler", "cranelift"],
            &[],
        ),
        big_module(
            "1,000-function module, one function edited (winch)",
            &["--compiler", "winch"],
            &["-C", "compiler=winch"],
        ),
        ("runaway guest replaced by a save", ok(runaway)),
        (
            "small edit under --build, 100,000 ignored files beside it",
            ok(build_beside_ignored_files),
        ),
        (COMPONENT_EDIT, ok(component_edit)),
        ("edit of a component's provider", ok(provider_edit)),
        ("two-component demo", Box::new(use_demo_provider_rebuilt)),
        (
            "edit of a provider, Python component unchanged",
            Box::new(sibling_of_a_big_component),
        ),
    ]
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|arg| arg.to_string()).collect()
}

/// A scenario whose live-wasm entry is `entry`, and whose peer runs `wasmtime
/// run PEER_FLAGS ENTRY`.
fn with_entry(entry: &str, flags: &[&str], peer_flags: &[&str]) -> (Vec<String>, Vec<String>) {
    let mut live = strings(flags);
    live.push(entry.to_owned());
    let mut peer = strings(peer_flags);
    peer.push(entry.to_owned());
    (live, peer)
}

/// Why `wasmtime run` has no counterpart of a scenario.
const NO_COMPONENT_USE: &str =
    "`wasmtime run` does not link a component's imports from sibling files";

/// A `main.wat` whose source for line `v{i}` is `source`; saved as `how`.
fn main_edited(
    label: &str,
    how: Save,
    source: impl Fn(&str) -> String + 'static,
    live_flags: &[&str],
    peer_args: Vec<String>,
) -> Scenario {
    let mut live_args = strings(live_flags);
    live_args.push("main.wat".to_owned());
    Scenario {
        label: label.to_owned(),
        files: vec![("main.wat".to_owned(), source("start").into_bytes())],
        start_line: "start".to_owned(),
        live_args,
        peer_args: Ok(peer_args),
        edited: "main.wat".to_owned(),
        how,
        edit: Box::new(move |i| {
            let line = format!("v{i}");
            (source(&line).into_bytes(), line)
        }),
        most_saves: usize::MAX,
        stages: true,
    }
}

fn small_edit(label: &str, how: Save, flags: &[&str], peer_flags: &[&str]) -> Scenario {
    let (_, peer) = with_entry("main.wat", flags, peer_flags);
    main_edited(label, how, |line| printer("", line, ""), flags, peer)
}

fn dependency_edit() -> Scenario {
    let dep_source = |line: &str| printer("", line, "").replace("\"_start\"", "\"say\"");
    let main = printer(r#"(import "dep" "say" (func $say))"#, "main", "(call $say)");
    Scenario {
        label: "edit of a used dependency".to_owned(),
        files: vec![
            ("dep.wat".to_owned(), dep_source("dep start").into_bytes()),
            ("main.wat".to_owned(), main.into_bytes()),
        ],
        start_line: "dep start".to_owned(),
        live_args: strings(&["main.wat"]),
        peer_args: Ok(strings(&["--preload", "dep=dep.wat", "main.wat"])),
        edited: "dep.wat".to_owned(),
        how: Save::InPlace,
        edit: Box::new(move |i| {
            let line = format!("d{i}");
            (dep_source(&line).into_bytes(), line)
        }),
        most_saves: usize::MAX,
        stages: true,
    }
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

/// An entry that calls `big`'s `f1` before it prints `line`: its output shows
/// that the big module is linked, not only that the entry ran.
fn calls_big(line: &str) -> String {
    printer_after(
        r#"(import "big" "f1" (func $f1 (param i32) (result i32)))"#,
        "(drop (call $f1 (i32.const 5)))",
        line,
        "",
    )
}

fn big_dependency() -> Scenario {
    let big = wat::parse_str(many_functions(100_000, 0)).expect("valid");
    let label = format!(
        "small edit, {:.1} MB dependency unchanged",
        big.len() as f64 / 1e6
    );
    let mut scenario = main_edited(
        &label,
        Save::InPlace,
        calls_big,
        &[],
        strings(&["--preload", "big=big.wasm", "main.wat"]),
    );
    scenario.files.push(("big.wasm".to_owned(), big));
    scenario
}

fn big_module_edit(label: &str, flags: &[&str], peer_flags: &[&str]) -> Scenario {
    // Written as a compiler would write it: a `.wasm` binary.
    let binary = |edited: usize| wat::parse_str(many_functions(1_000, edited)).expect("valid");
    let (live_args, mut peer_args) = with_entry("main.wat", flags, peer_flags);
    peer_args.splice(0..0, strings(&["--preload", "big=big.wasm"]));
    Scenario {
        label: label.to_owned(),
        files: vec![
            ("big.wasm".to_owned(), binary(0)),
            ("main.wat".to_owned(), calls_big("ran").into_bytes()),
        ],
        start_line: "ran".to_owned(),
        live_args,
        peer_args: Ok(peer_args),
        edited: "big.wasm".to_owned(),
        how: Save::InPlace,
        // Another function edited each time: every save is new code, as a
        // person's edits are (alternating two versions measured cache hits
        // once the compile cache kept the version before).
        edit: Box::new(move |i| (binary(1 + i % 999), "ran".to_owned())),
        most_saves: 25,
        stages: true,
    }
}

fn runaway() -> Scenario {
    let source = |line: &str| printer("", line, "(loop $spin (br $spin))");
    let mut scenario = main_edited(
        "runaway guest replaced by a save",
        Save::InPlace,
        source,
        &[],
        strings(&["main.wat"]),
    );
    // The status line that follows a save is the stopped run's.
    scenario.stages = false;
    scenario
}

/// A `--build` project whose build copies `src.wat` to `main.wat`, beside a
/// `.gitignore`d folder of 100,000 files (a dataset, a vendored tree): what
/// every save costs for files that are no sources.
fn build_beside_ignored_files() -> Scenario {
    let source = |line: &str| printer("", line, "");
    let mut files = vec![(".gitignore".to_owned(), b"data/\n".to_vec())];
    for folder in 0..1000 {
        for file in 0..100 {
            files.push((format!("data/{folder}/{file}.csv"), Vec::new()));
        }
    }
    files.push(("src.wat".to_owned(), source("start").into_bytes()));
    Scenario {
        label: "small edit under --build, 100,000 ignored files beside it".to_owned(),
        files,
        start_line: "start".to_owned(),
        live_args: strings(&["--build", "cp src.wat main.wat", "main.wat"]),
        peer_args: Err("`wasmtime run` has no build step: not compared".to_owned()),
        edited: "src.wat".to_owned(),
        how: Save::InPlace,
        edit: Box::new(move |i| {
            let line = format!("v{i}");
            (source(&line).into_bytes(), line)
        }),
        most_saves: usize::MAX,
        stages: true,
    }
}

fn component_edit() -> Scenario {
    main_edited(
        COMPONENT_EDIT,
        Save::InPlace,
        |line| component_wat::command(line, "", 0),
        &[],
        strings(&["main.wat"]),
    )
}

/// The provider of the Python example: `greeting()` returns its text.
fn greeter(text: &str) -> String {
    let example = examples::examples().join("components/python/greeter.wat");
    let source = std::fs::read_to_string(example).expect("greeter.wat");
    source.replace("hello from greeter.wat", text)
}

/// `greeter.wat` edited beside the component `entry` that prints its
/// greeting, `says` giving the line printed for a greeting.
fn greeter_edited(
    label: String,
    entry: (&str, Vec<u8>),
    says: fn(&str) -> String,
    most_saves: usize,
) -> Scenario {
    Scenario {
        label,
        files: vec![
            (entry.0.to_owned(), entry.1),
            ("greeter.wat".to_owned(), greeter("start").into_bytes()),
        ],
        start_line: says("start"),
        live_args: strings(&[entry.0]),
        peer_args: Err(NO_COMPONENT_USE.to_owned()),
        edited: "greeter.wat".to_owned(),
        how: Save::InPlace,
        edit: Box::new(move |i| {
            let text = format!("g{i}");
            (greeter(&text).into_bytes(), says(&text))
        }),
        most_saves,
        stages: true,
    }
}

fn provider_edit() -> Scenario {
    greeter_edited(
        "edit of a component's provider (two .wat components)".to_owned(),
        ("main.wat", component_wat::greeting_printer().into_bytes()),
        str::to_owned,
        usize::MAX,
    )
}

/// Runs the `build` script of component example `folder` in place (quick when
/// it is built already); the example's folder, or why it could not be built.
fn build_example(folder: &str) -> Result<PathBuf, String> {
    let dir = examples::examples().join(folder);
    let built = Command::new(dir.join("build"))
        .current_dir(&dir)
        .env("PATH", examples::toolchain_path())
        .output()
        .map_err(|err| format!("{folder}: cannot run its build: {err}"))?;
    if !built.status.success() {
        let stderr = String::from_utf8_lossy(&built.stderr);
        return Err(format!(
            "{folder}: its build failed (toolchain missing?): {}",
            stderr.trim()
        ));
    }
    Ok(dir)
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|err| format!("{}: {err}", path.display()))
}

/// `guest-examples/components/use-demo`: its provider rebuilt with one string
/// literal changed (the bytes a one-line edit gives), without cargo's time.
fn use_demo_provider_rebuilt() -> Result<Scenario, String> {
    let built = build_example("components/use-demo")?.join("target/wasm32-wasip2/debug");
    let original = read(&built.join("testmod.wasm"))?;
    let literal = b", from testmod";
    let at = original
        .windows(literal.len())
        .position(|window| window == literal)
        .ok_or("no \", from testmod\" in testmod.wasm")?;
    Ok(Scenario {
        label: "two-component demo (Rust, 3 MB each): the provider rebuilt, one string changed"
            .to_owned(),
        files: vec![
            ("main.wasm".to_owned(), read(&built.join("main.wasm"))?),
            ("testmod.wasm".to_owned(), original.clone()),
        ],
        start_line: "hello, live-wasm, from testmod".to_owned(),
        live_args: strings(&["main.wasm"]),
        peer_args: Err(NO_COMPONENT_USE.to_owned()),
        edited: "testmod.wasm".to_owned(),
        how: Save::InPlace,
        edit: Box::new(move |i| {
            let edited = format!(", from t{i:05}d");
            let mut bytes = original.clone();
            bytes[at..at + literal.len()].copy_from_slice(edited.as_bytes());
            (bytes, format!("hello, live-wasm{edited}"))
        }),
        most_saves: 25,
        stages: true,
    })
}

/// `guest-examples/components/python`: `app.wasm` (CPython inside) stays as it
/// is while the provider it imports is edited.
fn sibling_of_a_big_component() -> Result<Scenario, String> {
    let app = read(&build_example("components/python")?.join("app.wasm"))?;
    let label = format!(
        "edit of a provider, {:.1} MB Python component unchanged",
        app.len() as f64 / 1e6
    );
    // The first run compiles CPython (seconds); then every save is timed.
    Ok(greeter_edited(
        label,
        ("app.wasm", app),
        |text| format!("greeter.wat says: {text}"),
        25,
    ))
}

/// RSS, open fds and threads of one session across many reloads of a program
/// that uses modules: `main` imports `lib` and `live.use`s `dep`; the saves
/// alternate between `main` and `lib`, so both are compiled and linked anew.
fn reloads(options: &Options) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (main, lib) = (dir.path().join("main.wat"), dir.path().join("lib.wat"));
    let main_source = |line: &str| {
        printer_after(
            r#"(import "lib" "f" (func $f))
  (import "live" "use" (func $use (param i32 i32) (result i32)))
  (data (i32.const 200) "dep")"#,
            "(drop (call $use (i32.const 200) (i32.const 3)))",
            line,
            "(call $f)",
        )
    };
    let lib_source =
        |line: &str| printer("", line, "").replace(r#"(export "_start")"#, r#"(export "f")"#);
    std::fs::write(&main, main_source("r start")).expect("write");
    std::fs::write(&lib, lib_source("lib start")).expect("write");
    std::fs::write(dir.path().join("dep.wat"), "(module (func $s) (start $s))").expect("write");
    let session = Session::start(dir.path(), &["main.wat"]);
    session.output("lib start");
    session.status();
    let mut warm = None;
    for i in 0..options.reloads {
        let line = format!("r{i}");
        match i % 2 {
            0 => save(&main, main_source(&line), Save::InPlace),
            _ => save(&lib, lib_source(&line), Save::InPlace),
        }
        session.output(&line);
        session.status();
        if i == 99 {
            warm = Some(process_stats(session.pid()));
        }
    }
    let end = process_stats(session.pid());
    let warm = warm.unwrap_or(end);
    println!(
        "reloads using modules (main imports lib, live.use(\"dep\"); saves alternate \
         main/lib): after 100: RSS {:.1} MiB, {} fds, {} threads; after {}: RSS {:.1} MiB \
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
    // Idle: the time between two saves, which is most of a session's life.
    let idle = Duration::from_secs(5);
    let before = process_stats(session.pid());
    std::thread::sleep(idle);
    let after = process_stats(session.pid());
    let cpu = after.cpu.saturating_sub(before.cpu);
    println!(
        "idle for {} s after them: {:.2} ms of CPU ({:.3}%)",
        idle.as_secs(),
        cpu.as_secs_f64() * 1000.0,
        cpu.as_secs_f64() / idle.as_secs_f64() * 100.0
    );
}
