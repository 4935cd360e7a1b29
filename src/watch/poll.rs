//! The polling watcher (`--poll`), for file systems that send no events
//! (network mounts, some container and VM shares).
//!
//! Every interval it looks at what is watched and sends notify's events for
//! what changed, as notify's own `PollWatcher` does, with two differences that
//! live coding needs. notify 8's poller compares modification times in whole
//! seconds, so a second save within a second goes unseen (and comparing content
//! instead reads every file of a watched folder at every poll); here a file's
//! full stamp (size, inode, nanosecond times) is compared, and a file modified
//! in the last moments is compared by content too, as file times are coarse.
//! And with no close-after-write event, a file still open for writing (on Linux,
//! where a read lease tells) is not reported until it is closed, so a
//! half-written file is never run.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, SystemTime};

use crossbeam_channel::{RecvTimeoutError, Sender, bounded};
use notify::event::{CreateKind, DataChange, ModifyKind, RemoveKind};
use notify::{Config, Event, EventHandler, EventKind, RecursiveMode, WatcherKind};

use super::writing::being_written;

/// How recently a file must have been modified for its stamp alone not to be
/// trusted: many clock ticks of the coarsest file times we meet.
const FRESH: Duration = Duration::from_secs(1);

/// Looks at the watched paths every interval, on a thread of its own.
pub(super) struct StatPoller {
    state: Arc<Mutex<State>>,
    /// Asks for a look now, numbered; dropped with the poller, the thread sees
    /// the channel close and ends.
    wake: Sender<u64>,
}

/// What the info of the event that ends an asked-for look starts with.
const LOOK_DONE: &str = "live-wasm look done ";

/// True when `event` says that look `number` (asked for through
/// [`StatPoller::waker`]) is over: every event it found came before it.
pub(super) fn is_look_done(event: &Event, number: u64) -> bool {
    event.info().and_then(|info| info.strip_prefix(LOOK_DONE)) == Some(&number.to_string())
}

/// The watched roots, and what each file looked like at the last look.
#[derive(Default)]
struct State {
    roots: HashMap<PathBuf, RecursiveMode>,
    seen: HashMap<PathBuf, Stamp>,
}

/// What a look at a file tells: if none of it changed, neither did its bytes
/// (`hash` is only taken for a file modified moments ago).
#[derive(Debug, Clone, Copy)]
struct Stamp {
    /// A folder: only its coming and going count (a module's folder appearing).
    folder: bool,
    /// A symlink, stamped as itself: what it leads to is never looked at (a
    /// guest may point one anywhere).
    link: bool,
    len: u64,
    inode: u64,
    modified: Option<SystemTime>,
    changed: Option<SystemTime>,
    hash: Option<u64>,
}

impl Stamp {
    fn folder() -> Self {
        Stamp {
            folder: true,
            link: false,
            len: 0,
            inode: 0,
            modified: None,
            changed: None,
            hash: None,
        }
    }

    /// Whether the file changed between `last` and this look: any part of the
    /// stamp, or the content when both looks hashed it.
    fn differs_from(&self, last: &Stamp) -> bool {
        let hashes_differ = matches!((self.hash, last.hash), (Some(a), Some(b)) if a != b);
        if self.folder && last.folder {
            return false;
        }
        (
            self.folder,
            self.len,
            self.inode,
            self.modified,
            self.changed,
        ) != (
            last.folder,
            last.len,
            last.inode,
            last.modified,
            last.changed,
        ) || hashes_differ
    }
}

impl StatPoller {
    /// A handle that makes the poller look at once, not at the next interval.
    pub(super) fn waker(&self) -> Sender<u64> {
        self.wake.clone()
    }
}

