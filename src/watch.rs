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
//!
//! With `--build`, a changed source calls for a build, and a changed module file
//! (the entry, a used module: what builds write) for a run only. Which changes
//! are sources, outputs or saves during a build, and what stops a build that
//! keeps rewriting its sources, is the model in `build.rs`'s doc.

mod barrier;
mod poll;
mod sources;
mod writing;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, unbounded};
use notify::event::{AccessKind, AccessMode, EventKind, EventKindMask, ModifyKind, RenameMode};
use notify::{Event, RecursiveMode, Watcher as _};

use crate::beneath::{Beneath, Folder, ReadFile};
use crate::plan::WatcherKind;
use crate::source::{self, ContentHash, ModuleFile};
use barrier::Barrier;
use sources::Sources;

/// After a source changed during this many builds in a row that ran to their
/// end, with no change seen between them, the builds are taken to write it
/// themselves (a version stamp, say): it becomes their output. Builds killed
/// because a save made them out of date do not count (see `build.rs`).
const SELF_WRITES: u32 = 3;

/// What one batch of file-system events amounts to.
#[derive(Debug, Default)]
pub(crate) struct ChangeSet {
    /// Watched files whose content really changed, in the order seen.
    pub changed: Vec<PathBuf>,
    /// True when a source changed: a build is called for, not only a run.
    pub rebuild: bool,
    /// Problems the file watcher reported, in words (the session goes on).
    pub warnings: Vec<String>,
}

/// What started a run: the session's start, or a change set's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Trigger {
    /// The first run of the session.
    Start,
    /// These watched files changed.
    Changed(Vec<PathBuf>),
}

