//! `use`: modules that link modules, on demand, one instance per name per run.
//!
//! An import from a module that is not a host namespace names another module
//! file (see [`crate::names`]). A function import is bound to a trampoline of the
//! same type that instantiates its module when first called, so a dependency
//! nobody calls is never loaded, and a program runs up to the first call of a
//! dependency that does not exist yet. Memories, tables and globals cannot wait:
//! their modules are instantiated with the importer. Every instance of a run lives
//! in the run's [`Modules`]; nothing survives into the next run.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use wasmtime::{
    AsContextMut, Engine, Extern, ExternType, Func, FuncType, ImportType, Instance, Linker, Module,
    StoreContextMut, WasmBacktrace,
};

use super::host::Host;
use super::use_error::{Site, UseError};
use crate::cache::{Artifact, ModuleCache};
use crate::names;
use crate::source::{ContentHash, ModuleFile};

/// The session-long side of linking: where modules live and how they compile.
pub struct Linking {
    root: PathBuf,
    entry_name: String,
    entry: PathBuf,
    engine: Engine,
    linker: Linker<Host>,
    cache: Mutex<ModuleCache>,
}

impl Linking {
    /// Linking for a session whose entry is `entry` (absolute), in its directory.
    pub fn new(entry: &Path, engine: &Engine, linker: Linker<Host>, cache: ModuleCache) -> Self {
        let root = entry.parent().unwrap_or(Path::new("/")).to_path_buf();
        let entry_name = entry
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
            .unwrap_or_default();
        Self {
            root,
            entry_name,
            entry: entry.to_path_buf(),
            engine: engine.clone(),
            linker,
            cache: Mutex::new(cache),
        }
    }

    /// The entry's file, relative to the root, for messages.
    pub fn entry_label(&self) -> String {
        self.label(&self.entry)
    }

