//! Guests waiting in the host: `poll_oneoff` of every kind (clocks relative
//! and absolute, file descriptors, both WASI namespaces) and reads of stdin.
//! Each wait returns what WASI says it returns, and none holds back a save or
//! `--timeout`.

use crate::guests::print;
use crate::support::{Dir, live_wasm, once, once_fails, once_with_stdin};

/// The WASI namespace a guest imports, which decides the subscription layout.
#[derive(Clone, Copy)]
enum Abi {
    /// `wasi_snapshot_preview1`: 48-byte subscriptions.
    Preview1,
    /// `wasi_unstable`: 56-byte subscriptions, the clock's fields after an
    /// `identifier`.
    Unstable,
}

impl Abi {
    fn namespace(self) -> &'static str {
        match self {
            Abi::Preview1 => "wasi_snapshot_preview1",
            Abi::Unstable => "wasi_unstable",
        }
    }

    fn size(self) -> usize {
        match self {
            Abi::Preview1 => 48,
            Abi::Unstable => 56,
        }
    }

    /// Where a clock subscription's `id` is; `timeout` and `flags` follow at
    /// +8 and +24.
    fn clock_at(self) -> usize {
        match self {
            Abi::Preview1 => 16,
            Abi::Unstable => 24,
        }
    }
}

const MONOTONIC: u32 = 1;
const REALTIME: u32 = 0;

/// One subscription of a poll.
enum Sub {
    /// `ms` milliseconds on `clock`; an absolute one is that long from the
    /// time the guest reads just before it polls.
    Clock {
        userdata: u64,
        clock: u32,
        ms: u64,
        absolute: bool,
    },
    FdRead {
        userdata: u64,
        fd: u32,
    },
    FdWrite {
        userdata: u64,
        fd: u32,
    },
}

fn relative(userdata: u64, ms: u64) -> Sub {
    Sub::Clock {
        userdata,
        clock: MONOTONIC,
        ms,
        absolute: false,
    }
}

fn absolute(userdata: u64, clock: u32, ms: u64) -> Sub {
    Sub::Clock {
        userdata,
        clock,
        ms,
        absolute: true,
    }
}

/// The bytes of `subs` in `abi`'s layout, as a WAT string.
fn subscription_bytes(abi: Abi, subs: &[Sub]) -> String {
    let mut bytes = vec![0u8; subs.len() * abi.size()];
    for (sub, slot) in subs.iter().zip(bytes.chunks_exact_mut(abi.size())) {
        let (userdata, tag) = match sub {
            Sub::Clock { userdata, .. } => (userdata, 0),
            Sub::FdRead { userdata, .. } => (userdata, 1),
            Sub::FdWrite { userdata, .. } => (userdata, 2),
        };
        slot[0..8].copy_from_slice(&userdata.to_le_bytes());
        slot[8] = tag;
        match sub {
            Sub::Clock {
                clock,
                ms,
                absolute,
                ..
            } => {
                let at = abi.clock_at();
                slot[at..at + 4].copy_from_slice(&clock.to_le_bytes());
                slot[at + 8..at + 16].copy_from_slice(&(ms * 1_000_000).to_le_bytes());
                slot[at + 24] = u8::from(*absolute);
            }
            Sub::FdRead { fd, .. } | Sub::FdWrite { fd, .. } => {
                slot[16..20].copy_from_slice(&fd.to_le_bytes());
            }
        }
    }
    bytes.iter().map(|byte| format!("\\{byte:02x}")).collect()
}

