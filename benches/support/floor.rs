//! The floor: the least any save-to-output loop can take on this machine. A
//! process blocked on inotify that, when the watched file is saved, reads it and
//! writes one line; no wasm, no threads. The bench runs it as its own
//! executable with `--floor FILE`, interleaved with the loops it measures.

use std::ffi::CString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Command;

/// The argument that turns the bench executable into the floor program.
const FLOOR: &str = "--floor";

/// The floor program watching `file` (in the current directory).
pub fn command(file: &Path) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("the bench's own path"));
    command.arg(FLOOR).arg(file);
    command
}

/// The line the floor prints for a file holding `contents`: its size and
/// FNV-1a hash, so a line can only come from the save that wrote them.
pub fn line(contents: &[u8]) -> String {
    let hash = contents
        .iter()
        .fold(0xcbf2_9ce4_8422_2325u64, |hash, &byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
    format!("{} {hash:016x}", contents.len())
}

/// When the bench was started as the floor program, serves until killed.
pub fn serve_if_asked() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|arg| arg == FLOOR) {
        let file = args.get(at + 1).expect("--floor FILE");
        serve(Path::new(file));
    }
}

/// Prints the starting line, then one line per save of `file`.
fn serve(file: &Path) -> ! {
    let mut stdout = std::io::stdout().lock();
    print_line(&mut stdout, file);
    watch_saves(file, || print_line(&mut stdout, file))
}

/// Calls `saved` after each save of `file`: closed after writing, or renamed
/// into place (what live-wasm's watcher counts as saves). One inotify watch on
/// its folder, no thread: the least a loop can do to learn of a save.
pub fn watch_saves(file: &Path, mut saved: impl FnMut()) -> ! {
    let dir = file.parent().filter(|dir| !dir.as_os_str().is_empty());
    let dir = CString::new(dir.unwrap_or(Path::new(".")).as_os_str().as_bytes()).expect("path");
    let name = file.file_name().expect("a file name").as_bytes().to_vec();
    // SAFETY: inotify calls on a descriptor we own, reading into a live buffer
    // of the length given; events are parsed within the bytes read.
    unsafe {
        let fd = libc::inotify_init1(libc::IN_CLOEXEC);
        assert!(fd >= 0, "inotify_init1");
        let mask = libc::IN_CLOSE_WRITE | libc::IN_MOVED_TO;
        assert!(
            libc::inotify_add_watch(fd, dir.as_ptr(), mask) >= 0,
            "inotify_add_watch"
        );
        let mut buffer = [0u8; 4096];
        loop {
            let read = libc::read(fd, buffer.as_mut_ptr().cast(), buffer.len());
            assert!(read > 0, "inotify read");
            let mut at = 0usize;
            let mut this_file = false;
            while at < read as usize {
                let event = buffer
                    .as_ptr()
                    .add(at)
                    .cast::<libc::inotify_event>()
                    .read_unaligned();
                let start = at + std::mem::size_of::<libc::inotify_event>();
                let field = &buffer[start..start + event.len as usize];
                let event_name = field.split(|&b| b == 0).next().unwrap_or_default();
                this_file |= event_name == name.as_slice();
                at = start + event.len as usize;
            }
            if this_file {
                saved();
            }
        }
    }
}

fn print_line(stdout: &mut impl Write, file: &Path) {
    let contents = std::fs::read(file).unwrap_or_default();
    // One write per line, as a guest's `fd_write` is.
    let _ = stdout.write_all(format!("{}\n", line(&contents)).as_bytes());
    let _ = stdout.flush();
}
