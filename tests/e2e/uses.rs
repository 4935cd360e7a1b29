//! `use`: modules that link modules, on demand, one instance per name per run.

use crate::support::{Dir, Stream, live_wasm, once, once_fails};

/// A module printing with WASI from its own memory: `$say(ptr, len)` prints a
/// line; `$say_i32(n)` prints a small signed number. `imports` and `body` are
/// spliced in.
pub(crate) fn module(imports: &str, body: &str) -> String {
    format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  {imports}
  (memory (export "memory") 1)
  (func $say (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (i32.store8 (i32.const 16) (i32.const 10))
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 1))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func $say_i32 (param $n i32)
    (if (i32.lt_s (local.get $n) (i32.const 0))
      (then
        (i32.store8 (i32.const 20) (i32.const 45))
        (i32.store8 (i32.const 21) (i32.sub (i32.const 48) (local.get $n)))
        (call $say (i32.const 20) (i32.const 2)))
      (else
        (i32.store8 (i32.const 20) (i32.add (i32.const 48) (local.get $n)))
        (call $say (i32.const 20) (i32.const 1)))))
  {body})
"#
    )
}

/// `(data ...)` and a `$say` call for a literal line at `offset`.
fn line(offset: u32, text: &str) -> (String, String) {
    (
        format!(r#"(data (i32.const {offset}) "{text}")"#),
        format!(
            "(call $say (i32.const {offset}) (i32.const {}))",
            text.len()
        ),
    )
}

/// A module whose `_start` prints `text` after running `before`.
fn command(imports: &str, text: &str, before: &str) -> String {
    let (data, say) = line(256, text);
    module(
        imports,
        &format!("{data}\n  (func (export \"_start\") {before} {say})"),
    )
}

#[test]
fn the_2014_session_replays() {
    let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("guest-examples/demo2014");
    let example = |name: &str| std::fs::read_to_string(demo.join(name)).expect("demo file");
    let dir = Dir::new();
    std::fs::create_dir(dir.path("lib")).expect("mkdir lib");
    dir.write("lib/console.wat", &example("lib/console.wat"));

    // The README's start command, in a folder of the test's own.
    let start = crate::examples::start_args("demo2014");
    assert_eq!(start, ["/tmp/demo/test.wat"], "demo2014's README");
    let mut live = live_wasm(&dir, &["test.wat"]);
    live.expect_status("test.wat does not exist yet");

    dir.write("test.wat", &example("steps/test-1.wat"));
    live.expect_stdout("Running test.wat");
    live.expect_run(1, "test.wat changed: ok");

    // Uses testmod, which does not exist yet: the first line still prints.
    dir.write("test.wat", &example("test.wat"));
    live.expect_stdout("Running test.wat");
    live.expect_run(2, "test.wat changed: error");
    live.expect(Stream::Err, |l| {
        l.contains("test.wat: testmod::function: module `testmod` not found")
    });

    // Creating it re-runs the entry.
    dir.write("testmod.wat", &example("testmod.wat"));
    for expected in ["Running test.wat", "test function", "42"] {
        live.expect_stdout(expected);
    }
    live.expect_run(3, "testmod.wat changed: ok");

    // Editing it re-runs the entry from the start.
    dir.write_rename("testmod.wat", &example("steps/testmod-2.wat"));
    for expected in ["Running test.wat", "test function, edited live", "36"] {
        live.expect_stdout(expected);
    }
    live.expect_run(4, "testmod.wat changed: ok");

    // So does editing the lib/ module they share.
    let console = example("lib/console.wat").replace("print_i32", "print_number");
    dir.write("lib/console.wat", &console);
    live.expect_run(5, "lib/console.wat changed: error");
    live.expect(Stream::Err, |l| {
        l.contains("lib/console::print_i32: lib/console.wat has no export `print_i32`")
    });
}

#[test]
fn dependencies_nobody_calls_are_never_loaded() {
    let dir = Dir::new();
    // `dep` has a start function that would print; `missing` does not exist.
    let (data, say) = line(256, "dep started");
    dir.write(
        "dep.wat",
        &module(
            "",
            &format!("{data} (func $start {say}) (start $start) (func (export \"f\"))"),
        ),
    );
    dir.write(
        "main.wat",
        &command(
            r#"(import "dep" "f" (func $f)) (import "missing" "g" (func $g))"#,
            "entry done",
            "",
        ),
    );
    assert_eq!(
        once(&dir, &["main.wat"]),
        (0, "entry done\n".into(), String::new())
    );

    // Called, the dependency starts (once), and the missing one fails the run.
    dir.write(
        "main.wat",
        &command(
            r#"(import "dep" "f" (func $f)) (import "missing" "g" (func $g))"#,
            "entry done",
            "(call $f) (call $f) (call $g)",
        ),
    );
    let (code, stdout, stderr) = once(&dir, &["main.wat"]);
    assert_eq!((code, stdout.as_str()), (1, "dep started\n"));
    assert!(
        stderr.contains("main.wat: missing::g: module `missing` not found"),
        "{stderr}"
    );
}

#[test]
fn fifty_modules_link_lazily() {
    // The entry imports from 50 modules and calls 5. The other 45 are garbage:
    // had any been read, compiled or instantiated, the run would fail.
    let dir = Dir::new();
    let mut imports = String::new();
    let mut calls = String::new();
    for index in 0..50 {
        imports.push_str(&format!(
            r#"(import "m{index}" "f" (func $f{index} (result i32)))"#
        ));
        if index % 10 == 0 {
            calls.push_str(&format!("(drop (call $f{index}))"));
            dir.write(
                &format!("m{index}.wat"),
                &format!("(module (func (export \"f\") (result i32) (i32.const {index})))"),
            );
        } else {
            dir.write(&format!("m{index}.wat"), "this is not a module");
        }
    }
    dir.write("main.wat", &command(&imports, "five of fifty", &calls));
    assert_eq!(
        once(&dir, &["main.wat"]),
        (0, "five of fifty\n".into(), String::new())
    );
}

/// `counter.wat`: a global bumped by `bump`, read by `get`.
const COUNTER: &str = r#"(module
  (global $n (mut i32) (i32.const 0))
  (func (export "bump") (global.set $n (i32.add (global.get $n) (i32.const 1))))
  (func (export "get") (result i32) (global.get $n)))"#;

