//! Save-to-output of the interpreted examples (`--interpreter`), beside a
//! `wasmtime run` of the same interpreter and script with its warm compile cache.
//!
//! `cargo bench --bench interpreters [-- --saves N --pause MS --reloads N --starts N --opens N]`
//!
//! Needs the interpreters (`guest-examples/python/fetch`,
//! `guest-examples/javascript/fetch`); `wasmtime` is looked for on PATH and in
//! `.toolchains/venv/bin` (`.ci/install-peers` puts the 48.0.2 CLI there).
//! One session per script, in a copy of its example. Interleaved N times, each
//! after a pause (a person saves after thinking, default 250 ms): a one-line
//! edit of the Python script, of the module it imports, of the JavaScript
//! script, each timed from the save to the changed line on stdout; and a
//! `wasmtime run` of each interpreter on the same script, timed from its start
//! to the same line. Then what noting the files a guest opens costs (a guest
//! opening a file N times, against `wasmtime run`), the first run of new
//! sessions with the disk cache warm, and RSS across many reloads of the
//! Python script.

#[path = "../tests/e2e/examples.rs"]
#[allow(dead_code)] // What only the tests use.
mod examples;
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use support::{Samples, Save, Session, lines, ms, option, percentile, process_stats};

/// One interpreted example: its folder, interpreter, script and module.
struct Script {
    folder: &'static str,
    interpreter: &'static str,
    main: &'static str,
    module: &'static str,
    /// The script's text printing `name`'s greeting (then `fib(30)`).
    script: fn(name: &str) -> String,
    /// The module's text greeting with `greeting`.
    library: fn(greeting: &str) -> String,
}

const PYTHON: Script = Script {
    folder: "python",
    interpreter: "python.wasm",
    main: "main.py",
    module: "helper.py",
    script: |name| {
        format!(
            "import helper\n\nprint(helper.greet(\"{name}\"))\nprint(\"fib(30) =\", helper.fib(30))\n"
        )
    },
    library: |greeting| {
        format!(
            "def greet(name):\n    return f\"{greeting} {{name}}!\"\n\n\ndef fib(n):\n    a, b = 0, 1\n    \
             for _ in range(n):\n        a, b = b, a + b\n    return a\n"
        )
    },
};

const JAVASCRIPT: Script = Script {
    folder: "javascript",
    interpreter: "quickjs.wasm",
    main: "main.js",
    module: "helper.js",
    script: |name| {
        format!(
            "import {{ greet, fib }} from \"./helper.js\";\n\nconsole.log(greet(\"{name}\"));\n\
             console.log(\"fib(30) =\", fib(30));\n"
        )
    },
    library: |greeting| {
        format!(
            "export function greet(name) {{\n  return `{greeting} ${{name}}!`;\n}}\n\n\
             export function fib(n) {{\n  let [a, b] = [0, 1];\n  \
             for (let i = 0; i < n; i++) [a, b] = [b, a + b];\n  return a;\n}}\n"
        )
    },
};

/// A live session on a copy of an example, and what its files say now.
struct Live {
    script: &'static Script,
    dir: tempfile::TempDir,
    /// The disk cache's home, shared with the new sessions `first_runs` starts.
    cache: tempfile::TempDir,
    interpreter: PathBuf,
    session: Session,
    name: String,
    greeting: String,
}

