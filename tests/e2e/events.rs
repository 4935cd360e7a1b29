//! `--events json`: the schema, pinned field by field.

use serde_json::{Value, json};

use crate::guests::{print, print_then_loop, print_then_trap};
use crate::support::{Dir, Stream, live_wasm, live_wasm_with_watch_limit, once};

/// The events of a `--once --events json` run, with timings zeroed.
fn events(dir: &Dir, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["--events", "json"];
    all.extend(args);
    let (_, _, stderr) = once(dir, &all);
    stderr
        .lines()
        .map(|line| {
            let mut event: Value = serde_json::from_str(line)
                .unwrap_or_else(|err| panic!("not JSON ({err}): {line}\n{stderr}"));
            for field in ["ms", "compile_ms", "run_ms"] {
                if let Some(value) = event.get_mut(field) {
                    assert!(
                        value.as_f64().is_some_and(|ms| ms >= 0.0),
                        "{field}: {value}"
                    );
                    *value = json!(0);
                }
            }
            event
        })
        .collect()
}

#[test]
fn a_good_run() {
    let dir = Dir::new();
    dir.write("main.wat", &print("hi"));
    assert_eq!(
        events(&dir, &["main.wat"]),
        [
            json!({"event": "run-started", "run": 1, "trigger": "start", "changed": []}),
            json!({"event": "compiled", "run": 1, "module": "main", "file": "main.wat", "cache": "miss", "ms": 0}),
            json!({"event": "run-finished", "run": 1, "outcome": "ok", "exit_code": 0, "trap": null,
                   "compile_ms": 0, "run_ms": 0, "fuel_used": null, "peak_memory": 65536, "build_ms": null}),
        ]
    );
}

#[test]
fn a_trap_a_timeout_and_a_syntax_error() {
    let dir = Dir::new();
    dir.write("trap.wat", &print_then_trap("dividing"));
    let trap = events(&dir, &["trap.wat"]);
    // The .wat carries DWARF lines: the error points at the dividing instruction.
    assert_eq!(trap[2]["kind"], "trap");
    assert_eq!(trap[2]["file"], "trap.wat");
    assert!(
        trap[2]["line"].as_u64().is_some_and(|line| line > 1),
        "{}",
        trap[2]
    );
    assert_eq!(trap[2]["message"], "integer divide by zero");
    assert_eq!(trap[3]["outcome"], "trap");
    assert_eq!(trap[3]["trap"], "integer divide by zero");

    dir.write("spin.wat", &print_then_loop("spinning"));
    let timeout = events(
        &dir,
        &["--timeout", "100ms", "--fuel", "1000000000", "spin.wat"],
    );
    assert_eq!(
        timeout[2],
        json!({"event": "error", "run": 1, "kind": "timeout", "file": null, "line": null, "col": null,
               "message": "stopped after 100ms"})
    );
    assert_eq!(timeout[3]["outcome"], "timeout");
    assert!(
        timeout[3]["fuel_used"]
            .as_u64()
            .is_some_and(|fuel| fuel > 0),
        "{}",
        timeout[3]
    );

    dir.write("bad.wat", "(module\n  (func (oops)))\n");
    let syntax = events(&dir, &["bad.wat"]);
    assert_eq!(
        syntax[2],
        json!({"event": "error", "run": 1, "kind": "syntax", "file": "bad.wat", "line": 2, "col": 10,
               "message": "bad.wat is not a usable module: unknown operator or unexpected token"})
    );
    assert_eq!(syntax[3]["outcome"], "error");
}

#[test]
fn a_watch_session_to_a_file_with_status_lines_kept() {
    let dir = Dir::new();
    dir.write("main.wat", &print("one"));
    let mut live = live_wasm(&dir, &["--events-file", "events.jsonl", "main.wat"]);
    live.expect_run(1, "start: ok");
    dir.write("main.wat", &print("two"));
    live.expect_run(2, "main.wat changed: ok");
    let text = std::fs::read_to_string(dir.path("events.jsonl")).expect("events file");
    let events: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(
        kinds,
        [
            "run-started",
            "compiled",
            "run-finished",
            "run-started",
            "compiled",
            "run-finished"
        ]
    );
    assert_eq!(events[3]["changed"], json!(["main.wat"]));
    assert_eq!(events[3]["trigger"], "change");
}

/// Every stderr line of a `--once --events json` run, parsed: panics on any
/// line that is not JSON. Returns the exit status and the events.
fn json_only(dir: &Dir, args: &[&str]) -> (i32, Vec<Value>) {
    let mut all = vec!["--events", "json"];
    all.extend(args);
    let (code, _, stderr) = once(dir, &all);
    let events = stderr
        .lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|err| panic!("not JSON ({err}): {line:?} in\n{stderr}"))
        })
        .collect();
    (code, events)
}

