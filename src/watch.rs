//! The watched set, and which file-system events are real saves of it.
//!
//! We watch directories, not files, and filter on exact paths: an editor that
//! saves by writing a temporary file and renaming it over ours replaces the
//! inode, and a watch on the file itself would be lost. An event is only a hint;
//! a file counts as changed when its content hash differs from the last one we
//! acted on, which drops touches and the second event of a single save.
//!
//! Events come from the operating system (inotify on Linux) or, with `--poll`,
//! from looking at the files every interval ([`poll`]); which events mark a
//! finished save depends on that kind, never on the OS alone.

mod poll;
mod writing;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use crossbeam_channel::{Receiver, unbounded};
use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind, RenameMode};
use notify::{Event, RecursiveMode, Watcher as _};

use crate::plan::WatcherKind;
use crate::source::{self, ContentHash, ModuleFile};

/// What one batch of file-system events amounts to.
#[derive(Debug, Default)]
pub struct ChangeSet {
    /// Watched files whose content really changed, in the order seen.
    pub changed: Vec<PathBuf>,
    /// Problems the file watcher reported, in words (the session goes on).
    pub warnings: Vec<String>,
}

/// Which events mark a finished save.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Saves {
    /// inotify: a file closed after writing, or renamed into place. A write
    /// still going on is not a save.
    ClosedOrRenamed,
    /// Watchers with no close event (polling; other platforms' native ones):
    /// any new content. The poller holds back files still open for writing.
    AnyWrite,
}

/// Watches files and folders and turns event bursts into [`ChangeSet`]s.
pub struct Watcher {
    notify: Box<dyn notify::Watcher + Send>,
    saves: Saves,
    events: Receiver<notify::Result<Event>>,
    /// Watched files and the hash of the content last acted on (`None`: missing).
    files: HashMap<PathBuf, Option<ContentHash>>,
    /// The files watched for the whole session (entry, `--watch`, `--stdin`);
    /// the others are the modules of the last run.
    base: HashSet<PathBuf>,
    /// Watched files whose directory does not exist yet.
    homeless: HashSet<PathBuf>,
    /// Folders watched recursively (`--watch DIR`), with their files' last hashes.
    trees: Vec<PathBuf>,
    tree_files: HashMap<PathBuf, Option<ContentHash>>,
    /// Directories holding a non-recursive watch.
    dirs: HashSet<PathBuf>,
}

impl Watcher {
    /// A watcher of `kind` with nothing watched yet.
    pub fn new(kind: WatcherKind) -> Result<Self> {
        let (sender, events) = unbounded();
        let handler = move |event| {
            // The receiver is gone only when the session is over.
            let _ = sender.send(event);
        };
        let (notify, saves): (Box<dyn notify::Watcher + Send>, Saves) = match kind {
            WatcherKind::Native => {
                let watcher = notify::recommended_watcher(handler)
                    .map_err(|err| anyhow::anyhow!(watch_failure(&err)))
                    .context("cannot start the file watcher")?;
                let saves = match cfg!(target_os = "linux") {
                    true => Saves::ClosedOrRenamed,
                    false => Saves::AnyWrite,
                };
                (Box::new(watcher), saves)
            }
            WatcherKind::Poll(interval) => {
                let config = notify::Config::default().with_poll_interval(interval);
                let poller = poll::StatPoller::new(handler, config)
                    .context("cannot start the polling watcher")?;
                (Box::new(poller), Saves::AnyWrite)
            }
        };
        Ok(Self {
            notify,
            saves,
            events,
            files: HashMap::new(),
            base: HashSet::new(),
            homeless: HashSet::new(),
            trees: Vec::new(),
            tree_files: HashMap::new(),
            dirs: HashSet::new(),
        })
    }

    /// The raw events, for the session's `select!`; pass each to [`Self::changes`].
    pub fn events(&self) -> &Receiver<notify::Result<Event>> {
        &self.events
    }

    /// Watches `file` (absolute; it may not exist yet) for the whole session,
    /// from its current content on.
    pub fn watch_file(&mut self, file: &Path) -> Result<()> {
        self.base.insert(file.to_path_buf());
        self.add(file, source::file_hash(file))
    }

    /// Makes the last run's module files the watched modules: files no longer
    /// used stop being watched. Returns those whose content already differs from
    /// what the run used (saved while it ran, before they were watched).
    pub fn set_modules(&mut self, modules: &[ModuleFile]) -> Result<Vec<PathBuf>> {
        let used: HashSet<&Path> = modules.iter().map(|m| m.path.as_path()).collect();
        let base = &self.base;
        self.files
            .retain(|path, _| base.contains(path) || used.contains(path.as_path()));
        self.homeless
            .retain(|path| base.contains(path) || used.contains(path.as_path()));
        let mut changed = Vec::new();
        for module in modules {
            if self.files.contains_key(&module.path) {
                continue;
            }
            self.add(&module.path, module.hash)?;
            // A save still being written is not one yet: its close will come.
            if !writing::being_written(&module.path) && self.content_changed(&module.path) {
                changed.push(module.path.clone());
            }
        }
        Ok(changed)
    }

