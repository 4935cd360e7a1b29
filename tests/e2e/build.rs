//! `--build`: one save is one build and one run; builds stopped by saves,
//! Ctrl-C, SIGTERM and SIGHUP; failed builds; what builds write never starts
//! another build.

use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use crate::guests::print;
use crate::support::{Dir, Stream, WAIT, live_wasm, once, once_fails};

/// A build that "compiles" `src.txt` into `main.wat` (by copying it), writes a
/// timestamp (new content every time) and an object file beside it, says
/// `building` first, sleeps while the source says `slow`, and fails with a
/// compiler-like message while it says `broken`.
const BUILD: &str = "echo building >&2; \
    if grep -q broken src.txt; then echo 'src.txt:1: error: broken' >&2; exit 1; fi; \
    if grep -q slow src.txt; then sleep 60; fi; \
    date +%s%N > stamp; cp src.txt main.o; mkdir -p out; cp src.txt out/main.wat";

fn project() -> Dir {
    let dir = Dir::new();
    dir.write("src.txt", &print("v1"));
    dir.write("notes.md", "0");
    dir
}

fn session(dir: &Dir, extra: &[&str]) -> crate::support::LiveWasm {
    let mut args = vec!["--build", BUILD];
    args.extend(extra);
    args.push("out/main.wat");
    let mut live = live_wasm(dir, &args);
    live.expect_stdout("v1");
    live.expect_run(1, "start: ok · build ");
    live
}

#[test]
fn one_save_is_one_build_and_one_run() {
    one_build_and_one_run_per_save(&[]);
}

/// The poller sees what a build wrote at its own pace: not as saves either.
#[test]
fn one_save_is_one_build_and_one_run_under_poll() {
    one_build_and_one_run_per_save(&["--poll=50ms"]);
}

fn one_build_and_one_run_per_save(extra: &[&str]) {
    let dir = project();
    let mut live = session(&dir, extra);
    dir.write("src.txt", &print("v2"));
    live.expect_stdout("v2");
    // Named from the build's folder, though outside the root (`out/`).
    live.expect_run(2, "#2 src.txt changed: ok · build ");
    // The timestamp, the object file and the entry the build wrote started
    // nothing: the next run is this save's.
    dir.write("notes.md", "1");
    live.expect_stdout("v2");
    live.expect_run(3, "notes.md changed: ok");
    dir.write_rename("src.txt", &print("v3"));
    live.expect_stdout("v3");
    live.expect_run(4, "src.txt changed: ok");
}

#[test]
fn ignored_files_and_build_folders_start_nothing() {
    let dir = project();
    dir.write(".gitignore", "*.log\n");
    std::fs::create_dir_all(dir.path("target/debug")).expect("mkdir");
    let mut live = session(&dir, &[]);
    dir.write("build.log", "noise");
    dir.write("target/debug/x.wasm", "noise");
    dir.write("notes.md", "1");
    live.expect_run(2, "notes.md changed: ok");
}

#[test]
fn a_failed_build_is_reported_and_the_old_program_is_not_run_again() {
    let dir = project();
    let mut live = session(&dir, &[]);
    dir.write("src.txt", "broken");
    live.expect(Stream::Err, |line| line == "src.txt:1: error: broken");
    live.expect_run(2, "src.txt changed: build failed: exit 1 · build ");
    dir.write("src.txt", &print("fixed"));
    // Had v1 run again after the failure, this would find it first.
    live.expect(Stream::Out, |_| true);
    live.expect_run(3, "src.txt changed: ok");
    assert!(
        live.stdout_seen()
            .ends_with(&["v1".to_owned(), "fixed".to_owned()]),
        "{:?}",
        live.stdout_seen()
    );
}

#[test]
fn a_save_during_a_build_stops_it_and_builds_again() {
    let dir = project();
    let mut live = session(&dir, &[]);
    dir.write("src.txt", &format!("{}\n;; slow", print("never")));
    live.expect(Stream::Err, |line| line == "building");
    dir.write("src.txt", &print("v3"));
    live.expect_run(2, "src.txt changed: build stopped by a change");
    live.expect_stdout("v3");
    live.expect_run(3, "src.txt changed: ok");
}

#[test]
fn ctrl_c_during_a_build_stops_it_and_the_session_goes_on() {
    let dir = project();
    let mut live = session(&dir, &[]);
    dir.write("src.txt", &format!("{}\n;; slow", print("never")));
    live.expect(Stream::Err, |line| line == "building");
    live.ctrl_c();
    live.expect_run(2, "build stopped by Ctrl-C");
    dir.write("src.txt", &print("after"));
    live.expect_stdout("after");
    live.expect_run(3, "src.txt changed: ok");
}

