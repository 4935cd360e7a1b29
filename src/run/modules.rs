//! The modules of a run: where module files live and how they compile (the
//! session-long [`Linking`]), and what one run has instantiated and resolved
//! ([`Modules`]). The store-facing half of `use` is in `link`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use wasmtime::component::{self, Component};
use wasmtime::{Engine, Instance, InstancePre, Module};

use super::host::Host;
use super::use_error::{Site, UseError};
use crate::cache::{Artifact, ModuleCache};
use crate::names::{self, Found, Lookup, Root};
use crate::source::{ContentHash, ModuleFile};

/// The session-long side of linking: where modules live and how they compile.
pub struct Linking {
    pub(super) root: PathBuf,
    pub(super) entry_name: String,
    pub(super) entry: PathBuf,
    pub(super) engine: Engine,
    pub(super) cache: Mutex<ModuleCache>,
    /// Modules that import only the host's functions, linked once per version,
    /// by file (so an old version's code is let go when a new one is linked).
    pub(super) prelinked: Mutex<HashMap<String, InstancePre<Host>>>,
    /// Components linked to the host and to trampolines for what they import
    /// from siblings, by file, with the hash of the version linked.
    pub(super) prelinked_components:
        Mutex<HashMap<String, (ContentHash, component::InstancePre<Host>)>>,
}

impl Linking {
    /// Linking for a session whose entry is `entry` and whose modules live in
    /// `root` (both absolute).
    pub fn new(entry: &Path, root: &Path, engine: &Engine, cache: ModuleCache) -> Self {
        let entry_name = entry
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
            .unwrap_or_default();
        Self {
            root: root.to_path_buf(),
            entry_name,
            entry: entry.to_path_buf(),
            engine: engine.clone(),
            cache: Mutex::new(cache),
            prelinked: Mutex::new(HashMap::new()),
            prelinked_components: Mutex::new(HashMap::new()),
        }
    }

    /// The entry's file, relative to the root, for messages.
    pub fn entry_label(&self) -> String {
        self.label(&self.entry)
    }

    /// The cache's work kept for after a run: see [`ModuleCache::after_run`].
    pub fn after_run(&self) {
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .after_run();
    }

    /// A path relative to the root, for messages.
    pub(super) fn label(&self, path: &Path) -> String {
        names::relative(&self.root, path)
    }
}

/// A module a run loaded: from the cache, or compiled.
#[derive(Debug, Clone, PartialEq)]
pub struct Compiled {
    /// The module's name (`testmod`, `lib/math`).
    pub name: String,
    /// Its file, relative to the root.
    pub file: String,
    /// True when nothing was compiled (memory or disk cache).
    pub cache_hit: bool,
    /// Time spent reading and compiling it.
    pub duration: Duration,
}

/// A component instance of a run, and what calling into it needs.
pub struct ComponentInstance {
    /// The instance.
    pub instance: component::Instance,
    /// Its component, for the names of its exports.
    pub component: Component,
    /// Its file, relative to the root.
    pub file: String,
}

/// The modules of one run: its instances, and what it resolved.
pub struct Modules {
    pub(super) linking: Arc<Linking>,
    /// Ready instances by module name, with their file label.
    pub(super) instances: HashMap<String, (Instance, String)>,
    /// Ready component instances by name.
    pub(super) components: HashMap<String, ComponentInstance>,
    /// Names being instantiated right now, outermost first.
    pub(super) in_progress: Vec<String>,
    /// The root folder, opened at the first name this run resolves.
    root: Option<Root>,
    /// Every file resolved or tried, in order.
    files: Vec<ModuleFile>,
    /// Compiled modules of this run and their names, for backtraces.
    pub(super) labels: Vec<(Module, String)>,
    /// Every module loaded, in order.
    compiled: Vec<Compiled>,
}

impl Modules {
    /// No instance yet.
    pub fn new(linking: Arc<Linking>) -> Self {
        Self {
            linking,
            instances: HashMap::new(),
            components: HashMap::new(),
            in_progress: Vec::new(),
            root: None,
            files: Vec::new(),
            labels: Vec::new(),
            compiled: Vec::new(),
        }
    }

    /// The files this run resolved or tried.
    pub fn files(&self) -> &[ModuleFile] {
        &self.files
    }

    /// Time this run spent reading and compiling modules.
    pub fn compile_time(&self) -> Duration {
        self.compiled.iter().map(|compiled| compiled.duration).sum()
    }

    /// The modules this run loaded.
    pub fn compiled(&self) -> &[Compiled] {
        &self.compiled
    }

    /// The name of a module of this run, for backtraces.
    pub fn label(&self, module: &Module) -> String {
        self.labels
            .iter()
            .find(|(known, _)| Module::same(known, module))
            .map(|(_, name)| name.clone())
            .or_else(|| module.name().map(str::to_owned))
            .unwrap_or_else(|| "?".to_owned())
    }

    /// Finds and opens the file of module `name`, recording what was looked at.
    pub(super) fn resolve(&mut self, name: &str, site: &Site) -> Result<Found, UseError> {
        if name == self.linking.entry_name {
            return self.open_entry(site);
        }
        let root = match &self.root {
            Some(root) => root,
            None => {
                let root = Root::open(&self.linking.root)
                    .map_err(|err| self.unreadable(site, &self.linking.root, &err))?;
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
                Err(UseError::NotFound {
                    site: site.clone(),
                    name: name.to_owned(),
                    looked_for: names::looked_for(&self.linking.root, &passed),
                })
            }
            Err(Lookup::Unreadable(path, err)) => {
                self.record(&path, None);
                Err(self.unreadable(site, &path, &err))
            }
        }
    }

    /// Opens the entry, by the path the user gave (only a regular file).
    pub(super) fn open_entry(&self, site: &Site) -> Result<Found, UseError> {
        let path = &self.linking.entry;
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
            file: self.linking.label(path),
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
        self.files.iter().find(|file| file.path == path)?.hash
    }

    fn record(&mut self, path: &Path, hash: Option<ContentHash>) {
        if !self.files.iter().any(|file| file.path == path) {
            self.files.push(ModuleFile {
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

    /// The error for `path`, asked for by `site`, being of the other kind.
    pub(super) fn other_kind(&self, site: &Site, path: &Path, why: &str) -> UseError {
        UseError::Invalid {
            site: site.clone(),
            file: self.linking.label(path),
            message: why.to_owned(),
            place: None,
            validation: false,
        }
    }

    /// Reads and compiles module `name` from its opened file through the
    /// session's cache.
    pub(super) fn load(
        &mut self,
        name: &str,
        found: Found,
        site: &Site,
    ) -> Result<Artifact, UseError> {
        let started = Instant::now();
        let path = found.path.as_path();
        let loaded = self
            .linking
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .load(&self.linking.engine, path, &found.file);
        self.compiled.push(Compiled {
            name: name.to_owned(),
            file: self.linking.label(path),
            cache_hit: loaded.as_ref().is_ok_and(|loaded| loaded.cache_hit),
            duration: started.elapsed(),
        });
        match loaded {
            Ok(loaded) => {
                self.record(path, Some(loaded.hash));
                Ok(loaded.artifact)
            }
            Err(err) => {
                self.record(path, crate::source::file_hash(path));
                let wat = err.downcast_ref::<crate::source::WatError>();
                Err(UseError::Invalid {
                    site: site.clone(),
                    file: self.linking.label(path),
                    message: format!("{err:#}"),
                    place: wat.map(|wat| (wat.line, wat.col)),
                    validation: wat.is_some_and(|wat| wat.validation),
                })
            }
        }
    }
}
