//! What the user or the system asks of a session from outside, as events the
//! session loop selects on: Ctrl-C (SIGINT) stops what runs, or quits at rest;
//! SIGTERM, and SIGHUP (the terminal closed), end the session at once.
//!
//! Without handlers for the last two the process died where it stood: a build
//! in progress went on (it runs in a process group of its own, which the
//! terminal's signals do not reach) and the watcher's temporary folder stayed.

use anyhow::{Context, Result};
use crossbeam_channel::{Receiver, bounded};

/// A signal the session acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    /// Ctrl-C (SIGINT).
    Interrupt,
    /// SIGTERM or SIGHUP, by number: stop everything and quit (Unix only).
    #[cfg_attr(not(unix), allow(dead_code, reason = "no such signals elsewhere"))]
    Terminate(i32),
}

impl Signal {
    /// The exit status of a session it ended: 128 + the signal's number, as a
    /// shell reports a process the signal killed.
    pub(crate) fn exit_status(self) -> i32 {
        const SIGINT: i32 = 2;
        128 + match self {
            Signal::Interrupt => SIGINT,
            Signal::Terminate(number) => number,
        }
    }
}

/// Starts taking SIGINT, SIGTERM and SIGHUP, for the rest of the process, as
/// events on the returned channel. Call it once per process.
///
/// Each Ctrl-C is a byte on a socket of its own, read by a thread of its own:
/// two presses are two events however soon the second follows the first.
/// (signal-hook's iterator folds a signal that comes again before its thread
/// has read it into one: on a loaded machine the second Ctrl-C, the one that
/// quits, was lost.)
#[cfg(unix)]
pub(crate) fn listen() -> Result<Receiver<Signal>> {
    use std::io::{ErrorKind, Read};
    use std::os::unix::net::UnixStream;

    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

    let (sender, received) = bounded(4);
    let (mut presses, pressed) = UnixStream::pair().context("cannot take signals")?;
    signal_hook::low_level::pipe::register(SIGINT, pressed).context("cannot take Ctrl-C")?;
    let interrupts = sender.clone();
    std::thread::Builder::new()
        .name("live-wasm-ctrl-c".to_owned())
        .spawn(move || {
            let mut press = [0u8; 1];
            loop {
                match presses.read(&mut press) {
                    Ok(1) => {
                        // Full only if the session is not reading: it is ending.
                        let _ = interrupts.try_send(Signal::Interrupt);
                    }
                    Err(err) if err.kind() == ErrorKind::Interrupted => {}
                    _ => break,
                }
            }
        })
        .context("cannot start the Ctrl-C thread")?;
    let mut signals =
        signal_hook::iterator::Signals::new([SIGTERM, SIGHUP]).context("cannot take signals")?;
    std::thread::Builder::new()
        .name("live-wasm-signals".to_owned())
        .spawn(move || {
            for number in signals.forever() {
                let _ = sender.try_send(Signal::Terminate(number));
            }
        })
        .context("cannot start the signals' thread")?;
    Ok(received)
}

/// Ctrl-C presses, where there are no Unix signals: ctrlc's console handler
/// (on Windows it counts presses, so two are two events; Ctrl-Break and the
/// console closing come as Ctrl-C too).
#[cfg(not(unix))]
pub(crate) fn listen() -> Result<Receiver<Signal>> {
    let (sender, received) = bounded(4);
    ctrlc::set_handler(move || {
        let _ = sender.try_send(Signal::Interrupt);
    })
    .context("cannot install the Ctrl-C handler")?;
    Ok(received)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_statuses_are_128_plus_the_signal() {
        assert_eq!(Signal::Interrupt.exit_status(), 130);
        assert_eq!(Signal::Terminate(15).exit_status(), 143);
        assert_eq!(Signal::Terminate(1).exit_status(), 129);
    }
}