    /// A path relative to the root, for messages.
    fn label(&self, path: &Path) -> String {
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

/// The modules of one run: its instances, and what it resolved.
pub struct Modules {
    linking: Arc<Linking>,
    /// Ready instances by module name, with their file label.
    instances: HashMap<String, (Instance, String)>,
    /// Names being instantiated right now, outermost first.
    in_progress: Vec<String>,
    /// Every file resolved or tried, in order.
    files: Vec<ModuleFile>,
    /// Compiled modules of this run and their names, for backtraces.
    labels: Vec<(Module, String)>,
    /// Every module loaded, in order.
    compiled: Vec<Compiled>,
}

impl Modules {
    /// No instance yet.
    pub fn new(linking: Arc<Linking>) -> Self {
        Self {
            linking,
            instances: HashMap::new(),
            in_progress: Vec::new(),
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

    /// Finds the file of module `name`, recording what was looked at.
    fn resolve(&mut self, name: &str, site: &Site) -> Result<PathBuf, UseError> {
        if name == self.linking.entry_name {
            return Ok(self.linking.entry.clone());
        }
        let bad_name = |why| UseError::BadName {
            site: site.clone(),
            name: name.to_owned(),
            why,
        };
        let candidates = names::candidates(&self.linking.root, name).map_err(bad_name)?;
        match names::existing(&self.linking.root, &candidates) {
            Ok(Some(path)) => Ok(path),
            Ok(None) => {
                for path in &candidates {
                    self.record(path, None);
                }
                Err(UseError::NotFound {
                    site: site.clone(),
                    name: name.to_owned(),
                    looked_for: candidates.map(|path| self.linking.label(&path)),
                })
            }
            Err(why) => Err(bad_name(why)),
        }
    }

    fn record(&mut self, path: &Path, hash: Option<ContentHash>) {
        if !self.files.iter().any(|file| file.path == path) {
            self.files.push(ModuleFile {
                path: path.to_path_buf(),
                hash,
            });
        }
    }

    /// Reads and compiles module `name` from `path` through the session's cache.
    fn load(&mut self, name: &str, path: &Path, site: &Site) -> Result<Artifact, UseError> {
        let started = Instant::now();
        let loaded = self
            .linking
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .load(&self.linking.engine, path);
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

/// Reads and compiles the entry, of either kind: the run branches on it.
pub fn load_entry(store: &mut wasmtime::Store<Host>) -> Result<Artifact, UseError> {
    let modules = &mut store.data_mut().modules;
    let name = modules.linking.entry_name.clone();
    let path = modules.linking.entry.clone();
    modules.load(&name, &path, &Site::entry())
}

/// Instantiates the entry module, under its name, so other modules can use it.
pub fn instantiate_entry(
    store: StoreContextMut<'_, Host>,
    module: &Module,
) -> wasmtime::Result<Instance> {
    let linking = Arc::clone(&store.data().modules.linking);
    instantiate_named(store, &linking.entry_name, module, linking.entry_label())
}

/// The instance of module `name` in this run, instantiating it now if this run
/// has not yet. `site` is who asked, for error messages.
pub fn instance(
    mut store: StoreContextMut<'_, Host>,
    name: &str,
    site: &Site,
) -> wasmtime::Result<Instance> {
    let modules = &mut store.data_mut().modules;
    if let Some((instance, _)) = modules.instances.get(name) {
        return Ok(*instance);
    }
    if let Some(start) = modules.in_progress.iter().position(|busy| busy == name) {
        let mut path = modules.in_progress[start..].to_vec();
        path.push(name.to_owned());
        return Err(UseError::Cycle {
            site: site.clone(),
            path,
        }
        .into());
    }
    let path = modules.resolve(name, site)?;
    let module = match modules.load(name, &path, site)? {
        Artifact::Module(module) => module,
        Artifact::Component(_) => {
            return Err(UseError::Invalid {
                site: site.clone(),
                file: modules.linking.label(&path),
                message: "it is a component: `use` links core modules".to_owned(),
                place: None,
                validation: false,
            }
            .into());
        }
    };
    let file = modules.linking.label(&path);
    let instance = instantiate_named(store.as_context_mut(), name, &module, file)?;

    // A used WASI reactor is initialised before anything else is asked of it;
    // the entry's own `_initialize` is called by the run, before `_start`.
    if name != store.data().modules.linking.entry_name
        && let Some(init) = instance.get_func(&mut store, "_initialize")
    {
        init.typed::<(), ()>(&store)?.call(&mut store, ())?;
    }
    Ok(instance)
}

/// Instantiates `module` (from `file`, relative to the root) as this run's
/// `name`, linking its imports.
fn instantiate_named(
    mut store: StoreContextMut<'_, Host>,
    name: &str,
    module: &Module,
    file: String,
) -> wasmtime::Result<Instance> {
    let modules = &mut store.data_mut().modules;
    modules.labels.push((module.clone(), name.to_owned()));
    modules.in_progress.push(name.to_owned());

    let instantiated = instantiate(store.as_context_mut(), module, &file);

    let modules = &mut store.data_mut().modules;
    modules.in_progress.pop();
    let instance = instantiated?;
    modules.instances.insert(name.to_owned(), (instance, file));
    Ok(instance)
}

/// Resolves `module`'s imports and instantiates it (running its start function).
fn instantiate(
    mut store: StoreContextMut<'_, Host>,
    module: &Module,
    file: &str,
) -> wasmtime::Result<Instance> {
    let mut externs = Vec::new();
    for import in module.imports() {
        externs.push(import_extern(store.as_context_mut(), &import, file)?);
    }
    Instance::new(&mut store, module, &externs).map_err(|err| {
        // Errors from running the start function (traps, a failed `use` inside
        // it) pass through as they are; the rest are link errors of this module.
        let ran = err.is::<wasmtime::Trap>()
            || err.is::<UseError>()
            || err.downcast_ref::<WasmBacktrace>().is_some();
        if ran {
            return err;
        }
        UseError::Invalid {
            site: Site::entry(),
            file: file.to_owned(),
            message: format!("{err:#}"),
            place: None,
            validation: false,
        }
        .into()
    })
}

/// What one import of `file` is bound to: a host item, a trampoline, or another
/// module's export.
fn import_extern(
    mut store: StoreContextMut<'_, Host>,
    import: &ImportType<'_>,
    file: &str,
) -> wasmtime::Result<Extern> {
    // Built only when needed: this runs for every import of every run.
    let site = || Site {
        file: Some(file.to_owned()),
        import: format!("{}::{}", import.module(), import.name()),
    };
    let target = import.module();
    if names::is_host_namespace(target) {
        let linking = Arc::clone(&store.data().modules.linking);
        return linking
            .linker
            .get_by_import(&mut store, import)
            .ok_or_else(|| UseError::UnknownHostImport { site: site() }.into());
    }
    match import.ty() {
        ExternType::Func(ty) => {
            // A module already there (the running entry, say) is bound directly.
            if let Some(&(instance, ref provider)) = store.data().modules.instances.get(target) {
                let provider = provider.clone();
                let func = export_func(store, instance, &provider, import.name(), &ty, &site())?;
                return Ok(Extern::Func(func));
            }
            Ok(Extern::Func(trampoline(
                store,
                target.to_owned(),
                import.name().to_owned(),
                ty,
                site(),
            )))
        }
        other => {
            let instance = instance(store.as_context_mut(), target, &site())?;
            let provider = store.data().modules.instances[target].1.clone();
            instance
                .get_export(&mut store, import.name())
                .ok_or_else(|| {
                    UseError::MissingExport {
                        site: site(),
                        file: provider,
                        export: import.name().to_owned(),
                        expected: kind(&other).to_owned(),
                    }
                    .into()
                })
        }
    }
}

/// A host function of type `ty` that instantiates `target` on its first call and
/// forwards every call to `target`'s `export`.
fn trampoline(
    store: StoreContextMut<'_, Host>,
    target: String,
    export: String,
    ty: FuncType,
    site: Site,
) -> Func {
    let bound = OnceLock::<Func>::new();
    Func::new(store, ty.clone(), move |mut caller, params, results| {
        let func = match bound.get() {
            Some(func) => *func,
            None => {
                let instance = instance(caller.as_context_mut(), &target, &site)?;
                let file = caller.data().modules.instances[&target].1.clone();
                let func = export_func(
                    caller.as_context_mut(),
                    instance,
                    &file,
                    &export,
                    &ty,
                    &site,
                )?;
                *bound.get_or_init(|| func)
            }
        };
        func.call(&mut caller, params, results)
    })
}

/// `instance`'s function export `name`, checked against the importer's type.
fn export_func(
    mut store: StoreContextMut<'_, Host>,
    instance: Instance,
    file: &str,
    name: &str,
    ty: &FuncType,
    site: &Site,
) -> Result<Func, UseError> {
    let func = instance
        .get_export(&mut store, name)
        .and_then(Extern::into_func)
        .ok_or_else(|| UseError::MissingExport {
            site: site.clone(),
            file: file.to_owned(),
            export: name.to_owned(),
            expected: signature(ty),
        })?;
    let found = func.ty(&store);
    if !found.matches(ty) {
        return Err(UseError::TypeMismatch {
            site: site.clone(),
            file: file.to_owned(),
            expected: signature(ty),
            found: signature(&found),
        });
    }
    Ok(func)
}

/// `(func (param i32) (result i32))`: wasmtime's form without its `(type ...)` wrapper.
fn signature(ty: &FuncType) -> String {
    let text = ty.to_string();
    text.strip_prefix("(type ")
        .and_then(|inner| inner.strip_suffix(')'))
        .unwrap_or(&text)
        .to_owned()
}

fn kind(ty: &ExternType) -> &'static str {
    match ty {
        ExternType::Func(_) => "a function",
        ExternType::Global(_) => "a global",
        ExternType::Table(_) => "a table",
        ExternType::Memory(_) => "a memory",
        ExternType::Tag(_) => "a tag",
    }
}
