//! What the benches share: a session of the real binary with its output lines
//! stamped on arrival, saves the ways editors save, and percentiles.

#![allow(dead_code)] // each bench uses its own part

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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

/// A running session, its stdout and stderr lines stamped on arrival.
pub struct Session {
    child: Child,
    out: Receiver<(Instant, String)>,
    err: Receiver<(Instant, String)>,
    _cache: tempfile::TempDir,
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
        let cache = tempfile::tempdir().expect("tempdir");
        let mut child = Command::new(env!("CARGO_BIN_EXE_live-wasm"))
            .args(args)
            .env("XDG_CACHE_HOME", cache.path())
            .envs(env.iter().map(|(key, value)| (key, value)))
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start live-wasm");
        let out = lines(child.stdout.take().expect("stdout"));
        let err = lines(child.stderr.take().expect("stderr"));
        Session {
            child,
            out,
            err,
            _cache: cache,
        }
    }

    /// Waits for stdout line `text`; returns when it arrived.
    pub fn output(&self, text: &str) -> Instant {
        loop {
            let Ok((at, line)) = self.out.recv_timeout(WAIT) else {
                let stderr: Vec<String> = self.err.try_iter().map(|(_, line)| line).collect();
                panic!(
                    "no {text:?} from live-wasm; its stderr:\n{}",
                    stderr.join("\n")
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
        loop {
            let (_, line) = self.err.recv_timeout(WAIT).expect("status line in time");
            if line.starts_with("[live-wasm] #") {
                return line;
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
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
    }
}
