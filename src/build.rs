//! `--build CMD`: the user's build command, run through `sh -c` before a run,
//! and the one model of a build's life that the session, the watcher and this
//! module keep together.
//!
//! A build runs in a process group of its own, so stopping it (a save during
//! the build, Ctrl-C) stops everything it started: compilers, linkers, cargo's
//! rustc. It inherits the user's environment: it is the user's own tool, not
//! the guest. Its stdout and stderr both go to our stderr, in order, as they
//! come, so the guest's stdout stays clean; under `--events json` they are
//! captured into the `build-finished` event instead, as every line on stderr
//! must be JSON there.
//!
//! When the progress line is drawn (`progress.rs`: our stderr is a terminal),
//! the build writes to a pseudo-terminal of its own ([`terminal`]) and we
//! pass what it writes on to ours. It sees a terminal as it would without us
//! (compilers keep their colours and their own progress bars, sized to our
//! terminal), and we see what it writes: our line is erased before each
//! piece of its output, drawn again only once it has been quiet for a while,
//! and never over a partial line (cargo's bar, a prompt). Writing to our
//! terminal directly instead, the build's lines and ours would overwrite
//! each other, as we cannot tell when it writes; piping its output through
//! us would cost its colours and bars.
//!
//! # One model of a build's life
//!
//! **Sources and outputs.** The sources are the `--watch` paths, or, without
//! any, the files under the current folder that no ignore file excludes and
//! that sit in no build folder (`target/`, `node_modules/`, ...: see
//! `watch/sources.rs`). A source the guest also reads is still a source. The
//! entry, the modules the last run used, and the `--stdin` file are never
//! sources: builds write them, and their change between builds calls for a
//! run only. Nor is a `.wasm` under the current folder (`--watch` may name
//! one): builds make them. The outputs are the files a build made (absent when it started)
//! and the sources it keeps rewriting (below); an output never starts a
//! build, until it is saved between builds, which makes it a source again.
//!
//! **A save during a build is never lost.** A source that existed when the
//! build started and changes while it runs (or while its last events are
//! settled once it has ended) makes the build out of date: its result is
//! dropped (reported as stopped by a change) and the next build starts once
//! it has ended, its trigger naming every change since the last run. The
//! build is not killed at once: it may still end by itself within its
//! patience ([`Patience`]: twice as long as the last build that ran to its
//! end, plus half a second, counted from its start); past that its whole process
//! group is killed. So a save during a build that would not end by itself (a
//! hung tool, a long sleep) starts the next build within that time, and a
//! build that writes one of its sources and then ends shows it: it ran to
//! its end though its source changed. That holds however many builds in a
//! row a person saves during, short of the rule below.
//!
//! **A build's processes end with it.** When the shell exits, what is left of
//! its group is killed with it, before its pid is reaped (so the group's id
//! names nothing else yet); a stopped build is killed the same way. No
//! process a build started in the background writes into the project after
//! it (a write there would be a save), or holds its output pipe past it. The
//! one way around it is leaving the group (`setsid`, a daemon): such a
//! process is the user's to manage; it costs us no thread, as the output is
//! read only until the build's result is taken. (Windows has no process
//! groups: a stopped build's shell and its descendants are ended with
//! `taskkill /T`, and what a build leaves running after its shell exits is
//! not ended there.)
//!
//! **A build that keeps triggering itself stops.** Only builds that ran to
//! their end count: a build killed because a save made it out of date proves
//! nothing about who wrote the file, and a person's save that lands in a
//! build that would not end by itself always kills it. When the same source
//! has changed during 3 builds in a row that ran to their end (`SELF_WRITES`
//! in `watch.rs`), with no change seen between builds and no build in
//! between that ran to its end without it changing, the builds are writing
//! it themselves (`date > stamp.txt`, a background writer the build
//! outlives): a warning names it, it becomes an output, the last of those
//! builds is taken as it is (its change is dropped from the next build's
//! trigger) and run, and the session waits for a save. From then on a change
//! of that file during a build is the build's; a save of it between builds
//! makes it a source again. A build killed past its patience leaves the
//! counts as they are. What this cannot tell apart: a person who saves the
//! same file during each of 3 builds in a row that all end by themselves
//! (builds short enough to end before the next save is noticed); their last
//! save then waits for the next save of anything. A person's saves landing
//! in builds that only a save ends, or one save at a time, never are.
//! A build that rewrites a source and then never ends by itself is rebuilt
//! once per patience, like a person saving during every build.
//!
//! **A build that fails, or cannot start** (its folder removed, no `sh`),
//! is reported with its exit status or its reason; the previous program is
//! not run again, and the session waits for the next save. With `--once` it
//! is status 1.
//!
//! **What is watched.** Build folders and ignored folders are never sources;
//! their files' changes start nothing, though the entry may be built into
//! one (its folder is watched as the entry's).

