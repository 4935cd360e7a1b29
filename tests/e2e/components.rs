//! Components (WASI 0.2) live: an entry that runs and re-runs, its exit
//! status, limits and stops, `--invoke` in WAVE, `use` across components, the
//! sandbox; and the component examples built by their real toolchains.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

use crate::component_wat::{command, greeting_printer, provider, sleeping};
use crate::languages::{Session, start_built, toolchain};
use crate::support::{Dir, Stream, live_wasm, once, once_fails, once_with_stdin, skip_example};

/// A component exporting `add(a, b)`, `greet(name)` and `answer()`, where
/// `answer` is `get() + 1` with `get` imported from `demo:testmod/api`.
const CALCULATOR: &str = r#"(component
  (import "demo:testmod/api@0.1.0" (instance $api (export "get" (func (result u32)))))
  (core func $get (canon lower (func $api "get")))
  (core module $m
    (import "api" "get" (func $get (result i32)))
    (memory (export "memory") 1)
    (global $next (mut i32) (i32.const 1024))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $at i32)
      (local.set $at (global.get $next))
      (global.set $next (i32.add (global.get $next) (local.get 3)))
      (local.get $at))
    (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
    ;; greet(name) returns name itself, through a (ptr, len) pair at 0.
    (func (export "greet") (param i32 i32) (result i32)
      (i32.store (i32.const 0) (local.get 0))
      (i32.store (i32.const 4) (local.get 1))
      (i32.const 0))
    (func (export "answer") (result i32) (i32.add (call $get) (i32.const 1))))
  (core instance $i (instantiate $m (with "api" (instance (export "get" (func $get))))))
  (func (export "add") (param "a" u32) (param "b" u32) (result u32)
    (canon lift (core func $i "add")))
  (func (export "greet") (param "name" string) (result string)
    (canon lift (core func $i "greet") (memory (core memory $i "memory"))
      (realloc (core func $i "realloc")) string-encoding=utf8))
  (func (export "answer") (result u32) (canon lift (core func $i "answer"))))
"#;

#[test]
fn a_component_runs_and_runs_again_on_every_kind_of_save() {
    let dir = Dir::new();
    dir.write("main.wat", &command("hello from a component", "", 0));
    let mut live = live_wasm(&dir, &["main.wat"]);
    live.expect_stdout("hello from a component");
    live.expect_run(1, "start: ok");

    dir.write("main.wat", &command("in place", "", 0));
    live.expect_stdout("in place");
    live.expect_run(2, "main.wat changed: ok");
    dir.write_rename("main.wat", &command("renamed over", "", 0));
    live.expect_stdout("renamed over");
    live.expect_run(3, "main.wat changed: ok");
    dir.delete_recreate("main.wat", &command("recreated", "", 0));
    live.expect_stdout("recreated");
    live.expect_run(4, "main.wat changed: ok");

    // A broken save says where, and the next one runs.
    dir.write(
        "main.wat",
        "(component (core module $m (func (export \"run\")))",
    );
    live.expect_run(5, "main.wat changed: error");
    live.expect(Stream::Err, |line| line.contains("main.wat:1:"));
    dir.write("main.wat", &command("fixed", "", 0));
    live.expect_stdout("fixed");
    live.expect_run(6, "main.wat changed: ok");
}

#[test]
fn a_components_exit_status_is_the_status_of_once() {
    let dir = Dir::new();
    dir.write("ok.wat", &command("fine", "", 0));
    let (status, stdout, _) = once(&dir, &["ok.wat"]);
    assert_eq!((status, stdout.as_str()), (0, "fine\n"));

    dir.write("fails.wat", &command("failing", "", 1));
    once_fails(&dir, &["fails.wat"], 1, "exit 1");

    dir.write("traps.wat", &command("trapping", "unreachable", 0));
    let stderr = once_fails(&dir, &["traps.wat"], 134, "trap: wasm `unreachable`");
    assert!(stderr.contains("traps.wat"), "{stderr}");

    // A component without `wasi:cli/run` says what to do.
    dir.write("library.wat", &provider("library", 1));
    once_fails(&dir, &["library.wat"], 1, "without `wasi:cli/run`");
}

