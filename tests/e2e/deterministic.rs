//! `--deterministic`: the same code prints the same output, byte for byte, on
//! every save, though it prints times and random numbers and sleeps: the
//! clocks are virtual (they start at 2000-01-01T00:00:00Z and 0, and move only
//! with sleeps and, with `--fuel`, with work), the randomness comes from
//! `--seed`. Core modules and components alike; sleeps still stop on a save.

use std::time::{Duration, Instant};

use crate::component_wat;
use crate::guests::print;
use crate::languages::{Session, start_built};
use crate::support::{Dir, LiveWasm, Stream, live_wasm, once};

/// The virtual wall clock's start, in nanoseconds since the Unix epoch.
const WALL_START: u64 = 946_684_800_000_000_000;
const MS: u64 = 1_000_000;

/// A WASI command that prints `text`, then runs `steps`, which may call:
/// `$clocks` (prints `w HEX`, the wall clock, and `m HEX`, the monotonic
/// clock, in nanoseconds), `$dice` (prints `r HEX`, 8 bytes of `random_get`,
/// little-endian), `$sleep` (clock id, nanoseconds, 1 for an absolute
/// deadline: `poll_oneoff` on one clock), `$wall` and `$mono` (the time),
/// `$work` (a loop of N turns) and `$line` (tag, value). The last line is
/// always `z 0000000000000000`.
fn clocks_and_dice(text: &str, steps: &str) -> String {
    format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock_time_get (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 512) "0123456789abcdef")
  (data (i32.const 1024) "{text}\n")
  (func $write (param $at i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $at))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
  ;; `TAG HEX\n` at 256, from the digits at 512.
  (func $line (param $tag i32) (param $value i64) (local $i i32)
    (i32.store8 (i32.const 256) (local.get $tag))
    (i32.store8 (i32.const 257) (i32.const 32))
    (loop $digits
      (i32.store8 (i32.add (i32.const 258) (local.get $i))
        (i32.load8_u (i32.add (i32.const 512) (i32.wrap_i64 (i64.and (i64.const 15)
          (i64.shr_u (local.get $value)
            (i64.extend_i32_u (i32.sub (i32.const 60) (i32.shl (local.get $i) (i32.const 2))))))))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $digits (i32.lt_u (local.get $i) (i32.const 16))))
    (i32.store8 (i32.const 274) (i32.const 10))
    (call $write (i32.const 256) (i32.const 19)))
  (func $time (param $clock i32) (result i64)
    (drop (call $clock_time_get (local.get $clock) (i64.const 1) (i32.const 32)))
    (i64.load (i32.const 32)))
  (func $wall (result i64) (call $time (i32.const 0)))
  (func $mono (result i64) (call $time (i32.const 1)))
  (func $clocks
    (call $line (i32.const 119) (call $wall))
    (call $line (i32.const 109) (call $mono)))
  (func $dice
    (drop (call $random_get (i32.const 40) (i32.const 8)))
    (call $line (i32.const 114) (i64.load (i32.const 40))))
  ;; One clock subscription at 64: userdata, tag 0, clock id, timeout, flags.
  (func $sleep (param $clock i32) (param $ns i64) (param $flags i32)
    (i64.store (i32.const 64) (i64.const 7))
    (i32.store8 (i32.const 72) (i32.const 0))
    (i32.store (i32.const 80) (local.get $clock))
    (i64.store (i32.const 88) (local.get $ns))
    (i64.store (i32.const 96) (i64.const 0))
    (i32.store16 (i32.const 104) (local.get $flags))
    (drop (call $poll_oneoff (i32.const 64) (i32.const 128) (i32.const 1) (i32.const 160))))
  (func $work (param $turns i32)
    (loop $turn
      (local.set $turns (i32.sub (local.get $turns) (i32.const 1)))
      (br_if $turn (local.get $turns))))
  (func (export "_start")
    (call $write (i32.const 1024) (i32.const {len}))
    {steps}
    (call $line (i32.const 122) (i64.const 0))))
"#,
        len = text.len() + 1,
    )
}

/// Times, dice and sleeps of every kind: 50 ms, then 30 ms to an absolute
/// deadline on the monotonic clock, then 20 ms to one on the wall clock.
fn sleeper(text: &str) -> String {
    clocks_and_dice(
        text,
        "(call $clocks) (call $dice) (call $dice)
    (call $sleep (i32.const 1) (i64.const 50000000) (i32.const 0))
    (call $clocks)
    (call $sleep (i32.const 1) (i64.add (call $mono) (i64.const 30000000)) (i32.const 1))
    (call $clocks)
    (call $sleep (i32.const 0) (i64.add (call $wall) (i64.const 20000000)) (i32.const 1))
    (call $clocks) (call $dice)",
    )
}