/// SIGTERM and SIGHUP during a build end the session, and stop the build with
/// everything it started: it runs in a process group of its own, which no
/// terminal signal reaches. The watcher's temporary folder goes too.
#[test]
fn sigterm_and_sighup_during_a_build_stop_it_and_end_the_session() {
    for (signal, status) in [("TERM", 143), ("HUP", 129)] {
        let dir = project();
        let started = SystemTime::now();
        let mut live = session(&dir, &[]);
        dir.write("src.txt", &format!("{}\n;; slow", print("never")));
        live.expect(Stream::Err, |line| line == "building");
        let build = build_shell(live.pid());
        let ours = temporary_folders(live.pid(), started);
        assert_eq!(ours.len(), 1, "the watcher's folder: {ours:?}");
        live.signal_ends_it(signal, status);
        wait_until_stopped(build);
        assert_eq!(
            temporary_folders(live.pid(), started),
            Vec::<PathBuf>::new()
        );
    }
}

#[test]
fn sigterm_during_the_build_of_once_stops_it() {
    let dir = project();
    dir.write("src.txt", &format!("{}\n;; slow", print("never")));
    let mut live = live_wasm(&dir, &["--once", "--build", BUILD, "out/main.wat"]);
    live.expect(Stream::Err, |line| line == "building");
    let build = build_shell(live.pid());
    live.signal_ends_it("TERM", 143);
    wait_until_stopped(build);
}

/// Waits until no process of group `group` runs.
fn wait_until_stopped(group: u32) {
    let deadline = Instant::now() + WAIT;
    while group_alive(group) {
        assert!(Instant::now() < deadline, "the build still runs");
        thread::sleep(Duration::from_millis(10));
    }
}

/// The build's shell: the one process session `pid` started and has not yet
/// reaped, the leader of the build's process group.
fn build_shell(pid: u32) -> u32 {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("tasks");
    let children: Vec<u32> = tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("children")).ok())
        .flat_map(|children| {
            children
                .split_whitespace()
                .filter_map(|child| child.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect();
    assert_eq!(children.len(), 1, "the build's shell: {children:?}");
    children[0]
}

/// Whether a process of group `group` is still running (not a zombie).
fn group_alive(group: u32) -> bool {
    let Ok(processes) = std::fs::read_dir("/proc") else {
        return false;
    };
    processes.filter_map(Result::ok).any(|process| {
        let Ok(stat) = std::fs::read_to_string(process.path().join("stat")) else {
            return false;
        };
        // `pid (comm) state ppid pgrp ...`; comm may hold spaces and parentheses.
        let Some((_, after)) = stat.rsplit_once(')') else {
            return false;
        };
        let fields: Vec<&str> = after.split_whitespace().collect();
        fields.first() != Some(&"Z") && fields.get(2) == Some(&group.to_string().as_str())
    })
}

/// The temporary folders session `pid` made (named after its process id).
/// Made since `started`: a folder of the same name left by an earlier
/// process with the same id (killed, ids wrap around) is not the session's.
fn temporary_folders(pid: u32, started: SystemTime) -> Vec<PathBuf> {
    let prefix = format!("live-wasm-{pid}-");
    // File times come from a coarser clock than `SystemTime::now`.
    let since = started - Duration::from_secs(1);
    std::fs::read_dir(std::env::temp_dir())
        .expect("the temporary folder")
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().starts_with(&prefix))
        .filter(|entry| {
            let modified = entry.metadata().and_then(|meta| meta.modified());
            modified.is_ok_and(|modified| modified >= since)
        })
        .map(|entry| entry.path())
        .collect()
}

#[test]
fn builds_under_events_json_keep_stderr_json() {
    let dir = project();
    dir.write("src.txt", "broken");
    let (code, _, stderr) = once(
        &dir,
        &["--events", "json", "--build", BUILD, "out/main.wat"],
    );
    assert_eq!(code, 1, "{stderr}");
    let events: Vec<Value> = stderr
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}")))
        .collect();
    assert_eq!(events.len(), 2, "{events:#?}");
    assert_eq!(events[0]["event"], "build-started");
    assert_eq!(events[1]["event"], "build-finished");
    assert_eq!(events[1]["outcome"], "failed");
    assert_eq!(events[1]["exit_code"], 1);
    assert_eq!(events[1]["output"], "building\nsrc.txt:1: error: broken\n");

    dir.write("src.txt", &print("ok"));
    let (code, stdout, _) = once(&dir, &["--build", BUILD, "out/main.wat"]);
    assert_eq!((code, stdout.as_str()), (0, "ok\n"));
}