#[test]
fn a_spinning_component_is_stopped_by_a_save_and_by_its_limits() {
    let dir = Dir::new();
    dir.write("main.wat", &command("spinning", "(loop $l (br $l))", 0));
    let mut live = live_wasm(&dir, &["main.wat"]);
    live.expect_stdout("spinning");
    dir.write("main.wat", &command("calm", "", 0));
    live.expect_run(1, "start: stopped by a change");
    live.expect_stdout("calm");
    live.expect_run(2, "main.wat changed: ok");

    dir.write("spin.wat", &command("spinning", "(loop $l (br $l))", 0));
    once_fails(&dir, &["--timeout", "200ms", "spin.wat"], 124, "timed out");
    once_fails(&dir, &["--fuel", "100000", "spin.wat"], 134, "out of fuel");
    // Its memories count against --max-memory as core modules' do.
    once_fails(
        &dir,
        &["--max-memory", "32KiB", "spin.wat"],
        1,
        "over --max-memory 32.0 KiB",
    );
}

#[test]
fn a_component_asleep_in_wasi_clocks_is_woken_by_a_save_and_by_the_timeout() {
    let dir = Dir::new();
    let sleeps = sleeping("going to sleep", 600_000);
    dir.write("main.wat", &sleeps);
    let mut live = live_wasm(&dir, &["main.wat"]);
    live.expect_stdout("going to sleep");
    dir.write("main.wat", &sleeping("awake", 1));
    live.expect_run(1, "start: stopped by a change");
    live.expect_stdout("awake");
    live.expect_run(2, "main.wat changed: ok");

    dir.write("sleeps.wat", &sleeps);
    once_fails(
        &dir,
        &["--timeout", "200ms", "sleeps.wat"],
        124,
        "timed out",
    );
}

#[test]
fn invoke_takes_and_prints_wave() {
    let dir = Dir::new();
    dir.write("calc.wat", CALCULATOR);
    let invoke = |call: &str| once(&dir, &["--invoke", call, "calc.wat"]);
    assert_eq!(invoke("add(1, 2)").1, "3\n");
    assert_eq!(invoke("greet(\"you\")").1, "\"you\"\n");
    // Re-invoked on every save.
    let mut live = live_wasm(&dir, &["--invoke", "add(20, 22)", "calc.wat"]);
    live.expect_stdout("42");
    live.expect_run(1, "start: ok");
    dir.write_rename(
        "calc.wat",
        &CALCULATOR.replace("i32.add (local.get 0)", "i32.sub (local.get 0)"),
    );
    live.expect_stdout("4294967294");
    live.expect_run(2, "calc.wat changed: ok");

    once_fails(
        &dir,
        &["--invoke", "add(1", "calc.wat"],
        1,
        "not a WAVE call",
    );
    once_fails(
        &dir,
        &["--invoke", "add(1)", "calc.wat"],
        1,
        "--invoke \"add(1)\"",
    );
    once_fails(
        &dir,
        &["--invoke", "nope()", "calc.wat"],
        1,
        "no function `nope`",
    );
}

#[test]
fn use_across_components_is_lazy_and_follows_the_provider() {
    let dir = Dir::new();
    dir.write("calc.wat", CALCULATOR);
    // Nothing calls into testmod: it need not exist.
    assert_eq!(once(&dir, &["--invoke", "add(1, 2)", "calc.wat"]).1, "3\n");

    let mut live = live_wasm(&dir, &["--invoke", "answer()", "calc.wat"]);
    live.expect_run(1, "start: error");
    let missing = live.expect(Stream::Err, |line| line.contains("testmod"));
    assert!(
        missing.contains("demo:testmod/api@0.1.0.get: module `testmod` not found"),
        "{missing}"
    );
    // Creating it runs again; so does each edit of it.
    dir.write("testmod.wat", &provider("testmod", 41));
    live.expect_stdout("42");
    live.expect_run(2, "testmod.wat changed: ok");
    dir.write_rename("testmod.wat", &provider("testmod", 99));
    live.expect_stdout("100");
    live.expect_run(3, "testmod.wat changed: ok");
    // A provider that is no component is said to be one.
    dir.write("testmod.wat", "(module)");
    live.expect_run(4, "testmod.wat changed: error");
    live.expect(Stream::Err, |line| line.contains("it is a core module"));
    // One whose function has another type says both.
    let returns_a_string = provider("testmod", 1)
        .replace("(func $get (result u32)", "(func $get (result string)")
        .replace(
            "(canon lift (core func $i \"get\"))",
            "(canon lift (core func $i \"get\") (memory (core memory $i \"memory\")))",
        )
        .replace(
            "(global $calls",
            "(memory (export \"memory\") 1)\n    (global $calls",
        );
    dir.write("testmod.wat", &returns_a_string);
    live.expect_run(5, "testmod.wat changed: error");
    live.expect(Stream::Err, |line| {
        line.contains(
            "calc.wat: demo:testmod/api@0.1.0.get: type mismatch: the import expects \
             func() -> u32, testmod.wat exports func() -> string",
        )
    });
}