/// `TAG HEX`, as the guests print a value.
fn line(tag: char, value: u64) -> String {
    format!("{tag} {value:016x}")
}

/// The lines `--once ARGS main.wat` prints, the entry written from `guest`
/// first; panics unless it succeeds.
fn once_prints(dir: &Dir, guest: &str, args: &[&str]) -> Vec<String> {
    dir.write("main.wat", guest);
    let mut all = args.to_vec();
    all.push("main.wat");
    let (code, stdout, stderr) = once(dir, &all);
    assert_eq!(code, 0, "{args:?}: {stderr}");
    stdout.lines().map(str::to_owned).collect()
}

/// The values of the lines tagged `tag`.
fn tagged(lines: &[String], tag: char) -> Vec<String> {
    let prefix = format!("{tag} ");
    lines
        .iter()
        .filter(|line| line.starts_with(&prefix))
        .cloned()
        .collect()
}

/// The guest's output of a run of the session, up to its last line.
fn run_output(live: &mut LiveWasm) -> Vec<String> {
    let mut lines = Vec::new();
    loop {
        let line = live.expect(Stream::Out, |_| true);
        let last = line == line_z();
        lines.push(line);
        if last {
            return lines;
        }
    }
}

fn line_z() -> String {
    line('z', 0)
}

#[test]
fn a_module_saved_again_prints_the_same_times_and_numbers() {
    let dir = Dir::new();
    let guest = sleeper("times and dice");
    dir.write("main.wat", &guest);
    let mut live = live_wasm(&dir, &["--deterministic", "main.wat"]);
    live.expect_status("deterministic runs: seed 0, clocks from 2000-01-01T00:00:00Z");
    let first = run_output(&mut live);
    live.expect_run(1, "start: ok");
    dir.write("main.wat", &format!("{guest};; saved again\n"));
    let second = run_output(&mut live);
    live.expect_run(2, "main.wat changed: ok");
    assert_eq!(first, second);
    // And a session of its own prints those bytes too.
    let (code, stdout, stderr) = once(&dir, &["--deterministic", "main.wat"]);
    assert_eq!(
        (code, stdout),
        (0, format!("{}\n", first.join("\n"))),
        "{stderr}"
    );
}

#[test]
fn a_sleep_moves_the_clocks_by_exactly_the_time_asked_and_takes_it() {
    let dir = Dir::new();
    let started = Instant::now();
    let lines = once_prints(&dir, &sleeper("sleeping"), &["--deterministic"]);
    assert!(started.elapsed() >= Duration::from_millis(100));
    let at = |ms: u64| [line('w', WALL_START + ms * MS), line('m', ms * MS)];
    let expected: Vec<String> = [0, 50, 80, 100].into_iter().flat_map(at).collect();
    let clocks: Vec<String> = lines
        .iter()
        .filter(|line| line.starts_with("w ") || line.starts_with("m "))
        .cloned()
        .collect();
    assert_eq!(clocks, expected, "{lines:#?}");
    // The dice are not the same number three times.
    let dice = tagged(&lines, 'r');
    assert!(dice[0] != dice[1] && dice[1] != dice[2], "{dice:?}");
}

#[test]
fn the_seed_decides_the_numbers_and_without_it_every_run_differs() {
    let dir = Dir::new();
    let guest = sleeper("dice");
    let seeded = |args: &[&str]| once_prints(&dir, &guest, args);
    let zero = seeded(&["--deterministic"]);
    assert_eq!(seeded(&["--seed", "0"]), zero, "the default seed is 0");
    let one = seeded(&["--seed", "1"]);
    assert_eq!(tagged(&one, 'w'), tagged(&zero, 'w'), "the same times");
    assert_ne!(tagged(&one, 'r'), tagged(&zero, 'r'));
    assert_eq!(seeded(&["--seed", "1", "--deterministic"]), one);

    // Without it: the host's time and randomness, other on every run.
    let (a, b) = (seeded(&[]), seeded(&[]));
    assert_ne!(tagged(&a, 'r'), tagged(&b, 'r'));
    let wall = u64::from_str_radix(&tagged(&a, 'w')[0][2..], 16).expect("hex");
    assert!(wall > WALL_START + 3_600_000 * MS, "{a:?}");
}