mod hint;
#[cfg(unix)]
mod terminal;

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use crossbeam_channel::{Receiver, bounded};

use crate::progress::{Ongoing, Progress};
pub(crate) use hint::hint;

/// The most build output an event carries: the end of it, where errors are.
const OUTPUT_KEPT: usize = 64 * 1024;

/// A build in progress.
pub(crate) struct Build {
    /// Its process group; none when it could not start.
    group: Option<Arc<Group>>,
    finished: Receiver<Built>,
}

/// How a build ended.
#[derive(Debug, Clone)]
pub(crate) struct Built {
    /// The command's exit status (`None` when a signal ended it, or it could
    /// not start).
    pub code: Option<i32>,
    /// True when it exited with status 0.
    pub success: bool,
    /// How long it took.
    pub duration: Duration,
    /// Its stdout and stderr, when captured: the last 64 KiB, lossily UTF-8.
    pub output: Option<String>,
    /// Why it could not start (its folder gone, no `sh`, no process left).
    pub error: Option<String>,
}

/// Where a build's output goes.
#[derive(Debug, Clone)]
pub(crate) enum BuildOutput {
    /// Straight to our stderr.
    Stderr,
    /// Kept for the `build-finished` event.
    Captured,
    /// Through a terminal of its own, passed on to ours around the
    /// progress line. (Unix's: elsewhere, as [`BuildOutput::Stderr`].)
    Relayed(#[cfg_attr(not(unix), allow(dead_code))] Arc<Progress>),
}

impl Build {
    /// Starts `command` in `cwd`, its output going to `output`, as `stage`
    /// of the progress line (which ends with it). A build that cannot start
    /// is a failed build, its result already there: the session goes on.
    pub(crate) fn start(command: &str, cwd: &Path, output: BuildOutput, stage: Ongoing) -> Build {
        Build::spawn(command, cwd, output, stage).unwrap_or_else(|err| {
            let (send, finished) = bounded(1);
            let _ = send.send(Built::not_started(format!("{err:#}")));
            Build {
                group: None,
                finished,
            }
        })
    }

    fn spawn(command: &str, cwd: &Path, output: BuildOutput, stage: Ongoing) -> Result<Build> {
        let mut shell = Command::new("sh");
        shell
            .arg("-c")
            .arg(command)
            .current_dir(cwd)
            .stdin(Stdio::null());
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut shell, 0);
        let output = match output {
            BuildOutput::Captured => {
                let (reader, writer) =
                    std::io::pipe().context("cannot make a pipe for the build")?;
                shell
                    .stdout(Stdio::from(writer.try_clone()?))
                    .stderr(Stdio::from(writer));
                Some(Output::read(reader, Sink::Keep(Arc::default()))?)
            }
            #[cfg(unix)]
            BuildOutput::Relayed(progress) if let Ok((reader, writer)) = terminal::open() => {
                shell
                    .stdout(Stdio::from(writer.try_clone()?))
                    .stderr(Stdio::from(writer));
                Some(Output::read(reader, Sink::Relay(progress))?)
            }
            // Without a terminal of its own, on ours.
            BuildOutput::Relayed(_) | BuildOutput::Stderr => {
                shell.stdout(dup_stderr()?).stderr(Stdio::inherit());
                None
            }
        };
        let started = Instant::now();
        let child = shell.spawn().with_context(|| {
            let gone = if cwd.is_dir() {
                ""
            } else {
                " (no such folder)"
            };
            format!(
                "cannot start `sh -c {command:?}` in {}{gone}",
                cwd.display()
            )
        })?;
        // Our copies of the pipe's write end must be gone for the reader to see
        // the end of the output.
        drop(shell);
        let group = Arc::new(Group {
            leader: child.id(),
            reaped: Mutex::new(false),
        });
        let ending = Arc::clone(&group);
        let (send, finished) = bounded(1);
        let waiter = thread::Builder::new()
            .name("live-wasm-build".to_owned())
            .spawn(move || {
                let status = ending.end(child);
                let duration = started.elapsed();
                let output = output.and_then(Output::take);
                // Its line is gone before its result is said.
                drop(stage);
                let _ = send.send(Built::from(status, duration, output));
            });
        if let Err(err) = waiter {
            group.kill();
            return Err(err).context("cannot start the build's thread");
        }
        Ok(Build {
            group: Some(group),
            finished,
        })
    }

