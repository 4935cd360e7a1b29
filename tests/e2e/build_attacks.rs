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
    let build = format!("date +%s%N > version.txt; {BUILD}");
    keeps_rewriting(&build, "version.txt", &[]);
}

#[test]
fn a_build_that_keeps_rewriting_a_source_is_named_and_builds_no_more_under_poll() {
    let build = format!("date +%s%N > version.txt; {BUILD}");
    keeps_rewriting(&build, "version.txt", &["--poll=50ms"]);
}

/// The same with a writer the build leaves in the background and outlives:
/// it rewrites a source during every build, a while after the build began.
#[test]
fn a_build_whose_background_writer_rewrites_a_source_is_named_and_builds_no_more() {
    let build = format!("(sleep .2; date +%s%N > gen.txt) & {BUILD}; sleep .5");
    keeps_rewriting(&build, "gen.txt", &[]);
}

#[test]
fn a_build_whose_background_writer_rewrites_a_source_is_named_and_builds_no_more_under_poll() {
    let build = format!("(sleep .2; date +%s%N > gen.txt) & {BUILD}; sleep .5");
    keeps_rewriting(&build, "gen.txt", &["--poll=50ms"]);
}

fn keeps_rewriting(build: &str, file: &str, extra: &[&str]) {
    let dir = project();
    dir.write(file, "0");
    let mut args = vec!["--build", build];
    args.extend(extra);
    args.push("out/main.wat");
    let mut live = live_wasm(&dir, &args);
    let warning = live.expect_status("keeps changing");
    assert!(warning.contains(file), "{warning}");
    live.expect_stdout("v1");
    live.expect_run(3, "ok · build ");
    // A save builds once, and the rewritten file starts nothing more.
    dir.write("notes.md", "1");
    live.expect_run(4, "notes.md changed: ok · build ");
    dir.write("notes.md", "2");
    live.expect_run(5, "notes.md changed: ok · build ");
    // A save of the file itself between builds makes it a source again: it
    // builds, and the builds are caught rewriting it once more.
    // (Builds whose change is seen only as they end, as the poller sees it,
    // say nothing of being out of date.)
    dir.write(file, "saved");
    let warning = live.expect_status("keeps changing");
    assert!(warning.contains(file), "{warning}");
    live.expect(Stream::Err, |line| {
        line.starts_with("[live-wasm] #8 ") && line.contains(" changed: ok · build ")
    });
    dir.write("notes.md", "3");
    live.expect_run(9, "notes.md changed: ok · build ");
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

/// A person who saves one file during each of many builds in a row is not
/// taken for a build rewriting its own source: each save stops the build in
/// progress, and the last one is built and run. (Three in a row used to
/// make the file an output; the fourth save then landed in a build that was
/// no longer stopped for it, and was lost.)
#[test]
fn a_person_saving_many_times_during_builds_is_never_lost() {
    many_saves_during_builds(&[]);
}

#[test]
fn a_person_saving_many_times_during_builds_is_never_lost_under_poll() {
    many_saves_during_builds(&["--poll=50ms"]);
}

fn many_saves_during_builds(extra: &[&str]) {
    let dir = project();
    let mut live = session(&dir, BUILD, extra);
    dir.write("src.txt", &format!("{}\n;; slow", print("v2")));
    live.expect(Stream::Err, |line| line == "sleeping");
    // Six saves, each landing in a build that only a save ends.
    for number in 3..=8 {
        let slow = if number < 8 { "\n;; slow" } else { "" };
        dir.write(
            "src.txt",
            &format!("{}{slow}", print(&format!("v{number}"))),
        );
        live.expect_run(number - 1, "src.txt changed: build stopped by a change");
        if number < 8 {
            live.expect(Stream::Err, |line| line == "sleeping");
        }
    }
    live.expect_stdout("v8");
    live.expect_run(8, "src.txt changed: ok · build ");
    assert!(
        !live.transcript().contains("keeps changing"),
        "{}",
        live.transcript()
    );
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

/// The build model, driven the way its defects were found: random
/// interleavings of saves (in place, by rename), saves during slow builds,
/// saves of other sources and builds that leave background writers, checked
/// against what must run: versions in the order saved, never one whose build
/// a later save stopped, and always the last one saved. The person may save
/// any number of times in a row during builds, never pausing. Bounded here
/// (16 steps, a fixed seed plus a fresh one, the watchers alternating:
/// inotify for even cases, `--poll=50ms` for odd ones); to replay a seed or
/// run longer, build first (`cargo build`), then:
///
/// ```sh
/// LIVE_WASM_MODEL_SEED=24301 cargo test --test e2e model_random -- --nocapture
/// LIVE_WASM_MODEL_SEED=24301 LIVE_WASM_MODEL_POLL=1 cargo test ...  # under --poll
/// LIVE_WASM_MODEL_CASES=1000 cargo test --test e2e model_random -- --nocapture
/// ```
///
/// Each case prints its seed and watcher, so a failure names what replays
/// it. (It is not a `cargo fuzz` target: see `fuzz/README.md`.)
#[test]
fn model_random_saves_and_builds_always_run_the_last_save() {
    let cases: u64 = std::env::var("LIVE_WASM_MODEL_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(2);
    let fresh = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |time| time.as_nanos() as u64);
    let first = std::env::var("LIVE_WASM_MODEL_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok());
    let seeds = std::iter::once(first.unwrap_or(0x5eed))
        .chain((1..cases).map(|case| fresh.wrapping_add(case)));
    // The first case's watcher, when replaying a seed found under `--poll`.
    let poll_first = std::env::var_os("LIVE_WASM_MODEL_POLL").is_some();
    for (case, seed) in seeds.enumerate() {
        let poll = (case % 2 == 1) != (poll_first && case == 0);
        let watcher: &[&str] = if poll { &["--poll=50ms"] } else { &[] };
        // Seen on failure, with the harness's capture.
        println!("model case {case}: seed {seed}, watcher {watcher:?}");
        model_case(seed, watcher);
    }
}

/// A xorshift generator: enough to pick steps, replayable from its seed.
struct Steps(u64);

impl Steps {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

/// Saves version `number` of `src.txt`, in place or by rename; returns its
/// name and whether a build may finish it (a slow one: never).
fn save(dir: &Dir, number: usize, slow: bool, steps: &mut Steps) -> (String, bool) {
    let name = format!("v{number}");
    let mut text = print(&name);
    if slow {
        text.push_str("\n;; slow");
    }
    if steps.below(2) == 0 {
        dir.write("src.txt", &text);
    } else {
        dir.write_rename("src.txt", &text);
    }
    (name, !slow)
}

fn model_case(seed: u64, watcher: &[&str]) {
    let dir = project();
    let build = format!("(sleep .2; date +%N > stamp.txt) & {BUILD}");
    let mut live = session(&dir, &build, watcher);
    let mut steps = Steps(seed | 1);
    // The model: the versions saved, in order, and which of them a build may
    // finish (a slow one never: a later save always stops it).
    let mut saved: Vec<(String, bool)> = vec![("v1".to_owned(), true)];
    // Whether the last version's output was waited for already.
    let mut shown = true;
    // Any number of saves may land in builds in a row: a person is never
    // taken for a build rewriting its own source.
    for _ in 0..16 {
        match steps.below(5) {
            // A quick save, not waited for: the next step may come during its build.
            0 | 1 => {
                saved.push(save(&dir, saved.len() + 1, false, &mut steps));
                shown = false;
            }
            // A save whose build is still going on when the next step comes.
            2 => {
                saved.push(save(&dir, saved.len() + 1, true, &mut steps));
                shown = false;
                live.expect(Stream::Err, |line| line == "sleeping");
            }
            // Another source saved.
            3 => dir.write("notes.md", &steps.below(1 << 20).to_string()),
            // A pause: the last version saved runs, if a build may finish it.
            _ => {
                if let Some((name, true)) = saved.last().filter(|_| !shown) {
                    live.expect_stdout(name);
                    shown = true;
                }
            }
        }
    }
    let (last, _) = save(&dir, saved.len() + 1, false, &mut steps);
    saved.push((last.clone(), true));
    live.expect_stdout(&last);
    // What ran: versions in the order saved (one may run again: a save of
    // notes.md rebuilds it), none whose build a later save stopped.
    let ran = live.stdout_seen();
    let mut latest = 0;
    for name in &ran {
        let found = saved.iter().position(|(saved, _)| saved == name);
        assert!(
            found.is_some_and(|at| at >= latest && saved[at].1),
            "seed {seed}: {name} ran out of order, or though stopped: ran {ran:?}, saved {saved:?}"
        );
        latest = found.unwrap_or(latest);
    }
    // And nothing ran with nobody saving: the background writers died with
    // their builds.
    dir.write("notes.md", "quiet");
    live.expect_status("notes.md changed: ok");
    let transcript = live.transcript();
    assert!(
        !transcript.contains("stamp.txt") && !transcript.contains("keeps changing"),
        "seed {seed}: {transcript}"
    );
}