impl Live {
    fn start(script: &'static Script) -> Option<Live> {
        let interpreter = examples::examples()
            .join(script.folder)
            .join(script.interpreter);
        if !interpreter.is_file() {
            println!(
                "{}: missing, run guest-examples/{}/fetch",
                interpreter.display(),
                script.folder
            );
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        examples::copy_example(script.folder, dir.path());
        let (name, greeting) = ("start".to_owned(), "Hello from".to_owned());
        std::fs::write(dir.path().join(script.main), (script.script)(&name)).expect("write");
        std::fs::write(dir.path().join(script.module), (script.library)(&greeting)).expect("write");
        let path = interpreter.to_string_lossy().into_owned();
        let cache = tempfile::tempdir().expect("tempdir");
        let session = Session::start_with_env(
            dir.path(),
            &cache_home(&cache),
            &["--interpreter", &path, script.main],
        );
        // The first run compiles the interpreter (seconds, within the wait).
        session.output("Hello from start!");
        session.status();
        Some(Live {
            script,
            dir,
            cache,
            interpreter,
            session,
            name,
            greeting,
        })
    }

    fn line(&self) -> String {
        format!("{} {}!", self.greeting, self.name)
    }

    /// Saves the script (by rename, as most editors do) with a new name in it.
    fn edit_script(&mut self, samples: &mut Samples, number: usize) {
        self.name = format!("run {number}");
        let file = self.dir.path().join(self.script.main);
        let text = (self.script.script)(&self.name);
        self.session
            .measure(samples, &file, text, Save::Rename, &self.line());
    }

    /// Saves the imported module (in place) with a new greeting in it.
    fn edit_module(&mut self, samples: &mut Samples, number: usize) {
        self.greeting = format!("Hello #{number} from");
        let file = self.dir.path().join(self.script.module);
        let text = (self.script.library)(&self.greeting);
        self.session
            .measure(samples, &file, text, Save::InPlace, &self.line());
    }

    /// `wasmtime run` of the same interpreter on the same script: from its start
    /// to the line the script prints first.
    fn wasmtime_run(&self, wasmtime: &Path) -> f64 {
        let started = Instant::now();
        let mut child = Command::new(wasmtime)
            .args(["run", "--dir", ".::."])
            .arg(&self.interpreter)
            .arg(self.script.main)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("wasmtime run");
        let out = lines(child.stdout.take().expect("stdout"));
        let expected = self.line();
        let printed = loop {
            let (at, line) = out
                .recv_timeout(support::WAIT)
                .expect("wasmtime run prints");
            if line == expected {
                break at;
            }
        };
        assert!(child.wait().expect("wait").success());
        ms(printed - started)
    }
}

fn main() {
    let saves = option("--saves", 20) as usize;
    let pause = Duration::from_millis(option("--pause", 250));
    let reloads = option("--reloads", 500) as usize;
    let starts = option("--starts", 5) as usize;
    let wasmtime = wasmtime();
    println!(
        "interpreters, save-to-output, {saves} saves each after a {} ms pause ({})",
        pause.as_millis(),
        env!("CARGO_BIN_EXE_live-wasm")
    );
    let (Some(mut python), Some(mut javascript)) = (Live::start(&PYTHON), Live::start(&JAVASCRIPT))
    else {
        return;
    };
    if let Some(wasmtime) = &wasmtime {
        // Its first run compiles into its own cache: the runs measured find it warm.
        python.wasmtime_run(wasmtime);
        javascript.wasmtime_run(wasmtime);
    }

    let mut rows: Vec<(&str, Samples)> = [
        "Python script, one line edited",
        "Python module it imports, one line edited",
        "JavaScript script, one line edited",
    ]
    .into_iter()
    .map(|label| (label, Samples::default()))
    .collect();
    let mut peers = [Vec::new(), Vec::new()];
    for number in 0..saves {
        thread::sleep(pause);
        python.edit_script(&mut rows[0].1, number);
        thread::sleep(pause);
        python.edit_module(&mut rows[1].1, number);
        thread::sleep(pause);
        javascript.edit_script(&mut rows[2].1, number);
        if let Some(wasmtime) = &wasmtime {
            thread::sleep(pause);
            peers[0].push(python.wasmtime_run(wasmtime));
            thread::sleep(pause);
            peers[1].push(javascript.wasmtime_run(wasmtime));
        }
    }

    println!();
    println!(
        "| scenario | p50 ms | p95 ms | max ms | compile p50 ms | run p50 ms | rest p50 ms | x `wasmtime run` p50 |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (index, (label, samples)) in rows.iter().enumerate() {
        let peer = &peers[usize::from(index == 2)];
        let ratio = if peer.is_empty() {
            "-".to_owned()
        } else {
            format!("{:.2}", samples.p50() / percentile(peer, 50.0))
        };
        samples.row_with(label, &ratio);
    }
    for (label, peer) in [("python.wasm", &peers[0]), ("quickjs.wasm", &peers[1])] {
        if peer.is_empty() {
            continue;
        }
        println!(
            "| `wasmtime run` of {label} on the script (warm cache) | {:.2} | {:.2} | {:.2} | | | | 1.00 |",
            percentile(peer, 50.0),
            percentile(peer, 95.0),
            percentile(peer, 100.0),
        );
    }
    if wasmtime.is_none() {
        println!("wasmtime: not on PATH nor in .toolchains/venv/bin, no comparison measured");
    }
    drop(javascript);

    println!();
    if let Some(wasmtime) = &wasmtime {
        file_opens(wasmtime, option("--opens", 200_000));
        println!();
    }
    first_runs(&python, starts);
    println!();
    python_reloads(&mut python, reloads);
}

/// What noting the files a guest opens costs: a guest that opens and closes
/// files `opens` times, run whole by `live-wasm --once` and by `wasmtime run`,
/// interleaved; per open+close, with the start-up of a guest opening nothing
/// taken off.
fn file_opens(wasmtime: &Path, opens: u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("d")).expect("mkdir");
    for number in 0..2000 {
        std::fs::write(dir.path().join(format!("d/{number:04}")), "x").expect("write");
    }
    let guests = [
        ("none", 0, false),
        ("same", opens, false),
        ("distinct", opens, true),
    ];
    for (name, count, distinct) in guests {
        std::fs::write(
            dir.path().join(format!("{name}.wat")),
            opener(count, distinct),
        )
        .expect("write");
    }
    let time = |program: &Path, args: &[&str]| {
        let started = Instant::now();
        let status = Command::new(program)
            .args(args)
            .current_dir(dir.path())
            .status()
            .expect("run");
        assert!(status.success(), "{} {args:?}", program.display());
        ms(started.elapsed())
    };
    let live = Path::new(env!("CARGO_BIN_EXE_live-wasm"));
    let mut times: Vec<[Vec<f64>; 2]> = guests.iter().map(|_| Default::default()).collect();
    for (index, (name, _, _)) in guests.iter().enumerate() {
        let file = format!("{name}.wat");
        // The first runs compile into both disk caches.
        time(wasmtime, &["run", "--dir", ".", &file]);
        time(live, &["--once", "--dir", ".::.", &file]);
        for _ in 0..9 {
            times[index][0].push(time(wasmtime, &["run", "--dir", ".", &file]));
            times[index][1].push(time(live, &["--once", "--dir", ".::.", &file]));
        }
    }
    let per_open = |index: usize, tool: usize| {
        let spent = percentile(&times[index][tool], 50.0) - percentile(&times[0][tool], 50.0);
        spent * 1000.0 / opens as f64
    };
    println!(
        "a guest opening and closing a file {opens} times: {:.2} us per open+close \
         ({:.2} us cycling through 2,000 files) against {:.2} us ({:.2} us) with \
         `wasmtime run` (whole processes, medians of 9, start-up taken off)",
        per_open(1, 1),
        per_open(2, 1),
        per_open(1, 0),
        per_open(2, 0),
    );
}