#[test]
fn importers_share_one_instance_per_run() {
    let dir = Dir::new();
    dir.write("counter.wat", COUNTER);
    dir.write(
        "other.wat",
        r#"(module (import "counter" "bump" (func $bump)) (func (export "twice") (call $bump) (call $bump)))"#,
    );
    let main = |version: &str| {
        module(
            r#"(import "counter" "get" (func $get (result i32)))
  (import "counter" "bump" (func $bump))
  (import "other" "twice" (func $twice))"#,
            &format!(
                "(func (export \"_start\") (call $bump) (call $twice) (call $say_i32 (call $get)))
  (; {version} ;)"
            ),
        )
    };
    dir.write("main.wat", &main("v1"));
    let mut live = live_wasm(&dir, &["main.wat"]);
    live.expect_stdout("3");
    live.expect_run(1, "ok");
    dir.write("main.wat", &main("v2"));
    live.expect_stdout("3");
    live.expect_run(2, "ok");
}

#[test]
fn mutual_recursion_goes_through_the_running_entry() {
    let dir = Dir::new();
    // a._start -> b.f -> a.g: b gets the entry's running instance.
    let a = module(
        r#"(import "b" "f" (func $f))"#,
        r#"(data (i32.const 256) "g called")
  (func (export "g") (call $say (i32.const 256) (i32.const 8)))
  (global $starts (mut i32) (i32.const 0))
  (func (export "_start") (call $f))"#,
    );
    dir.write("a.wat", &a);
    dir.write(
        "b.wat",
        r#"(module (import "a" "g" (func $g)) (func (export "f") (call $g)))"#,
    );
    assert_eq!(
        once(&dir, &["a.wat"]),
        (0, "g called\n".into(), String::new())
    );
}

