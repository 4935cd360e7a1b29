//! Test helpers: a temp directory saved into the ways editors save, the real
//! `live-wasm` binary driven on it, and bounded waits on its output.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::thread;
use std::time::{Duration, Instant};

/// How long any single expected line may take: generous, since CI machines are
/// slow and debug builds slower; a passing test never waits this long.
pub const WAIT: Duration = Duration::from_secs(20);

/// A temporary project directory, and a cache folder of its own for the
/// sessions run on it (so no test sees what another compiled).
pub struct Dir {
    dir: tempfile::TempDir,
    cache: tempfile::TempDir,
}

impl Dir {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
            cache: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// The `live-wasm` binary, to run in this directory with its own cache
    /// (`$XDG_CACHE_HOME/live-wasm`).
    pub fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_live-wasm"));
        command
            .current_dir(self.root())
            .env("XDG_CACHE_HOME", self.cache.path());
        command
    }

    /// The disk cache of the sessions run here.
    pub fn cache(&self) -> PathBuf {
        self.cache.path().join("live-wasm")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).expect("read")
    }

    /// Saves in place: open, truncate, write, close (vim's default, most tools).
    pub fn write(&self, name: &str, contents: &str) {
        std::fs::write(self.path(name), contents).expect("write");
    }

    /// Saves by writing a temporary file beside it and renaming it over (VS Code,
    /// JetBrains, vim with `backupcopy=no`).
    pub fn write_rename(&self, name: &str, contents: &str) {
        let (folder, file) = name.rsplit_once('/').unwrap_or(("", name));
        let temp = self.path(folder).join(format!(".{file}.tmp~"));
        std::fs::write(&temp, contents).expect("write temp");
        std::fs::rename(&temp, self.path(name)).expect("rename");
    }

    /// Saves by deleting the file and creating it again.
    pub fn delete_recreate(&self, name: &str, contents: &str) {
        std::fs::remove_file(self.path(name)).expect("remove");
        std::fs::write(self.path(name), contents).expect("recreate");
    }

    /// Runs a shell tool (`cp`, `mv`, `sed`, `vim`) in this directory.
    pub fn tool(&self, program: &str, args: &[&str]) {
        let status = Command::new(program)
            .args(args)
            .current_dir(self.root())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .unwrap_or_else(|err| panic!("cannot run {program}: {err}"));
        assert!(status.success(), "{program} {args:?} failed: {status}");
    }
}

/// Which stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Out,
    Err,
}

/// A running `live-wasm`, its output read line by line.
///
/// Stdout and stderr are separate pipes, so the order between them is not
/// kept: each stream has its own queue, and a wait on one never consumes the other.
pub struct LiveWasm {
    child: Child,
    lines: Receiver<(Stream, String)>,
    /// Lines read but not yet consumed, per stream.
    unread: [VecDeque<String>; 2],
    /// Everything read so far, for failure messages.
    seen: Vec<(Stream, String)>,
    /// How long one expected line may take.
    wait: Duration,
}

pub fn live_wasm(dir: &Dir, args: &[&str]) -> LiveWasm {
    live_wasm_with_env(dir, &[], args)
}

/// `live-wasm` with these variables set in its environment (and its builds').
pub fn live_wasm_with_env(dir: &Dir, env: &[(String, String)], args: &[&str]) -> LiveWasm {
    let mut command = dir.command();
    command
        .args(args)
        .envs(env.iter().map(|(key, value)| (key, value)));
    spawn(dir, command)
}

/// `live-wasm` in a user namespace of its own where it may hold only `watches`
/// inotify watches, as on a machine whose `fs.inotify.max_user_watches` is spent.
pub fn live_wasm_with_watch_limit(dir: &Dir, watches: u32, args: &[&str]) -> LiveWasm {
    let mut command = Command::new("unshare");
    command.env("XDG_CACHE_HOME", dir.cache.path()).args([
        "--user",
        "--map-root-user",
        "sh",
        "-c",
        r#"echo "$1" > /proc/sys/user/max_inotify_watches && shift && exec "$@""#,
        "sh",
        &watches.to_string(),
        env!("CARGO_BIN_EXE_live-wasm"),
    ]);
    command.args(args);
    spawn(dir, command)
}

/// `live-wasm` allowed to hold only `files` open files at once (`ulimit -n`),
/// as on a machine whose limit is low.
pub fn live_wasm_with_open_file_limit(dir: &Dir, files: u32, args: &[&str]) -> LiveWasm {
    let mut command = Command::new("sh");
    command.env("XDG_CACHE_HOME", dir.cache.path()).args([
        "-c",
        r#"ulimit -n "$1" && shift && exec "$@""#,
        "sh",
        &files.to_string(),
        env!("CARGO_BIN_EXE_live-wasm"),
    ]);
    command.args(args);
    spawn(dir, command)
}