/// A command that prints `line`, makes its absolute clocks absolute (adds the
/// time now), polls `subs`, and prints `polled EE N U T`: the errno (two
/// digits), the number of events, the first event's userdata and type.
fn poller(abi: Abi, line: &str, subs: &[Sub]) -> String {
    let from_now: String = subs
        .iter()
        .enumerate()
        .filter_map(|(index, sub)| match sub {
            Sub::Clock {
                clock,
                absolute: true,
                ..
            } => {
                let timeout = 2048 + index * abi.size() + abi.clock_at() + 8;
                Some(format!(
                    "(call $from_now (i32.const {timeout}) (i32.const {clock}))\n    "
                ))
            }
            _ => None,
        })
        .collect();
    format!(
        r#"(module
  (import "{ns}" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "{ns}" "poll_oneoff" (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (import "{ns}" "clock_time_get" (func $clock_time_get (param i32 i64 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 512) "polled 00 0 0 0\n")
  (data (i32.const 1024) "{line}\n")
  (data (i32.const 2048) "{subs}")
  (func $write (param $at i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $at))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func $from_now (param $at i32) (param $clock i32)
    (drop (call $clock_time_get (local.get $clock) (i64.const 1) (i32.const 16)))
    (i64.store (local.get $at) (i64.add (i64.load (local.get $at)) (i64.load (i32.const 16)))))
  (func $digit (param $at i32) (param $value i32)
    (i32.store8 (local.get $at) (i32.add (i32.const 48) (i32.rem_u (local.get $value) (i32.const 10)))))
  (func (export "_start") (local $errno i32)
    (call $write (i32.const 1024) (i32.const {len}))
    {from_now}(local.set $errno
      (call $poll_oneoff (i32.const 2048) (i32.const 4096) (i32.const {count}) (i32.const 4000)))
    (call $digit (i32.const 519) (i32.div_u (local.get $errno) (i32.const 10)))
    (call $digit (i32.const 520) (local.get $errno))
    (call $digit (i32.const 522) (i32.load (i32.const 4000)))
    (call $digit (i32.const 524) (i32.load (i32.const 4096)))
    (call $digit (i32.const 526) (i32.load8_u (i32.const 4106)))
    (call $write (i32.const 512) (i32.const 16))))
"#,
        ns = abi.namespace(),
        subs = subscription_bytes(abi, subs),
        len = line.len() + 1,
        count = subs.len(),
    )
}

/// What [`poller`] prints for a poll that succeeded with `events` events, the
/// first of them `userdata`'s of `kind` (0 clock, 1 fd_read, 2 fd_write).
fn polled(events: u32, userdata: u64, kind: u8) -> String {
    format!("sleeping\npolled 00 {events} {userdata} {kind}\n")
}

/// Runs `subs` polled by a `--once` run with `input.txt` as its stdin.
fn poll_once(dir: &Dir, abi: Abi, subs: &[Sub]) -> String {
    dir.write("input.txt", "some input\n");
    dir.write("poll.wat", &poller(abi, "sleeping", subs));
    let (code, stdout, stderr) = once(dir, &["--stdin", "input.txt", "poll.wat"]);
    assert_eq!(code, 0, "{stderr}");
    stdout
}

#[test]
fn poll_oneoff_with_an_fd_or_an_absolute_clock_runs_and_stops_when_asked() {
    let dir = Dir::new();
    let p1 = Abi::Preview1;
    // An fd subscription is ready before an hour's sleep; so is stdout.
    let stdin_ready = [relative(1, 3_600_000), Sub::FdRead { userdata: 2, fd: 0 }];
    assert_eq!(poll_once(&dir, p1, &stdin_ready), polled(1, 2, 1));
    let stdout_ready = [Sub::FdWrite { userdata: 3, fd: 1 }];
    assert_eq!(poll_once(&dir, p1, &stdout_ready), polled(1, 3, 2));
    // Absolute clocks, on either clock, fire when their time comes, and
    // before a later one.
    let soon = [
        absolute(1, MONOTONIC, 3_600_000),
        absolute(4, MONOTONIC, 20),
    ];
    assert_eq!(poll_once(&dir, p1, &soon), polled(1, 4, 0));
    let wall = [absolute(5, REALTIME, 20)];
    assert_eq!(poll_once(&dir, p1, &wall), polled(1, 5, 0));

    // An hour away on an absolute clock: a save wakes it, so does --timeout.
    let asleep = poller(p1, "sleeping", &[absolute(1, MONOTONIC, 3_600_000)]);
    stopped_by_a_save_and_by_the_timeout(&dir, &asleep);

    // Waiting on a stdin nobody types in, beside an hour's sleep.
    let stdin_silent = [relative(1, 3_600_000), Sub::FdRead { userdata: 2, fd: 0 }];
    dir.write("main.wat", &poller(p1, "sleeping", &stdin_silent));
    let (code, stdout, stderr) = once_with_stdin(&dir, &["--timeout", "300ms", "main.wat"], None);
    assert_eq!((code, stdout.as_str()), (124, "sleeping\n"), "{stderr}");
    let (code, stdout, stderr) = once_with_stdin(&dir, &["main.wat"], Some(b"typed\n"));
    assert_eq!((code, stdout), (0, polled(1, 2, 1)), "{stderr}");
}

#[test]
fn a_wasi_unstable_sleep_is_stopped_by_a_save_and_by_the_timeout() {
    let dir = Dir::new();
    let p0 = Abi::Unstable;
    let asleep = poller(p0, "sleeping", &[relative(1, 30_000)]);
    stopped_by_a_save_and_by_the_timeout(&dir, &asleep);

    // Its 56-byte subscriptions are read as such: the second of two clocks,
    // an absolute one, an fd beside a clock.
    let second = [relative(1, 3_600_000), relative(2, 0)];
    assert_eq!(poll_once(&dir, p0, &second), polled(1, 2, 0));
    let soon = [absolute(3, MONOTONIC, 20)];
    assert_eq!(poll_once(&dir, p0, &soon), polled(1, 3, 0));
    let stdin_ready = [relative(1, 3_600_000), Sub::FdRead { userdata: 4, fd: 0 }];
    assert_eq!(poll_once(&dir, p0, &stdin_ready), polled(1, 4, 1));
}

/// A command that prints `reading`, reads a line of stdin through `abi`'s
/// `fd_read`, and prints it.
fn reader(abi: Abi) -> String {
    format!(
        r#"(module
  (import "{ns}" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "{ns}" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 1024) "reading\n")
  (func $write (param $at i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $at))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func (export "_start")
    (call $write (i32.const 1024) (i32.const 8))
    (i32.store (i32.const 0) (i32.const 2048))
    (i32.store (i32.const 4) (i32.const 100))
    (drop (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
    (call $write (i32.const 2048) (i32.load (i32.const 8)))))
"#,
        ns = abi.namespace(),
    )
}

