//! The disk cache: on by default in the user's cache folder, shared by sessions
//! running at once, never trusting a damaged entry, bounded in size.

use std::path::PathBuf;
use std::process::Stdio;

use crate::guests::print;
use crate::support::{Dir, live_wasm, once};

/// The cache entries of the sessions run on `dir`, and whether any temporary
/// file was left behind.
fn entries(dir: &Dir) -> Vec<PathBuf> {
    let Ok(listing) = std::fs::read_dir(dir.cache()) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = listing.map(|entry| entry.expect("entry").path()).collect();
    found.sort();
    for path in &found {
        assert!(
            path.extension().is_some_and(|ext| ext == "cwasm"),
            "not an entry: {}",
            path.display()
        );
    }
    found
}

/// Runs `--once --events json` and returns what the entry's `compiled` event
/// says of the cache (`hit` or `miss`).
fn cache_said(dir: &Dir, args: &[&str], expected_stdout: &str) -> String {
    let mut all = vec!["--events", "json"];
    all.extend_from_slice(args);
    let (code, stdout, stderr) = once(dir, &all);
    assert_eq!((code, stdout.as_str()), (0, expected_stdout), "{stderr}");
    let compiled = stderr
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|event| event["event"] == "compiled")
        .unwrap_or_else(|| panic!("no compiled event in {stderr}"));
    compiled["cache"].as_str().expect("cache field").to_owned()
}

#[test]
fn a_second_session_starts_from_the_default_cache() {
    let dir = Dir::new();
    dir.write("main.wat", &print("from the cache"));
    assert_eq!(cache_said(&dir, &["main.wat"], "from the cache\n"), "miss");
    assert_eq!(entries(&dir).len(), 1);
    assert_eq!(cache_said(&dir, &["main.wat"], "from the cache\n"), "hit");
    // Turned off, it is neither read nor written.
    assert_eq!(
        cache_said(&dir, &["--no-cache", "main.wat"], "from the cache\n"),
        "miss"
    );
    dir.write("main.wat", &print("changed"));
    cache_said(&dir, &["--no-cache", "main.wat"], "changed\n");
    assert_eq!(entries(&dir).len(), 1);
}

#[test]
fn two_sessions_at_once_share_the_cache() {
    let dir = Dir::new();
    dir.write("main.wat", &many_functions("together", 3000));
    let sessions: Vec<_> = (0..2)
        .map(|_| {
            dir.command()
                .args(["--once", "main.wat"])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start live-wasm")
        })
        .collect();
    for session in sessions {
        let output = session.wait_with_output().expect("wait");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&output.stdout), "together\n");
    }
    assert_eq!(entries(&dir).len(), 1, "one whole entry, no leftovers");
    assert_eq!(cache_said(&dir, &["main.wat"], "together\n"), "hit");
}

#[test]
fn a_truncated_entry_is_compiled_again_and_rewritten() {
    let dir = Dir::new();
    dir.write("main.wat", &print("whole"));
    cache_said(&dir, &["main.wat"], "whole\n");
    let [entry] = entries(&dir).try_into().expect("one entry");
    let whole = std::fs::read(&entry).expect("entry");
    std::fs::write(&entry, &whole[..whole.len() / 2]).expect("truncate");

    assert_eq!(cache_said(&dir, &["main.wat"], "whole\n"), "miss");
    assert_eq!(std::fs::read(&entry).expect("entry"), whole, "rewritten");
    assert_eq!(cache_said(&dir, &["main.wat"], "whole\n"), "hit");

    // Junk under the entry's name is no better than a truncated entry.
    std::fs::write(&entry, b"\0asm junk").expect("junk");
    assert_eq!(cache_said(&dir, &["main.wat"], "whole\n"), "miss");
}

