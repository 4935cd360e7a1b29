//! Watch mode: one save, one run, whatever the editor; runs stopped and replaced.

use crate::guests::{print, print_then_loop, print_then_sleep, print_then_trap};
use crate::support::{Dir, Stream, live_wasm};

/// How the tests that hold for every watcher ask for the polling one: often,
/// so they stay quick.
const POLL: &str = "--poll=50ms";

/// Starts a session on `main.wat` (printing "v0") that also watches `marker`, a
/// file whose saves show that no run slipped in between two expected ones.
/// `watcher` is empty for the native watcher, or [`POLL`].
fn session(dir: &Dir, watcher: &[&str]) -> crate::support::LiveWasm {
    dir.write("main.wat", &print("v0"));
    dir.write("marker", "0");
    let mut args = watcher.to_vec();
    args.extend(["--watch", "marker", "main.wat"]);
    let mut live = live_wasm(dir, &args);
    live.expect_stdout("v0");
    live.expect_run(1, "start: ok");
    live
}

/// After run `number`, a marker save must be exactly the next run.
fn expect_marker_run(dir: &Dir, live: &mut crate::support::LiveWasm, number: u64) {
    dir.write("marker", &number.to_string());
    live.expect_run(number, "marker changed: ok");
}

#[test]
fn each_save_style_gives_exactly_one_run() {
    each_save_style_gives_exactly_one_run_with(&[]);
}

#[test]
fn each_save_style_gives_exactly_one_run_when_polling() {
    each_save_style_gives_exactly_one_run_with(&[POLL]);
}

fn each_save_style_gives_exactly_one_run_with(watcher: &[&str]) {
    let dir = Dir::new();
    let mut live = session(&dir, watcher);
    let mut run = 1;
    let mut expect_one_run = |live: &mut crate::support::LiveWasm, text: &str| {
        run += 1;
        live.expect_stdout(text);
        live.expect_run(run, "main.wat changed: ok");
        run += 1;
        expect_marker_run(&dir, live, run);
    };

    dir.write("main.wat", &print("in place"));
    expect_one_run(&mut live, "in place");

    dir.write_rename("main.wat", &print("renamed over"));
    expect_one_run(&mut live, "renamed over");

    dir.delete_recreate("main.wat", &print("recreated"));
    expect_one_run(&mut live, "recreated");

    let outside = Dir::new();
    outside.write("new.wat", &print("copied"));
    let source = outside.path("new.wat");
    dir.tool("cp", &[source.to_str().expect("utf-8 path"), "main.wat"]);
    expect_one_run(&mut live, "copied");

    outside.write("new.wat", &print("moved"));
    dir.tool("mv", &[source.to_str().expect("utf-8 path"), "main.wat"]);
    expect_one_run(&mut live, "moved");

    dir.tool("sed", &["-i", "s/moved/sed-i/", "main.wat"]);
    expect_one_run(&mut live, "sed-i");

    if vim_available() {
        // vim's default writes in place; `backupcopy=no` renames a new file over.
        vim(&dir, "", "s/sed-i/vim-x/");
        expect_one_run(&mut live, "vim-x");
        vim(&dir, "set backupcopy=no", "s/vim-x/vim-y/");
        expect_one_run(&mut live, "vim-y");
    }
}

fn vim_available() -> bool {
    let found = std::process::Command::new("vim")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success());
    assert!(
        found || std::env::var_os("LIVE_WASM_REQUIRE_VIM").is_none(),
        "vim is required here (LIVE_WASM_REQUIRE_VIM is set)"
    );
    found
}

/// Edits main.wat with a real vim, swap file and all.
fn vim(dir: &Dir, setting: &str, substitute: &str) {
    let mut args = vec!["-u", "NONE", "-i", "NONE", "-N", "-es"];
    if !setting.is_empty() {
        args.extend(["-c", setting]);
    }
    let substitute = format!("%{substitute}");
    args.extend(["-c", &substitute, "-c", "wq", "main.wat"]);
    dir.tool("vim", &args);
}