#[test]
fn a_guest_blocked_reading_stdin_is_stopped_by_the_timeout() {
    let dir = Dir::new();
    for abi in [Abi::Preview1, Abi::Unstable] {
        dir.write("read.wat", &reader(abi));
        let args = ["--timeout", "300ms", "read.wat"];
        let (code, stdout, stderr) = once_with_stdin(&dir, &args, None);
        assert_eq!((code, stdout.as_str()), (124, "reading\n"), "{stderr}");
        assert!(stderr.contains("timed out"), "{stderr}");

        let (code, stdout, stderr) = once_with_stdin(&dir, &args, Some(b"typed\n"));
        assert_eq!((code, stdout.as_str()), (0, "reading\ntyped\n"), "{stderr}");
    }
}

/// `asleep` (a guest printing "sleeping", then waiting in the host) is stopped
/// by a save in a session, and by `--timeout` with `--once`.
fn stopped_by_a_save_and_by_the_timeout(dir: &Dir, asleep: &str) {
    dir.write("main.wat", asleep);
    let mut live = live_wasm(dir, &["main.wat"]);
    live.expect_stdout("sleeping");
    dir.write("main.wat", &print("awake"));
    live.expect_run(1, "start: stopped by a change");
    live.expect_stdout("awake");
    live.expect_run(2, "main.wat changed: ok");
    dir.write("main.wat", asleep);
    once_fails(dir, &["--timeout", "300ms", "main.wat"], 124, "timed out");
}