/// The one event named `name`, checked to be there exactly once.
fn only<'a>(events: &'a [Value], name: &str) -> &'a Value {
    let found: Vec<&Value> = events.iter().filter(|e| e["event"] == name).collect();
    assert_eq!(found.len(), 1, "one {name} event in {events:#?}");
    found[0]
}

/// A command whose `_start` calls `live.use` on `name` and ignores the code.
fn uses_live(name: &str) -> String {
    format!(
        r#"(module
  (import "live" "use" (func $use (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "{name}")
  (func (export "_start") (drop (call $use (i32.const 0) (i32.const {len})))))"#,
        len = name.len()
    )
}

#[test]
fn every_error_kind_writes_only_json_to_stderr() {
    let dir = Dir::new();
    let calls = |module: &str| {
        format!(r#"(module (import "{module}" "f" (func $f)) (func (export "_start") (call $f)))"#)
    };
    dir.write("syntax.wat", "(module\n  (func (oops)))\n");
    dir.write(
        "validation.wat",
        "(module\n  (func (result i32)\n    (i64.const 1)))\n",
    );
    dir.write("not_found.wat", &calls("missing"));
    dir.write("bad_name.wat", &calls("../outside"));
    dir.write(
        "link.wat",
        r#"(module (import "wasi_snapshot_preview1" "nope" (func)))"#,
    );
    dir.write(
        "c.wat",
        r#"(module (import "e" "mem" (memory 1)) (memory (export "mem2") 1))"#,
    );
    dir.write(
        "e.wat",
        r#"(module (import "c" "mem2" (memory 1)) (memory (export "mem") 1))"#,
    );
    dir.write("trap.wat", &print_then_trap("trapping"));
    dir.write("spin.wat", &print_then_loop("spinning"));
    dir.write("big.wat", r#"(module (memory 3) (func (export "_start")))"#);
    dir.write("component.wat", "(component)");

    for (args, kind, file, code) in [
        (&["syntax.wat"][..], "syntax", Some("syntax.wat"), 1),
        (&["validation.wat"], "validation", Some("validation.wat"), 1),
        (&["not_found.wat"], "not-found", Some("not_found.wat"), 1),
        (&["bad_name.wat"], "bad-name", Some("bad_name.wat"), 1),
        (&["link.wat"], "link", Some("link.wat"), 1),
        (&["c.wat"], "cycle", Some("e.wat"), 1),
        (&["trap.wat"], "trap", Some("trap.wat"), 134),
        (&["--timeout", "100ms", "spin.wat"], "timeout", None, 124),
        (&["--fuel", "100000", "spin.wat"], "out-of-fuel", None, 134),
        (&["--max-memory", "128KiB", "big.wat"], "memory", None, 1),
        (&["component.wat"], "error", None, 1),
    ] {
        let (status, events) = json_only(&dir, args);
        assert_eq!(status, code, "{args:?}: {events:#?}");
        let error = only(&events, "error");
        assert_eq!(error["kind"], kind, "{args:?}: {error}");
        assert_eq!(error["file"].as_str(), file, "{args:?}: {error}");
        assert!(
            error["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty() && !m.contains('\n')),
            "{error}"
        );
        assert_ne!(only(&events, "run-finished")["outcome"], "ok", "{args:?}");
    }
    let (_, events) = json_only(&dir, &["component.wat"]);
    let message = only(&events, "error")["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        message.contains("component.wat is a component without `wasi:cli/run`"),
        "{message}"
    );
}

#[test]
fn a_failed_live_use_the_guest_survives_is_an_event() {
    let dir = Dir::new();
    dir.write("main.wat", &uses_live("missing"));
    dir.write("bad.wat", &uses_live("../up"));
    let (status, events) = json_only(&dir, &["main.wat"]);
    assert_eq!(status, 0);
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(
        kinds,
        ["run-started", "use-failed", "compiled", "run-finished"]
    );
    assert_eq!(
        events[1],
        json!({"event": "use-failed", "run": 1, "code": -1, "kind": "not-found", "file": null,
               "line": null, "col": null,
               "message": "live.use(\"missing\"): module `missing` not found (no missing.wat or missing.wasm); create it and save"})
    );
    assert_eq!(events[3]["outcome"], "ok");

    let (_, events) = json_only(&dir, &["bad.wat"]);
    let failed = only(&events, "use-failed");
    assert_eq!(
        (failed["code"].as_i64(), &failed["kind"]),
        (Some(-5), &json!("bad-name"))
    );

    // Status lines say it; --quiet does not, as the run went on.
    let (_, _, stderr) = once(&dir, &["main.wat"]);
    assert!(
        stderr.contains("live.use(\"missing\"): module `missing` not found"),
        "{stderr}"
    );
    let (_, _, stderr) = once(&dir, &["--quiet", "main.wat"]);
    assert_eq!(stderr, "");
}

#[test]
fn warnings_and_fatal_errors_are_json_too() {
    let dir = Dir::new();
    dir.write("main.wat", &print("hi"));
    let (status, events) = json_only(&dir, &["--env", "LIVE_WASM_SURELY_UNSET_VAR", "main.wat"]);
    assert_eq!(status, 0);
    assert_eq!(
        events[0],
        json!({"event": "warning",
               "message": "--env LIVE_WASM_SURELY_UNSET_VAR: not set here, so the guest won't see it"})
    );
    let (_, _, stderr) = once(
        &dir,
        &["--quiet", "--env", "LIVE_WASM_SURELY_UNSET_VAR", "main.wat"],
    );
    assert_eq!(stderr, "", "--quiet: only errors that end a run");

    let (status, events) = json_only(&dir, &["--dir", "no-such-dir", "main.wat"]);
    assert_eq!(status, 2);
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0]["event"], "fatal");
    assert!(
        events[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("no-such-dir")),
        "{}",
        events[0]
    );
}

#[test]
fn a_fatal_error_line_shows_escape_sequences_not_obeys_them() {
    let dir = Dir::new();
    dir.write("main.wat", &print("hi"));
    let (status, _, stderr) = once(&dir, &["--dir", "no\u{1b}[2Jdir", "main.wat"]);
    assert_eq!(status, 2);
    assert!(
        stderr.starts_with("live-wasm: error: ") && stderr.contains("no\\u{1b}[2Jdir"),
        "{stderr}"
    );
    assert!(!stderr.contains('\u{1b}'), "{stderr}");
}

#[test]
fn a_watch_session_under_events_json_writes_only_json() {
    let dir = Dir::new();
    let mut live = live_wasm(&dir, &["--events", "json", "main.wat"]);
    let next = |live: &mut crate::support::LiveWasm| -> Value {
        let line = live.expect(Stream::Err, |_| true);
        serde_json::from_str(&line).unwrap_or_else(|err| panic!("not JSON ({err}): {line:?}"))
    };
    assert_eq!(
        next(&mut live),
        json!({"event": "waiting", "file": "main.wat"})
    );
    dir.write("main.wat", &uses_live("lib"));
    assert_eq!(next(&mut live)["event"], "run-started");
    assert_eq!(next(&mut live)["event"], "use-failed");
    assert_eq!(next(&mut live)["event"], "compiled");
    assert_eq!(next(&mut live)["outcome"], "ok");
    // Creating the module it looked for runs it again, now linking it.
    dir.write("lib.wat", "(module\n  (func (oops)))\n");
    assert_eq!(next(&mut live)["changed"], json!(["lib.wat"]));
    let failed = next(&mut live);
    assert_eq!(
        (&failed["event"], &failed["kind"]),
        (&json!("use-failed"), &json!("syntax"))
    );
    assert_eq!(
        (failed["file"].as_str(), failed["line"].as_u64()),
        (Some("lib.wat"), Some(2))
    );
}

#[test]
fn the_watch_limit_reached_mid_session_is_a_warning_that_says_what_to_do() {
    let dir = Dir::new();
    std::fs::create_dir(dir.path("lib")).expect("mkdir");
    dir.write("lib/m.wat", r#"(module (func (export "f")))"#);
    dir.write(
        "main.wat",
        r#"(module (import "lib/m" "f" (func $f)) (func (export "_start") (call $f)))"#,
    );
    // One watch: the entry's folder. Watching lib/ for the module is refused.
    let mut live = live_wasm_with_watch_limit(&dir, 1, &["--events", "json", "main.wat"]);
    let warning = loop {
        let line = live.expect(Stream::Err, |_| true);
        let event: Value =
            serde_json::from_str(&line).unwrap_or_else(|err| panic!("not JSON ({err}): {line:?}"));
        if event["event"] == "warning" {
            break event;
        }
    };
    let message = warning["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("lib") && message.contains("fs.inotify.max_user_watches"),
        "{message}"
    );
    assert!(message.contains("--poll"), "{message}");

    // --poll needs no watches at all: the same project runs and follows saves.
    let mut live = live_wasm_with_watch_limit(&dir, 0, &["--poll=50ms", "main.wat"]);
    live.expect_run(1, "start: ok");
    dir.write(
        "lib/m.wat",
        r#"(module (func (export "f")) (func (export "g")))"#,
    );
    live.expect_run(2, "lib/m.wat changed: ok");
}

#[test]
fn no_watch_at_all_is_a_fatal_error_that_says_what_to_do() {
    let dir = Dir::new();
    dir.write("main.wat", &print("hi"));
    let mut live = live_wasm_with_watch_limit(&dir, 0, &["main.wat"]);
    let line = live.expect(Stream::Err, |line| line.starts_with("live-wasm: error:"));
    assert!(
        line.contains("fs.inotify.max_user_watches") && line.contains("--poll"),
        "{line}"
    );
    assert_eq!(live.wait_exit(), 2);
}
