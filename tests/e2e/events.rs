//! `--events json`: the schema, pinned field by field.

use serde_json::{Value, json};

use crate::guests::{print, print_then_loop, print_then_trap};
use crate::support::{Dir, live_wasm, once};

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
                   "compile_ms": 0, "run_ms": 0, "fuel_used": null, "peak_memory": 65536}),
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