impl Trigger {
    /// Adds the files of a later change to a run that has not started yet.
    pub(crate) fn merge(self, changed: Vec<PathBuf>) -> Trigger {
        match self {
            Trigger::Start => Trigger::Start,
            Trigger::Changed(mut files) => {
                for file in changed {
                    if !files.contains(&file) {
                        files.push(file);
                    }
                }
                Trigger::Changed(files)
            }
        }
    }
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

impl Saves {
    /// The events asked of the system: with inotify only those that can end a
    /// save or lose a file. An open of a watched file (ours too: the runner
    /// opens the modules it runs) would otherwise make the opener wake the
    /// watcher's thread inside `open`, and that thread wake the session's.
    fn event_kinds(self) -> EventKindMask {
        match self {
            Saves::ClosedOrRenamed => {
                EventKindMask::CREATE
                    | EventKindMask::REMOVE
                    | EventKindMask::MODIFY_NAME
                    | EventKindMask::ACCESS_CLOSE
            }
            Saves::AnyWrite => EventKindMask::CORE | EventKindMask::ACCESS_CLOSE,
        }
    }
}

/// Watches files and folders and turns event bursts into [`ChangeSet`]s.
pub(crate) struct Watcher {
    notify: Box<dyn notify::Watcher + Send>,
    saves: Saves,
    events: Receiver<notify::Result<Event>>,
    /// Makes the polling watcher look now (none for the native one).
    look_now: Option<Sender<u64>>,
    /// How many looks `settle` asked the poller for.
    looks_asked: u64,
    /// A file of ours, in a folder of ours, written to mark a moment in the
    /// stream of events: see [`Self::settle`]. Made for the first build.
    barrier: Option<Barrier>,
    /// Watched files and the hash of the content last acted on (`None`: missing).
    files: HashMap<PathBuf, Option<ContentHash>>,
    /// The files watched for the whole session (entry, `--watch`, `--stdin`);
    /// the others are the modules of the last run.
    base: HashSet<PathBuf>,
    /// Watched files whose directory does not exist yet.
    homeless: HashSet<PathBuf>,
    /// Folders watched recursively (`--watch DIR`, a build's sources), with
    /// their files' last hashes.
    trees: Vec<Tree>,
    tree_files: HashMap<PathBuf, Option<ContentHash>>,
    /// Directories holding a non-recursive watch.
    dirs: HashSet<PathBuf>,
    /// The folder watched for each watched file (its own, or while it is
    /// missing its nearest existing ancestor), and for each gone tree: what
    /// keeps a folder's watch; the others go after a run.
    anchors: HashMap<PathBuf, PathBuf>,
    /// Watched files that are sources of a build (`--watch FILE` with `--build`).
    source_files: HashSet<PathBuf>,
    /// While a build runs: the sources there were when it started.
    building: Option<HashSet<PathBuf>>,
    /// Files builds wrote: they never call for a build.
    outputs: HashSet<PathBuf>,
    /// Sources that changed during each of the last builds that ran to their
    /// end, with no change seen between builds, and in how many builds in a
    /// row: see [`SELF_WRITES`].
    streaks: HashMap<PathBuf, u32>,
    /// The sources that changed during the build in progress.
    changed_in_build: HashSet<PathBuf>,
    /// The module files of the last run: what builds write, never sources.
    modules: HashSet<PathBuf>,
    /// Files the running guest opened for writing: their events are its own.
    guest_writes: HashSet<PathBuf>,
    /// Where module names resolve: module files (named by guests, through
    /// `use`) are looked at beneath it.
    root: PathBuf,
    /// Where the host may look at each watched file a guest named (a module,
    /// a file read through WASI): never by its path's text.
    places: HashMap<PathBuf, Place>,
}

/// Where a watched file a guest named may be looked at.
enum Place {
    /// Beneath the root, opened afresh at each look: the root may be replaced
    /// (moved away, a copy put in its place) while it is watched.
    Root,
    /// Beneath the granted folder a run read it in.
    Granted(Beneath),
}

/// How the host may look at a watched file now.
enum Look {
    /// By its path: a file the user named (the entry, `--watch`, `--stdin`).
    Path,
    /// Beneath its folder.
    Beneath(Beneath),
    /// Its folder cannot be opened now (the root moved away): as missing.
    Unreachable,
}

/// The most folders one run's reads and modules may add to the watches (each
/// is an inotify watch, a per-user resource other programs share).
const WATCHES_PER_RUN: usize = 1000;
/// The most time the session spends after a run taking its files into the
/// watched set: a signal or a save waits no longer (the rest is not watched).
const TIME_PER_RUN: Duration = Duration::from_millis(50);

/// A folder watched recursively.
struct Tree {
    path: PathBuf,
    /// False while the folder is gone (deleted, or moved away): its nearest
    /// ancestor is watched instead, for its return.
    live: bool,
    /// For a build's sources: which files are sources. Without, all are (and a
    /// change calls for a run only).
    sources: Option<Sources>,
}

impl Tree {
    fn holds(&self, path: &Path) -> bool {
        path.starts_with(&self.path)
            && !is_editor_noise(path)
            && self
                .sources
                .as_ref()
                .is_none_or(|sources| sources.admits(path))
    }
}

impl Watcher {
    /// A watcher of `kind` with nothing watched yet; module files are under
    /// `root`.
    pub(crate) fn new(kind: WatcherKind, root: &Path) -> Result<Self> {
        let (sender, events) = unbounded();
        let handler = move |event| {
            // The receiver is gone only when the session is over.
            let _ = sender.send(event);
        };
        let mut look_now = None;
        let (notify, saves): (Box<dyn notify::Watcher + Send>, Saves) = match kind {
            WatcherKind::Native => {
                let saves = match cfg!(target_os = "linux") {
                    true => Saves::ClosedOrRenamed,
                    false => Saves::AnyWrite,
                };
                let config = notify::Config::default().with_event_kinds(saves.event_kinds());
                let watcher = notify::RecommendedWatcher::new(handler, config)
                    .map_err(|err| anyhow::anyhow!(watch_failure(&err)))
                    .context("cannot start the file watcher")?;
                (Box::new(watcher), saves)
            }
            WatcherKind::Poll(interval) => {
                let config = notify::Config::default().with_poll_interval(interval);
                let poller = poll::StatPoller::new(handler, config)
                    .context("cannot start the polling watcher")?;
                look_now = Some(poller.waker());
                (Box::new(poller), Saves::AnyWrite)
            }
        };
        Ok(Self {
            notify,
            saves,
            events,
            look_now,
            looks_asked: 0,
            barrier: None,
            files: HashMap::new(),
            base: HashSet::new(),
            homeless: HashSet::new(),
            trees: Vec::new(),
            tree_files: HashMap::new(),
            dirs: HashSet::new(),
            anchors: HashMap::new(),
            source_files: HashSet::new(),
            building: None,
            outputs: HashSet::new(),
            streaks: HashMap::new(),
            changed_in_build: HashSet::new(),
            modules: HashSet::new(),
            guest_writes: HashSet::new(),
            root: root.to_path_buf(),
            places: HashMap::new(),
        })
    }

    /// The raw events, for the session's `select!`; pass each to [`Self::changes`].
    pub(crate) fn events(&self) -> &Receiver<notify::Result<Event>> {
        &self.events
    }

    /// Watches `file` (absolute; it may not exist yet) for the whole session,
    /// from its current content on.
    pub(crate) fn watch_file(&mut self, file: &Path) -> Result<()> {
        self.base.insert(file.to_path_buf());
        self.add(file, source::file_hash(file))
    }

