//! A pseudo-terminal for a build whose output we pass on to our terminal
//! (see `build.rs`): the build's tools see a terminal the size of ours, and
//! keep their colours and progress bars.

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Opens a pseudo-terminal the size of the one on our stderr: (its master
/// side, which we read, and its terminal side, the build's stdout and
/// stderr). Neither is inherited by any other child. Its lines end in `\n`
/// alone: our terminal adds the `\r` when we write them.
pub(super) fn open() -> std::io::Result<(File, OwnedFd)> {
    // SAFETY: TIOCGWINSZ fills the winsize we own; on failure (not a
    // terminal) it is left zeroed: no size.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    unsafe { libc::ioctl(std::io::stderr().as_raw_fd(), libc::TIOCGWINSZ, &mut size) };
    let (mut master, mut terminal) = (-1, -1);
    // SAFETY: openpty writes two descriptors through pointers to our ints,
    // reads the size we own (through a `*mut` on some systems, a `*const` on
    // others); no name, default modes.
    let opened = unsafe {
        libc::openpty(
            &mut master,
            &mut terminal,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            &raw mut size,
        )
    };
    if opened != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just opened for us, and nothing else
    // owns them.
    let (master, terminal) =
        unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(terminal)) };
    for fd in [&master, &terminal] {
        // SAFETY: fcntl on a descriptor we own. Close-on-exec: only the
        // build gets the terminal side (as its stdout and stderr), and no
        // child ever gets the master side.
        if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    // SAFETY: tcgetattr fills the termios we own; tcsetattr reads it back.
    unsafe {
        let mut modes: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(terminal.as_raw_fd(), &mut modes) == 0 {
            modes.c_oflag &= !libc::ONLCR;
            libc::tcsetattr(terminal.as_raw_fd(), libc::TCSANOW, &modes);
        }
    }
    Ok((File::from(master), terminal))
}

#[cfg(test)]
mod tests {
    use std::fs::File;
    use std::io::{Read as _, Write as _};

    #[test]
    fn what_the_build_writes_is_read_whole_even_after_it_ends() {
        let (mut master, terminal) = super::open().expect("a pseudo-terminal");
        assert!(std::io::IsTerminal::is_terminal(&terminal));
        let mut terminal = File::from(terminal);
        terminal.write_all(b"line\n").expect("write");
        let mut read = [0; 64];
        let count = master.read(&mut read).expect("read");
        assert_eq!(&read[..count], b"line\n", "no \\r added");

        // Written just before the build's end: still read, then the end.
        terminal.write_all(b"last words\n").expect("write");
        drop(terminal);
        let mut rest = Vec::new();
        while let Ok(count @ 1..) = master.read(&mut read) {
            rest.extend_from_slice(&read[..count]);
        }
        assert_eq!(rest, b"last words\n");
    }
}
