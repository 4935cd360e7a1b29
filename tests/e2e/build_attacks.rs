//! `--build` as a hostile build script and a hurried person would drive it:
//! builds that cannot start, leave writers behind, hold the output pipe,
//! rewrite their own sources; saves made during builds; data files the guest
//! also reads. Each test is named after the defect of issue 23 it pins.

use std::thread;
use std::time::{Duration, Instant};

use crate::guests::print;
use crate::support::{Dir, LiveWasm, Stream, WAIT, live_wasm};

/// "Compiles" `src.txt` into `out/main.wat` (a copy); says `building` first,
/// and sleeps while the source says `slow`, saying `sleeping` once it has
/// read that.
const BUILD: &str = "echo building >&2; \
    if grep -q slow src.txt; then echo sleeping >&2; sleep 60; fi; \
    mkdir -p out; cp src.txt out/main.wat";

fn project() -> Dir {
    let dir = Dir::new();
    dir.write("src.txt", &print("v1"));
    dir.write("notes.md", "0");
    dir
}

/// A session building with `build` (then `extra` arguments), past its first run.
fn session(dir: &Dir, build: &str, extra: &[&str]) -> LiveWasm {
    let mut args = vec!["--build", build];
    args.extend(extra);
    args.push("out/main.wat");
    let mut live = live_wasm(dir, &args);
    live.expect_stdout("v1");
    live.expect_run(1, "start: ok · build ");
    live
}

/// Waits (bounded) until `check` holds.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check() {
        assert!(Instant::now() < deadline, "{what}: not within {WAIT:?}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// Whether process `pid` runs (exists and is not a zombie).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z'))
    })
}

/// How many entries `/proc/<pid>/<what>` has (`task`: threads, `fd`: open files).
fn count(pid: u32, what: &str) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/{what}")).map_or(0, Iterator::count)
}

/// The session's current folder removed, a build cannot start: that is a
/// failed build, reported, and the session waits for the next save.
#[test]
fn defect_9_a_build_that_cannot_start_is_a_failed_build() {
    let dir = Dir::new();
    let elsewhere = Dir::new();
    elsewhere.write("src.txt", &print("v1"));
    let source = elsewhere.path("src.txt");
    let build = format!("mkdir -p out; cp '{}' out/main.wat", source.display());
    let source = source.display().to_string();
    let mut live = live_wasm(
        &dir,
        &["--build", &build, "--watch", &source, "out/main.wat"],
    );
    live.expect_stdout("v1");
    live.expect_run(1, "start: ok · build ");
    std::fs::remove_dir_all(dir.root()).expect("remove the session's folder");
    elsewhere.write("src.txt", &print("v2"));
    let line = live.expect_run(2, "src.txt changed: build failed: ");
    assert!(line.contains("cannot start"), "{line}");
    // Still there: the next save is another build, failed too.
    elsewhere.write("src.txt", &print("v3"));
    live.expect_run(3, "src.txt changed: build failed: ");
}

/// A build's background writer dies with the build: it never writes into the
/// project after it, so nothing builds again with nobody saving.
#[test]
fn defect_7_a_build_leaves_no_writer_behind() {
    let dir = project();
    let build = format!("(sleep .4; date > stamp.txt) & echo $! > writer.pid; {BUILD}");
    let mut live = session(&dir, &build, &[]);
    let writer: u32 = dir.read("writer.pid").trim().parse().expect("a pid");
    eventually("the background writer ends", || !alive(writer));
    assert!(
        !dir.path("stamp.txt").exists(),
        "the writer outlived its build"
    );
    dir.write("notes.md", "1");
    let line = live.expect_run(2, "notes.md changed: ok");
    assert!(!line.contains("stamp.txt"), "{line}");
}

/// A build that rewrites one of its sources every time builds three times in
/// a row at most; then it is named, the file is taken for its output, and
/// the session waits for a save.
#[test]
fn a_build_that_keeps_rewriting_a_source_is_named_and_builds_no_more() {
    let dir = project();
    dir.write("version.txt", "0");
    let build = format!("date +%s%N > version.txt; {BUILD}");
    let mut live = live_wasm(&dir, &["--build", &build, "out/main.wat"]);
    let warning = live.expect_status("keeps changing");
    assert!(warning.contains("version.txt"), "{warning}");
    live.expect_stdout("v1");
    live.expect_run(3, "ok · build ");
    // A save builds once, and the rewritten file starts nothing more.
    dir.write("notes.md", "1");
    live.expect_run(4, "notes.md changed: ok · build ");
    dir.write("notes.md", "2");
    live.expect_run(5, "notes.md changed: ok · build ");
}