    /// A run has ended: the files it used become the watched ones, those no
    /// longer used stop being watched. `modules` are its module files; `read`
    /// the files the guest read through WASI; `guest_writes` the last files it
    /// announced writing. What the guest wrote is taken as it is now: its late
    /// events are not saves. Returns the files that already differ from what the
    /// run used (saved while it ran, before they were watched).
    pub(crate) fn run_finished(
        &mut self,
        modules: &[ModuleFile],
        read: &[ReadFile],
        guest_writes: impl Iterator<Item = PathBuf>,
    ) -> Result<RunFiles> {
        self.guest_writes.extend(guest_writes);
        // What the guest announced, the watched files under a folder it
        // announced, and the files it read that are its own now.
        let own = read.iter().filter(|file| file.own).map(|file| &file.path);
        let written: HashSet<PathBuf> = (self.files.keys().chain(self.tree_files.keys()))
            .filter(|path| self.guest_wrote(path))
            .chain(&self.guest_writes)
            .chain(own)
            .cloned()
            .collect();
        self.guest_writes.clear();
        for path in written {
            let now = self.hash(&path);
            if let Some(last) = self.files.get_mut(&path) {
                *last = now;
            } else if self.in_tree(&path) {
                self.tree_files.insert(path, now);
            }
        }
        let used: HashSet<&Path> = modules
            .iter()
            .map(|m| m.path.as_path())
            .chain(read.iter().map(|file| file.path.as_path()))
            .collect();
        let base = &self.base;
        self.files
            .retain(|path, _| base.contains(path) || used.contains(path.as_path()));
        self.homeless
            .retain(|path| base.contains(path) || used.contains(path.as_path()));
        self.places.retain(|path, _| used.contains(path.as_path()));

        let mut result = RunFiles::default();
        let watches = self.dirs.len();
        let deadline = Instant::now() + TIME_PER_RUN;
        let bounded = |watcher: &Self, result: &mut RunFiles| {
            let over = watcher.dirs.len() >= watches + WATCHES_PER_RUN || Instant::now() > deadline;
            if over && result.unwatched.is_none() {
                result.unwatched = Some(format!(
                    "this run used more files than are watched after one run ({WATCHES_PER_RUN} \
                     folders, {} ms of the session's time): the rest are not watched",
                    TIME_PER_RUN.as_millis()
                ));
            }
            over
        };
        for module in modules {
            if self.files.contains_key(&module.path) || bounded(self, &mut result) {
                continue;
            }
            if module.path.starts_with(&self.root) {
                self.places.insert(module.path.clone(), Place::Root);
            }
            self.add(&module.path, module.hash)?;
            // A save still being written is not one yet: its close will come.
            if !self.being_written(&module.path) && self.content_changed(&module.path) {
                result.changed.push(module.path.clone());
            }
        }
        for file in read {
            if self.files.contains_key(&file.path) || bounded(self, &mut result) {
                continue;
            }
            if file.beneath.is_dir() {
                continue;
            }
            let place = Place::Granted(file.beneath.clone());
            self.places.insert(file.path.clone(), place);
            self.add(&file.path, file.beneath.hash())?;
            if !self.being_written(&file.path) && file.beneath.fingerprint() != file.seen {
                result.changed.push(file.path.clone());
            }
        }
        self.prune_folders();
        Ok(result)
    }

    /// How `path` may be looked at now.
    fn look(&self, path: &Path) -> Look {
        match self.places.get(path) {
            None => Look::Path,
            Some(Place::Granted(beneath)) => Look::Beneath(beneath.clone()),
            Some(Place::Root) => {
                let relative = path.strip_prefix(&self.root).unwrap_or(path);
                match Folder::open(&self.root).map(|root| Beneath::new(root, relative)) {
                    Ok(Some(beneath)) => Look::Beneath(beneath),
                    _ => Look::Unreachable,
                }
            }
        }
    }

    /// True when the running guest announced writing `path`, or a folder
    /// holding it.
    fn guest_wrote(&self, path: &Path) -> bool {
        !self.guest_writes.is_empty()
            && path
                .ancestors()
                .any(|ancestor| self.guest_writes.contains(ancestor))
    }

    /// The hash of `path`'s content: a file a guest named is read beneath its
    /// folder only.
    fn hash(&self, path: &Path) -> Option<ContentHash> {
        match self.look(path) {
            Look::Path => source::file_hash(path),
            Look::Beneath(beneath) => beneath.hash(),
            Look::Unreachable => None,
        }
    }

    /// True when some process has `path` open for writing (looked at beneath
    /// its folder when a guest named it).
    fn being_written(&self, path: &Path) -> bool {
        match self.look(path) {
            Look::Path => writing::being_written(path),
            Look::Beneath(beneath) => {
                (beneath.open()).is_ok_and(|file| writing::being_written_file(&file))
            }
            Look::Unreachable => false,
        }
    }

    /// Watches `file`'s directory (or, while it does not exist, its nearest
    /// existing ancestor) and records `hash` as its last content.
    fn add(&mut self, file: &Path, hash: Option<ContentHash>) -> Result<()> {
        if self.house(file)? {
            self.homeless.remove(file);
        } else {
            self.homeless.insert(file.to_path_buf());
        }
        self.files.entry(file.to_path_buf()).or_insert(hash);
        Ok(())
    }

    /// Watches the folder of `file`, or while it does not exist its nearest
    /// existing ancestor. Returns whether the folder itself is watched. For a
    /// file a guest named, folders are looked for beneath its granted folder
    /// (or the root) only: one that leads out is as missing.
    fn house(&mut self, file: &Path) -> Result<bool> {
        let (anchor, housed) = self.find_house(file)?;
        self.anchors.insert(file.to_path_buf(), anchor);
        Ok(housed)
    }

