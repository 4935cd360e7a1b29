//! The modules of a run: where module files live and how they compile (the
//! session-long [`ModuleFiles`]), and what one run found, compiled and
//! instantiated under each name ([`Modules`]), of either kind. How an instance
//! is made is in `instantiate`; this room does not know the host.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use wasmtime::component::{self, Component};
use wasmtime::{Engine, Instance, Module};

use super::elsewhere;
use super::use_error::{Site, UseError};
use crate::cache::{Artifact, ModuleCache};
use crate::names::{self, Found, Lookup, Root};
use crate::source::{ContentHash, ModuleFile};

/// The files modules come from, session-long: the root they live in, the
/// entry, and the engine and cache that compile them.
pub(crate) struct ModuleFiles {
    root: PathBuf,
    /// Where live-wasm was started: a module not found is looked for under
    /// it, for the hint.
    cwd: PathBuf,
    pub(super) entry_name: String,
    entry: PathBuf,
    engine: Engine,
    cache: Mutex<ModuleCache>,
}

impl ModuleFiles {
    /// The module files of a session whose entry is `entry` and whose modules
    /// live in `root`, started in `cwd` (all absolute).
    pub(crate) fn new(
        entry: &Path,
        root: &Path,
        cwd: &Path,
        engine: &Engine,
        cache: ModuleCache,
    ) -> Self {
        let entry_name = entry
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
            .unwrap_or_default();
        Self {
            root: root.to_path_buf(),
            cwd: cwd.to_path_buf(),
            entry_name,
            entry: entry.to_path_buf(),
            engine: engine.clone(),
            cache: Mutex::new(cache),
        }
    }

    /// Where module names resolve.
    pub(super) fn root(&self) -> &Path {
        &self.root
    }

    /// The entry's file.
    pub(super) fn entry(&self) -> &Path {
        &self.entry
    }

    /// The entry's file, relative to the root, for messages.
    pub(super) fn entry_label(&self) -> String {
        self.label(&self.entry)
    }

    /// The cache's work kept for after a run: see [`ModuleCache::after_run`].
    pub(crate) fn after_run(&self) {
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .after_run();
    }

    /// The core module a split component imports as `name`: see
    /// [`ModuleCache::part`].
    pub(super) fn part(&self, name: &str) -> Option<wasmtime::Module> {
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .part(name)
    }

    /// A path relative to the root, for messages.
    pub(super) fn label(&self, path: &Path) -> String {
        names::relative(&self.root, path)
    }
}

/// A module a run loaded: from the cache, or compiled.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Compiled {
    /// The module's name (`testmod`, `lib/math`).
    pub name: String,
    /// Its file, relative to the root.
    pub file: String,
    /// True when nothing was compiled (memory or disk cache).
    pub cache_hit: bool,
    /// Time spent reading and compiling it.
    pub duration: Duration,
}

/// What a run holds under a module name: an instance, of either kind, and
/// its file (relative to the root).
pub(super) struct Ready {
    pub(super) instance: Instantiated,
    pub(super) file: String,
}

/// An instance of a run, of either kind.
#[derive(Clone)]
pub(super) enum Instantiated {
    /// A core module's.
    Core(Instance),
    /// A component's, with its component (for the names of its exports).
    Component(component::Instance, Component),
}

/// The modules of one run: what it found, compiled and instantiated, by name.
pub(super) struct Modules {
    pub(super) files: Arc<ModuleFiles>,
    /// Ready instances by module name.
    ready: HashMap<String, Ready>,
    /// Names being instantiated right now, outermost first.
    in_progress: Vec<String>,
    /// The root folder, opened at the first name this run resolves.
    root: Option<Root>,
    /// Every file resolved or tried, in order.
    resolved: Vec<ModuleFile>,
    /// Compiled core modules of this run and their names, for backtraces.
    labels: Vec<(Module, String)>,
    /// Every module loaded, in order.
    compiled: Vec<Compiled>,
    /// What the trampolines of component imports resolved in this run, by
    /// trampoline: each resolves and checks its target once per run.
    bound: HashMap<u64, component::Func>,
    /// The module files under the current folder, looked at once, at the
    /// run's first module not found: see `elsewhere`.
    elsewhere: Option<Vec<PathBuf>>,
}