impl notify::Watcher for StatPoller {
    fn new<F: EventHandler>(handler: F, config: Config) -> notify::Result<Self> {
        let interval = config.poll_interval().unwrap_or(Duration::from_millis(500));
        let state = Arc::new(Mutex::new(State::default()));
        let (wake, woken) = bounded::<u64>(1);
        let shared = Arc::clone(&state);
        let mut handler: Box<dyn EventHandler> = Box::new(handler);
        thread::Builder::new()
            .name("live-wasm-poll".to_owned())
            .spawn(move || {
                loop {
                    let asked = match woken.recv_timeout(interval) {
                        Ok(number) => Some(number),
                        Err(RecvTimeoutError::Timeout) => None,
                        Err(RecvTimeoutError::Disconnected) => break,
                    };
                    let events = lock(&shared).look();
                    for event in events {
                        handler.handle_event(Ok(event));
                    }
                    if let Some(number) = asked {
                        let done =
                            Event::new(EventKind::Other).set_info(&format!("{LOOK_DONE}{number}"));
                        handler.handle_event(Ok(done));
                    }
                }
            })
            .map_err(notify::Error::io)?;
        Ok(Self { state, wake })
    }

    fn watch(&mut self, path: &Path, mode: RecursiveMode) -> notify::Result<()> {
        let mut state = lock(&self.state);
        state.roots.insert(path.to_path_buf(), mode);
        // What is there now is the starting point, not a change.
        for (file, stamp) in files_under(path, mode) {
            state.seen.entry(file).or_insert(stamp);
        }
        Ok(())
    }

    fn unwatch(&mut self, path: &Path) -> notify::Result<()> {
        let mut state = lock(&self.state);
        state.roots.remove(path);
        state.seen.retain(|file, _| !file.starts_with(path));
        Ok(())
    }

    fn kind() -> WatcherKind {
        WatcherKind::PollWatcher
    }
}

impl State {
    /// Looks at every root; returns the events for what changed since last time.
    fn look(&mut self) -> Vec<Event> {
        let mut now: HashMap<PathBuf, Stamp> = HashMap::new();
        for (root, mode) in &self.roots {
            now.extend(files_under(root, *mode));
        }
        let mut events = Vec::new();
        for (file, stamp) in now {
            let kind = match self.seen.get(&file) {
                None if stamp.folder => EventKind::Create(CreateKind::Folder),
                None => EventKind::Create(CreateKind::File),
                Some(last) if stamp.differs_from(last) => {
                    EventKind::Modify(ModifyKind::Data(DataChange::Any))
                }
                Some(_) => continue,
            };
            // Still being written: look again next time, as if not yet seen.
            if !stamp.folder && !stamp.link && being_written(&file) {
                continue;
            }
            self.seen.insert(file.clone(), stamp);
            events.push(Event::new(kind).add_path(file));
        }
        let gone: Vec<PathBuf> = self
            .seen
            .keys()
            .filter(|file| std::fs::symlink_metadata(file).is_err())
            .cloned()
            .collect();
        for file in gone {
            self.seen.remove(&file);
            events.push(Event::new(EventKind::Remove(RemoveKind::File)).add_path(file));
        }
        events
    }
}

/// The regular files and folders at `root` (a file, or what a folder holds,
/// recursively or not), with their stamps. Symlinked folders are not followed
/// (no loops).
fn files_under(root: &Path, mode: RecursiveMode) -> Vec<(PathBuf, Stamp)> {
    let mut files = Vec::new();
    let mut folders = Vec::new();
    match std::fs::symlink_metadata(root) {
        Ok(meta) if meta.is_dir() => folders.push(root.to_path_buf()),
        Ok(_) => files.extend(stamp(root).map(|stamp| (root.to_path_buf(), stamp))),
        Err(_) => {}
    }
    while let Some(folder) = folders.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(kind) if kind.is_dir() => {
                    files.push((path.clone(), Stamp::folder()));
                    if mode == RecursiveMode::Recursive {
                        folders.push(path);
                    }
                }
                _ => files.extend(stamp(&path).map(|stamp| (path, stamp))),
            }
        }
    }
    files
}