    /// Watches the folder for `file` (see [`Self::house`]); returns it, and
    /// whether it is the file's own folder.
    fn find_house(&mut self, file: &Path) -> Result<(PathBuf, bool)> {
        let beneath = match self.look(file) {
            Look::Beneath(beneath) => beneath,
            Look::Path => {
                let dir = file
                    .parent()
                    .with_context(|| format!("{}: no parent directory", file.display()))?;
                return self.watch_nearest(dir);
            }
            // Its return shows where the root's does.
            Look::Unreachable => {
                let root = self.root.clone();
                let (anchor, _) = self.watch_nearest(&root)?;
                return Ok((anchor, false));
            }
        };
        let parent = beneath.parent().path();
        let nearest = match beneath.parent().is_dir() {
            true => parent.clone(),
            false => beneath.parent().nearest_folder().path(),
        };
        self.watch_dir(&nearest)?;
        let housed = nearest == parent;
        Ok((nearest, housed))
    }

    /// Unwatches the folders that no watched file and no gone tree needs any
    /// more (where the last run looked and this one did not): watches are a
    /// per-user resource other programs share. A build's source folders stay.
    fn prune_folders(&mut self) {
        let (files, trees) = (&self.files, &self.trees);
        let gone_tree = |path: &PathBuf| trees.iter().any(|tree| !tree.live && tree.path == *path);
        self.anchors
            .retain(|key, _| files.contains_key(key) || gone_tree(key));
        let needed: HashSet<&PathBuf> = self.anchors.values().collect();
        let in_sources = |dir: &PathBuf| {
            trees
                .iter()
                .any(|tree| tree.sources.is_some() && dir.starts_with(&tree.path))
        };
        let unneeded: Vec<PathBuf> = (self.dirs.iter())
            .filter(|dir| !needed.contains(dir) && !in_sources(dir))
            .cloned()
            .collect();
        for dir in unneeded {
            let _ = self.notify.unwatch(&dir);
            self.dirs.remove(&dir);
        }
    }

    /// Watches `dir` or, while it does not exist, its nearest existing ancestor,
    /// where its creation will show. Returns the folder watched, and whether it
    /// is `dir` itself.
    fn watch_nearest(&mut self, dir: &Path) -> Result<(PathBuf, bool)> {
        loop {
            let existing = nearest_existing(dir);
            self.watch_dir(existing)?;
            if existing == dir {
                return Ok((existing.to_path_buf(), true));
            }
            // A level created between our look and our watch sent no event to
            // us: look again, one level deeper.
            let next = dir.ancestors().take_while(|a| *a != existing).last();
            if !next.is_some_and(Path::is_dir) {
                return Ok((existing.to_path_buf(), false));
            }
        }
    }