#[test]
fn a_full_cache_drops_what_was_used_least_recently() {
    let dir = Dir::new();
    for name in ["a", "b", "c"] {
        dir.write(&format!("{name}.wat"), &print(&format!("module {name}")));
    }
    cache_said(&dir, &["a.wat"], "module a\n");
    let [entry_a] = entries(&dir).try_into().expect("one entry");
    let size = std::fs::metadata(&entry_a).expect("entry").len();
    // Room for two entries, not three.
    let budget = (size * 5 / 2).to_string();
    let limited =
        |file: &str, output: &str| cache_said(&dir, &["--cache-size", &budget, file], output);
    assert_eq!(limited("b.wat", "module b\n"), "miss");
    assert_eq!(limited("a.wat", "module a\n"), "hit");
    assert_eq!(limited("c.wat", "module c\n"), "miss");
    // `b` was the least recently used: it went, `a` stayed.
    assert_eq!(entries(&dir).len(), 2);
    assert_eq!(limited("a.wat", "module a\n"), "hit");
    assert_eq!(limited("c.wat", "module c\n"), "hit");
    assert_eq!(limited("b.wat", "module b\n"), "miss");
}

/// A module that prints `line`, with `count` more functions, so it takes a while
/// to compile.
fn many_functions(line: &str, count: usize) -> String {
    let functions: String = (0..count)
        .map(|i| format!("(func (export \"f{i}\") (param i32) (result i32) (i32.mul (local.get 0) (i32.const {i})))\n"))
        .collect();
    let printer = print(line);
    let end = printer.rfind(')').expect("a module");
    format!("{}{functions})", &printer[..end])
}

/// A component embedding two big core modules: a library of many functions,
/// and a module whose data (a snapshot, as componentize-py makes) holds
/// `value`, which its export `f` adds to the library's answer.
fn component_with_a_snapshot(value: u8) -> String {
    let functions: String = (0..9000)
        .map(|i| {
            format!("(func (param i32) (result i32) (i32.mul (local.get 0) (i32.const {i})))\n")
        })
        .collect();
    let padding = "\\00".repeat(70_000);
    format!(
        r#"(component
             (core module $library
               {functions}
               (func (export "answer") (result i32) (i32.const 40)))
             (core module $snapshot
               (import "library" "answer" (func $answer (result i32)))
               (memory 2)
               (data (i32.const 0) "\{value:02x}{padding}")
               (func (export "f") (result i32)
                 (i32.add (call $answer) (i32.load8_u (i32.const 0)))))
             (core instance $library (instantiate $library))
             (core instance $snapshot (instantiate $snapshot (with "library" (instance $library))))
             (func (export "f") (result u32) (canon lift (core func $snapshot "f"))))"#
    )
}

#[test]
fn a_components_big_modules_are_compiled_and_kept_on_their_own() {
    let dir = Dir::new();
    dir.write("app.wat", &component_with_a_snapshot(2));
    let run = |expected: &str| {
        let (code, stdout, stderr) = once(&dir, &["--invoke", "f()", "app.wat"]);
        assert_eq!((code, stdout.as_str()), (0, expected), "{stderr}");
    };
    run("42\n");
    // The library, the snapshot module, and the rest of the component.
    assert_eq!(entries(&dir).len(), 3);
    run("42\n");
    assert_eq!(entries(&dir).len(), 3, "all loaded from the cache");

    // A new snapshot: the library is not compiled again.
    dir.write("app.wat", &component_with_a_snapshot(5));
    run("45\n");
    assert_eq!(entries(&dir).len(), 5);
}

#[test]
fn a_session_quit_right_after_a_run_leaves_its_code_in_the_cache() {
    let dir = Dir::new();
    // 32 MiB of data: quick to compile, and its code takes a while to write
    // after the run.
    let printer = print("written before quitting");
    let pages = printer
        .split("(memory (export \"memory\") ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .expect("the printer's memory");
    let printer = printer.replacen(
        &format!("(memory (export \"memory\") {pages})"),
        "(memory (export \"memory\") 600)",
        1,
    );
    let end = printer.rfind(')').expect("a module");
    let data = "a".repeat(32 << 20);
    dir.write(
        "main.wat",
        &format!("{}(data (i32.const 65536) \"{data}\"))", &printer[..end]),
    );
    let mut session = live_wasm(&dir, &["main.wat"]);
    session.set_wait(std::time::Duration::from_secs(120));
    session.expect_stdout("written before quitting");
    session.expect_run(1, "ok");
    session.signal_ends_it("TERM", 143);
    assert_eq!(
        cache_said(&dir, &["main.wat"], "written before quitting\n"),
        "hit"
    );
}
