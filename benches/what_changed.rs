//! What `--diff` and `--deterministic` cost a person, against the same build
//! without them, interleaved save by save.
//!
//! `cargo bench --bench what_changed [-- --saves N --pause MS --lines N]`
//! (`LIVE_WASM_BENCH_BASELINE=path/to/another/live-wasm` adds that build
//! without flags, interleaved too: the code before a change)
//!
//! Two guests: a small edit of a module that prints one line, and a module
//! that prints `--lines` lines (100,000), one `fd_write` per line as a
//! program's `println!` does, one of them changed by each save. Each flag set
//! runs a session of its own in a folder of its own; every save goes to each
//! in turn (each round starting with the next one) after a pause, and is
//! timed from just before the write to the run's status line (the whole
//! output, and the diff, written). Stdout goes to `/dev/null`, so what is
//! timed is live-wasm's part, not a terminal's.
//! Then each session's peak and current memory (VmHWM, VmRSS).

mod support;

use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use support::{Save, live_wasm, ms, option, percentile, printer, save};

/// The flag sets compared, the first being the reference.
const FLAGS: &[(&str, &[&str])] = &[
    ("no flags", &[]),
    ("--diff", &["--diff"]),
    ("--diff=only", &["--diff=only"]),
    ("--deterministic", &["--deterministic"]),
    ("--deterministic --diff", &["--deterministic", "--diff"]),
];

fn main() {
    let saves = option("--saves", 30) as usize;
    let pause = Duration::from_millis(option("--pause", 250));
    let lines = option("--lines", 100_000) as u32;
    println!(
        "live-wasm --diff / --deterministic overhead, {saves} saves after a {} ms pause ({})",
        pause.as_millis(),
        live_wasm().to_string_lossy()
    );
    println!();
    let small = |i: usize| printer("", &format!("v{i}"), "");
    measure("small edit (1 line printed)", saves, pause, &small);
    let many = |i: usize| many_lines(lines, 1000 + i as u32);
    let title = format!("{lines} lines printed, one changed by each save");
    measure(&title, saves, pause, &many);
}

/// What is compared: (label, binary, flags); the first is the reference.
fn sessions() -> Vec<(String, std::ffi::OsString, &'static [&'static str])> {
    let mut sessions: Vec<_> = (FLAGS.iter())
        .map(|(label, flags)| (label.to_string(), live_wasm(), *flags))
        .collect();
    if let Some(baseline) = support::baseline() {
        sessions.push(("no flags, baseline build".to_owned(), baseline, &[]));
    }
    sessions
}

/// A session of one flag set, its status lines read as they come.
struct Session {
    child: Child,
    status: Receiver<(Instant, String)>,
    dir: tempfile::TempDir,
    _cache: tempfile::TempDir,
}

impl Session {
    fn start(binary: &std::ffi::OsStr, flags: &[&str], source: &str) -> Session {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("main.wat"), source).expect("write main.wat");
        let mut child = Command::new(binary)
            .args(flags)
            .arg("main.wat")
            .env("XDG_CACHE_HOME", cache.path())
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start live-wasm");
        let status = support::lines(child.stderr.take().expect("stderr"));
        let session = Session {
            child,
            status,
            dir,
            _cache: cache,
        };
        session.next_run();
        session
    }

    /// Waits for the next run's status line: when it came.
    fn next_run(&self) -> Instant {
        loop {
            let (at, line) = (self.status)
                .recv_timeout(support::WAIT)
                .expect("a status line in time");
            if line.starts_with("[live-wasm] #") {
                assert!(line.contains(": ok"), "the run failed: {line}");
                return at;
            }
        }
    }

    fn file(&self) -> std::path::PathBuf {
        self.dir.path().join("main.wat")
    }

    /// (peak, current) resident memory in KiB.
    fn memory(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            (status.lines())
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kib| kib.parse().ok())
                .unwrap_or(0)
        };
        (field("VmHWM:"), field("VmRSS:"))
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Saves `source(i)` `saves` times to a session of each flag set in turn and
/// prints the save-to-status-line times and the memory.
fn measure(title: &str, saves: usize, pause: Duration, source: &dyn Fn(usize) -> String) {
    let compared = sessions();
    let sessions: Vec<Session> = (compared.iter())
        .map(|(_, binary, flags)| Session::start(binary, flags, &source(0)))
        .collect();
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); sessions.len()];
    for i in 1..=saves {
        let contents = source(i);
        // Each round starts with another session: none is always first.
        for at in (0..sessions.len()).map(|k| (k + i) % sessions.len()) {
            let session = &sessions[at];
            std::thread::sleep(pause);
            let saved = Instant::now();
            save(&session.file(), &contents, Save::InPlace);
            times[at].push(ms(session.next_run() - saved));
        }
    }
    println!("{title}: save to status line, ms");
    println!(
        "  {:<26} {:>8} {:>8} {:>10} {:>12} {:>9} {:>9}",
        "", "p50", "p95", "p50 diff", "paired diff", "peak MiB", "now MiB"
    );
    let reference = &times[0];
    for (((name, _, _), times), session) in compared.iter().zip(&times).zip(&sessions) {
        let p50 = percentile(times, 50.0);
        // The median of save-by-save differences from the reference's save
        // of the same round: what drifts in the machine touches both.
        let paired: Vec<f64> = times.iter().zip(reference).map(|(t, r)| t - r).collect();
        let (peak, now) = session.memory();
        println!(
            "  {name:<26} {p50:>8.2} {:>8.2} {:>+10.2} {:>+12.2} {:>9.1} {:>9.1}",
            percentile(times, 95.0),
            p50 - percentile(reference, 50.0),
            percentile(&paired, 50.0),
            peak as f64 / 1024.0,
            now as f64 / 1024.0
        );
    }
    println!();
}

/// A module printing `line 1` to `line LINES`, one `fd_write` each, line
/// `marked` with a `*` after it.
fn many_lines(lines: u32, marked: u32) -> String {
    format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "line ")
  ;; Writes "line N\n" (with a "*" on the marked line) from 64.
  (func $line (param $n i32)
    (local $end i32) (local $at i32) (local $digits i32) (local $rest i32)
    ;; Count the digits, then write them backwards after "line ".
    (local.set $rest (local.get $n))
    (loop $count
      (local.set $digits (i32.add (local.get $digits) (i32.const 1)))
      (local.set $rest (i32.div_u (local.get $rest) (i32.const 10)))
      (br_if $count (local.get $rest)))
    (local.set $end (i32.add (i32.const 69) (local.get $digits)))
    (local.set $at (local.get $end))
    (local.set $rest (local.get $n))
    (loop $write
      (local.set $at (i32.sub (local.get $at) (i32.const 1)))
      (i32.store8 (local.get $at)
        (i32.add (i32.const 48) (i32.rem_u (local.get $rest) (i32.const 10))))
      (local.set $rest (i32.div_u (local.get $rest) (i32.const 10)))
      (br_if $write (local.get $rest)))
    (if (i32.eq (local.get $n) (i32.const {marked}))
      (then
        (i32.store8 (local.get $end) (i32.const 42))
        (local.set $end (i32.add (local.get $end) (i32.const 1)))))
    (i32.store8 (local.get $end) (i32.const 10))
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.sub (i32.add (local.get $end) (i32.const 1)) (i32.const 64)))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func (export "_start")
    (local $n i32)
    (loop $lines
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (call $line (local.get $n))
      (br_if $lines (i32.lt_u (local.get $n) (i32.const {lines})))))
)
"#
    )
}