    fn watch_dir(&mut self, dir: &Path) -> Result<()> {
        // A build's source tree is watched folder by folder (in `dirs`).
        let covered = self
            .trees
            .iter()
            .any(|tree| tree.live && tree.sources.is_none() && dir.starts_with(&tree.path));
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

    /// Watches the directories that have appeared since their files were added,
    /// and the trees whose folder is back; returns the files there, to be
    /// checked for content.
    fn rehome(&mut self, warnings: &mut Vec<String>) -> Vec<PathBuf> {
        let homeless: Vec<PathBuf> = self.homeless.iter().cloned().collect();
        let mut housed = Vec::new();
        for file in homeless {
            if let Ok(true) = self.house(&file) {
                self.homeless.remove(&file);
                housed.push(file);
            }
        }
        let gone: Vec<PathBuf> = self
            .trees
            .iter()
            .filter(|tree| !tree.live)
            .map(|tree| tree.path.clone())
            .collect();
        for path in gone {
            let sources = self
                .trees
                .iter()
                .any(|tree| tree.path == path && tree.sources.is_some());
            let back = path.is_dir()
                && match sources {
                    // Its ignore files may be new too.
                    true => match self.watch_source_folders(&path) {
                        Ok((rules, files)) => {
                            let tree = self.trees.iter_mut().find(|tree| tree.path == path);
                            if let Some(tree) = tree {
                                tree.sources = Some(rules);
                            }
                            housed.extend(files);
                            true
                        }
                        Err(err) => {
                            warnings.push(format!("{err:#}"));
                            false
                        }
                    },
                    false => {
                        let watched = self.notify.watch(&path, RecursiveMode::Recursive).is_ok();
                        if watched {
                            housed.extend(sources::walk(&path));
                        }
                        watched
                    }
                };
            if back {
                for tree in self.trees.iter_mut().filter(|tree| tree.path == path) {
                    tree.live = true;
                }
            } else {
                match self.watch_nearest(&path) {
                    Ok((anchor, _)) => {
                        self.anchors.insert(path, anchor);
                    }
                    Err(err) => warnings.push(format!("{err:#}")),
                }
            }
        }
        housed
    }

    /// Watches the folders of a build's sources under `dir`, one by one,
    /// entering no ignored folder nor build folder: their rules, and the
    /// source files found.
    fn watch_source_folders(&mut self, dir: &Path) -> Result<(Sources, Vec<PathBuf>)> {
        let (rules, survey) = Sources::new(dir);
        for folder in &survey.folders {
            self.watch_dir(folder)?;
        }
        Ok((rules, survey.files))
    }

    /// A folder made (or moved) inside a build's source tree: watched with the
    /// source folders under it, unless ignored. Returns the files found there,
    /// to be checked for content (they may have been written before the watch).
    fn grow_tree(&mut self, folder: &Path) -> Result<Vec<PathBuf>> {
        let in_sources = |tree: &Tree| tree.live && tree.sources.is_some();
        if !self
            .trees
            .iter()
            .any(|tree| in_sources(tree) && folder.starts_with(&tree.path))
        {
            return Ok(Vec::new());
        }
        let is_folder = std::fs::symlink_metadata(folder).is_ok_and(|meta| meta.is_dir());
        if !is_folder || self.dirs.contains(folder) {
            return Ok(Vec::new());
        }
        let Some(tree) = self.trees.iter_mut().find(|tree| {
            tree.live
                && folder.starts_with(&tree.path)
                && tree
                    .sources
                    .as_ref()
                    .is_some_and(|rules| rules.admits_folder(folder))
        }) else {
            return Ok(Vec::new());
        };
        let Some(survey) = tree.sources.as_mut().map(|rules| rules.survey(folder)) else {
            return Ok(Vec::new());
        };
        for inner in &survey.folders {
            self.watch_dir(inner)?;
        }
        Ok(survey.files)
    }

    /// A watched folder was deleted or moved away: its watch is gone, or
    /// follows it elsewhere, and so do the watches of the folders under it.
    /// Watches them again where they are now, or their nearest ancestor until
    /// they are back; returns the files to check for content.
    fn rewatch(&mut self, lost: &Path, warnings: &mut Vec<String>) -> Vec<PathBuf> {
        let under: Vec<PathBuf> = self
            .dirs
            .iter()
            .filter(|dir| dir.starts_with(lost))
            .cloned()
            .collect();
        for dir in &under {
            // Its watch may already be gone with it: nothing to undo then.
            let _ = self.notify.unwatch(dir);
            self.dirs.remove(dir);
        }
        for tree in &mut self.trees {
            if tree.live && tree.path.starts_with(lost) {
                let _ = self.notify.unwatch(&tree.path);
                tree.live = false;
            }
        }
        let mut files: Vec<PathBuf> = self
            .files
            .keys()
            .filter(|file| file.parent().is_some_and(|dir| dir.starts_with(lost)))
            .cloned()
            .collect();
        for file in &files {
            // The last content acted on is kept: only new content runs.
            if let Err(err) = self.add(file, None) {
                warnings.push(format!("{err:#}"));
            }
        }
        files.extend(self.rehome(warnings));
        files
    }

    /// The watched folders (non-recursive ones, and trees) an event says were
    /// deleted or moved away.
    fn lost_folders(&self, event: &Event) -> Vec<PathBuf> {
        let gone = matches!(
            event.kind,
            EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(RenameMode::From))
        );
        let watched = |path: &PathBuf| {
            self.dirs.contains(path)
                || self
                    .trees
                    .iter()
                    .any(|tree| tree.live && tree.path == *path)
        };
        match gone {
            true => event
                .paths
                .iter()
                .filter(|path| watched(path))
                .cloned()
                .collect(),
            false => Vec::new(),
        }
    }

    /// Watches every file under `dir` (absolute), recursively; only the sources
    /// of a build, when `sources`, folder by folder.
    fn watch_tree(&mut self, dir: &Path, sources: bool) -> Result<()> {
        let rules = match sources {
            true => Some(self.watch_source_folders(dir)?.0),
            false => {
                self.notify
                    .watch(dir, RecursiveMode::Recursive)
                    .map_err(|err| {
                        anyhow::anyhow!("cannot watch {}: {}", dir.display(), watch_failure(&err))
                    })?;
                None
            }
        };
        self.trees.push(Tree {
            path: dir.to_path_buf(),
            live: true,
            sources: rules,
        });
        Ok(())
    }

    /// Watches a `--watch` path: a folder recursively, a file exactly. With
    /// `sources`, its files are a build's sources (and ignore files are read).
    pub(crate) fn watch_path(&mut self, path: &Path, sources: bool) -> Result<()> {
        if path.is_dir() {
            return self.watch_tree(path, sources);
        }
        if sources {
            self.source_files.insert(path.to_path_buf());
        }
        self.watch_file(path)
    }

    /// A build starts: from now until [`Self::build_finished`], a file that is
    /// not a source yet is one of its outputs.
    pub(crate) fn build_started(&mut self) -> Result<()> {
        let mut sources: HashSet<PathBuf> = self.source_files.clone();
        for tree in &mut self.trees {
            if let Some(rules) = &mut tree.sources {
                sources.extend(rules.files());
            }
        }
        self.building = Some(sources);
        if self.barrier.is_none() && self.look_now.is_none() {
            let barrier = Barrier::new()?;
            self.notify
                .watch(barrier.dir(), RecursiveMode::NonRecursive)
                .map_err(|err| {
                    anyhow::anyhow!(
                        "cannot watch {}: {}",
                        barrier.dir().display(),
                        watch_failure(&err)
                    )
                })?;
            self.barrier = Some(barrier);
        }
        Ok(())
    }

