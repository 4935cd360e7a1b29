//! HTTP components served live: `live-wasm --serve` against `wasmtime serve`
//! on the same component, and against the loop a user builds by hand.
//!
//! `cargo bench --bench serve [-- --duration S --rounds N --saves N --pause MS
//! --load N --load-rate N --rss-requests N --rss-saves N --only throughput|saves|rss]`
//!
//! The component is `benches/serve-handler/` (a `wasi:http/proxy` handler in
//! Rust, built here for `wasm32-wasip2` in release), answering every request
//! with one short line holding `version 000000`. A save is a new version: the
//! six digits rewritten in the .wasm (same length, a new content hash), written
//! to a temporary file in the same folder and renamed over the entry, as
//! editors save. Every server runs in a folder of its own on 127.0.0.1, and is
//! stopped at the end (its process group, then any process left in its folder).
//! The peers are found in `.toolchains/venv/bin` (`.ci/install-peers` puts
//! them there, pinned), else on PATH: the wasmtime CLI, `watchexec`, and the
//! load generator, `oha` if there is one, else `wrk` (Debian's, which
//! `.ci/install-peers` installs).
//!
//! - Throughput and latency: the load generator (keep-alive HTTP/1.1, `GET /`) for
//!   `--duration` seconds (default 5) at 1, 16 and 64 connections, against
//!   `live-wasm --serve --no-reload --quiet` and `wasmtime serve`, the two
//!   interleaved cell by cell (`--rounds` times: each cell's median round).
//! - Save to new response: `--saves` saves (default 100), each after a
//!   `--pause` (default 300 ms), going in turn to each loop; timed from the
//!   rename to the first response carrying the new version, read by a client
//!   polling in a loop on one keep-alive connection (a request every 1 ms),
//!   while `--load` more connections (default 2) send `--load-rate` requests
//!   per second each (default 500; 0: back to back) through the loop's turn. Every request that gets no whole 200 response is a failed request
//!   (a client whose request failed tries again after 1 ms). The loops: the
//!   floor (see `support/http.rs`: a server that answers the file's current
//!   version, learnt from inotify, so nothing is compiled), live-wasm, and
//!   `watchexec -r [--debounce 0] -e wasm -- wasmtime serve`.
//! - Memory: one live-wasm serving `--rss-requests` requests (default
//!   100,000) over `--load` connections and `--rss-saves` saves (default
//!   1,000), its RSS (`/proc/PID/status`) at the start, the middle and the end.

#[path = "../tests/e2e/examples.rs"]
#[allow(dead_code)] // What only the tests use.
mod examples;
mod support;

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::http::{self, Client, MARKER, Outcome};
use support::{Save, ms, option, percentile, process_stats, save};

fn main() {
    http::serve_floor_if_asked();
    let options = Options::from_args();
    let tools = Tools::find();
    let handler = match Handler::build() {
        Ok(handler) => handler,
        Err(why) => {
            println!("the handler component cannot be built: {why}");
            std::process::exit(1);
        }
    };
    tools.print_versions(&handler);
    if options.runs("throughput") {
        throughput(&options, &tools, &handler);
    }
    if options.runs("saves") {
        saves(&options, &tools, &handler);
    }
    if options.runs("rss") {
        memory(&options, &tools, &handler);
    }
}

/// Command-line options of the bench.
struct Options {
    duration: u64,
    rounds: usize,
    saves: u32,
    pause: Duration,
    load: usize,
    /// Requests per second on each load connection of the saves section.
    load_rate: u64,
    rss_requests: u64,
    rss_saves: u32,
    /// Only the sections whose name contains this.
    only: Option<String>,
}

impl Options {
    fn from_args() -> Self {
        Options {
            duration: option("--duration", 5).max(1),
            rounds: option("--rounds", 1).max(1) as usize,
            saves: option("--saves", 100) as u32,
            pause: Duration::from_millis(option("--pause", 300)),
            load: option("--load", 2) as usize,
            load_rate: option("--load-rate", 500),
            rss_requests: option("--rss-requests", 100_000),
            rss_saves: option("--rss-saves", 1_000) as u32,
            only: support::only(),
        }
    }

    /// The time between two requests' starts on a load connection.
    fn load_every(&self) -> Duration {
        match self.load_rate {
            0 => Duration::ZERO,
            rate => Duration::from_secs(1) / rate as u32,
        }
    }

    fn runs(&self, section: &str) -> bool {
        self.only.as_ref().is_none_or(|only| section.contains(only))
    }
}

/// The connection counts of the throughput table.
const CONNECTIONS: [usize; 3] = [1, 16, 64];