#[test]
fn one_provider_instance_per_run_is_shared_by_its_importers() {
    let dir = Dir::new();
    // main calls testmod.get() and middle.get(), which calls testmod.get():
    // one shared instance counts 1 then 2 in every run.
    let middle = r#"(component
  (import "demo:testmod/api@0.1.0" (instance $api (export "get" (func (result u32)))))
  (core func $get (canon lower (func $api "get")))
  (core module $m
    (import "api" "get" (func $get (result i32)))
    (func (export "get") (result i32) (call $get)))
  (core instance $i (instantiate $m (with "api" (instance (export "get" (func $get))))))
  (func $via (result u32) (canon lift (core func $i "get")))
  (instance $api' (export "get" (func $via)))
  (export "demo:middle/api@0.1.0" (instance $api')))
"#;
    let main = r#"(component
  (import "demo:testmod/api@0.1.0" (instance $testmod (export "get" (func (result u32)))))
  (import "demo:middle/api@0.1.0" (instance $middle (export "get" (func (result u32)))))
  (core func $direct (canon lower (func $testmod "get")))
  (core func $indirect (canon lower (func $middle "get")))
  (core module $m
    (import "api" "direct" (func $direct (result i32)))
    (import "api" "indirect" (func $indirect (result i32)))
    (func (export "both") (result i32)
      (i32.add (i32.mul (call $direct) (i32.const 100)) (call $indirect))))
  (core instance $i (instantiate $m (with "api" (instance
    (export "direct" (func $direct)) (export "indirect" (func $indirect))))))
  (func (export "both") (result u32) (canon lift (core func $i "both"))))
"#;
    dir.write("testmod.wat", &provider("testmod", 1));
    dir.write("middle.wat", middle);
    dir.write("main.wat", main);
    let mut live = live_wasm(&dir, &["--invoke", "both()", "main.wat"]);
    live.expect_stdout("102");
    live.expect_run(1, "start: ok");
    // Nothing survives into the next run.
    dir.write("middle.wat", &format!("{middle}\n"));
    live.expect_stdout("102");
    live.expect_run(2, "middle.wat changed: ok");
}

#[test]
fn live_use_from_a_component_says_which_kind_of_failure() {
    let dir = Dir::new();
    // check() = r("nothere") * 10000 + r("testmod") * 100 + r("../x"), where r
    // is 10 * is_err + the use-error case (not-found 0, ..., bad-name 4).
    let main = r#"(component
  (import "live:live/live@0.1.0" (instance $live
    (type $use-error (enum "not-found" "invalid" "trapped" "cycle" "bad-name"))
    (export "use-error" (type $e (eq $use-error)))
    (export "use" (func (param "name" string) (result (result (error $e)))))))
  (core module $memory (memory (export "memory") 1))
  (core instance $memory (instantiate $memory))
  (core func $use (canon lower (func $live "use") (memory (core memory $memory "memory"))
    string-encoding=utf8))
  (core module $m
    (import "host" "memory" (memory 1))
    (import "host" "use" (func $use (param i32 i32 i32)))
    (data (i32.const 100) "notheretestmod../x")
    (func $r (param $ptr i32) (param $len i32) (result i32)
      (call $use (local.get $ptr) (local.get $len) (i32.const 0))
      (i32.add (i32.mul (i32.load8_u (i32.const 0)) (i32.const 10)) (i32.load8_u (i32.const 1))))
    (func (export "check") (result i32)
      (i32.add
        (i32.add
          (i32.mul (call $r (i32.const 100) (i32.const 7)) (i32.const 10000))
          (i32.mul (call $r (i32.const 107) (i32.const 7)) (i32.const 100)))
        (call $r (i32.const 114) (i32.const 4)))))
  (core instance $i (instantiate $m (with "host" (instance
    (export "memory" (memory $memory "memory")) (export "use" (func $use))))))
  (func (export "check") (result u32) (canon lift (core func $i "check"))))
"#;
    dir.write("main.wat", main);
    dir.write("testmod.wat", &provider("testmod", 1));
    let (status, stdout, stderr) = once(&dir, &["--invoke", "check()", "main.wat"]);
    assert_eq!((status, stdout.as_str()), (0, "100014\n"), "{stderr}");
    assert!(stderr.contains("module `nothere` not found"), "{stderr}");
    assert!(stderr.contains("\"../x\" is refused"), "{stderr}");
}

#[test]
fn imports_nothing_here_can_provide_are_refused_by_name() {
    let dir = Dir::new();
    let with_import = |import: &str| {
        format!(
            r#"(component (import "{import}" (instance (export "thing" (type (sub resource))))))"#
        )
    };
    dir.write("res.wat", &with_import("demo:res/api@0.1.0"));
    let stderr = once_fails(&dir, &["res.wat"], 1, "demo:res/api@0.1.0");
    assert!(
        stderr.contains("resources do not cross components"),
        "{stderr}"
    );

    dir.write("http.wat", &with_import("wasi:http/types@0.2.0"));
    let stderr = once_fails(&dir, &["http.wat"], 1, "HTTP (`wasi:http`) is not granted");
    assert!(
        stderr.contains("--serve") && stderr.contains("-S http"),
        "{stderr}"
    );
}

/// The sandbox probe (`tests/guests/sandbox-probe`) built for `target`
/// (`wasm32-wasip1`: a core module; `wasm32-wasip2`: a component), once per
/// test process; `None` (skipped) when the target is missing.
pub(crate) fn sandbox_probe(target: &'static str) -> Option<PathBuf> {
    static P1: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    static P2: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let cell = if target == "wasm32-wasip1" { &P1 } else { &P2 };
    let built =
        cell.get_or_init(|| build_test_guest("sandbox-probe", target, "sandbox-probe.wasm"));
    match built {
        Ok(path) => Some(path.clone()),
        Err(missing) => {
            skip_example("sandbox-probe", missing);
            None
        }
    }
}

/// Builds the test guest `tests/guests/NAME` for `target` (offline: CI
/// fetches its crates) into the tests' own target folder: the path of its
/// `artifact`, or why its toolchain is missing.
pub(crate) fn build_test_guest(
    name: &str,
    target: &str,
    artifact: &str,
) -> Result<PathBuf, String> {
    let env = toolchain(name)?;
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/guests")
        .join(name);
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let status = Command::new("cargo")
        .args(["build", "--quiet", "--offline", "--target", target])
        .arg("--target-dir")
        .arg(&target_dir)
        .current_dir(&crate_dir)
        .envs(env)
        .status()
        .map_err(|err| format!("cargo: {err}"))?;
    assert!(status.success(), "the test guest {name} did not build");
    Ok(target_dir.join(target).join("debug").join(artifact))
}

#[test]
fn the_sandbox_holds_for_components_until_granted() {
    let Some(probe) = sandbox_probe("wasm32-wasip2") else {
        return;
    };
    let dir = Dir::new();
    std::fs::copy(&probe, dir.path("probe.wasm")).expect("copy probe");
    std::fs::create_dir(dir.path("data")).expect("mkdir");
    dir.write("data/in.txt", "secret");
    let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
    let port = listener.local_addr().expect("address").port();
    let connect = format!("connect:127.0.0.1:{port}");
    let asks = ["env", "read:data/in.txt", "write:data/out.txt", &connect];
    let run = |grants: &[&str]| {
        let mut args = grants.to_vec();
        args.extend(["probe.wasm", "--"]);
        args.extend(asks);
        let (status, stdout, stderr) = once(&dir, &args);
        assert_eq!(status, 0, "{stderr}");
        stdout
    };

    let denied = run(&[]);
    for line in [
        "env: OK 0 variables",
        "read:data/in.txt: ERR entity not found",
        "write:data/out.txt: ERR entity not found",
        &format!("{connect}: ERR permission denied"),
    ] {
        assert!(
            denied.lines().any(|seen| seen == line),
            "{line:?} not in\n{denied}"
        );
    }

    let read_only = run(&["--env", "A=1", "--dir", "data::data:ro"]);
    for line in [
        "env: OK 1 variables",
        "read:data/in.txt: OK secret",
        "write:data/out.txt: ERR permission denied",
    ] {
        assert!(
            read_only.lines().any(|seen| seen == line),
            "{line:?} not in\n{read_only}"
        );
    }
    assert!(!dir.path("data/out.txt").exists());

    let granted = run(&["--dir", "data", "-S", "inherit-network"]);
    for line in [
        "write:data/out.txt: OK written",
        &format!("{connect}: OK connected"),
    ] {
        assert!(
            granted.lines().any(|seen| seen == line),
            "{line:?} not in\n{granted}"
        );
    }
    assert_eq!(dir.read("data/out.txt"), "written by the guest");
}

#[test]
fn a_component_blocked_reading_stdin_is_stopped_by_the_timeout() {
    let Some(probe) = sandbox_probe("wasm32-wasip2") else {
        return;
    };
    let dir = Dir::new();
    std::fs::copy(&probe, dir.path("probe.wasm")).expect("copy probe");
    // Our stdin stays open and silent: the guest's read waits on it.
    let args = ["--timeout", "300ms", "probe.wasm", "--", "stdin"];
    let (code, _, stderr) = once_with_stdin(&dir, &args, None);
    assert_eq!(code, 124, "{stderr}");
    assert!(stderr.contains("timed out"), "{stderr}");

    // Given a line, it reads it.
    let (code, stdout, stderr) =
        once_with_stdin(&dir, &["probe.wasm", "--", "stdin"], Some(b"typed\n"));
    assert_eq!(
        (code, stdout.as_str()),
        (0, "stdin: OK typed\n"),
        "{stderr}"
    );
}

#[test]
fn the_rust_component_example_runs_live() {
    let Some(Session {
        mut live,
        dir,
        _turn,
    }) = start_built(
        "components/rust",
        &[
            "target/wasm32-wasip2/debug/hello-component.wasm",
            "--",
            "a",
            "b",
        ],
        "hello from a WASI 0.2 component",
    )
    else {
        return;
    };
    live.expect_stdout(r#"args: ["hello-component.wasm", "a", "b"]"#);
    live.expect_run(1, "start: ok · build ");
    let source = dir.read("src/main.rs");
    dir.write_rename(
        "src/main.rs",
        &source.replace("hello from", "hello again from"),
    );
    live.expect_stdout("hello again from a WASI 0.2 component");
    live.expect_run(2, "src/main.rs changed: ok · build ");
}

#[test]
fn the_two_component_demo_runs_live_and_follows_its_provider() {
    let Some(Session {
        mut live,
        dir,
        _turn,
    }) = start_built(
        "components/use-demo",
        &["target/wasm32-wasip2/debug/main.wasm"],
        "hello, live-wasm, from testmod",
    )
    else {
        return;
    };
    live.expect_stdout("summarize: count 4, mean 4");
    live.expect_run(1, "start: ok · build ");
    let source = dir.read("testmod/src/lib.rs");
    assert!(source.contains("from testmod"), "{source}");
    dir.write(
        "testmod/src/lib.rs",
        &source.replace("from testmod", "from the edited testmod"),
    );
    live.expect_stdout("hello, live-wasm, from the edited testmod");
    live.expect_run(2, "testmod/src/lib.rs changed: ok · build ");
}

#[test]
fn the_python_component_example_runs_live_and_its_provider_edits_cost_no_recompile() {
    let Some(Session {
        mut live,
        dir,
        _turn,
    }) = start_built(
        "components/python",
        &[
            "--watch",
            "app.py",
            "--watch",
            "wit",
            "app.wasm",
            "--events-file",
            "events.jsonl",
        ],
        "hello from Python, as a WASI 0.2 component",
    )
    else {
        return;
    };
    live.expect_stdout("greeter.wat says: hello from greeter.wat");
    live.expect_run(1, "start: ok · build ");
    let greeter = dir.read("greeter.wat");
    dir.write(
        "greeter.wat",
        &greeter.replace("hello from greeter.wat", "edited greeter"),
    );
    live.expect_stdout("greeter.wat says: edited greeter");
    live.expect_run(2, "greeter.wat changed: ok");
    let events = dir.read("events.jsonl");
    let compiled: Vec<(String, String)> = events
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|event| event["event"] == "compiled" && event["run"] == 2)
        .map(|event| {
            let field = |name: &str| event[name].as_str().unwrap_or_default().to_owned();
            (field("file"), field("cache"))
        })
        .collect();
    assert_eq!(
        compiled,
        [
            ("app.wasm".to_owned(), "hit".to_owned()),
            ("greeter.wat".to_owned(), "miss".to_owned())
        ],
        "{events}"
    );
}

#[test]
fn strings_cross_components_and_a_provider_edit_runs_again() {
    let dir = Dir::new();
    let greeter = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("guest-examples/components/python/greeter.wat"),
    )
    .expect("greeter.wat");
    dir.write("main.wat", &greeting_printer());
    dir.write("greeter.wat", &greeter);
    let mut live = live_wasm(&dir, &["main.wat"]);
    live.expect_stdout("hello from greeter.wat");
    live.expect_run(1, "start: ok");
    dir.write_rename(
        "greeter.wat",
        &greeter.replace("hello from greeter.wat", "edited"),
    );
    live.expect_stdout("edited");
    live.expect_run(2, "greeter.wat changed: ok");
}

#[test]
fn every_component_example_has_a_readme_with_its_start_command() {
    for folder in ["rust", "use-demo", "python"] {
        crate::examples::assert_readme_gives_start_command(&format!("components/{folder}"));
    }
}