impl Modules {
    /// No instance yet.
    pub(super) fn new(files: Arc<ModuleFiles>) -> Self {
        Self {
            files,
            ready: HashMap::new(),
            in_progress: Vec::new(),
            root: None,
            resolved: Vec::new(),
            labels: Vec::new(),
            compiled: Vec::new(),
            bound: HashMap::new(),
            elsewhere: None,
        }
    }

    /// The instance of `name` in this run, if it has one.
    pub(super) fn ready(&self, name: &str) -> Option<&Ready> {
        self.ready.get(name)
    }

    /// The file of this run's instance `name` (relative to the root), or the
    /// name itself before it is instantiated.
    pub(super) fn file_of(&self, name: &str) -> String {
        self.ready(name)
            .map_or_else(|| name.to_owned(), |ready| ready.file.clone())
    }

    /// Keeps `name`'s instance for the rest of the run.
    pub(super) fn insert(&mut self, name: &str, ready: Ready) {
        self.ready.insert(name.to_owned(), ready);
    }

    /// `name` is being instantiated: asking for it meanwhile closes a cycle.
    pub(super) fn enter(&mut self, name: &str) {
        self.in_progress.push(name.to_owned());
    }

    /// The innermost name being instantiated is done.
    pub(super) fn leave(&mut self) {
        self.in_progress.pop();
    }

    /// What trampoline `id` resolved earlier in this run.
    pub(super) fn bound(&self, id: u64) -> Option<component::Func> {
        self.bound.get(&id).copied()
    }

    /// Keeps what trampoline `id` resolved, for the rest of the run.
    pub(super) fn bind(&mut self, id: u64, func: component::Func) {
        self.bound.insert(id, func);
    }

    /// The files this run resolved or tried.
    pub(super) fn files(&self) -> &[ModuleFile] {
        &self.resolved
    }

    /// A path relative to the root, for messages.
    pub(super) fn label(&self, path: &Path) -> String {
        self.files.label(path)
    }

    /// Time this run spent reading and compiling modules.
    pub(super) fn compile_time(&self) -> Duration {
        self.compiled.iter().map(|compiled| compiled.duration).sum()
    }

    /// The modules this run loaded.
    pub(super) fn compiled(&self) -> &[Compiled] {
        &self.compiled
    }

    /// The name of a module of this run, for backtraces.
    pub(super) fn module_label(&self, module: &Module) -> String {
        self.labels
            .iter()
            .find(|(known, _)| Module::same(known, module))
            .map(|(_, name)| name.clone())
            .or_else(|| module.name().map(str::to_owned))
            .unwrap_or_else(|| "?".to_owned())
    }

    /// Finds and opens the file of module `name`, recording what was looked at.
    fn resolve(&mut self, name: &str, site: &Site) -> Result<Found, UseError> {
        if name == self.files.entry_name {
            return self.open_entry(site);
        }
        let root = match &self.root {
            Some(root) => root,
            None => {
                let root = Root::open(&self.files.root)
                    .map_err(|err| self.unreadable(site, &self.files.root, &err))?;
                self.root.insert(root)
            }
        };
        match root.find(name) {
            Ok(found) => Ok(found),
            Err(Lookup::Bad(why)) => Err(UseError::BadName {
                site: site.clone(),
                name: name.to_owned(),
                why,
            }),
            Err(Lookup::NotFound(passed)) => {
                for (path, _) in &passed {
                    self.record(path, None);
                }
                let (root, cwd) = (&self.files.root, &self.files.cwd);
                let files = self
                    .elsewhere
                    .get_or_insert_with(|| elsewhere::module_files(cwd));
                let looked_for = names::looked_for(root, &passed);
                Err(UseError::NotFound {
                    site: site.clone(),
                    name: name.to_owned(),
                    looked: match elsewhere::place(cwd, root) {
                        Some(place) => format!("in {place} ({looked_for} there)"),
                        None => format!("({looked_for})"),
                    },
                    hint: elsewhere::hint(name, root, cwd, files),
                })
            }
            Err(Lookup::Unreadable(path, err)) => {
                self.record(&path, None);
                Err(self.unreadable(site, &path, &err))
            }
        }
    }