    /// Watches `file`'s directory (or, while it does not exist, its nearest
    /// existing ancestor) and records `hash` as its last content.
    fn add(&mut self, file: &Path, hash: Option<ContentHash>) -> Result<()> {
        let dir = file
            .parent()
            .with_context(|| format!("{}: no parent directory", file.display()))?;
        if self.watch_nearest(dir)? {
            self.homeless.remove(file);
        } else {
            self.homeless.insert(file.to_path_buf());
        }
        self.files.entry(file.to_path_buf()).or_insert(hash);
        Ok(())
    }

    /// Watches `dir` or, while it does not exist, its nearest existing ancestor,
    /// where its creation will show. Returns whether `dir` itself is watched.
    fn watch_nearest(&mut self, dir: &Path) -> Result<bool> {
        loop {
            let existing = dir
                .ancestors()
                .find(|ancestor| ancestor.is_dir())
                .unwrap_or(Path::new("/"));
            self.watch_dir(existing)?;
            if existing == dir {
                return Ok(true);
            }
            // A level created between our look and our watch sent no event to
            // us: look again, one level deeper.
            let next = dir.ancestors().take_while(|a| *a != existing).last();
            if !next.is_some_and(Path::is_dir) {
                return Ok(false);
            }
        }
    }

    fn watch_dir(&mut self, dir: &Path) -> Result<()> {
        let covered = self.trees.iter().any(|tree| dir.starts_with(tree));
        if !covered && !self.dirs.contains(dir) {
            self.notify
                .watch(dir, RecursiveMode::NonRecursive)
                .map_err(|err| {
                    anyhow::anyhow!("cannot watch {}: {}", dir.display(), watch_failure(&err))
                })?;
            self.dirs.insert(dir.to_path_buf());
        }
        Ok(())
    }

    /// Watches the directories that have appeared since their files were added;
    /// returns those files, to be checked for content.
    fn rehome(&mut self) -> Vec<PathBuf> {
        let homeless: Vec<PathBuf> = self.homeless.iter().cloned().collect();
        let mut housed = Vec::new();
        for file in homeless {
            let dir = file.parent().unwrap_or(Path::new("/"));
            if let Ok(true) = self.watch_nearest(dir) {
                self.homeless.remove(&file);
                housed.push(file);
            }
        }
        housed
    }

    /// Watches every file under `dir` (absolute), recursively.
    pub fn watch_tree(&mut self, dir: &Path) -> Result<()> {
        self.notify
            .watch(dir, RecursiveMode::Recursive)
            .map_err(|err| {
                anyhow::anyhow!("cannot watch {}: {}", dir.display(), watch_failure(&err))
            })?;
        self.trees.push(dir.to_path_buf());
        Ok(())
    }

    /// Watches a `--watch` path: a folder recursively, a file exactly.
    pub fn watch_path(&mut self, path: &Path) -> Result<()> {
        if path.is_dir() {
            self.watch_tree(path)
        } else {
            self.watch_file(path)
        }
    }

    /// The watched files that `first`, and every event already queued behind it,
    /// really changed. Never waits: a burst is whatever has arrived by now.
    pub fn changes(&mut self, first: notify::Result<Event>) -> ChangeSet {
        let mut set = ChangeSet::default();
        let mut candidates: Vec<PathBuf> = self.rehome();
        let batch =
            std::iter::once(first).chain(std::iter::from_fn(|| self.events.try_recv().ok()));
        for event in batch.collect::<Vec<_>>() {
            match event {
                // Events were lost (the kernel's queue overflowed): look at
                // every watched file's content instead.
                Ok(event) if event.need_rescan() => {
                    candidates.extend(self.files.keys().cloned());
                    candidates.extend(self.tree_files.keys().cloned());
                }
                Ok(event) => candidates.extend(saved_paths(&event, self.saves)),
                Err(err) => set
                    .warnings
                    .push(format!("file watcher: {}", watch_failure(&err))),
            }
        }
        for path in candidates {
            if !set.changed.contains(&path) && self.content_changed(&path) {
                set.changed.push(path);
            }
        }
        set
    }

    /// Compares `path`'s content with the last we acted on, and remembers it.
    fn content_changed(&mut self, path: &Path) -> bool {
        let last = if let Some(last) = self.files.get_mut(path) {
            last
        } else if self.in_tree(path) {
            self.tree_files.entry(path.to_path_buf()).or_insert(None)
        } else {
            return false;
        };
        let now = source::file_hash(path);
        // A vanished file is not a save: the editor is about to write it again.
        if now.is_none() || now == *last {
            return false;
        }
        *last = now;
        true
    }

    fn in_tree(&self, path: &Path) -> bool {
        self.trees.iter().any(|tree| path.starts_with(tree)) && !is_editor_noise(path)
    }
}