/// How long a server may take to answer its first version, or a save's.
const VERSION_WAIT: Duration = Duration::from_secs(60);

/// The poller's pause between two requests: a client asking again and again,
/// not a spinning one taking a core from the server on a small machine.
const POLL_GAP: Duration = Duration::from_millis(1);

/// After a save's new version is seen, the loop's load goes on this long
/// (a failure as the old version is let go counts too).
const TAIL: Duration = Duration::from_millis(50);

/// The built handler, and where its version's digits are.
struct Handler {
    bytes: Vec<u8>,
    digits_at: usize,
}

impl Handler {
    /// Builds `benches/serve-handler/` (release, `wasm32-wasip2`, its own
    /// lock file) into `target/serve-handler`.
    fn build() -> Result<Handler, String> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let target = root.join("target/serve-handler");
        let status = Command::new("cargo")
            .args(["build", "--quiet", "--locked", "--release"])
            .args(["--target", "wasm32-wasip2", "--target-dir"])
            .arg(&target)
            .current_dir(root.join("benches/serve-handler"))
            .status()
            .map_err(|err| format!("cargo: {err}"))?;
        if !status.success() {
            return Err(format!(
                "cargo build {status} (needs `rustup target add wasm32-wasip2`)"
            ));
        }
        let path = target.join("wasm32-wasip2/release/serve_bench_handler.wasm");
        let bytes = std::fs::read(&path).map_err(|err| format!("{}: {err}", path.display()))?;
        let start = version(0);
        let mut found = bytes
            .windows(start.len())
            .enumerate()
            .filter(|(_, window)| *window == start.as_slice())
            .map(|(at, _)| at);
        match (found.next(), found.next()) {
            (Some(at), None) => Ok(Handler {
                bytes,
                digits_at: at + MARKER.len(),
            }),
            _ => Err(format!(
                "{} holds `version 000000` not exactly once",
                path.display()
            )),
        }
    }

    /// The component answering `version(n)`.
    fn version(&self, n: u32) -> Vec<u8> {
        let mut bytes = self.bytes.clone();
        let digits = format!("{n:06}");
        bytes[self.digits_at..self.digits_at + 6].copy_from_slice(digits.as_bytes());
        bytes
    }
}

/// `version 000042`: what the handler's responses hold at version 42.
fn version(n: u32) -> Vec<u8> {
    format!("version {n:06}").into_bytes()
}

fn holds(body: &[u8], text: &[u8]) -> bool {
    body.windows(text.len()).any(|window| window == text)
}

/// The peers, found, or why not.
struct Tools {
    wasmtime: Result<PathBuf, String>,
    /// `oha` if there is one, else `wrk`.
    load_generator: Result<LoadGenerator, String>,
    watchexec: Result<PathBuf, String>,
}

impl Tools {
    fn find() -> Tools {
        let find = |program: &str| {
            let path = examples::toolchain_path();
            std::env::split_paths(&path)
                .map(|dir| dir.join(program))
                .find(|candidate| candidate.is_file())
                .ok_or_else(|| {
                    format!("`{program}` is neither in .toolchains/venv/bin nor on PATH (.ci/install-peers)")
                })
        };
        Tools {
            wasmtime: find("wasmtime"),
            load_generator: find("oha").map(LoadGenerator::Oha).or_else(|_| {
                find("wrk")
                    .map(LoadGenerator::Wrk)
                    .map_err(|why| format!("neither `oha` nor `wrk`: {why}"))
            }),
            watchexec: find("watchexec"),
        }
    }

    fn print_versions(&self, handler: &Handler) {
        println!("HTTP components served live: live-wasm --serve against wasmtime serve");
        println!();
        println!(
            "- live-wasm: {} (engine: wasmtime {})",
            support::live_wasm().to_string_lossy(),
            engine_version()
        );
        let load_generator = self.load_generator.as_ref().map(LoadGenerator::path);
        for (name, tool) in [
            ("wasmtime CLI", self.wasmtime.as_ref()),
            ("load generator", load_generator),
            ("watchexec", self.watchexec.as_ref()),
        ] {
            let said = match tool {
                Ok(path) => format!("{} ({})", tool_version(path), path.display()),
                Err(why) => format!("not found: {why}"),
            };
            println!("- {name}: {said}");
        }
        println!(
            "- component: benches/serve-handler/, {} bytes, one {}-byte text line per request",
            handler.bytes.len(),
            "hello from the serve bench, version 000000\n".len()
        );
        println!(
            "- machine: {} cores; the load generator and the servers share them",
            thread::available_parallelism().map_or(0, usize::from)
        );
        println!();
    }
}