/// A regular file's stamp, or a symlink's own (never followed); `None` for
/// anything else.
fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    let link = meta.file_type().is_symlink();
    if !meta.is_file() && !link {
        return None;
    }
    let modified = meta.modified().ok();
    let fresh = modified
        .and_then(|time| time.elapsed().ok())
        .is_none_or(|age| age < FRESH);
    #[cfg(unix)]
    let (inode, changed) = {
        use std::os::unix::fs::MetadataExt;
        let changed = u64::try_from(meta.ctime()).ok().and_then(|secs| {
            let nanos = u32::try_from(meta.ctime_nsec()).ok()?;
            SystemTime::UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
        });
        (meta.ino(), changed)
    };
    #[cfg(not(unix))]
    let (inode, changed) = (0, None);
    Some(Stamp {
        folder: false,
        link,
        len: meta.len(),
        inode,
        modified,
        changed,
        hash: (fresh && !link)
            .then(|| crate::source::file_hash(path))
            .flatten(),
    })
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(state: &mut State) -> Vec<(String, EventKind)> {
        let mut events: Vec<(String, EventKind)> = state
            .look()
            .into_iter()
            .map(|event| {
                let name = event.paths[0]
                    .file_name()
                    .expect("name")
                    .to_string_lossy()
                    .into_owned();
                (name, event.kind)
            })
            .collect();
        events.sort_by(|a, b| a.0.cmp(&b.0));
        events
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_is_looked_at_as_itself_never_where_it_leads() {
        let base = tempfile::tempdir().expect("tempdir");
        let watched = base.path().join("d");
        std::fs::create_dir_all(&watched).expect("mkdir");
        std::fs::write(base.path().join("secret"), "one").expect("write");
        std::os::unix::fs::symlink("../secret", watched.join("link")).expect("symlink");
        let mut state = State::default();
        state
            .roots
            .insert(watched.clone(), RecursiveMode::NonRecursive);
        state
            .seen
            .extend(files_under(&watched, RecursiveMode::NonRecursive));
        // What it leads to changes, and goes: no event, no look at it.
        std::fs::write(base.path().join("secret"), "changed, longer").expect("write");
        assert!(kinds(&mut state).is_empty());
        std::fs::remove_file(base.path().join("secret")).expect("remove");
        assert!(kinds(&mut state).is_empty());
        // The link itself replaced is a change.
        std::fs::remove_file(watched.join("link")).expect("remove");
        std::os::unix::fs::symlink("elsewhere/x", watched.join("link")).expect("symlink");
        assert_eq!(
            kinds(&mut state),
            [(
                "link".into(),
                EventKind::Modify(ModifyKind::Data(DataChange::Any))
            )]
        );
    }

    #[test]
    fn creations_changes_and_removals_are_seen_at_the_next_look() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("a"), "one").expect("write");
        let mut state = State::default();
        state
            .roots
            .insert(dir.path().to_path_buf(), RecursiveMode::NonRecursive);
        state
            .seen
            .extend(files_under(dir.path(), RecursiveMode::NonRecursive));
        assert!(kinds(&mut state).is_empty(), "what was there is the start");

        // Same length, same moment: only the content tells.
        std::fs::write(dir.path().join("a"), "two").expect("write");
        std::fs::write(dir.path().join("b"), "new").expect("write");
        assert_eq!(
            kinds(&mut state),
            [
                (
                    "a".into(),
                    EventKind::Modify(ModifyKind::Data(DataChange::Any))
                ),
                ("b".into(), EventKind::Create(CreateKind::File)),
            ]
        );
        std::fs::remove_file(dir.path().join("b")).expect("remove");
        assert_eq!(
            kinds(&mut state),
            [("b".into(), EventKind::Remove(RemoveKind::File))]
        );
        assert!(kinds(&mut state).is_empty());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_file_open_for_writing_is_reported_once_closed() {
        use std::io::Write;
        let dir = tempfile::tempdir().expect("tempdir");
        let mut state = State::default();
        state
            .roots
            .insert(dir.path().to_path_buf(), RecursiveMode::NonRecursive);
        let mut file = std::fs::File::create(dir.path().join("half")).expect("create");
        file.write_all(b"half").expect("write");
        assert!(kinds(&mut state).is_empty(), "still open for writing");
        drop(file);
        assert_eq!(
            kinds(&mut state),
            [("half".into(), EventKind::Create(CreateKind::File))]
        );
    }
}
