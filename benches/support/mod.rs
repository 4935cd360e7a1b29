//! What the benches share: a session of the real binary with its output lines
//! stamped on arrival, saves the ways editors save, and percentiles.

#![allow(dead_code)] // each bench uses its own part

pub mod floor;
pub mod http;
pub mod interleaved;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, ErrorKind, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdout, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::thread;
use std::time::{Duration, Instant};

/// The value of the bench's option `name` (`--saves 20`), or `default`; other
/// arguments (cargo passes `--bench`) are not ours.
pub fn option(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|arg| arg == name) {
        Some(at) => args
            .get(at + 1)
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(|| panic!("{name} needs a number")),
        None => default,
    }
}

/// `--only TEXT`: only the sections whose name contains it.
pub fn only() -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|arg| arg == "--only")
        .map(|at| args.get(at + 1).expect("--only TEXT").clone())
}

/// How long a bench waits for any line before it gives up.
pub const WAIT: Duration = Duration::from_secs(60);

/// One scenario's measurements.
#[derive(Default)]
pub struct Samples {
    pub total: Vec<f64>,
    pub compile: Vec<f64>,
    pub run: Vec<f64>,
}

impl Samples {
    pub fn p50(&self) -> f64 {
        percentile(&self.total, 50.0)
    }

    pub fn row(&self, label: &str) {
        println!("{}", self.cells(label));
    }

    /// A row with one more cell at its end.
    pub fn row_with(&self, label: &str, last: &str) {
        println!("{} {last} |", self.cells(label));
    }

    fn cells(&self, label: &str) -> String {
        let rest: Vec<f64> = self
            .total
            .iter()
            .zip(self.compile.iter().zip(&self.run))
            .map(|(total, (compile, run))| total - compile - run)
            .collect();
        format!(
            "| {label} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            percentile(&self.total, 50.0),
            percentile(&self.total, 95.0),
            percentile(&self.total, 100.0),
            percentile(&self.compile, 50.0),
            percentile(&self.run, 50.0),
            percentile(&rest, 50.0),
        )
    }
}

pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// How a scenario writes its file.
#[derive(Clone, Copy)]
pub enum Save {
    InPlace,
    Rename,
}

pub fn save(path: &Path, contents: impl AsRef<[u8]>, how: Save) {
    match how {
        Save::InPlace => std::fs::write(path, contents.as_ref()).expect("write"),
        Save::Rename => {
            let temp = path.with_extension("tmp~");
            std::fs::write(&temp, contents.as_ref()).expect("write temp");
            std::fs::rename(&temp, path).expect("rename");
        }
    }
}

/// The binary measured: this build's, or another build's given as
/// `LIVE_WASM_BENCH_BIN` (to compare a change with the code before it).
pub fn live_wasm() -> std::ffi::OsString {
    std::env::var_os("LIVE_WASM_BENCH_BIN")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_live-wasm").into())
}

/// Another build to measure beside [`live_wasm`], save by save in the same
/// run (`LIVE_WASM_BENCH_BASELINE`: the code before a change, say), so that the
/// machine's changing speed touches both alike.
#[allow(dead_code)] // Only the benches that compare builds use it.
pub fn baseline() -> Option<std::ffi::OsString> {
    std::env::var_os("LIVE_WASM_BENCH_BASELINE")
}

/// A running session, its stdout and stderr lines stamped the moment they
/// can be read.
pub struct Session {
    child: Child,
    pipes: RefCell<Pipes>,
    _cache: Option<tempfile::TempDir>,
}

impl Session {
    pub fn start(dir: &Path, args: &[&str]) -> Session {
        Self::start_with_env(dir, &[], args)
    }

    /// A session with these variables in its environment (and its builds').
    /// Each session has a disk cache of its own (unless `env` sets
    /// `XDG_CACHE_HOME`): a bench edits files to the same texts in every run and
    /// in every scenario, which a person's edits are not, so a shared cache
    /// would answer what the bench means to compile.
    pub fn start_with_env(dir: &Path, env: &[(String, String)], args: &[&str]) -> Session {
        Self::start_binary(&live_wasm(), dir, env, args)
    }

    /// A session of the live-wasm binary `binary`.
    pub fn start_binary(
        binary: &std::ffi::OsStr,
        dir: &Path,
        env: &[(String, String)],
        args: &[&str],
    ) -> Session {
        let cache = tempfile::tempdir().expect("tempdir");
        let mut command = Command::new(binary);
        command
            .args(args)
            .env("XDG_CACHE_HOME", cache.path())
            .envs(env.iter().map(|(key, value)| (key, value)))
            .current_dir(dir);
        Self::spawn_with(command, Some(cache))
    }