/// A WASI command that opens `d/0000` (or `d/0000`..`d/1999` in turn when
/// `distinct`) and closes it, `count` times.
fn opener(count: u64, distinct: bool) -> String {
    let digit = |place: usize, divisor: u32| {
        format!(
            "(i32.store8 (i32.const {place}) (i32.add (i32.const 48) (i32.rem_u \
             (i32.div_u (local.get $n) (i32.const {divisor})) (i32.const 10))))"
        )
    };
    let name = if distinct {
        format!(
            "(local.set $n (i32.rem_u (local.get $i) (i32.const 2000))) {} {} {} {}",
            digit(105, 1),
            digit(104, 10),
            digit(103, 100),
            digit(102, 1000)
        )
    } else {
        String::new()
    };
    format!(
        r#"(module
  (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "d/0000")
  (func (export "_start") (local $i i32) (local $n i32)
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (i32.const {count})))
      {name}
      (if (call $path_open (i32.const 3) (i32.const 1) (i32.const 100) (i32.const 6)
                           (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 16))
        (then (call $proc_exit (i32.const 9))))
      (drop (call $fd_close (i32.load (i32.const 16))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))))
"#
    )
}

/// The first run of new sessions on the Python example, with the disk cache
/// warm: from the start of the process to the script's first line.
fn first_runs(python: &Live, starts: usize) {
    let mut total = Vec::new();
    let mut compile = Vec::new();
    let path = python.interpreter.to_string_lossy().into_owned();
    for _ in 0..starts {
        let started = Instant::now();
        let session = Session::start_with_env(
            python.dir.path(),
            &cache_home(&python.cache),
            &["--interpreter", &path, PYTHON.main],
        );
        let printed = session.output(&python.line());
        total.push(ms(printed - started));
        compile.push(session.status().0);
    }
    println!(
        "first run of a new session on python.wasm, disk cache warm ({starts} sessions): \
         start to first line p50 {:.1} ms (max {:.1}), loading the compiled interpreter p50 {:.1} ms",
        percentile(&total, 50.0),
        percentile(&total, 100.0),
        percentile(&compile, 50.0),
    );
}

/// RSS of the Python session across `reloads` saves of the script.
fn python_reloads(python: &mut Live, reloads: usize) {
    let before = process_stats(python.session.pid());
    let mut samples = Samples::default();
    for number in 0..reloads {
        python.edit_script(&mut samples, 1_000_000 + number);
    }
    let after = process_stats(python.session.pid());
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!(
        "Python session: RSS {:.1} MiB ({:.1} MiB anonymous), {} fds, {} threads after its \
         first runs; after {reloads} more reloads RSS {:.1} MiB ({:.1} MiB anonymous, {:+.2} MiB), \
         {} fds, {} threads (save-to-output p50 {:.1} ms back to back)",
        mib(before.rss_kib),
        mib(before.anon_kib),
        before.fds,
        before.threads,
        mib(after.rss_kib),
        mib(after.anon_kib),
        mib(after.anon_kib) - mib(before.anon_kib),
        after.fds,
        after.threads,
        samples.p50(),
    );
}

/// The environment that gives a session `cache` as its disk cache's home.
fn cache_home(cache: &tempfile::TempDir) -> Vec<(String, String)> {
    let home = cache.path().to_string_lossy().into_owned();
    vec![("XDG_CACHE_HOME".to_owned(), home)]
}

/// `wasmtime` on PATH, else the one `.ci/install-peers` puts in the toolchains.
fn wasmtime() -> Option<PathBuf> {
    let path = examples::toolchain_path();
    std::env::split_paths(&path)
        .map(|dir| dir.join("wasmtime"))
        .find(|candidate| candidate.is_file())
}