/// Starts `command` (which runs `live-wasm` in the end) in `dir`, its output
/// read line by line.
pub fn spawn(dir: &Dir, mut command: Command) -> LiveWasm {
    let mut child = command
        .current_dir(dir.root())
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start live-wasm");
    let (sender, lines) = channel();
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    for (stream, reader) in [
        (Stream::Out, Box::new(stdout) as Box<dyn Read + Send>),
        (Stream::Err, Box::new(stderr)),
    ] {
        let sender = sender.clone();
        thread::spawn(move || {
            for line in BufReader::new(reader).lines() {
                let Ok(line) = line else { break };
                if sender.send((stream, line)).is_err() {
                    break;
                }
            }
        });
    }
    LiveWasm {
        child,
        lines,
        unread: [VecDeque::new(), VecDeque::new()],
        seen: Vec::new(),
        wait: WAIT,
    }
}

impl LiveWasm {
    /// Lets each expected line take up to `wait` instead of [`WAIT`] (for
    /// sessions whose runs include a compiler's build).
    pub fn set_wait(&mut self, wait: Duration) {
        self.wait = wait;
    }

    /// Waits for the next line of `stream` matching `wanted`, skipping the
    /// lines of that stream before it; panics with everything seen if none
    /// comes within the wait (see [`Self::set_wait`]).
    pub fn expect(&mut self, stream: Stream, wanted: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + self.wait;
        loop {
            while let Some(line) = self.unread[stream as usize].pop_front() {
                if wanted(&line) {
                    return line;
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((from, line)) => {
                    self.seen.push((from, line.clone()));
                    self.unread[from as usize].push_back(line);
                }
                Err(RecvTimeoutError::Timeout) => panic!("timed out; {}", self.transcript()),
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("live-wasm closed its output; {}", self.transcript())
                }
            }
        }
    }

    /// Waits for guest output `text` on stdout.
    pub fn expect_stdout(&mut self, text: &str) {
        self.expect(Stream::Out, |line| line == text);
    }

    /// Waits for the next status line of a run, and checks it is run `number`
    /// and contains `text`. Because every run prints one, this also proves that
    /// no run happened in between.
    pub fn expect_run(&mut self, number: u64, text: &str) -> String {
        let line = self.expect(Stream::Err, |line| line.starts_with("[live-wasm] #"));
        let prefix = format!("[live-wasm] #{number} ");
        assert!(
            line.starts_with(&prefix) && line.contains(text),
            "expected run #{number} with {text:?}, got {line:?}; {}",
            self.transcript()
        );
        line
    }

    /// Waits for a status line (not a run summary) containing `text`.
    pub fn expect_status(&mut self, text: &str) -> String {
        self.expect(Stream::Err, |line| line.contains(text))
    }

    /// The stdout lines read so far, consumed or not.
    pub fn stdout_seen(&self) -> Vec<String> {
        self.seen
            .iter()
            .filter(|(stream, _)| *stream == Stream::Out)
            .map(|(_, line)| line.clone())
            .collect()
    }

    /// The process id of the session.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGINT, as Ctrl-C in a terminal does, and waits until the
    /// process has taken it: two presses sent before it runs again would be
    /// one pending signal, seen once.
    pub fn ctrl_c(&self) {
        self.signal("INT");
        let status = format!("/proc/{}/status", self.child.id());
        let deadline = Instant::now() + WAIT;
        while sigint_pending(&status) {
            assert!(Instant::now() < deadline, "SIGINT not taken in {WAIT:?}");
            thread::sleep(Duration::from_millis(1));
        }
    }

    /// Sends the signal `name` (`INT`, `TERM`, `HUP`: as `kill -NAME`).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Sends the signal `name` and checks the process exits with `status`.
    pub fn signal_ends_it(&mut self, name: &str, status: i32) {
        self.signal(name);
        let code = self.wait_exit();
        assert_eq!(code, status, "SIG{name}; {}", self.transcript());
    }

    /// Waits for the process to exit and returns its status code.
    pub fn wait_exit(&mut self) -> i32 {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "live-wasm did not exit; {}",
                self.transcript()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Reads the rest of the session's output, to its end (once it has
    /// exited), into what [`Self::stdout_seen`] shows.
    pub fn read_to_end(&mut self) {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(RecvTimeoutError::Disconnected) => return,
                Err(RecvTimeoutError::Timeout) => {
                    panic!("the output did not end; {}", self.transcript())
                }
            }
        }
    }

    /// Everything read from the session so far, for a failure message or a check.
    pub fn transcript(&mut self) -> String {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
        let lines: Vec<String> = self
            .seen
            .iter()
            .map(|(stream, line)| format!("  {stream:?}: {line}"))
            .collect();
        format!("output so far:\n{}", lines.join("\n"))
    }
}