    /// Any program whose output lines a bench waits for (a peer of ours).
    pub fn spawn(command: Command) -> Session {
        Self::spawn_with(command, None)
    }

    fn spawn_with(mut command: Command, cache: Option<tempfile::TempDir>) -> Session {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {command:?}: {err}"));
        let pipes = Pipes::new(
            child.stdout.take().expect("stdout"),
            child.stderr.take().expect("stderr"),
        );
        Session {
            child,
            pipes: RefCell::new(pipes),
            _cache: cache,
        }
    }

    /// Waits for stdout line `text`; returns when it arrived.
    pub fn output(&self, text: &str) -> Instant {
        let mut pipes = self.pipes.borrow_mut();
        loop {
            let Some((at, line)) = pipes.next(Stream::Out) else {
                panic!(
                    "no {text:?} from {:?}; its stderr:\n{}",
                    self.child.id(),
                    pipes.stderr_so_far()
                );
            };
            if line == text {
                return at;
            }
        }
    }

    /// Waits for the next run's status line; returns (compile, run) in ms.
    pub fn status(&self) -> (f64, f64) {
        let line = self.status_line();
        (stage(&line, "compile "), stage(&line, "run "))
    }

    /// Waits for the next run's status line.
    pub fn status_line(&self) -> String {
        self.status_line_within(WAIT).1
    }

    /// Waits up to `wait` for each stderr line until the next run's status
    /// line (a first build may say nothing for longer than [`WAIT`]); returns
    /// when it arrived, and the line.
    pub fn status_line_within(&self, wait: Duration) -> (Instant, String) {
        let mut pipes = self.pipes.borrow_mut();
        loop {
            let Some((at, line)) = pipes.next_within(Stream::Err, wait) else {
                panic!(
                    "no status line from {:?} in time; its stderr:\n{}",
                    self.child.id(),
                    pipes.stderr_so_far()
                );
            };
            if line.starts_with("[live-wasm] #") {
                return (at, line);
            }
        }
    }

    /// Saves `contents` to `file` and measures until `expected` is printed.
    pub fn measure(
        &self,
        samples: &mut Samples,
        file: &Path,
        contents: impl AsRef<[u8]>,
        how: Save,
        expected: &str,
    ) {
        let saved = Instant::now();
        save(file, contents, how);
        let printed = self.output(expected);
        let (compile, run) = self.status();
        samples.total.push(ms(printed - saved));
        samples.compile.push(compile);
        samples.run.push(run);
    }