#[test]
fn saves_of_unwatched_files_and_touches_do_not_run() {
    saves_of_unwatched_files_and_touches_do_not_run_with(&[]);
}

#[test]
fn saves_of_unwatched_files_and_touches_do_not_run_when_polling() {
    saves_of_unwatched_files_and_touches_do_not_run_with(&[POLL]);
}

fn saves_of_unwatched_files_and_touches_do_not_run_with(watcher: &[&str]) {
    let dir = Dir::new();
    let mut live = session(&dir, watcher);
    dir.write("unrelated.wat", &print("nope"));
    dir.write("notes.txt", "hello");
    // Same bytes again: a touch-like save that changes nothing.
    dir.write("main.wat", &print("v0"));
    expect_marker_run(&dir, &mut live, 2);
}

#[test]
fn a_missing_entry_is_waited_for() {
    a_missing_entry_is_waited_for_with(&[]);
}

#[test]
fn a_missing_entry_is_waited_for_when_polling() {
    a_missing_entry_is_waited_for_with(&[POLL]);
}

fn a_missing_entry_is_waited_for_with(watcher: &[&str]) {
    let dir = Dir::new();
    let mut args = watcher.to_vec();
    args.push("main.wat");
    let mut live = live_wasm(&dir, &args);
    live.expect_status("main.wat does not exist yet; waiting for it");
    dir.write("main.wat", &print("here now"));
    live.expect_stdout("here now");
    live.expect_run(1, "main.wat changed: ok");
}

#[test]
fn an_endless_loop_is_stopped_by_a_save() {
    let dir = Dir::new();
    let mut live = session(&dir, &[]);
    dir.write("main.wat", &print_then_loop("spinning"));
    live.expect_stdout("spinning");
    dir.write("main.wat", &print("replaced"));
    live.expect_run(2, "main.wat changed: stopped by a change");
    live.expect_stdout("replaced");
    live.expect_run(3, "main.wat changed: ok");
}

#[test]
fn a_sleeping_guest_is_woken_by_a_save() {
    let dir = Dir::new();
    let mut live = session(&dir, &[]);
    dir.write("main.wat", &print_then_sleep("sleeping"));
    live.expect_stdout("sleeping");
    dir.write("main.wat", &print("awake"));
    live.expect_run(2, "stopped by a change");
    live.expect_stdout("awake");
    live.expect_run(3, "ok");
}

#[test]
fn failures_are_reported_and_the_next_save_runs() {
    let dir = Dir::new();
    let mut live = session(&dir, &[]);

    dir.write("main.wat", &print_then_trap("about to divide"));
    live.expect_stdout("about to divide");
    live.expect_run(2, "trap: integer divide by zero");
    live.expect(Stream::Err, |line| line.contains("0: divide (main @ "));

    dir.write("main.wat", "(module\n  (func (oops)))\n");
    live.expect_run(3, "error");
    live.expect(Stream::Err, |line| line.contains("main.wat:2:"));

    dir.write("main.wat", "\u{7f}ELF garbage");
    live.expect_run(4, "error");

    dir.write(
        "main.wat",
        r#"(module (import "wasi_snapshot_preview1" "nope" (func)))"#,
    );
    live.expect_run(5, "error");
    live.expect(Stream::Err, |line| {
        line.contains("main.wat: wasi_snapshot_preview1::nope: the host does not provide")
    });

    dir.write("main.wat", &print("healthy again"));
    live.expect_stdout("healthy again");
    live.expect_run(6, "ok");
}