    /// The build has ended: by itself (`ran_to_end`: done or failed), or
    /// killed. The events of what it wrote may not all have reached us yet:
    /// they are waited for (see [`Self::settle`]). A source that changed
    /// during each of [`SELF_WRITES`] builds in a row that ran to their end
    /// is taken for the builds' own output from now on (a warning says so).
    /// Returns the late changes that still count (sources saved as the build
    /// ended) and the files taken for its own.
    pub(crate) fn build_finished(&mut self, ran_to_end: bool) -> BuildSettled {
        let mut late = self.settle();
        self.building = None;
        let changed = std::mem::take(&mut self.changed_in_build);
        let mut own = Vec::new();
        // A killed build proves nothing either way: the counts stay.
        if ran_to_end {
            self.streaks.retain(|path, _| changed.contains(path));
            for path in changed {
                let streak = self.streaks.entry(path.clone()).or_default();
                *streak += 1;
                if *streak >= SELF_WRITES {
                    late.warnings.push(format!(
                        "the build keeps changing {} ({SELF_WRITES} builds in a row that ran to \
                         their end, with no save between them): taken for its output, it starts \
                         no build until it is saved between builds",
                        path.display()
                    ));
                    self.streaks.remove(&path);
                    self.outputs.insert(path.clone());
                    own.push(path);
                }
            }
            late.changed.retain(|path| !own.contains(path));
            if late.changed.is_empty() {
                late.rebuild = false;
            }
        }
        BuildSettled { late, own }
    }

    /// The module files of the run that just ended (the entry, the modules it
    /// used): a build's outputs, whatever else watches them.
    pub(crate) fn modules_used(&mut self, modules: &[ModuleFile]) {
        self.modules = modules.iter().map(|module| module.path.clone()).collect();
    }

    /// Waits until every event of what happened before this call has been
    /// read, and returns what they changed. Events reach us through the
    /// watcher's thread, in order: a write of ours, now, is seen after them;
    /// a poller is asked for a look that starts now, and says when it is over.
    /// The wait is bounded; a watcher that lost our write only costs the wait.
    fn settle(&mut self) -> ChangeSet {
        let deadline = Instant::now() + Duration::from_secs(2);
        let settled = if let Some(look_now) = &self.look_now {
            self.looks_asked += 1;
            if look_now.send_deadline(self.looks_asked, deadline).is_err() {
                return ChangeSet::default();
            }
            Settled::LookDone(self.looks_asked)
        } else if let Some(marker) = self.barrier.as_mut().map(Barrier::mark) {
            Settled::Marked(marker)
        } else {
            return ChangeSet::default();
        };
        let mut batch = Vec::new();
        while let Ok(event) = self.events.recv_deadline(deadline) {
            let over = matches!(&event, Ok(event) if settled.by(event));
            batch.push(event);
            if over {
                break;
            }
        }
        self.process(batch, std::iter::empty())
    }

    /// The watched files that `first`, and every event already queued behind it,
    /// really changed. Never waits: a burst is whatever has arrived by now.
    /// `guest_writes` are the files the running guest announced it is about to
    /// write (see [`Self::process`]).
    pub(crate) fn changes(
        &mut self,
        first: notify::Result<Event>,
        guest_writes: impl Iterator<Item = PathBuf>,
    ) -> ChangeSet {
        let batch =
            std::iter::once(first).chain(std::iter::from_fn(|| self.events.try_recv().ok()));
        let batch = batch.collect();
        self.process(batch, guest_writes)
    }