/// `program --version`'s first line (wrk prints it with its usage, on stdout
/// or stderr).
fn tool_version(program: &Path) -> String {
    Command::new(program)
        .arg("--version")
        .output()
        .ok()
        .and_then(|output| {
            let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&output.stderr));
            text.lines()
                .find(|line| !line.trim().is_empty())
                .map(|line| {
                    line.split("Copyright")
                        .next()
                        .unwrap_or(line)
                        .trim()
                        .to_owned()
                })
        })
        .unwrap_or_else(|| "version unknown".to_owned())
}

/// The wasmtime crate's version in our Cargo.lock.
fn engine_version() -> String {
    let lock = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.lock");
    let text = std::fs::read_to_string(lock).unwrap_or_default();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line == "name = \"wasmtime\""
            && let Some(version) = lines.next().and_then(|l| l.strip_prefix("version = "))
        {
            return version.trim_matches('"').to_owned();
        }
    }
    "?".to_owned()
}

/// Which server.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The floor (see `support/http.rs`).
    Floor,
    Live,
    /// `wasmtime serve`.
    Wasmtime,
    /// `watchexec -r --debounce 0 -e wasm -- wasmtime serve`.
    WatchexecNoDebounce,
    /// `watchexec -r -e wasm -- wasmtime serve`: its default debounce (50 ms).
    Watchexec,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Floor => "floor (inotify, read, answer)",
            Kind::Live => "live-wasm --serve",
            Kind::Wasmtime => "wasmtime serve",
            Kind::WatchexecNoDebounce => "`watchexec -r --debounce 0 -- wasmtime serve`",
            Kind::Watchexec => "`watchexec -r -- wasmtime serve`",
        }
    }
}

/// The file each server serves, in its folder.
const ENTRY: &str = "handler.wasm";

/// How many of a server's last output lines are kept, to say why it failed.
const KEPT_LINES: usize = 40;

/// A server process of one kind, in a folder of its own, answering version 0.
/// Dropping it stops it and whatever it started.
struct Server {
    kind: Kind,
    child: Child,
    folder: tempfile::TempDir,
    _cache: tempfile::TempDir,
    addr: SocketAddr,
    output: Arc<Mutex<VecDeque<String>>>,
}