#[test]
fn modules_resolve_under_the_root_given() {
    let dir = project();
    dir.write(
        "src.txt",
        r#"(module (import "lib" "f" (func $f)) (func (export "_start") (call $f)))"#,
    );
    dir.write("lib.wat", &print("from lib").replace("\"_start\"", "\"f\""));
    let (code, stdout, stderr) = once(&dir, &["--build", BUILD, "--root", ".", "out/main.wat"]);
    assert_eq!((code, stdout.as_str()), (0, "from lib\n"), "{stderr}");
    let (code, _, stderr) = once(&dir, &["out/main.wat"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("module `lib` not found"), "{stderr}");
}

#[test]
fn a_build_that_does_not_write_the_entry_says_so() {
    let dir = project();
    let stderr = once_fails(
        &dir,
        &["--build", "true", "out/main.wat"],
        1,
        "the build succeeded but did not write ",
    );
    assert!(stderr.contains("out/main.wat: file not found"), "{stderr}");
}

#[test]
fn sed_in_place_is_one_build_of_the_file_it_edits() {
    let dir = project();
    let mut live = session(&dir, &[]);
    // What `sed -i` does, one step at a time: it writes `sedXXXXXX` beside the
    // file, then renames it over. The temp file starts nothing: the next run
    // is the one the unrelated save below starts.
    dir.write("sedAbC123", &print("v2"));
    dir.write("notes.md", "1");
    live.expect_run(2, "notes.md changed: ok");
    std::fs::rename(dir.path("sedAbC123"), dir.path("src.txt")).expect("rename");
    live.expect_stdout("v2");
    live.expect_run(3, "src.txt changed: ok · build ");
    // And the real tool.
    dir.tool("sed", &["-i", "s/v2/v3/", "src.txt"]);
    live.expect_stdout("v3");
    live.expect_run(4, "src.txt changed: ok · build ");
}

/// Issue 27: a build the shell cannot run (exit 127) says which command: the
/// build command's own first word when it is not on PATH ...
#[test]
fn a_build_command_not_on_path_is_named() {
    let dir = project();
    once_fails(
        &dir,
        &["--build", "nosuchcompiler-xyz main.c", "main.wasm"],
        1,
        "build failed: exit 127 · build ",
    );
    once_fails(
        &dir,
        &["--build", "CC=x nosuchcompiler-xyz main.c", "main.wasm"],
        1,
        "\n  `nosuchcompiler-xyz` is not on PATH: install it, or add its folder to PATH\n",
    );
}

/// ... and, when the command is a script that runs a missing compiler, that
/// a command in it was not found (the shell's line above names it); a script
/// that does not exist, or cannot be run, is said to be so.
#[test]
fn a_build_script_calling_a_missing_compiler_says_a_command_in_it_was_not_found() {
    use std::os::unix::fs::PermissionsExt;
    let dir = project();
    dir.write(
        "build",
        "#!/bin/sh\nnosuchcompiler-xyz -o main.wasm main.c\n",
    );
    let executable = std::fs::Permissions::from_mode(0o755);
    std::fs::set_permissions(dir.path("build"), executable).expect("chmod");
    let stderr = once_fails(
        &dir,
        &["--build", "./build", "main.wasm"],
        1,
        "\n  a command in `./build` was not found (exit 127, named just above): is its \
         compiler installed and on PATH?\n",
    );
    assert!(stderr.contains("nosuchcompiler-xyz: not found"), "{stderr}");

    once_fails(
        &dir,
        &["--build", "./biuld", "main.wasm"],
        1,
        "\n  `./biuld` does not exist (exit 127)\n",
    );
    let plain = std::fs::Permissions::from_mode(0o644);
    std::fs::set_permissions(dir.path("build"), plain).expect("chmod");
    once_fails(
        &dir,
        &["--build", "./build", "main.wasm"],
        1,
        "\n  `./build` is not executable: `chmod +x ./build`\n",
    );
}

/// Issue 27: an entry mistyped under `--build` (`main.wasn`) while the build
/// writes `main.wasm`, which an earlier session left beside the sources: one
/// build per save (its `.wasm` is not a source changed during the build),
/// and one warning each, naming what it wrote.
#[test]
fn a_mistyped_entry_is_built_once_per_save_and_said_once() {
    let dir = project();
    dir.write("main.wasm", "an earlier session's build");
    let build = "echo building >&2; cp src.txt main.wasm";
    let mut live = live_wasm(&dir, &["--build", build, "main.wasn"]);
    live.expect_run(1, "#1 start: error · build ");
    dir.write("notes.md", "1");
    live.expect_run(2, "#2 notes.md changed: error · build ");
    let transcript = live.transcript();
    let count = |text: &str| transcript.lines().filter(|l| l.contains(text)).count();
    assert_eq!(count("Err: building"), 2, "{transcript}");
    let warning = "warning: the build succeeded but did not write main.wasn; it wrote \
                   main.wasm: is that the entry?";
    assert_eq!(count(warning), 2, "{transcript}");
    assert_eq!(count("stopped by a change"), 0, "{transcript}");
}