#[test]
fn with_fuel_the_clock_moves_with_work_the_same_way_every_run() {
    let dir = Dir::new();
    let guest = clocks_and_dice(
        "working",
        "(call $line (i32.const 109) (call $mono))
    (call $work (i32.const 1000))
    (call $line (i32.const 109) (call $mono))
    (call $work (i32.const 1000))
    (call $clocks)",
    );
    let still = once_prints(&dir, &guest, &["--deterministic"]);
    let clocks = tagged(&still, 'm');
    assert!(clocks.iter().all(|m| *m == line('m', 0)), "{still:?}");

    let fuel = ["--deterministic", "--fuel", "10000000"];
    let worked = once_prints(&dir, &guest, &fuel);
    let clocks: Vec<u64> = tagged(&worked, 'm')
        .iter()
        .map(|m| u64::from_str_radix(&m[2..], 16).expect("hex"))
        .collect();
    // Each loop of 1,000 turns moves it by its fuel, 1 ns a unit.
    assert!(
        clocks[1] - clocks[0] >= 1000 && clocks[2] - clocks[1] >= 1000,
        "{worked:?}"
    );
    // The wall clock moves with it (read just before the last look).
    let wall = u64::from_str_radix(&tagged(&worked, 'w')[0][2..], 16).expect("hex");
    assert!(
        (clocks[1]..clocks[2]).contains(&(wall - WALL_START)),
        "{worked:?}"
    );
    assert_eq!(once_prints(&dir, &guest, &fuel), worked);
}

#[test]
fn a_long_sleep_is_still_stopped_at_once_by_a_save() {
    let dir = Dir::new();
    let module = clocks_and_dice(
        "sleeping",
        "(call $sleep (i32.const 1) (i64.const 60000000000) (i32.const 0))",
    );
    let component = component_wat::sleeping("sleeping", 60_000);
    for asleep in [module, component] {
        dir.write("main.wat", &asleep);
        let mut live = live_wasm(&dir, &["--deterministic", "main.wat"]);
        live.expect_stdout("sleeping");
        dir.write("main.wat", &print("awake"));
        live.expect_run(1, "start: stopped by a change");
        live.expect_stdout("awake");
        live.expect_run(2, "main.wat changed: ok");
    }
}

#[test]
fn a_component_saved_again_prints_the_same_times_and_numbers() {
    let dir = Dir::new();
    let guest = component_wat::clocks_and_dice("component dice", 50);
    dir.write("main.wat", &guest);
    let mut live = live_wasm(&dir, &["--deterministic", "main.wat"]);
    live.expect_stdout("component dice");
    let first = run_output(&mut live);
    live.expect_run(1, "start: ok");
    dir.write("main.wat", &format!("{guest};; saved again\n"));
    live.expect_stdout("component dice");
    let second = run_output(&mut live);
    live.expect_run(2, "main.wat changed: ok");
    assert_eq!(first, second);

    let seconds = WALL_START / 1_000_000_000;
    for (tag, before, after) in [
        ('w', seconds, seconds),
        ('n', 0, 50 * MS),
        ('m', 0, 50 * MS),
    ] {
        assert_eq!(
            tagged(&first, tag),
            [line(tag, before), line(tag, after)],
            "{first:#?}"
        );
    }
    // Four sources, each its own numbers, new ones after the sleep (but for
    // `insecure-seed`, the same on every call).
    let mut dice: Vec<String> = "rbis".chars().flat_map(|tag| tagged(&first, tag)).collect();
    dice.iter_mut().for_each(|line| line.replace_range(..2, ""));
    dice.sort();
    dice.dedup();
    assert_eq!(dice.len(), 7, "{first:#?}");

    let output = |args: &[&str]| {
        let mut lines = once_prints(&dir, &guest, args);
        lines.remove(0);
        lines
    };
    assert_eq!(output(&["--deterministic"]), first);
    let other = output(&["--seed", "42"]);
    for tag in "rbis".chars() {
        assert_ne!(tagged(&other, tag), tagged(&first, tag), "{tag}");
    }
    assert_ne!(tagged(&output(&[]), 'r'), tagged(&output(&[]), 'r'));
    // With fuel the clocks have moved by the time of the first look, the
    // same way each time.
    let fuel = ["--deterministic", "--fuel", "1000000"];
    let worked = output(&fuel);
    assert_ne!(tagged(&worked, 'm')[0], line('m', 0));
    assert_eq!(output(&fuel), worked);
}

/// Prints the bits of the `f32` NaN that `0/0` makes (a zero from memory,
/// so that nothing is folded at compile time).
fn nan_printer() -> String {
    clocks_and_dice(
        "nan",
        "(call $line (i32.const 110) (i64.extend_i32_u (i32.reinterpret_f32
      (f32.div (f32.load (i32.const 48)) (f32.load (i32.const 48))))))",
    )
}