    /// What a batch of events changed. The guest's announced writes are taken
    /// after the files' contents are read: a guest announces a write before it
    /// makes it, so any content of its own we read was announced by then.
    fn process(
        &mut self,
        batch: Vec<notify::Result<Event>>,
        guest_writes: impl Iterator<Item = PathBuf>,
    ) -> ChangeSet {
        let mut set = ChangeSet::default();
        // Only a new folder, or a folder moved into place, can house a file.
        let may_house = |event: &notify::Result<Event>| match event {
            Ok(event) => {
                self.saves == Saves::AnyWrite
                    || event.need_rescan()
                    || matches!(
                        event.kind,
                        EventKind::Create(_) | EventKind::Modify(ModifyKind::Name(_))
                    )
            }
            Err(_) => true,
        };
        // Files found by looking (a folder back, made or moved in, lost
        // events), not by a finished save: one still being written is not a
        // save yet, its close will come.
        let mut found: Vec<PathBuf> = match batch.iter().any(may_house) {
            true => self.rehome(&mut set.warnings),
            false => Vec::new(),
        };
        let mut candidates = Vec::new();
        for event in batch {
            if let Ok(event) = &event {
                for lost in self.lost_folders(event) {
                    found.extend(self.rewatch(&lost, &mut set.warnings));
                }
                for made in made_paths(event) {
                    match self.grow_tree(made) {
                        Ok(files) => found.extend(files),
                        Err(err) => set.warnings.push(format!("{err:#}")),
                    }
                }
            }
            match event {
                // Events were lost (the kernel's queue overflowed): look at
                // every watched file's content instead.
                Ok(event) if event.need_rescan() => {
                    found.extend(self.files.keys().cloned());
                    found.extend(self.tree_files.keys().cloned());
                }
                Ok(event) => candidates.extend(saved_paths(&event, self.saves)),
                Err(err) => set
                    .warnings
                    .push(format!("file watcher: {}", watch_failure(&err))),
            }
        }
        found.retain(|path| !self.being_written(path));
        candidates.extend(found);
        let mut changed = Vec::new();
        for path in candidates {
            if !changed.contains(&path) && !self.guest_wrote(&path) && self.content_changed(&path) {
                changed.push(path);
            }
        }
        self.guest_writes.extend(guest_writes);
        for path in changed {
            if self.guest_wrote(&path) {
                continue;
            }
            if self.is_source(&path) {
                match &self.building {
                    // The build made it, or wrote it before: never a reason
                    // to build.
                    Some(sources) if !sources.contains(&path) || self.outputs.contains(&path) => {
                        self.outputs.insert(path);
                        continue;
                    }
                    // A source that changed during the build: a save, built
                    // again, unless the build turns out to write it itself
                    // (judged once it has ended: `build_finished`).
                    Some(_) => {
                        self.changed_in_build.insert(path.clone());
                    }
                    // Changed outside a build: a source from now on.
                    None => {
                        self.outputs.remove(&path);
                    }
                }
                set.rebuild = true;
            } else if self.building.is_some() {
                // A module the build wrote: the run after the build reads it.
                continue;
            }
            set.changed.push(path);
        }
        // A change between builds is a person's: no build is rewriting its
        // own sources, whatever the last builds did.
        if self.building.is_none() && !set.changed.is_empty() {
            self.streaks.clear();
        }
        set
    }

    /// True when a change of `path` calls for a build: a `--watch` source
    /// file, or a file a build's tree admits, though the guest read it too;
    /// never the entry or a module the last run used (what builds write).
    fn is_source(&self, path: &Path) -> bool {
        if self.source_files.contains(path) {
            return true;
        }
        if self.base.contains(path) || self.modules.contains(path) {
            return false;
        }
        self.trees
            .iter()
            .any(|tree| tree.sources.is_some() && tree.holds(path))
    }

    /// Compares `path`'s content with the last we acted on, and remembers it.
    fn content_changed(&mut self, path: &Path) -> bool {
        let watched = self.files.contains_key(path);
        if !watched && !self.in_tree(path) {
            return false;
        }
        let now = self.hash(path);
        let last = match watched {
            true => self.files.entry(path.to_path_buf()).or_insert(None),
            false => self.tree_files.entry(path.to_path_buf()).or_insert(None),
        };
        // A vanished file is not a save: the editor is about to write it again.
        if now.is_none() || now == *last {
            return false;
        }
        *last = now;
        true
    }