#[test]
fn no_state_survives_from_one_run_to_the_next() {
    let dir = Dir::new();
    // Bumps a counter in memory and a global, then prints both as digits.
    let counter = r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $g (mut i32) (i32.const 0))
  (data (i32.const 100) "0")
  (func (export "_start")
    (global.set $g (i32.add (global.get $g) (i32.const 1)))
    (i32.store8 (i32.const 100) (i32.add (i32.load8_u (i32.const 100)) (i32.const 1)))
    (i32.store8 (i32.const 101) (i32.add (i32.const 48) (global.get $g)))
    (i32.store8 (i32.const 102) (i32.const 10))
    (i32.store (i32.const 0) (i32.const 100))
    (i32.store (i32.const 4) (i32.const 3))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
;; save "#;
    dir.write("main.wat", &format!("{counter}0"));
    let mut live = live_wasm(&dir, &["main.wat"]);
    for save in 1..=3 {
        live.expect_stdout("11");
        dir.write("main.wat", &format!("{counter}{save}"));
    }
    live.expect_stdout("11");
}

#[test]
fn ctrl_c_stops_a_running_guest_then_quits_at_rest() {
    let dir = Dir::new();
    dir.write("main.wat", &print_then_loop("spinning"));
    let mut live = live_wasm(&dir, &["main.wat"]);
    live.expect_stdout("spinning");
    live.ctrl_c();
    live.expect_run(1, "stopped by Ctrl-C");
    dir.write("main.wat", &print("still here"));
    live.expect_stdout("still here");
    live.expect_run(2, "ok");
    live.ctrl_c();
    assert_eq!(live.wait_exit(), 130);
}

/// SIGTERM and SIGHUP (the terminal closed) are not Ctrl-C: they end the
/// session even while a guest runs, with 128 + the signal's number.
#[test]
fn sigterm_and_sighup_end_the_session_while_a_guest_runs() {
    for (signal, status) in [("TERM", 143), ("HUP", 129)] {
        let dir = Dir::new();
        dir.write("main.wat", &print_then_loop("spinning"));
        let mut live = live_wasm(&dir, &["main.wat"]);
        live.expect_stdout("spinning");
        live.signal_ends_it(signal, status);
    }
}

/// A module of `count` functions, each calling the next: seconds to compile.
fn many_functions(count: usize) -> String {
    let mut text = String::from("(module\n");
    for index in 0..count {
        let next = (index + 1) % count;
        text.push_str(&format!(
            "  (func $f{index} (param i32) (result i32)
    (if (result i32) (i32.gt_s (local.get 0) (i32.const {index}))
      (then (call $f{next} (i32.sub (local.get 0) (i32.const 3))))
      (else (i32.mul (local.get 0) (i32.const 7)))))\n"
        ));
    }
    text.push(')');
    text
}