/// With `--events json` the build's output is read by a thread: a child the
/// build left holding the pipe (in its group, or in a session of its own) no
/// longer keeps that thread and the pipe for good.
#[test]
fn defect_15_a_child_holding_the_output_leaks_nothing() {
    let dir = project();
    let build = format!("echo built; sleep 60 & setsid sleep 60 & echo $! >> escaped.pid; {BUILD}");
    let mut live = live_wasm(
        &dir,
        &["--events", "json", "--build", &build, "out/main.wat"],
    );
    let pid = live.pid();
    let finished = |run: u64| {
        move |line: &str| {
            line.contains("\"run-finished\"") && line.contains(&format!("\"run\":{run},"))
        }
    };
    live.expect_stdout("v1");
    live.expect(Stream::Err, finished(1));
    let (threads, files) = (count(pid, "task"), count(pid, "fd"));
    for run in 2..=11 {
        dir.write("src.txt", &print(&format!("v{run}")));
        live.expect_stdout(&format!("v{run}"));
        live.expect(Stream::Err, finished(run));
    }
    // The last build's output thread may take a moment to see its end.
    eventually("threads and open files back where they were", || {
        count(pid, "task") <= threads + 1 && count(pid, "fd") <= files + 1
    });
    for escaped in dir.read("escaped.pid").lines() {
        if let Ok(escaped) = escaped.parse::<i32>() {
            // SAFETY: kill(2) on a sleep this test's build started.
            unsafe { libc::kill(escaped, libc::SIGKILL) };
        }
    }
}

/// Saves made during builds are never lost: each stops the build and builds
/// again, however many in a row.
#[test]
fn defect_5_a_save_during_each_of_two_builds_is_built() {
    saves_during_builds(&[]);
}

#[test]
fn defect_5_a_save_during_each_of_two_builds_is_built_under_poll() {
    saves_during_builds(&["--poll=50ms"]);
}

fn saves_during_builds(extra: &[&str]) {
    let dir = project();
    let mut live = session(&dir, BUILD, extra);
    dir.write("src.txt", &format!("{}\n;; slow", print("v2")));
    live.expect(Stream::Err, |line| line == "sleeping");
    dir.write("src.txt", &format!("{}\n;; slow", print("v3")));
    live.expect_run(2, "src.txt changed: build stopped by a change");
    live.expect(Stream::Err, |line| line == "sleeping");
    dir.write("src.txt", &print("v4"));
    live.expect_run(3, "src.txt changed: build stopped by a change");
    live.expect_stdout("v4");
    live.expect_run(4, "src.txt changed: ok · build ");
}

/// A guest that prints `DATA` (the build puts a data file's content there)
/// and looks at that data file through WASI.
const STATS_DATA: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_filestat_get" (func $stat (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "data.txt")
  (data (i32.const 1024) "DATA\n")
  (func (export "_start")
    (drop (call $stat (i32.const 3) (i32.const 0) (i32.const 100) (i32.const 8) (i32.const 200)))
    (i32.store (i32.const 0) (i32.const 1024))
    (i32.store (i32.const 4) (i32.const 4))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
"#;

/// A source the guest also reads is still a source: saving it builds.
#[test]
fn defect_6_a_source_the_guest_reads_still_builds() {
    let dir = Dir::new();
    dir.write("src.txt", STATS_DATA);
    dir.write("data.txt", "one");
    let build = "mkdir -p out; sed \"s/DATA/$(cat data.txt)/\" src.txt > out/main.wat";
    let mut live = live_wasm(&dir, &["--build", build, "--dir", ".", "out/main.wat"]);
    live.expect_stdout("one");
    live.expect_run(1, "start: ok · build ");
    dir.write("data.txt", "two");
    live.expect_stdout("two");
    live.expect_run(2, "data.txt changed: ok · build ");
}