/// What `--once --events json ARGS main.wat` prints, and what its `compiled`
/// event says of the cache.
fn nan_and_cache(dir: &Dir, args: &[&str]) -> (Vec<String>, String) {
    let mut all = vec!["--events", "json"];
    all.extend_from_slice(args);
    all.push("main.wat");
    let (code, stdout, stderr) = once(dir, &all);
    assert_eq!(code, 0, "{stderr}");
    let compiled = stderr
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|event| event["event"] == "compiled")
        .unwrap_or_else(|| panic!("no compiled event in {stderr}"));
    let cache = compiled["cache"].as_str().expect("cache field").to_owned();
    (
        tagged(&stdout.lines().map(str::to_owned).collect::<Vec<_>>(), 'n'),
        cache,
    )
}

#[test]
fn a_deterministic_session_does_not_load_code_compiled_without_canonical_nans() {
    let dir = Dir::new();
    dir.write("main.wat", &nan_printer());
    let (free, cache) = nan_and_cache(&dir, &[]);
    assert_eq!(cache, "miss");
    if cfg!(target_arch = "x86_64") {
        // x86's own NaN: the sign bit set.
        assert_eq!(free, [line('n', 0xffc0_0000)]);
    }
    let canonical = [line('n', 0x7fc0_0000)];
    assert_eq!(
        nan_and_cache(&dir, &["--deterministic"]),
        (canonical.to_vec(), "miss".to_owned())
    );
    assert_eq!(
        nan_and_cache(&dir, &["--seed", "3"]),
        (canonical.to_vec(), "hit".to_owned())
    );
    assert_eq!(nan_and_cache(&dir, &[]), (free, "hit".to_owned()));
}

#[test]
fn run_started_events_give_the_seed() {
    let dir = Dir::new();
    dir.write("main.wat", &print("seeded"));
    let started = |args: &[&str]| {
        let mut all = vec!["--events", "json"];
        all.extend_from_slice(args);
        all.push("main.wat");
        let (code, _, stderr) = once(&dir, &all);
        assert_eq!(code, 0, "{stderr}");
        // Every line is an event: no status line about the seed among them.
        let events: Vec<serde_json::Value> = stderr
            .lines()
            .map(|line| serde_json::from_str(line).expect("JSON"))
            .collect();
        let started = events.iter().find(|event| event["event"] == "run-started");
        started.expect("run-started").clone()
    };
    assert_eq!(started(&["--seed", "5"])["seed"], 5);
    assert_eq!(started(&["--deterministic"])["seed"], 0);
    assert!(started(&[]).get("seed").is_none());
    // --once says nothing of it unless something goes wrong.
    let (code, stdout, stderr) = once(&dir, &["--deterministic", "main.wat"]);
    assert_eq!(
        (code, stdout.as_str(), stderr.as_str()),
        (0, "seeded\n", "")
    );
}

/// `guest-examples/clock-and-dice/` (Rust, built by cargo): the same output
/// after a save that changes nothing it prints; one line changed after a save
/// that changes that line.
#[test]
fn the_clock_and_dice_example_prints_the_same_on_every_save() {
    let entry = "target/wasm32-wasip1/debug/clock-and-dice.wasm";
    let Some(Session {
        mut live,
        dir,
        _turn,
    }) = start_built(
        "clock-and-dice",
        &["--deterministic", entry],
        "Clock and dice",
    )
    else {
        return;
    };
    let rest = |live: &mut LiveWasm| -> Vec<String> {
        (0..4).map(|_| live.expect(Stream::Out, |_| true)).collect()
    };
    let first = rest(&mut live);
    live.expect_run(1, "start: ok · build ");
    assert_eq!(
        first[..2],
        ["now: 2000-01-01 00:00:00.000000000 UTC", "slept: 200ms"]
    );

    let source = dir.read("src/main.rs");
    dir.write("src/main.rs", &format!("{source}// Saved again.\n"));
    live.expect_stdout("Clock and dice");
    assert_eq!(rest(&mut live), first);
    live.expect_run(2, "src/main.rs changed: ok · build ");

    let renamed = source.replace("\"Clock and dice\"", "\"Clock and dice, again\"");
    dir.write("src/main.rs", &renamed);
    live.expect_stdout("Clock and dice, again");
    assert_eq!(rest(&mut live), first);
    live.expect_run(3, "src/main.rs changed: ok · build ");
}