#[test]
fn unsatisfiable_cycles_are_reported_with_their_path() {
    let dir = Dir::new();
    // Memories imported both ways: each needs the other to exist first.
    dir.write(
        "c.wat",
        r#"(module (import "e" "mem" (memory 1)) (memory (export "mem2") 1))"#,
    );
    dir.write(
        "e.wat",
        r#"(module (import "c" "mem2" (memory 1)) (memory (export "mem") 1))"#,
    );
    once_fails(
        &dir,
        &["c.wat"],
        1,
        "e.wat: c::mem2: import cycle c -> e -> c",
    );

    // Start functions calling each other.
    dir.write(
        "s.wat",
        r#"(module (import "t" "f" (func $f)) (func (export "g")) (func $start (call $f)) (start $start))"#,
    );
    dir.write(
        "t.wat",
        r#"(module (import "s" "g" (func $g)) (func (export "f")) (func $start (call $g)) (start $start))"#,
    );
    once_fails(&dir, &["s.wat"], 1, "t.wat: s::g: import cycle s -> t -> s");
}

#[test]
fn names_leaving_the_root_are_refused_by_import() {
    let outside = Dir::new();
    outside.write("secret.wat", r#"(module (func (export "f")))"#);
    let dir = Dir::new();
    std::os::unix::fs::symlink(outside.path("secret.wat"), dir.path("link.wat")).expect("symlink");
    let secret = outside.path("secret");
    for (name, why) in [
        ("../secret", "plain components"),
        (
            secret.to_str().expect("utf-8"),
            "absolute paths are not allowed",
        ),
        ("link", "link.wat leads outside the root"),
    ] {
        dir.write(
            "main.wat",
            &format!(
                r#"(module (import "{name}" "f" (func $f)) (func (export "_start") (call $f)))"#
            ),
        );
        let (code, _, stderr) = once(&dir, &["main.wat"]);
        assert_eq!(code, 1, "{name}");
        assert!(stderr.contains(why), "{name}: {stderr}");
    }
}

#[test]
fn live_use_returns_documented_codes() {
    let outside = Dir::new();
    outside.write("secret.wat", "(module)");
    let dir = Dir::new();
    std::os::unix::fs::symlink(outside.path("secret.wat"), dir.path("link.wat")).expect("symlink");
    dir.write("good.wat", r#"(module (func $s) (start $s))"#);
    dir.write("invalid.wat", "(module (oops))");
    dir.write("trapper.wat", "(module (func $s unreachable) (start $s))");
    // cyc's start uses cyc itself: a cycle, reported to cyc's start as -4.
    dir.write(
        "cyc.wat",
        &module(
            r#"(import "live" "use" (func $use (param i32 i32) (result i32)))"#,
            r#"(data (i32.const 256) "cyc")
  (func $start (call $say_i32 (call $use (i32.const 256) (i32.const 3))))
  (start $start)"#,
        ),
    );
    let names = [
        "good", "good", "missing", "invalid", "trapper", "../x", "link", "cyc",
    ];
    let mut body = String::new();
    let mut calls = String::new();
    let mut offset = 256;
    for name in names {
        body.push_str(&format!(r#" (data (i32.const {offset}) "{name}")"#));
        calls.push_str(&format!(
            "(call $say_i32 (call $use (i32.const {offset}) (i32.const {})))",
            name.len()
        ));
        offset += 16;
    }
    // A pointer past the end of memory, and bytes that are not UTF-8.
    calls.push_str("(call $say_i32 (call $use (i32.const 65530) (i32.const 100)))");
    body.push_str(r#" (data (i32.const 1000) "\ff\fe")"#);
    calls.push_str("(call $say_i32 (call $use (i32.const 1000) (i32.const 2)))");
    body.push_str(&format!("\n  (func (export \"_start\") {calls})"));
    let live_use = r#"(import "live" "use" (func $use (param i32 i32) (result i32)))"#;
    dir.write("main.wat", &module(live_use, &body));

    let (code, stdout, stderr) = once(&dir, &["main.wat"]);
    assert_eq!(code, 0, "{stderr}");
    let codes: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        codes,
        [
            "0", "0", "-1", "-2", "-3", "-5", "-1", "-4", "0", "-5", "-5"
        ],
        "{stderr}"
    );
    assert!(stderr.contains("module `missing` not found"), "{stderr}");
    assert!(
        stderr.contains("invalid.wat is not a usable module"),
        "{stderr}"
    );
    assert!(
        stderr.contains("start trapped: wasm `unreachable` instruction executed"),
        "{stderr}"
    );
    assert!(stderr.contains("import cycle cyc -> cyc"), "{stderr}");
    assert!(stderr.contains("outside the caller's memory"), "{stderr}");
    assert!(stderr.contains("not UTF-8"), "{stderr}");
}

#[test]
fn link_errors_name_the_importer_and_both_signatures() {
    let dir = Dir::new();
    dir.write("lib.wat", r#"(module (func (export "f") (param i32)))"#);
    dir.write(
        "main.wat",
        r#"(module (import "lib" "f" (func $f (param i64) (result i32))) (func (export "_start") (drop (call $f (i64.const 1)))))"#,
    );
    let (code, _, stderr) = once(&dir, &["main.wat"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains(
            "main.wat: lib::f: type mismatch: the import expects (func (param i64) (result i32)), lib.wat exports (func (param i32))"
        ),
        "{stderr}"
    );

    dir.write(
        "main.wat",
        r#"(module (import "lib" "nope" (func $f)) (func (export "_start") (call $f)))"#,
    );
    let (_, _, stderr) = once(&dir, &["main.wat"]);
    assert!(
        stderr.contains("main.wat: lib::nope: lib.wat has no export `nope` (expected (func))"),
        "{stderr}"
    );
}

#[test]
fn a_used_reactor_is_initialised_first() {
    let dir = Dir::new();
    dir.write(
        "reactor.wat",
        r#"(module
  (global $ready (mut i32) (i32.const 0))
  (func (export "_initialize") (global.set $ready (i32.const 7)))
  (func (export "ready") (result i32) (global.get $ready)))"#,
    );
    let main = module(
        r#"(import "b" "ready" (func $ready (result i32)))"#,
        r#"(func (export "_start") (call $say_i32 (call $ready)))"#,
    );
    dir.write("b.wat", "");
    std::fs::remove_file(dir.path("b.wat")).expect("rm");
    std::fs::rename(dir.path("reactor.wat"), dir.path("b.wat")).expect("mv");
    dir.write("main.wat", &main);
    assert_eq!(once(&dir, &["main.wat"]), (0, "7\n".into(), String::new()));
}

#[test]
fn modules_no_longer_used_stop_triggering_runs() {
    modules_no_longer_used_stop_triggering_runs_with(&[]);
}

#[test]
fn modules_no_longer_used_stop_triggering_runs_when_polling() {
    modules_no_longer_used_stop_triggering_runs_with(&["--poll=50ms"]);
}

fn modules_no_longer_used_stop_triggering_runs_with(watcher: &[&str]) {
    let dir = Dir::new();
    dir.write("dep.wat", r#"(module (func (export "f")))"#);
    dir.write("marker", "0");
    let uses_dep = r#"(module (import "dep" "f" (func $f)) (func (export "_start") (call $f)))"#;
    dir.write("main.wat", uses_dep);
    let mut args = watcher.to_vec();
    args.extend(["--watch", "marker", "main.wat"]);
    let mut live = live_wasm(&dir, &args);
    live.expect_run(1, "start: ok");

    dir.write(
        "dep.wat",
        r#"(module (func (export "f")) (func (export "g")))"#,
    );
    live.expect_run(2, "dep.wat changed: ok");

    dir.write("main.wat", "(module)");
    live.expect_run(3, "main.wat changed: ok");
    dir.write("dep.wat", r#"(module (func (export "f")))"#);
    dir.write("marker", "1");
    live.expect_run(4, "marker changed: ok");
}

#[test]
fn a_module_in_a_folder_that_does_not_exist_yet_is_waited_for() {
    a_module_in_a_folder_that_does_not_exist_yet_is_waited_for_with(&[]);
}

#[test]
fn a_module_in_a_folder_that_does_not_exist_yet_is_waited_for_when_polling() {
    a_module_in_a_folder_that_does_not_exist_yet_is_waited_for_with(&["--poll=50ms"]);
}

fn a_module_in_a_folder_that_does_not_exist_yet_is_waited_for_with(watcher: &[&str]) {
    let dir = Dir::new();
    dir.write(
        "main.wat",
        &command(
            r#"(import "deep/er/mod" "f" (func $f))"#,
            "after",
            "(call $f)",
        ),
    );
    let mut args = watcher.to_vec();
    args.push("main.wat");
    let mut live = live_wasm(&dir, &args);
    live.expect_run(1, "start: error");
    live.expect(Stream::Err, |l| {
        l.contains("module `deep/er/mod` not found")
    });
    // The folders appear with the file in them, as `git checkout` or `mv` of a
    // tree brings them.
    let elsewhere = Dir::new();
    std::fs::create_dir_all(elsewhere.path("deep/er")).expect("mkdir");
    elsewhere.write("deep/er/mod.wat", r#"(module (func (export "f")))"#);
    std::fs::rename(elsewhere.path("deep"), dir.path("deep")).expect("mv");
    live.expect_stdout("after");
    live.expect_run(2, "deep/er/mod.wat changed: ok");
}

/// Issue 27: a program built into an output folder uses a module kept beside
/// its sources. Without `--root`, the error says where it looked and which
/// `--root` finds the module; with it, the program runs.
#[test]
fn a_module_beside_the_sources_is_found_by_the_root_the_error_names() {
    let dir = Dir::new();
    std::fs::create_dir_all(dir.path("proj/target/debug")).expect("mkdir");
    dir.write(
        "proj/target/debug/main.wat",
        &command(r#"(import "testmod" "f" (func $f))"#, "done", "(call $f)"),
    );
    let testmod = command("", "from testmod", "").replace("\"_start\"", "\"f\"");
    dir.write("proj/testmod.wat", &testmod);
    // Further from the entry: not the one named.
    std::fs::create_dir_all(dir.path("other")).expect("mkdir");
    dir.write("other/testmod.wat", &testmod);

    let stderr = once_fails(
        &dir,
        &["proj/target/debug/main.wat"],
        1,
        "main.wat: testmod::f: module `testmod` not found in proj/target/debug/ \
         (no testmod.wat or testmod.wasm there); proj/testmod.wat exists: start with \
         --root proj to use it",
    );
    assert!(!stderr.contains("other/"), "{stderr}");
    let (code, stdout, stderr) = once(&dir, &["--root", "proj", "proj/target/debug/main.wat"]);
    assert_eq!(
        (code, stdout.as_str()),
        (0, "from testmod\ndone\n"),
        "{stderr}"
    );
}

/// With no such file anywhere under the current folder, the error says
/// where it looked and suggests nothing but creating it; an entry in the
/// current folder names no folder.
#[test]
fn a_module_found_nowhere_is_to_be_created_where_it_was_looked_for() {
    let dir = Dir::new();
    std::fs::create_dir_all(dir.path("out")).expect("mkdir");
    let main = command(r#"(import "nothere" "f" (func $f))"#, "done", "(call $f)");
    dir.write("out/main.wat", &main);
    let stderr = once_fails(
        &dir,
        &["out/main.wat"],
        1,
        "main.wat: nothere::f: module `nothere` not found in out/ (no nothere.wat or \
         nothere.wasm there); create it and save",
    );
    assert!(!stderr.contains("--root"), "{stderr}");
    dir.write("main.wat", &main);
    once_fails(
        &dir,
        &["main.wat"],
        1,
        "main.wat: nothere::f: module `nothere` not found (no nothere.wat or \
         nothere.wasm); create it and save",
    );
}