impl Server {
    fn start(kind: Kind, handler: &Handler, tools: &Tools) -> Result<Server, String> {
        let folder = tempfile::tempdir().map_err(|err| format!("tempdir: {err}"))?;
        let cache = tempfile::tempdir().map_err(|err| format!("tempdir: {err}"))?;
        std::fs::write(folder.path().join(ENTRY), &handler.bytes)
            .map_err(|err| format!("writing the entry: {err}"))?;
        let port = http::free_port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let tool = |tool: &Result<PathBuf, String>| tool.clone();
        let wasmtime_serve = |command: &mut Command, wasmtime: &Path| {
            command
                .arg(wasmtime)
                .args(["serve", "--addr", &addr.to_string(), ENTRY]);
        };
        let mut command = match kind {
            Kind::Floor => http::floor_command(Path::new(ENTRY), port),
            Kind::Live => {
                let mut command = Command::new(support::live_wasm());
                command
                    .arg(format!("--serve={addr}"))
                    .args(["--no-reload", "--quiet", ENTRY]);
                command
            }
            Kind::Wasmtime => {
                let mut command = Command::new(tool(&tools.wasmtime)?);
                command.args(["serve", "--addr", &addr.to_string(), ENTRY]);
                command
            }
            Kind::WatchexecNoDebounce | Kind::Watchexec => {
                let wasmtime = tool(&tools.wasmtime)?;
                let mut command = Command::new(tool(&tools.watchexec)?);
                command.arg("-r");
                if kind == Kind::WatchexecNoDebounce {
                    command.args(["--debounce", "0"]);
                }
                command.args(["-e", "wasm", "--"]);
                wasmtime_serve(&mut command, &wasmtime);
                command
            }
        };
        command
            .current_dir(folder.path())
            .env("XDG_CACHE_HOME", cache.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = command
            .spawn()
            .map_err(|err| format!("cannot start {command:?}: {err}"))?;
        let output = Arc::new(Mutex::new(VecDeque::new()));
        let out = child
            .stdout
            .take()
            .map(|out| Box::new(out) as Box<dyn Read + Send>);
        let err = child
            .stderr
            .take()
            .map(|err| Box::new(err) as Box<dyn Read + Send>);
        for pipe in [out, err].into_iter().flatten() {
            keep_last_lines(pipe, Arc::clone(&output));
        }
        let mut server = Server {
            kind,
            child,
            folder,
            _cache: cache,
            addr,
            output,
        };
        let mut client = Client::new(addr);
        server.wait_for(&mut client, 0)?;
        Ok(server)
    }

    fn entry(&self) -> PathBuf {
        self.folder.path().join(ENTRY)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Polls until a response carries version `n` (within [`VERSION_WAIT`]),
    /// counting the requests that failed on the way.
    fn wait_for(&mut self, client: &mut Client, n: u32) -> Result<Polled, String> {
        let wanted = version(n);
        let start = Instant::now();
        let mut polled = Polled::default();
        loop {
            match client.get() {
                Outcome::Response(200, body) if holds(&body, &wanted) => return Ok(polled),
                Outcome::Response(200, body) if holds(&body, MARKER) => {}
                Outcome::Response(status, _) => polled.note_failure(format!("status {status}")),
                Outcome::Failed(why) => polled.note_failure(why),
            }
            thread::sleep(POLL_GAP);
            if start.elapsed() > VERSION_WAIT {
                return Err(self.why(&format!("no version {n} within {VERSION_WAIT:?}")));
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(self.why(&format!("exited ({status})")));
            }
        }
    }

    /// `what`, and the server's last output lines.
    fn why(&self, what: &str) -> String {
        let output = self
            .output
            .lock()
            .map(|lines| lines.iter().cloned().collect::<Vec<_>>());
        format!(
            "{}: {what}; its last output:\n{}",
            self.kind.label(),
            output.unwrap_or_default().join("\n")
        )
    }
}

impl Drop for Server {
    /// SIGTERM first (watchexec then stops its `wasmtime serve`, which has a
    /// process group of its own), SIGKILL to the group after 5 s, then any
    /// process still working in the server's folder.
    fn drop(&mut self) {
        let Ok(pid) = i32::try_from(self.child.id()) else {
            return;
        };
        // SAFETY: signals to our own child, not yet waited for, and its group.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        // SAFETY: as above; the group is the one the child leads.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
        let _ = self.child.kill();
        let _ = self.child.wait();
        kill_processes_in(self.folder.path());
    }
}

/// Kills the processes whose working folder is `folder` (a server's own
/// temporary folder: only what it started works there).
fn kill_processes_in(folder: &Path) {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if std::fs::read_link(entry.path().join("cwd")).is_ok_and(|cwd| cwd == folder) {
            // SAFETY: a signal to a process this bench started (it works in
            // the bench's own temporary folder).
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// Reads `pipe` to its end on a thread, keeping its last lines.
fn keep_last_lines(pipe: Box<dyn Read + Send>, kept: Arc<Mutex<VecDeque<String>>>) {
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if let Ok(mut kept) = kept.lock() {
                if kept.len() == KEPT_LINES {
                    kept.pop_front();
                }
                kept.push_back(line);
            }
        }
    });
}

/// The failed requests of a client, and the first few reasons.
#[derive(Default)]
struct Polled {
    failed: u64,
    reasons: Vec<String>,
}

impl Polled {
    fn note_failure(&mut self, why: String) {
        self.failed += 1;
        self.note_reason(why);
    }

    fn note_reason(&mut self, why: String) {
        if self.reasons.len() < 3 && !self.reasons.contains(&why) {
            self.reasons.push(why);
        }
    }

    /// Adds another poll's failures to these.
    fn absorb(&mut self, other: Polled) {
        self.failed += other.failed;
        for why in other.reasons {
            self.note_reason(why);
        }
    }
}

/// Connections sending `GET /` back to back while active, each making a new
/// connection when it becomes active; the requests answered and failed.
struct Load {
    shared: Arc<LoadShared>,
    threads: Vec<JoinHandle<()>>,
}

#[derive(Default)]
struct LoadShared {
    active: AtomicBool,
    stop: AtomicBool,
    /// Each connection's time from one request's start to the next's.
    every: Duration,
    /// Requests may be sent while fewer than this were (`u64::MAX`: no limit).
    budget: AtomicU64,
    sent: AtomicU64,
    answered: AtomicU64,
    failed: AtomicU64,
    closed_while_idle: AtomicU64,
    reasons: Mutex<Vec<String>>,
}

impl Load {
    /// `connections` connections, each sending a request every `every` (back
    /// to back: zero), while fewer than `budget` were sent.
    fn start(addr: SocketAddr, connections: usize, every: Duration, budget: u64) -> Load {
        let shared = Arc::new(LoadShared {
            every,
            ..LoadShared::default()
        });
        shared.budget.store(budget, Ordering::SeqCst);
        let threads = (0..connections)
            .map(|_| {
                let shared = Arc::clone(&shared);
                thread::spawn(move || load_connection(addr, &shared))
            })
            .collect();
        Load { shared, threads }
    }