#[test]
fn a_second_ctrl_c_quits_while_a_run_stopped_by_a_save_is_still_compiling() {
    let dir = Dir::new();
    dir.write("main.wat", &print("small"));
    dir.write("marker", "0");
    let args = ["--events", "json", "--watch", "marker", "main.wat"];
    let mut live = live_wasm(&dir, &args);
    live.expect_stdout("small");
    dir.write("main.wat", &many_functions(20_000));
    live.expect(Stream::Err, |line| {
        line.contains(r#""event":"run-started""#) && line.contains(r#""run":2"#)
    });
    // Run 2 compiles for seconds and cannot stop before it is done: a save
    // asks it to, then Ctrl-C twice, as someone tired of waiting would. (The
    // save reaches the session long before `kill` has started; were it later,
    // the first Ctrl-C would be the first stop and this would pin nothing.)
    dir.write("marker", "1");
    live.ctrl_c();
    live.ctrl_c();
    assert_eq!(live.wait_exit(), 130);
}

#[test]
fn quiet_keeps_guest_output_and_errors_only() {
    let dir = Dir::new();
    dir.write("main.wat", &print("first"));
    let mut live = live_wasm(&dir, &["--quiet", "main.wat"]);
    live.expect_stdout("first");
    dir.write("main.wat", &print_then_trap("second"));
    live.expect_stdout("second");
    let line = live.expect(Stream::Err, |line| line.starts_with("[live-wasm]"));
    assert!(line.contains("#2 main.wat changed: trap"), "{line}");
}

#[test]
fn a_half_written_file_runs_when_its_write_completes() {
    a_half_written_file_runs_when_its_write_completes_with(&[]);
}

#[test]
fn a_half_written_file_runs_when_its_write_completes_when_polling() {
    a_half_written_file_runs_when_its_write_completes_with(&[POLL]);
}

fn a_half_written_file_runs_when_its_write_completes_with(watcher: &[&str]) {
    use std::io::Write;
    let dir = Dir::new();
    let mut live = session(&dir, watcher);
    let text = print("written in two halves");
    let (first, second) = text.split_at(text.len() / 2);

    let mut file = std::fs::File::create(dir.path("main.wat")).expect("create");
    file.write_all(first.as_bytes()).expect("first half");
    file.sync_data().expect("sync");
    // The half-written file is on disk, but its write is not finished: the
    // next run is the marker's (which sees, and reports, the half file).
    dir.write("marker", "half");
    let line = live.expect_run(2, "marker changed: error");
    assert!(line.starts_with("[live-wasm] #2 marker changed"), "{line}");

    file.write_all(second.as_bytes()).expect("second half");
    drop(file);
    live.expect_stdout("written in two halves");
    live.expect_run(3, "main.wat changed: ok");
}

#[test]
fn a_watched_folder_triggers_on_its_files_but_not_editor_noise() {
    a_watched_folder_triggers_on_its_files_but_not_editor_noise_with(&[]);
}

#[test]
fn a_watched_folder_triggers_on_its_files_but_not_editor_noise_when_polling() {
    a_watched_folder_triggers_on_its_files_but_not_editor_noise_with(&[POLL]);
}

fn a_watched_folder_triggers_on_its_files_but_not_editor_noise_with(watcher: &[&str]) {
    let dir = Dir::new();
    std::fs::create_dir_all(dir.path("scripts/deep")).expect("mkdir");
    dir.write("main.wat", &print("v0"));
    let mut args = watcher.to_vec();
    args.extend(["--watch", "scripts", "main.wat"]);
    let mut live = live_wasm(&dir, &args);
    live.expect_run(1, "start: ok");
    dir.write("scripts/.game.lua.swp", "noise");
    dir.write("scripts/game.lua~", "noise");
    dir.write("scripts/deep/game.lua", "print(1)");
    live.expect_run(2, "scripts/deep/game.lua changed: ok");
}

#[test]
fn the_entry_replaced_by_a_folder_and_back_runs_again() {
    let dir = Dir::new();
    let mut live = session(&dir, &[]);
    std::fs::remove_file(dir.path("main.wat")).expect("rm");
    std::fs::create_dir(dir.path("main.wat")).expect("mkdir");
    // A folder where the entry was is not a save; the next run says what it is.
    dir.write("marker", "2");
    live.expect_run(2, "marker changed: error");
    live.expect_status("main.wat is not a usable module: cannot read it: it is a directory");
    std::fs::remove_dir(dir.path("main.wat")).expect("rmdir");
    dir.write("main.wat", &print("a file again"));
    live.expect_stdout("a file again");
    live.expect_run(3, "main.wat changed: ok");
}

#[test]
fn an_unreadable_module_is_reported_and_the_session_goes_on() {
    let dir = Dir::new();
    let mut live = session(&dir, &[]);
    // A symlink loop: the kernel refuses to open it, even to root.
    std::os::unix::fs::symlink("lib.wat", dir.path("lib.wat")).expect("symlink");
    let uses_lib = r#"(module (import "lib" "f" (func $f)) (func (export "_start") (call $f)))"#;
    dir.write("main.wat", uses_lib);
    let line = live.expect_run(2, "main.wat changed: error");
    let detail = live.expect_status("lib.wat is not a usable module: cannot read it");
    assert!(detail.contains("symbolic links"), "{line}\n{detail}");
    std::fs::remove_file(dir.path("lib.wat")).expect("rm");
    dir.write(
        "lib.wat",
        &print("lib runs").replace(r#"(export "_start")"#, r#"(export "f")"#),
    );
    live.expect_stdout("lib runs");
    live.expect_run(3, "lib.wat changed: ok");
}