    /// Opens the entry, by the path the user gave (only a regular file).
    fn open_entry(&self, site: &Site) -> Result<Found, UseError> {
        let path = &self.files.entry;
        match crate::source::open_regular(path) {
            Ok(file) => Ok(Found {
                path: path.clone(),
                file,
            }),
            Err(err) => Err(self.unreadable(site, path, &err)),
        }
    }

    /// The error for a file that cannot be opened.
    fn unreadable(&self, site: &Site, path: &Path, err: &std::io::Error) -> UseError {
        UseError::Invalid {
            site: site.clone(),
            file: self.files.label(path),
            message: match err.kind() {
                std::io::ErrorKind::NotFound => format!("{}: file not found", path.display()),
                _ => format!("cannot read it: {err}"),
            },
            place: None,
            validation: false,
        }
    }

    /// Refuses `name` while it is being instantiated: asking for it then closes
    /// a cycle.
    fn check_cycle(&self, name: &str, site: &Site) -> Result<(), UseError> {
        let Some(start) = self.in_progress.iter().position(|busy| busy == name) else {
            return Ok(());
        };
        let mut path = self.in_progress[start..].to_vec();
        path.push(name.to_owned());
        Err(UseError::Cycle {
            site: site.clone(),
            path,
        })
    }

    /// The hash of the bytes this run loaded from `path`.
    pub(super) fn hash_of(&self, path: &Path) -> Option<ContentHash> {
        self.resolved.iter().find(|file| file.path == path)?.hash
    }

    fn record(&mut self, path: &Path, hash: Option<ContentHash>) {
        if !self.resolved.iter().any(|file| file.path == path) {
            self.resolved.push(ModuleFile {
                path: path.to_path_buf(),
                hash,
            });
        }
    }

    /// Finds, reads and compiles module `name` for `site`, which may not ask
    /// for a module being instantiated (that closes a cycle).
    pub(super) fn find(
        &mut self,
        name: &str,
        site: &Site,
    ) -> Result<(PathBuf, Artifact), UseError> {
        self.check_cycle(name, site)?;
        let found = self.resolve(name, site)?;
        let path = found.path.clone();
        let artifact = self.load(name, found, site)?;
        Ok((path, artifact))
    }

    /// Reads and compiles the entry, of either kind: the run branches on it.
    pub(super) fn load_entry(&mut self) -> Result<Artifact, UseError> {
        let name = self.files.entry_name.clone();
        let entry = self.open_entry(&Site::entry())?;
        self.load(&name, entry, &Site::entry())
    }

    /// Reads and compiles module `name` from its opened file through the
    /// session's cache.
    fn load(&mut self, name: &str, found: Found, site: &Site) -> Result<Artifact, UseError> {
        let started = Instant::now();
        let path = found.path.as_path();
        let loaded = self
            .files
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .load(&self.files.engine, path, &found.file);
        self.compiled.push(Compiled {
            name: name.to_owned(),
            file: self.files.label(path),
            cache_hit: loaded.as_ref().is_ok_and(|loaded| loaded.cache_hit),
            duration: started.elapsed(),
        });
        match loaded {
            Ok(loaded) => {
                self.record(path, Some(loaded.hash));
                if let Artifact::Module(module) = &loaded.artifact {
                    self.labels.push((module.clone(), name.to_owned()));
                }
                Ok(loaded.artifact)
            }
            Err(err) => {
                self.record(path, crate::source::file_hash(path));
                let wat = err.downcast_ref::<crate::source::WatError>();
                Err(UseError::Invalid {
                    site: site.clone(),
                    file: self.files.label(path),
                    message: format!("{err:#}"),
                    place: wat.map(|wat| (wat.line, wat.col)),
                    validation: wat.is_some_and(|wat| wat.validation),
                })
            }
        }
    }
}