    fn set_active(&self, active: bool) {
        self.shared.active.store(active, Ordering::SeqCst);
    }

    fn answered(&self) -> u64 {
        self.shared.answered.load(Ordering::SeqCst)
    }

    fn failed(&self) -> u64 {
        self.shared.failed.load(Ordering::SeqCst)
    }

    fn reasons(&self) -> Vec<String> {
        self.shared
            .reasons
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

fn load_connection(addr: SocketAddr, shared: &LoadShared) {
    let mut client = Client::new(addr);
    let mut closed_while_idle = 0;
    while !shared.stop.load(Ordering::SeqCst) {
        if !shared.active.load(Ordering::SeqCst) {
            client.disconnect();
            thread::sleep(Duration::from_millis(1));
            continue;
        }
        if shared.sent.fetch_add(1, Ordering::SeqCst) >= shared.budget.load(Ordering::SeqCst) {
            shared.sent.fetch_sub(1, Ordering::SeqCst);
            thread::sleep(Duration::from_millis(1));
            continue;
        }
        let started = Instant::now();
        let failure = match client.get() {
            Outcome::Response(200, body) if holds(&body, MARKER) => None,
            Outcome::Response(status, _) => Some(format!("status {status}")),
            Outcome::Failed(why) => Some(why),
        };
        shared.closed_while_idle.fetch_add(
            client.closed_while_idle - closed_while_idle,
            Ordering::SeqCst,
        );
        closed_while_idle = client.closed_while_idle;
        match failure {
            None => {
                shared.answered.fetch_add(1, Ordering::SeqCst);
            }
            Some(why) => {
                shared.failed.fetch_add(1, Ordering::SeqCst);
                if let Ok(mut reasons) = shared.reasons.lock()
                    && reasons.len() < 3
                    && !reasons.contains(&why)
                {
                    reasons.push(why);
                }
                // A failed request is tried again after 1 ms at the soonest.
                thread::sleep(Duration::from_millis(1));
            }
        }
        thread::sleep((started + shared.every).saturating_duration_since(Instant::now()));
    }
}

/// Starts each kind's server, or prints why it could not be.
fn start_servers(kinds: &[Kind], handler: &Handler, tools: &Tools) -> Vec<Server> {
    kinds
        .iter()
        .filter_map(|&kind| match Server::start(kind, handler, tools) {
            Ok(server) => Some(server),
            Err(why) => {
                println!("not measured: {why}");
                println!();
                None
            }
        })
        .collect()
}

/// The HTTP load generator of the throughput table.
enum LoadGenerator {
    Oha(PathBuf),
    /// Debian's `wrk` 4.1 (what `.ci/install-peers` installs: oha does not
    /// build without TLS, and its TLS crate is a long C build).
    Wrk(PathBuf),
}

impl LoadGenerator {
    fn path(&self) -> &PathBuf {
        match self {
            LoadGenerator::Oha(path) | LoadGenerator::Wrk(path) => path,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            LoadGenerator::Oha(_) => "oha",
            LoadGenerator::Wrk(_) => "wrk",
        }
    }

    fn measure(&self, addr: SocketAddr, connections: usize, duration: u64) -> Result<Cell, String> {
        match self {
            LoadGenerator::Oha(path) => oha(path, addr, connections, duration),
            LoadGenerator::Wrk(path) => wrk(path, addr, connections, duration),
        }
    }
}

/// wrk's report as one line the bench reads: requests, duration (µs),
/// errors of every kind, latency p50 and p99 (µs), and non-2xx/3xx responses.
const WRK_REPORT: &str = r#"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("wrk-report %d %d %d %d %d\n", summary.requests, summary.duration,
    e.connect + e.read + e.write + e.timeout + e.status,
    latency:percentile(50), latency:percentile(99)))
end
"#;

/// `wrk` for `duration` seconds at `connections` against `addr` (as many
/// threads as connections, at most 2: the cores of this machine).
fn wrk(wrk: &Path, addr: SocketAddr, connections: usize, duration: u64) -> Result<Cell, String> {
    let script = tempfile::Builder::new()
        .suffix(".lua")
        .tempfile()
        .map_err(|err| format!("wrk's script: {err}"))?;
    std::fs::write(script.path(), WRK_REPORT).map_err(|err| format!("wrk's script: {err}"))?;
    let threads = connections.min(2);
    let output = Command::new(wrk)
        .args(["-t", &threads.to_string(), "-c", &connections.to_string()])
        .args(["-d", &format!("{duration}s"), "--timeout", "10s", "-s"])
        .arg(script.path())
        .arg(format!("http://{addr}/"))
        .stdin(Stdio::null())
        .output()
        .map_err(|err| format!("wrk: {err}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let report: Vec<f64> = text
        .lines()
        .find_map(|line| line.strip_prefix("wrk-report "))
        .map(|rest| {
            rest.split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    let [requests, micros, errors, p50, p99] = report[..] else {
        return Err(format!(
            "wrk {}: {}{}",
            output.status,
            text,
            String::from_utf8_lossy(&output.stderr)
        ));
    };
    Ok(Cell {
        rps: requests / (micros / 1e6),
        p50: p50 / 1000.0,
        p99: p99 / 1000.0,
        failed: errors as u64,
    })
}

/// What the load generator measured in one cell.
struct Cell {
    rps: f64,
    p50: f64,
    p99: f64,
    failed: u64,
}

/// `oha` for `duration` seconds at `connections` against `addr`.
fn oha(oha: &Path, addr: SocketAddr, connections: usize, duration: u64) -> Result<Cell, String> {
    let output = Command::new(oha)
        .args(["--no-tui", "--output-format", "json", "-w", "-t", "10s"])
        .args([
            "-z",
            &format!("{duration}s"),
            "-c",
            &connections.to_string(),
        ])
        .arg(format!("http://{addr}/"))
        .stdin(Stdio::null())
        .output()
        .map_err(|err| format!("oha: {err}"))?;
    if !output.status.success() {
        return Err(format!(
            "oha {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let json: Value =
        serde_json::from_slice(&output.stdout).map_err(|err| format!("oha's JSON: {err}"))?;
    let number = |pointer: &str| {
        json.pointer(pointer)
            .and_then(Value::as_f64)
            .ok_or_else(|| format!("oha's JSON has no {pointer}"))
    };
    let counts = |pointer: &str| -> u64 {
        json.pointer(pointer)
            .and_then(Value::as_object)
            .map_or(0, |map| map.values().filter_map(Value::as_u64).sum())
    };
    let not_ok: u64 = json
        .pointer("/statusCodeDistribution")
        .and_then(Value::as_object)
        .map_or(0, |map| {
            map.iter()
                .filter(|(status, _)| status.as_str() != "200")
                .filter_map(|(_, count)| count.as_u64())
                .sum()
        });
    Ok(Cell {
        rps: number("/summary/requestsPerSec")?,
        p50: number("/metrics/latency_ms/p50")?,
        p99: number("/metrics/latency_ms/p99")?,
        failed: counts("/errorDistribution") + not_ok,
    })
}

/// (a) Requests per second and latency at 1, 16 and 64 connections.
fn throughput(options: &Options, tools: &Tools, handler: &Handler) {
    let generator = match &tools.load_generator {
        Ok(generator) => generator,
        Err(why) => {
            println!("throughput not measured: {why}");
            println!();
            return;
        }
    };
    eprintln!("measuring: throughput");
    let servers = start_servers(&[Kind::Live, Kind::Wasmtime], handler, tools);
    // cells[server][connections][round]
    let mut cells: Vec<Vec<Vec<Result<Cell, String>>>> = servers
        .iter()
        .map(|_| CONNECTIONS.iter().map(|_| Vec::new()).collect())
        .collect();
    for _ in 0..options.rounds {
        for (c, &connections) in CONNECTIONS.iter().enumerate() {
            for (s, server) in servers.iter().enumerate() {
                let cell = generator.measure(server.addr, connections, options.duration);
                cells[s][c].push(cell);
            }
        }
    }
    println!(
        "Throughput and latency: {}, keep-alive HTTP/1.1 GET /, {} s per cell{}",
        generator.name(),
        options.duration,
        match options.rounds {
            1 => String::new(),
            rounds => format!(", median of {rounds} rounds by req/s"),
        }
    );
    println!();
    println!("| server | connections | req/s | p50 ms | p99 ms | failed requests |");
    println!("|---|---:|---:|---:|---:|---:|");
    let mut medians: Vec<Vec<Option<&Cell>>> = Vec::new();
    for (s, server) in servers.iter().enumerate() {
        let mut row = Vec::new();
        for (c, &connections) in CONNECTIONS.iter().enumerate() {
            let mut ok: Vec<&Cell> = cells[s][c].iter().filter_map(|r| r.as_ref().ok()).collect();
            ok.sort_by(|a, b| a.rps.total_cmp(&b.rps));
            let median = ok.get(ok.len() / 2).copied();
            let failed_runs: Vec<&String> = cells[s][c]
                .iter()
                .filter_map(|r| r.as_ref().err())
                .collect();
            match median {
                Some(cell) => println!(
                    "| {} | {connections} | {:.0} | {:.3} | {:.3} | {} |",
                    server.kind.label(),
                    cell.rps,
                    cell.p50,
                    cell.p99,
                    cell.failed
                ),
                None => println!(
                    "| {} | {connections} | - | - | - | the load generator failed: {} |",
                    server.kind.label(),
                    failed_runs.first().map_or("", |why| why.as_str()).trim()
                ),
            }
            row.push(median);
        }
        medians.push(row);
    }
    println!();
    let live = servers.iter().position(|s| s.kind == Kind::Live);
    let peer = servers.iter().position(|s| s.kind == Kind::Wasmtime);
    if let (Some(live), Some(peer)) = (live, peer) {
        for (c, connections) in CONNECTIONS.iter().enumerate() {
            if let (Some(l), Some(p)) = (medians[live][c], medians[peer][c]) {
                let throughput = l.rps / p.rps;
                let latency = l.p50 / p.p50;
                println!(
                    "- {connections} connection(s): live-wasm's throughput {throughput:.2}x wasmtime serve's ({}), p50 {latency:.2}x ({})",
                    verdict(throughput >= 1.0),
                    verdict(latency <= 1.10),
                );
            }
        }
        println!("  (target: throughput at least 1.00x, p50 at most 1.10x)");
        println!();
    }
}

fn verdict(met: bool) -> &'static str {
    match met {
        true => "met",
        false => "NOT met",
    }
}

/// One loop of the saves section: its server, poller and load.
struct Turn {
    server: Server,
    poller: Client,
    load: Load,
    samples: Vec<f64>,
    polled: Polled,
    saves_with_failure: usize,
    lost: usize,
}

/// (b) Save to the first response from the new version.
fn saves(options: &Options, tools: &Tools, handler: &Handler) {
    if options.saves == 0 {
        return;
    }
    eprintln!("measuring: saves");
    let kinds = [
        Kind::Floor,
        Kind::Live,
        Kind::WatchexecNoDebounce,
        Kind::Watchexec,
    ];
    let mut turns: Vec<Turn> = start_servers(&kinds, handler, tools)
        .into_iter()
        .map(|server| Turn {
            poller: Client::new(server.addr),
            load: Load::start(server.addr, options.load, options.load_every(), u64::MAX),
            server,
            samples: Vec::new(),
            polled: Polled::default(),
            saves_with_failure: 0,
            lost: 0,
        })
        .collect();
    for n in 1..=options.saves {
        let contents = handler.version(n);
        for turn in &mut turns {
            turn.load.set_active(true);
            thread::sleep(options.pause);
            let failed_before = turn.load.failed() + turn.polled.failed;
            let saved = Instant::now();
            save(&turn.server.entry(), &contents, Save::Rename);
            match turn.server.wait_for(&mut turn.poller, n) {
                Ok(polled) => {
                    turn.samples.push(ms(saved.elapsed()));
                    turn.polled.absorb(polled);
                }
                Err(why) => {
                    eprintln!("{why}");
                    turn.lost += 1;
                }
            }
            thread::sleep(TAIL);
            turn.load.set_active(false);
            if turn.load.failed() + turn.polled.failed > failed_before {
                turn.saves_with_failure += 1;
            }
        }
    }
    println!(
        "Save to the first response from the new version: {} saves, each after a {} ms pause; \
         through each loop's turn, {} load connection(s) at {} requests/s each and a poller \
         asking every {} ms",
        options.saves,
        options.pause.as_millis(),
        options.load,
        match options.load_rate {
            0 => "as many".to_owned(),
            rate => rate.to_string(),
        },
        POLL_GAP.as_millis()
    );
    println!();
    println!(
        "| loop | p50 ms | p95 ms | max ms | failed requests (poller + load) | saves with a failure | \
         load requests answered | keep-alive connections found closed |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let floor = turns
        .iter()
        .find(|turn| turn.server.kind == Kind::Floor)
        .map(|turn| turn.samples.clone());
    let live = turns
        .iter()
        .find(|turn| turn.server.kind == Kind::Live)
        .map(|turn| percentile(&turn.samples, 50.0));
    for turn in &turns {
        let p = |q| percentile(&turn.samples, q);
        let figure = |q: f64| match (&floor, turn.server.kind) {
            (Some(floor), Kind::Live) => {
                let floor = percentile(floor, q);
                format!("{floor:.2} + {:.2}", p(q) - floor)
            }
            (_, Kind::Watchexec | Kind::WatchexecNoDebounce) if q == 50.0 => match live {
                Some(live) => format!("{:.2} ({:.1}x)", p(q), p(q) / live),
                None => format!("{:.2}", p(q)),
            },
            _ => format!("{:.2}", p(q)),
        };
        let closed = turn.poller.closed_while_idle
            + turn.load.shared.closed_while_idle.load(Ordering::SeqCst);
        println!(
            "| {} | {} | {} | {:.2} | {} + {} | {} of {} | {} | {closed} |",
            turn.server.kind.label(),
            figure(50.0),
            figure(95.0),
            p(100.0),
            turn.polled.failed,
            turn.load.failed(),
            turn.saves_with_failure,
            options.saves,
            turn.load.answered(),
        );
    }
    println!();
    for turn in &turns {
        let mut reasons = turn.polled.reasons.clone();
        for why in turn.load.reasons() {
            if !reasons.contains(&why) {
                reasons.push(why);
            }
        }
        if !reasons.is_empty() {
            println!(
                "- {} failures: {}",
                turn.server.kind.label(),
                reasons.join("; ")
            );
        }
        if turn.lost > 0 {
            println!(
                "- {}: {} saves never answered within {VERSION_WAIT:?}",
                turn.server.kind.label(),
                turn.lost
            );
        }
    }
    println!(
        "- live-wasm figures are `floor + X`; the watchexec loops' p50 with how many times live-wasm's it is"
    );
    println!();
}

/// (c) live-wasm's memory over many requests and saves.
fn memory(options: &Options, tools: &Tools, handler: &Handler) {
    eprintln!("measuring: rss");
    let Some(mut server) = start_servers(&[Kind::Live], handler, tools).pop() else {
        return;
    };
    let load = Load::start(server.addr, options.load.max(1), Duration::ZERO, 0);
    load.set_active(true);
    let mut poller = Client::new(server.addr);
    let warm_up = 1_000;
    let wait_answered = |count: u64| {
        load.shared.budget.store(count, Ordering::SeqCst);
        let deadline = Instant::now() + VERSION_WAIT;
        while load.answered() + load.failed() < count && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(1));
        }
    };
    wait_answered(warm_up);
    let mut rows = vec![("start", load.answered(), 0, process_stats(server.pid()))];
    let saves = options.rss_saves;
    let mut lost = 0;
    let mut failed = 0;
    for n in 1..=saves.max(1) {
        if n <= saves {
            save(&server.entry(), handler.version(n), Save::Rename);
            match server.wait_for(&mut poller, n) {
                Ok(polled) => failed += polled.failed,
                Err(why) => {
                    eprintln!("{why}");
                    lost += 1;
                }
            }
        }
        let target = warm_up + options.rss_requests * u64::from(n) / u64::from(saves.max(1));
        wait_answered(target);
        if n == saves.max(1) / 2 {
            rows.push(("middle", load.answered(), n, process_stats(server.pid())));
        }
    }
    rows.push(("end", load.answered(), saves, process_stats(server.pid())));
    println!(
        "live-wasm's memory: {} requests over {} connection(s) and {saves} saves (after {warm_up} requests to warm up)",
        options.rss_requests,
        options.load.max(1)
    );
    println!();
    println!("| point | requests answered | saves | RSS MiB | anonymous MiB | fds | threads |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let mib = |kib: u64| kib as f64 / 1024.0;
    for (point, answered, n, stats) in &rows {
        println!(
            "| {point} | {answered} | {n} | {:.1} | {:.1} | {} | {} |",
            mib(stats.rss_kib),
            mib(stats.anon_kib),
            stats.fds,
            stats.threads
        );
    }
    println!();
    if let (Some(first), Some(last)) = (rows.first(), rows.last()) {
        let middle = &rows[rows.len() / 2];
        println!(
            "- RSS from start to end {:+.1} MiB, from middle to end {:+.1} MiB; {} failed requests (load), {failed} (poller), {lost} saves never answered",
            mib(last.3.rss_kib) - mib(first.3.rss_kib),
            mib(last.3.rss_kib) - mib(middle.3.rss_kib),
            load.failed(),
        );
        println!();
    }
    drop(load);
    drop(server);
}