/// The paths an event says were just written or renamed into place.
///
/// With inotify a finished write is `Close(Write)` and a rename-save is
/// `Name(To)` / `Name(Both)`; reacting to `Modify(Data)` as well would read
/// half-written files. Watchers with no close event report any data change.
fn saved_paths(event: &Event, saves: Saves) -> Vec<PathBuf> {
    let paths = &event.paths;
    match event.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => paths.clone(),
        EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => {
            paths.last().cloned().into_iter().collect()
        }
        EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Any)) => paths.clone(),
        EventKind::Create(_) | EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Any)
            if saves == Saves::AnyWrite =>
        {
            paths.clone()
        }
        _ => Vec::new(),
    }
}

/// A watcher error in words, with what to do when the OS's limit is reached.
fn watch_failure(err: &notify::Error) -> String {
    match &err.kind {
        notify::ErrorKind::MaxFilesWatch => "the system's limit of file watches is reached \
            (on Linux, fs.inotify.max_user_watches): raise it, e.g. \
            `sudo sysctl fs.inotify.max_user_watches=524288`, or use --poll"
            .to_owned(),
        _ => err.to_string(),
    }
}

/// Swap, backup and probe files editors write beside the real ones.
fn is_editor_noise(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|name| name.to_str()) else {
        return true;
    };
    name.starts_with('.')
        || name.ends_with('~')
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || name.ends_with(".tmp")
        || name == "4913"
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::CreateKind;

    fn event(kind: EventKind, paths: &[&str]) -> Event {
        let mut event = Event::new(kind);
        event.paths = paths.iter().map(PathBuf::from).collect();
        event
    }

    #[test]
    fn finished_writes_and_renames_count() {
        let close = event(
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            &["/r/a"],
        );
        for saves in [Saves::ClosedOrRenamed, Saves::AnyWrite] {
            assert_eq!(saved_paths(&close, saves), [PathBuf::from("/r/a")]);
        }
        let both = event(
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)),
            &["/r/t", "/r/a"],
        );
        assert_eq!(
            saved_paths(&both, Saves::ClosedOrRenamed),
            [PathBuf::from("/r/a")]
        );
        let from = event(
            EventKind::Modify(ModifyKind::Name(RenameMode::From)),
            &["/r/a"],
        );
        assert!(saved_paths(&from, Saves::ClosedOrRenamed).is_empty());
    }

    #[test]
    fn data_changes_count_only_for_watchers_without_a_close_event() {
        let data = event(
            EventKind::Modify(ModifyKind::Data(notify::event::DataChange::Any)),
            &["/r/a"],
        );
        let create = event(EventKind::Create(CreateKind::File), &["/r/a"]);
        for half_write in [&data, &create] {
            assert!(saved_paths(half_write, Saves::ClosedOrRenamed).is_empty());
            assert_eq!(
                saved_paths(half_write, Saves::AnyWrite),
                [PathBuf::from("/r/a")]
            );
        }
    }

    #[test]
    fn a_lost_event_queue_rechecks_every_watched_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("a.wat");
        std::fs::write(&file, "one").expect("write");
        let mut watcher = Watcher::new(WatcherKind::Native).expect("watcher");
        watcher.watch_file(&file).expect("watch");
        std::fs::write(&file, "two").expect("write");
        let overflow = Event::new(EventKind::Other).set_flag(notify::event::Flag::Rescan);
        assert_eq!(watcher.changes(Ok(overflow)).changed, [file]);
        let again = Event::new(EventKind::Other).set_flag(notify::event::Flag::Rescan);
        assert!(watcher.changes(Ok(again)).changed.is_empty(), "once");
    }

    #[test]
    fn the_watch_limit_says_what_to_do() {
        let words = watch_failure(&notify::Error::new(notify::ErrorKind::MaxFilesWatch));
        assert!(words.contains("fs.inotify.max_user_watches") && words.contains("--poll"));
    }

    #[test]
    fn editor_noise() {
        for noise in ["/r/.main.wat.swp", "/r/main.wat~", "/r/4913", "/r/x.tmp"] {
            assert!(is_editor_noise(Path::new(noise)), "{noise}");
        }
        assert!(!is_editor_noise(Path::new("/r/script.py")));
    }

    #[test]
    fn only_new_content_is_a_change() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("a.wat");
        std::fs::write(&file, "one").expect("write");
        let mut watcher = Watcher::new(WatcherKind::Native).expect("watcher");
        watcher.watch_file(&file).expect("watch");
        assert!(!watcher.content_changed(&file), "unchanged");
        std::fs::write(&file, "two").expect("write");
        assert!(watcher.content_changed(&file));
        assert!(
            !watcher.content_changed(&file),
            "second event of the same save"
        );
        assert!(
            !watcher.content_changed(&dir.path().join("other")),
            "not watched"
        );
    }
}