    /// Saves `file` `count` times, save `i` writing the contents `edit(i)`
    /// gives and timed until the line it gives is printed.
    pub fn measure_saves<C: AsRef<[u8]>>(
        &self,
        count: usize,
        file: &Path,
        how: Save,
        edit: impl Fn(usize) -> (C, String),
    ) -> Samples {
        let mut samples = Samples::default();
        for i in 0..count {
            let (contents, expected) = edit(i);
            self.measure(&mut samples, file, contents, how, &expected);
        }
        samples
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Session {
    /// Asks the child to stop (SIGTERM) before killing it: `watchexec` then
    /// stops its `wasmtime run`, which would otherwise outlive it (a runaway
    /// guest spinning on a core through every scenario after).
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: a signal to our own child, not yet waited for.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(5);
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(5));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Which of a child's output pipes.
#[derive(Clone, Copy)]
enum Stream {
    Out = 0,
    Err = 1,
}

/// A child's stdout and stderr, read on the caller's thread with `poll`: a
/// line is stamped the moment it can be read, with no reader thread of ours
/// to wake in between.
struct Pipes([Pipe; 2]);

struct Pipe {
    file: File,
    partial: Vec<u8>,
    lines: VecDeque<(Instant, String)>,
    open: bool,
}

impl Pipe {
    fn new(fd: OwnedFd) -> Self {
        // SAFETY: F_SETFL on a pipe we own; no memory is involved.
        unsafe {
            let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
            libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK);
        }
        Self {
            file: File::from(fd),
            partial: Vec::new(),
            lines: VecDeque::new(),
            open: true,
        }
    }

    /// Reads what is there now; stamps each complete line with `now`.
    fn drain(&mut self, now: Instant) {
        let mut buffer = [0u8; 8192];
        loop {
            match self.file.read(&mut buffer) {
                Ok(0) => {
                    self.open = false;
                    break;
                }
                Ok(n) => self.partial.extend_from_slice(&buffer[..n]),
                Err(err) if err.kind() == ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            let text = String::from_utf8_lossy(&line[..end]).into_owned();
            self.lines.push_back((now, text));
        }
    }

    /// Polls the pipe for input while it is open (a negative fd is skipped).
    fn poll_fd(&self) -> libc::pollfd {
        libc::pollfd {
            fd: if self.open { self.file.as_raw_fd() } else { -1 },
            events: libc::POLLIN,
            revents: 0,
        }
    }
}

impl Pipes {
    fn new(out: ChildStdout, err: ChildStderr) -> Self {
        Self([Pipe::new(out.into()), Pipe::new(err.into())])
    }

    /// The next line of `stream`, waiting up to [`WAIT`] for it.
    fn next(&mut self, stream: Stream) -> Option<(Instant, String)> {
        self.next_within(stream, WAIT)
    }

    /// The next line of `stream`, waiting up to `wait` for it.
    fn next_within(&mut self, stream: Stream, wait: Duration) -> Option<(Instant, String)> {
        let deadline = Instant::now() + wait;
        loop {
            let pipe = &mut self.0[stream as usize];
            if let Some(line) = pipe.lines.pop_front() {
                return Some(line);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if !pipe.open || left.is_zero() {
                return None;
            }
            let mut fds = self.0.each_ref().map(Pipe::poll_fd);
            let timeout = left.as_millis().min(i32::MAX as u128) as i32;
            // SAFETY: `fds` is a live array of two pollfds for the call.
            unsafe { libc::poll(fds.as_mut_ptr(), 2, timeout) };
            let now = Instant::now();
            for (pipe, polled) in self.0.iter_mut().zip(fds) {
                if polled.revents != 0 {
                    pipe.drain(now);
                }
            }
        }
    }

    /// What stderr said so far, for a bench's panic message.
    fn stderr_so_far(&mut self) -> String {
        let err = &mut self.0[Stream::Err as usize];
        err.drain(Instant::now());
        let lines: Vec<String> = err.lines.drain(..).map(|(_, line)| line).collect();
        lines.join("\n")
    }
}

pub fn lines(reader: impl std::io::Read + Send + 'static) -> Receiver<(Instant, String)> {
    let (sender, receiver) = channel();
    thread::spawn(move || {
        for line in BufReader::new(reader).lines() {
            let Ok(line) = line else { break };
            if sender.send((Instant::now(), line)).is_err() {
                break;
            }
        }
    });
    receiver
}

/// `12.3` from `... compile 12.3 ms ...`, in ms.
pub fn stage(line: &str, name: &str) -> f64 {
    let Some(start) = line.find(name) else {
        return f64::NAN;
    };
    let rest = &line[start + name.len()..];
    let mut parts = rest.split_whitespace();
    let value: f64 = parts
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN);
    match parts.next() {
        Some("s") => value * 1000.0,
        _ => value,
    }
}

pub fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

pub fn on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|candidate| candidate.is_file())
    })
}

/// What a process holds.
#[derive(Clone, Copy)]
pub struct Stats {
    pub rss_kib: u64,
    /// The part of RSS that is anonymous memory (not file or shared pages).
    pub anon_kib: u64,
    pub fds: usize,
    pub threads: usize,
    /// CPU time used so far, user and system (in clock ticks' steps).
    pub cpu: Duration,
}

pub fn process_stats(pid: u32) -> Stats {
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    let status = std::fs::read_to_string(proc_dir.join("status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .unwrap_or(0)
    };
    let count = |sub: &str| std::fs::read_dir(proc_dir.join(sub)).map_or(0, |dir| dir.count());
    Stats {
        rss_kib: field("VmRSS:"),
        anon_kib: field("RssAnon:"),
        fds: count("fd"),
        threads: count("task"),
        cpu: cpu_time(&proc_dir),
    }
}

/// A process's user + system CPU time, from `/proc/PID/stat`.
fn cpu_time(proc_dir: &Path) -> Duration {
    let stat = std::fs::read_to_string(proc_dir.join("stat")).unwrap_or_default();
    // The fields after the command name (which may hold spaces): utime and
    // stime are the 12th and 13th of them.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: u64 = after_name
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|field| field.parse::<u64>().ok())
        .sum();
    // SAFETY: sysconf reads a constant of the system.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_micros(ticks * 1_000_000 / per_second)
}

/// A WASI command printing `line`, then doing `then`; `imports` go first.
pub fn printer(imports: &str, line: &str, then: &str) -> String {
    printer_after(imports, "", line, then)
}

/// A WASI command doing `first`, printing `line`, then doing `then`.
pub fn printer_after(imports: &str, first: &str, line: &str, then: &str) -> String {
    format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  {imports}
  (memory (export "memory") 1)
  (data (i32.const 64) "{line}\n")
  (func (export "_start")
    {first}
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const {len}))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    {then}))
"#,
        len = line.len() + 1
    )
}