    /// Sends the result once the build has ended.
    pub(crate) fn finished(&self) -> &Receiver<Built> {
        &self.finished
    }

    /// Stops the build and everything it started; its result still comes.
    pub(crate) fn stop(&self) {
        if let Some(group) = &self.group {
            group.kill();
        }
    }
}

/// How long a build that a change made out of date may still run, from its
/// start, before it is killed: twice as long as the last build that ran to
/// its end, plus [`Patience::MARGIN`]. Before any build has run to its end,
/// one second, doubled for each build killed in a row since, so a build
/// that writes a source and then takes long still runs to its end once.
#[derive(Debug, Default)]
pub(crate) struct Patience {
    /// How long the last build that ran to its end took.
    last: Option<Duration>,
    /// Builds killed past their patience since one ran to its end.
    killed: u32,
}

impl Patience {
    /// Added to twice the last build's time: what a loaded machine adds.
    pub(crate) const MARGIN: Duration = Duration::from_millis(500);
    /// The patience before any build has run to its end.
    const FIRST: Duration = Duration::from_secs(1);

    /// How long the next out-of-date build may run, from its start.
    pub(crate) fn allowed(&self) -> Duration {
        match self.last {
            Some(last) => last.saturating_mul(2).saturating_add(Self::MARGIN),
            None => Self::FIRST.saturating_mul(1 << self.killed.min(10)),
        }
    }

    /// A build has ended: by itself after `duration`, or `killed`.
    pub(crate) fn ended(&mut self, killed: bool, duration: Duration) {
        if killed {
            self.killed = self.killed.saturating_add(1);
        } else {
            (self.last, self.killed) = (Some(duration), 0);
        }
    }
}

/// A build's process group: its shell, which leads it, and everything the
/// shell started that did not leave it. The group ends with the shell, so
/// nothing a build leaves running writes into the project after it (a write
/// there would be taken for a save) or holds its output pipe.
struct Group {
    leader: u32,
    /// Set once the leader is reaped: from then on its pid, the group's id,
    /// may name another process, and is never signalled.
    reaped: Mutex<bool>,
}

impl Group {
    /// Kills every process of the group, unless it is over.
    fn kill(&self) {
        let reaped = self.reaped.lock().unwrap_or_else(PoisonError::into_inner);
        if !*reaped {
            kill_group(self.leader);
        }
    }

    /// Waits for the shell to exit, kills what is left of its group while
    /// the shell's unreaped pid still holds the group's id, then reaps it.
    fn end(&self, mut shell: Child) -> Option<ExitStatus> {
        #[cfg(unix)]
        {
            let pid: libc::id_t = self.leader;
            loop {
                // SAFETY: waitid(2) fills the zeroed siginfo_t we own;
                // WNOWAIT leaves the child to be reaped below.
                let exited = unsafe {
                    let mut info: libc::siginfo_t = std::mem::zeroed();
                    libc::waitid(libc::P_PID, pid, &mut info, libc::WEXITED | libc::WNOWAIT)
                };
                if exited == 0
                    || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted
                {
                    break;
                }
            }
            self.kill();
        }
        // Elsewhere there is no group to sweep once the shell has exited:
        // what it left running is no longer in its process tree.
        let mut reaped = self.reaped.lock().unwrap_or_else(PoisonError::into_inner);
        let status = shell.wait().ok();
        *reaped = true;
        status
    }
}

impl Built {
    fn from(status: Option<ExitStatus>, duration: Duration, output: Option<String>) -> Built {
        Built {
            code: status.and_then(|status| status.code()),
            success: status.is_some_and(|status| status.success()),
            duration,
            output,
            error: None,
        }
    }

