//! `--build CMD`: the user's build command, run through `sh -c` before a run.
//!
//! A build runs in a process group of its own, so stopping it (a save during
//! the build, Ctrl-C) stops everything it started: compilers, linkers, cargo's
//! rustc. It inherits the user's environment: it is the user's own tool, not
//! the guest. Its stdout and stderr both go to our stderr, in order, so the
//! guest's stdout stays clean; under `--events json` they are captured into the
//! `build-finished` event instead, as every line on stderr must be JSON there.

use std::io::Read;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use crossbeam_channel::{Receiver, bounded};

/// The most build output an event carries: the end of it, where errors are.
const OUTPUT_KEPT: usize = 64 * 1024;

/// A build in progress.
pub struct Build {
    pid: u32,
    finished: Receiver<Built>,
}

/// How a build ended.
#[derive(Debug, Clone)]
pub struct Built {
    /// The command's exit status (`None` when a signal ended it).
    pub code: Option<i32>,
    /// True when it exited with status 0.
    pub success: bool,
    /// How long it took.
    pub duration: Duration,
    /// Its stdout and stderr, when captured: the last 64 KiB, lossily UTF-8.
    pub output: Option<String>,
}

impl Build {
    /// Starts `command` in `cwd`; `capture` keeps its output for the events
    /// instead of passing it to our stderr.
    pub fn start(command: &str, cwd: &Path, capture: bool) -> Result<Build> {
        let mut shell = Command::new("sh");
        shell
            .arg("-c")
            .arg(command)
            .current_dir(cwd)
            .stdin(Stdio::null());
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut shell, 0);
        let (reader, writer) = std::io::pipe().context("cannot make a pipe for the build")?;
        let (out, err) = if capture {
            (Stdio::from(writer.try_clone()?), Stdio::from(writer))
        } else {
            drop(writer);
            let stderr = std::io::stderr();
            (Stdio::from(dup(&stderr)?), Stdio::inherit())
        };
        shell.stdout(out).stderr(err);
        let output = capture.then(|| Output::read(reader)).transpose()?;
        let started = Instant::now();
        let mut child = shell
            .spawn()
            .with_context(|| format!("--build: cannot start `sh -c {command:?}`"))?;
        // Our copies of the pipe's write end must be gone for the reader to see
        // the end of the output.
        drop(shell);
        let pid = child.id();
        let (send, finished) = bounded(1);
        thread::Builder::new()
            .name("live-wasm-build".to_owned())
            .spawn(move || {
                let status = child.wait();
                let duration = started.elapsed();
                let output = output.map(Output::take);
                let _ = send.send(Built::from(status.ok(), duration, output));
            })
            .context("cannot start the build's thread")?;
        Ok(Build { pid, finished })
    }

    /// Sends the result once the build has ended.
    pub fn finished(&self) -> &Receiver<Built> {
        &self.finished
    }

    /// Stops the build and everything it started; its result still comes.
    pub fn stop(&self) {
        #[cfg(unix)]
        if let Ok(pid) = i32::try_from(self.pid) {
            // SAFETY: kill(2) with a negative pid signals that process group;
            // the group is the build's own (`process_group(0)` above).
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
    }
}

impl Built {
    fn from(status: Option<ExitStatus>, duration: Duration, output: Option<String>) -> Built {
        Built {
            code: status.and_then(|status| status.code()),
            success: status.is_some_and(|status| status.success()),
            duration,
            output,
        }
    }
}

/// A second handle on our stderr, for the build's stdout.
fn dup(stderr: &std::io::Stderr) -> Result<std::os::fd::OwnedFd> {
    use std::os::fd::AsFd;
    Ok(stderr.as_fd().try_clone_to_owned()?)
}

/// A build's output, read as it comes, the last [`OUTPUT_KEPT`] bytes kept.
///
/// Read on a thread of its own, so the build ends when its shell exits: a
/// process it left running in the background (a compiler server, a daemon)
/// may hold the pipe open for much longer.
struct Output {
    kept: Arc<Mutex<Vec<u8>>>,
    done: Receiver<()>,
}

/// How long output already written by an exited build may take to arrive.
const OUTPUT_GRACE: Duration = Duration::from_millis(200);

impl Output {
    fn read(mut reader: impl Read + Send + 'static) -> Result<Output> {
        let kept = Arc::new(Mutex::new(Vec::new()));
        let (send, done) = bounded(1);
        let sink = Arc::clone(&kept);
        thread::Builder::new()
            .name("live-wasm-build-output".to_owned())
            .spawn(move || {
                let mut buffer = [0u8; 8192];
                while let Ok(read @ 1..) = reader.read(&mut buffer) {
                    let mut kept = sink.lock().unwrap_or_else(PoisonError::into_inner);
                    kept.extend_from_slice(&buffer[..read]);
                    if kept.len() > 2 * OUTPUT_KEPT {
                        let excess = kept.len() - OUTPUT_KEPT;
                        kept.drain(..excess);
                    }
                }
                let _ = send.send(());
            })
            .context("cannot start the build's output thread")?;
        Ok(Output { kept, done })
    }

    /// The output so far, once the pipe is closed or after [`OUTPUT_GRACE`].
    fn take(self) -> String {
        let _ = self.done.recv_timeout(OUTPUT_GRACE);
        let kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        let start = kept.len().saturating_sub(OUTPUT_KEPT);
        String::from_utf8_lossy(&kept[start..]).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait(build: &Build) -> Built {
        build
            .finished()
            .recv_timeout(Duration::from_secs(20))
            .expect("the build ends")
    }

    #[test]
    fn a_build_reports_its_status_and_output() {
        let dir = std::env::temp_dir();
        let ok = Build::start("echo out; echo err >&2", &dir, true).expect("start");
        let built = wait(&ok);
        assert!(built.success);
        assert_eq!(
            (built.code, built.output.as_deref()),
            (Some(0), Some("out\nerr\n"))
        );
        let failed = wait(&Build::start("exit 3", &dir, true).expect("start"));
        assert_eq!((failed.success, failed.code), (false, Some(3)));
    }

    #[test]
    fn a_build_ends_when_its_shell_does_though_a_child_holds_the_output() {
        let dir = tempfile::tempdir().expect("tempdir");
        let build = Build::start("echo built; sleep 60 &", dir.path(), true).expect("start");
        let built = wait(&build);
        assert!(built.duration < Duration::from_secs(20), "{built:?}");
        assert_eq!(built.output.as_deref(), Some("built\n"));
        build.stop();
    }

    #[test]
    fn stopping_a_build_stops_what_it_started() {
        let dir = tempfile::tempdir().expect("tempdir");
        // The shell starts a child of its own and says its pid.
        let build =
            Build::start("sleep 60 & echo $! > pid; wait", dir.path(), true).expect("start");
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