    fn in_tree(&self, path: &Path) -> bool {
        self.trees.iter().any(|tree| tree.holds(path))
    }
}

/// What a build's end amounts to, once its last events are settled.
#[derive(Debug, Default)]
pub(crate) struct BuildSettled {
    /// Changes seen as its last events were settled that still count.
    pub late: ChangeSet,
    /// Files that changed during it and are now taken for its own output:
    /// their change calls for nothing.
    pub own: Vec<PathBuf>,
}

/// What a run's files amount to, once watched.
#[derive(Debug, Default)]
pub(crate) struct RunFiles {
    /// The files that already differ from what the run used (saved while it
    /// ran, before they were watched).
    pub changed: Vec<PathBuf>,
    /// Past the bounds of what one run may make the session watch: what was
    /// left out, in words.
    pub unwatched: Option<String>,
}

/// The deepest existing folder on the way to `dir` (itself included), looked
/// for from the top: a path of thousands of missing folders costs one look
/// at the first, not thousands of looks each as long as the path.
fn nearest_existing(dir: &Path) -> &Path {
    let mut existing = Path::new("/");
    let mut ancestors: Vec<&Path> = dir.ancestors().collect();
    ancestors.reverse();
    for ancestor in ancestors {
        if !ancestor.is_dir() {
            break;
        }
        existing = ancestor;
    }
    existing
}

/// The event that says the queue is settled.
enum Settled {
    /// The poller's look of this number is over.
    LookDone(u64),
    /// This marker file of ours was written.
    Marked(PathBuf),
}

impl Settled {
    fn by(&self, event: &Event) -> bool {
        match self {
            Settled::LookDone(number) => poll::is_look_done(event, *number),
            Settled::Marked(marker) => event.paths.contains(marker),
        }
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

/// The paths an event says were just made or moved into place (a folder
/// among them, perhaps).
fn made_paths(event: &Event) -> &[PathBuf] {
    match event.kind {
        EventKind::Create(_)
        | EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Any)) => &event.paths,
        EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => {
            event.paths.last().map_or(&[], std::slice::from_ref)
        }
        _ => &[],
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

/// Swap, backup, autosave and probe files editors and tools write beside the
/// real ones: vim, Emacs (`#main.c#`), JetBrains (`___jb_tmp___`), `sed -i`
/// (`sed` and six random letters or digits, renamed over the file).
fn is_editor_noise(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|name| name.to_str()) else {
        return true;
    };
    let sed_temp = name.len() == 9
        && name.starts_with("sed")
        && name[3..].bytes().all(|byte| byte.is_ascii_alphanumeric());
    name.starts_with('.')
        || name.ends_with('~')
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || name.ends_with(".tmp")
        || name == "4913"
        || (name.len() > 1 && name.starts_with('#') && name.ends_with('#'))
        || name.ends_with("___jb_tmp___")
        || name.ends_with("___jb_old___")
        || sed_temp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triggers_merge_without_repeats() {
        let a = PathBuf::from("/r/a.wat");
        let b = PathBuf::from("/r/b.wat");
        let merged = Trigger::Changed(vec![a.clone()]).merge(vec![b.clone(), a.clone()]);
        assert_eq!(merged, Trigger::Changed(vec![a, b]));
        assert_eq!(Trigger::Start.merge(vec![]), Trigger::Start);
    }
    use notify::event::CreateKind;

    fn event(kind: EventKind, paths: &[&str]) -> Event {
        let mut event = Event::new(kind);
        event.paths = paths.iter().map(PathBuf::from).collect();
        event
    }

    /// A native watcher of a new file `name` holding `contents`, in a
    /// folder of its own.
    fn watching(name: &str, contents: &str) -> (tempfile::TempDir, PathBuf, Watcher) {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join(name);
        std::fs::write(&file, contents).expect("write");
        let mut watcher = Watcher::new(WatcherKind::Native, dir.path()).expect("watcher");
        watcher.watch_file(&file).expect("watch");
        (dir, file, watcher)
    }

    /// The kinds of the events about `file` that come before the first about
    /// a new file `marker`, written now: inotify keeps one watcher's events
    /// in order.
    #[cfg(target_os = "linux")]
    fn events_until(watcher: &Watcher, file: &Path, marker: &Path) -> Vec<EventKind> {
        std::fs::write(marker, "").expect("marker");
        let mut kinds = Vec::new();
        loop {
            let event = watcher
                .events()
                .recv_timeout(Duration::from_secs(10))
                .expect("an event within 10 s")
                .expect("no watcher error");
            if event.paths.iter().any(|path| path == marker) {
                return kinds;
            }
            if event.paths.iter().any(|path| path == file) {
                kinds.push(event.kind);
            }
        }
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn reading_a_watched_file_wakes_no_one() {
        let (dir, file, watcher) = watching("main.wat", "(module)");
        std::fs::read(&file).expect("read");
        let read = events_until(&watcher, &file, &dir.path().join("marker-1"));
        assert_eq!(read, []);
        // A save still comes through.
        std::fs::write(&file, "(module $saved)").expect("save");
        let kinds = events_until(&watcher, &file, &dir.path().join("marker-2"));
        let closed = EventKind::Access(AccessKind::Close(AccessMode::Write));
        assert_eq!(kinds, [closed]);
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
        let (_dir, file, mut watcher) = watching("a.wat", "one");
        std::fs::write(&file, "two").expect("write");
        let overflow = Event::new(EventKind::Other).set_flag(notify::event::Flag::Rescan);
        assert_eq!(
            watcher.changes(Ok(overflow), std::iter::empty()).changed,
            [file]
        );
        let again = Event::new(EventKind::Other).set_flag(notify::event::Flag::Rescan);
        assert!(
            watcher
                .changes(Ok(again), std::iter::empty())
                .changed
                .is_empty(),
            "once"
        );
    }

    #[test]
    fn the_watch_limit_says_what_to_do() {
        let words = watch_failure(&notify::Error::new(notify::ErrorKind::MaxFilesWatch));
        assert!(words.contains("fs.inotify.max_user_watches") && words.contains("--poll"));
    }

    #[test]
    fn editor_noise() {
        for noise in [
            "/r/.main.wat.swp",
            "/r/main.wat~",
            "/r/4913",
            "/r/x.tmp",
            "/r/#main.c#",
            "/r/main.go___jb_tmp___",
            "/r/sedqD5hZL",
        ] {
            assert!(is_editor_noise(Path::new(noise)), "{noise}");
        }
        for source in ["/r/script.py", "/r/sed.c", "/r/sedimented", "/r/#"] {
            assert!(!is_editor_noise(Path::new(source)), "{source}");
        }
    }

    #[test]
    fn only_new_content_is_a_change() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("a.wat");
        std::fs::write(&file, "one").expect("write");
        let mut watcher = Watcher::new(WatcherKind::Native, dir.path()).expect("watcher");
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