/// Whether the process whose `/proc/PID/status` this is has a SIGINT sent to
/// it and not yet delivered (a process that has exited has none).
fn sigint_pending(status: &str) -> bool {
    const SIGINT: u64 = 1 << (2 - 1);
    let Ok(status) = std::fs::read_to_string(status) else {
        return false;
    };
    status
        .lines()
        .filter_map(|line| line.strip_prefix("ShdPnd:"))
        .filter_map(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .any(|mask| mask & SIGINT != 0)
}

impl Drop for LiveWasm {
    fn drop(&mut self) {
        end(&mut self.child);
    }
}

/// Asks a session to end (SIGTERM) before killing it: it then removes its
/// watcher's temporary folder, which a killed one leaves behind in the shared
/// temporary directory.
fn end(child: &mut std::process::Child) {
    // SAFETY: kill(2) with our own child's id and a valid signal.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    if exit_within(child, Duration::from_secs(2)).is_none() {
        let _ = child.kill();
    }
    let _ = child.wait();
}

/// Runs `live-wasm --once` to completion: (exit code, stdout, stderr).
pub fn once(dir: &Dir, args: &[&str]) -> (i32, String, String) {
    let output = dir
        .command()
        .arg("--once")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run live-wasm --once");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Runs `live-wasm --once` with its stdin a pipe we hold: `Some(input)` is
/// written and the pipe closed; `None` leaves it open and silent, as a terminal
/// nobody types in. Panics if it has not exited within [`WAIT`].
pub fn once_with_stdin(dir: &Dir, args: &[&str], input: Option<&[u8]>) -> (i32, String, String) {
    let mut child = dir
        .command()
        .arg("--once")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start live-wasm --once");
    let mut stdin = child.stdin.take().expect("stdin");
    // Held until the end of this function when there is no input.
    let _silent = match input {
        Some(input) => {
            stdin.write_all(input).expect("write the guest's input");
            drop(stdin);
            None
        }
        None => Some(stdin),
    };
    let Some(status) = exit_within(&mut child, WAIT) else {
        let output = child.wait_with_output().expect("wait");
        panic!(
            "live-wasm --once {args:?} still running after {WAIT:?}; stderr:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut stdout)
        .expect("read stdout");
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    (status.code().unwrap_or(-1), stdout, stderr)
}

/// Runs `live-wasm --once` expecting it to fail with `code` and `expected` in its
/// stderr; returns the stderr for further checks.
pub fn once_fails(dir: &Dir, args: &[&str], code: i32, expected: &str) -> String {
    let (actual, _, stderr) = once(dir, args);
    assert_eq!(actual, code, "exit status of {args:?}; stderr:\n{stderr}");
    assert!(
        stderr.contains(expected),
        "{expected:?} not in stderr of {args:?}:\n{stderr}"
    );
    stderr
}

/// A test of example `folder` cannot run here, for want of `missing`: says so
/// and lets the test skip, except under CI (`CI=true`), where
/// `.ci/install-guests` installs everything and a skip would hide a failure.
pub fn skip_example(folder: &str, missing: &str) {
    if std::env::var("CI").is_ok_and(|ci| ci == "true") {
        panic!("{missing}: CI installs it with .ci/install-guests");
    }
    // Past the test harness's capture, which would hide it: a skip is worth
    // seeing.
    let _ = writeln!(std::io::stderr(), "skipped the {folder} example: {missing}");
}

/// Runs `live-wasm --once` with its stdout and stderr each on a terminal (a
/// pseudo-terminal of its own): (exit code, what reached each terminal).
/// Panics if it has not exited within [`WAIT`].
pub fn once_on_terminal(dir: &Dir, args: &[&str]) -> (i32, Vec<u8>, Vec<u8>) {
    let (out_master, out_terminal) = pseudo_terminal();
    let (err_master, err_terminal) = pseudo_terminal();
    let mut command = dir.command();
    command
        .arg("--once")
        .args(args)
        .env("TERM", "xterm-256color")
        .stdin(Stdio::null())
        .stdout(Stdio::from(out_terminal))
        .stderr(Stdio::from(err_terminal));
    let mut child = command.spawn().expect("start live-wasm --once");
    // Our ends of the terminals closed: the readers see the end when it exits.
    drop(command);
    let readers = [out_master, err_master].map(|master| {
        thread::spawn(move || {
            let mut bytes = Vec::new();
            // Reading a terminal whose other side has closed fails (EIO): the end.
            let _ = std::fs::File::from(master).read_to_end(&mut bytes);
            bytes
        })
    });
    let Some(status) = exit_within(&mut child, WAIT) else {
        let _ = child.wait();
        panic!("live-wasm --once {args:?} still running after {WAIT:?}");
    };
    let [stdout, stderr] = readers.map(|reader| reader.join().expect("terminal reader"));
    (status.code().unwrap_or(-1), stdout, stderr)
}

/// A watch session with its stdout and stderr on one terminal, as a person
/// runs it: every byte that reaches the terminal, with when it came.
pub struct OnTerminal {
    child: std::process::Child,
    received: Received,
}

/// What a terminal received, piece by piece, with when each came.
type Received = std::sync::Arc<std::sync::Mutex<Vec<(Instant, Vec<u8>)>>>;

/// Starts `live-wasm ARGS` in `dir` on a terminal of its own.
pub fn live_wasm_on_terminal(dir: &Dir, args: &[&str]) -> OnTerminal {
    let (master, terminal) = pseudo_terminal();
    let mut command = dir.command();
    command
        .args(args)
        .env_remove("NO_COLOR")
        .env("TERM", "xterm-256color")
        .stdin(Stdio::null())
        .stdout(Stdio::from(terminal.try_clone().expect("dup terminal")))
        .stderr(Stdio::from(terminal));
    let child = command.spawn().expect("start live-wasm");
    drop(command);
    let received = Received::default();
    let sink = std::sync::Arc::clone(&received);
    thread::spawn(move || {
        let mut master = std::fs::File::from(master);
        let mut buffer = [0; 64 * 1024];
        // Reading a terminal whose other side has closed fails (EIO): the end.
        while let Ok(read @ 1..) = master.read(&mut buffer) {
            let mut received = sink.lock().expect("terminal bytes");
            received.push((Instant::now(), buffer[..read].to_vec()));
        }
    });
    OnTerminal { child, received }
}

/// What a terminal shows after the last clear.
pub const CLEAR: &str = "\x1b[2J\x1b[3J\x1b[H";

impl OnTerminal {
    /// Everything the terminal received so far, as text (`\r\n` as `\n`).
    pub fn text(&self) -> String {
        let received = self.received.lock().expect("terminal bytes");
        let bytes: Vec<u8> = received
            .iter()
            .flat_map(|(_, bytes)| bytes.clone())
            .collect();
        String::from_utf8_lossy(&bytes).replace("\r\n", "\n")
    }

    /// What the terminal shows: what came after the last clear.
    pub fn screen(&self) -> String {
        let text = self.text();
        match text.rfind(CLEAR) {
            Some(at) => text[at + CLEAR.len()..].to_owned(),
            None => text,
        }
    }

    /// Waits until the screen satisfies `wanted` and returns it; panics with
    /// what the terminal received if it does not within [`WAIT`].
    pub fn expect_screen(&self, what: &str, wanted: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let screen = self.screen();
            if wanted(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; the terminal received:\n{:?}",
                self.text()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// When the terminal received the byte at `offset` of everything.
    pub fn received_at(&self, offset: usize) -> Instant {
        let received = self.received.lock().expect("terminal bytes");
        let mut start = 0;
        for (when, bytes) in received.iter() {
            start += bytes.len();
            if offset < start {
                return *when;
            }
        }
        panic!("nothing received at {offset}")
    }

    /// Everything received, as bytes.
    pub fn bytes(&self) -> Vec<u8> {
        let received = self.received.lock().expect("terminal bytes");
        received
            .iter()
            .flat_map(|(_, bytes)| bytes.clone())
            .collect()
    }
}

impl Drop for OnTerminal {
    fn drop(&mut self) {
        end(&mut self.child);
    }
}

/// A new pseudo-terminal: (its master side, its terminal side).
fn pseudo_terminal() -> (std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
    use std::os::fd::FromRawFd;
    let (mut master, mut terminal) = (-1, -1);
    // SAFETY: openpty writes two descriptors through pointers to our ints; the
    // name, termios and window size are optional and not asked for (null, and
    // `*mut`: macOS's libc declares them so, Linux's `*const`).
    let opened = unsafe {
        libc::openpty(
            &mut master,
            &mut terminal,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    assert_eq!(opened, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just opened for us, and nothing else owns them.
    unsafe {
        (
            std::os::fd::OwnedFd::from_raw_fd(master),
            std::os::fd::OwnedFd::from_raw_fd(terminal),
        )
    }
}

/// The child's exit status, if it exits within `wait`; else it is killed
/// (and left for the caller to reap and report) and `None` is returned.
fn exit_within(
    child: &mut std::process::Child,
    wait: Duration,
) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + wait;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            return None;
        }
        thread::sleep(Duration::from_millis(10));
    }
}