    fn not_started(error: String) -> Built {
        Built {
            code: None,
            success: false,
            duration: Duration::ZERO,
            output: None,
            error: Some(error),
        }
    }
}

/// Sends SIGKILL to the process group that `leader` leads: the group is the
/// build's own (`process_group(0)` above), and its leader, not reaped yet,
/// holds its id.
#[cfg(unix)]
fn kill_group(leader: u32) {
    if let Ok(pid) = i32::try_from(leader) {
        // SAFETY: kill(2) with a negative pid signals that process group.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
}

/// Windows has no process groups: `taskkill /T /F` ends the shell and the
/// processes it started that are still its descendants. Its pid names no
/// other process while it is not reaped (our `Child` holds its handle).
#[cfg(windows)]
fn kill_group(leader: u32) {
    let _ = Command::new("taskkill")
        .args(["/T", "/F", "/PID"])
        .arg(leader.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// A second handle on our stderr, for the build's stdout.
#[cfg(unix)]
fn dup_stderr() -> Result<Stdio> {
    use std::os::fd::AsFd;
    Ok(Stdio::from(std::io::stderr().as_fd().try_clone_to_owned()?))
}

/// A second handle on our stderr, for the build's stdout.
#[cfg(windows)]
fn dup_stderr() -> Result<Stdio> {
    use std::os::windows::io::AsHandle;
    Ok(Stdio::from(
        std::io::stderr().as_handle().try_clone_to_owned()?,
    ))
}

/// A build's output, read as it comes: the last [`OUTPUT_KEPT`] bytes kept,
/// or passed on to our terminal.
///
/// Read on a thread of its own, so the build ends when its shell exits: a
/// process it left running that escaped its group (`setsid`) may hold the
/// pipe open for much longer. The thread stops reading once the build's
/// output is taken, so such a process costs no thread and no pipe past it.
struct Output {
    sink: Sink,
    done: Receiver<()>,
    /// Tells the reading thread to stop.
    stop: Arc<AtomicBool>,
}

/// What becomes of a build's output.
#[derive(Clone)]
enum Sink {
    /// Kept, its end, for the event.
    Keep(Arc<Mutex<Vec<u8>>>),
    /// Written to our stderr, around the progress line.
    #[cfg_attr(not(unix), allow(dead_code))]
    Relay(Arc<Progress>),
}

impl Sink {
    fn take(&self, bytes: &[u8]) {
        match self {
            Sink::Keep(kept) => {
                let mut kept = kept.lock().unwrap_or_else(PoisonError::into_inner);
                kept.extend_from_slice(bytes);
                if kept.len() > 2 * OUTPUT_KEPT {
                    let excess = kept.len() - OUTPUT_KEPT;
                    kept.drain(..excess);
                }
            }
            Sink::Relay(progress) => progress.write(bytes),
        }
    }
}

/// What the output thread reads: a pipe, or a terminal's master side.
#[cfg(unix)]
trait Source: Read + Send + std::os::fd::AsRawFd + 'static {}
#[cfg(unix)]
impl<T: Read + Send + std::os::fd::AsRawFd + 'static> Source for T {}
#[cfg(not(unix))]
trait Source: Read + Send + 'static {}
#[cfg(not(unix))]
impl<T: Read + Send + 'static> Source for T {}

/// How long output already written by an exited build may take to arrive.
const OUTPUT_GRACE: Duration = Duration::from_millis(200);

/// How often the reading thread looks whether it is to stop.
const OUTPUT_LOOK: Duration = Duration::from_millis(50);

impl Output {
    fn read(mut reader: impl Source, sink: Sink) -> Result<Output> {
        let (send, done) = bounded(1);
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let to = sink.clone();
        thread::Builder::new()
            .name("live-wasm-build-output".to_owned())
            .spawn(move || {
                let mut buffer = [0u8; 8192];
                while !stopped.load(Ordering::Relaxed) {
                    if !readable(&reader, OUTPUT_LOOK) {
                        continue;
                    }
                    // A terminal's master side says its end with EIO.
                    match reader.read(&mut buffer) {
                        Ok(read @ 1..) => to.take(&buffer[..read]),
                        Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                        Ok(0) | Err(_) => break,
                    }
                }
                let _ = send.send(());
            })
            .context("cannot start the build's output thread")?;
        Ok(Output { sink, done, stop })
    }

    /// The output so far, when kept, once the pipe is closed or after
    /// [`OUTPUT_GRACE`]; the reading stops there.
    fn take(self) -> Option<String> {
        let _ = self.done.recv_timeout(OUTPUT_GRACE);
        self.stop.store(true, Ordering::Relaxed);
        let Sink::Keep(kept) = &self.sink else {
            return None;
        };
        let kept = kept.lock().unwrap_or_else(PoisonError::into_inner);
        let start = kept.len().saturating_sub(OUTPUT_KEPT);
        Some(String::from_utf8_lossy(&kept[start..]).into_owned())
    }
}

/// Whether `pipe` has something to read (or its end) within `wait`: a
/// `read` then returns at once. A failed look says yes, for `read` to fail.
fn readable(pipe: &impl Source, wait: Duration) -> bool {
    #[cfg(unix)]
    {
        let mut look = libc::pollfd {
            fd: pipe.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let millis = libc::c_int::try_from(wait.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: poll(2) on one pollfd we own, for a descriptor `pipe` holds.
        let ready = unsafe { libc::poll(&mut look, 1, millis) };
        match ready {
            0 => false,
            1.. => true,
            _ => std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (pipe, wait);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Starts `command` in `dir`, its output captured.
    fn start(command: &str, dir: &Path) -> Build {
        let stage = Arc::new(Progress::default()).begin(crate::progress::What::build(command));
        Build::start(command, dir, BuildOutput::Captured, stage)
    }

    fn wait(build: &Build) -> Built {
        build
            .finished()
            .recv_timeout(Duration::from_secs(20))
            .expect("the build ends")
    }

    #[test]
    fn patience_follows_the_last_build_that_ran_to_its_end() {
        let mut patience = Patience::default();
        assert_eq!(patience.allowed(), Duration::from_secs(1));
        patience.ended(true, Duration::from_millis(1000));
        assert_eq!(patience.allowed(), Duration::from_secs(2));
        patience.ended(false, Duration::from_millis(20));
        assert_eq!(patience.allowed(), Duration::from_millis(540));
        // A build killed past its patience does not change it.
        patience.ended(true, Duration::from_millis(540));
        assert_eq!(patience.allowed(), Duration::from_millis(540));
        patience.ended(false, Duration::MAX);
        assert_eq!(patience.allowed(), Duration::MAX);
    }

    #[test]
    fn a_build_reports_its_status_and_output() {
        let dir = std::env::temp_dir();
        let ok = start("echo out; echo err >&2", &dir);
        let built = wait(&ok);
        assert!(built.success);
        assert_eq!(
            (built.code, built.output.as_deref()),
            (Some(0), Some("out\nerr\n"))
        );
        let failed = wait(&start("exit 3", &dir));
        assert_eq!((failed.success, failed.code), (false, Some(3)));
    }

    #[test]
    fn a_build_ends_when_its_shell_does_though_a_child_holds_the_output() {
        let dir = tempfile::tempdir().expect("tempdir");
        let build = start("echo built; sleep 60 &", dir.path());
        let built = wait(&build);
        assert!(built.duration < Duration::from_secs(20), "{built:?}");
        assert_eq!(built.output.as_deref(), Some("built\n"));
        build.stop();
    }

    #[test]
    fn stopping_a_build_stops_what_it_started() {
        let dir = tempfile::tempdir().expect("tempdir");
        // The shell starts a child of its own and says its pid.
        let build = start("sleep 60 & echo $! > pid; wait", dir.path());
        let pid_file = dir.path().join("pid");
        let deadline = Instant::now() + Duration::from_secs(20);
        let pid = loop {
            if let Some(pid) = std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|text| text.trim().parse::<u32>().ok())
            {
                break pid;
            }
            assert!(
                Instant::now() < deadline,
                "the build never started its child"
            );
            std::thread::sleep(Duration::from_millis(5));
        };
        build.stop();
        let built = wait(&build);
        assert!(!built.success && built.code.is_none(), "{built:?}");
        // The grandchild is gone too, killed with its group (a zombie, at most,
        // until init reaps it).
        let alive = || {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                stat.rsplit(") ")
                    .next()
                    .is_some_and(|rest| !rest.starts_with('Z'))
            })
        };
        while alive() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(!alive(), "sleep {pid} outlived its build");
    }
}
