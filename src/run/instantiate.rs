//! The one way a run instantiates a module file, of either kind: the entry,
//! and what `use` (an import, or `live.use`) asks for by name.
//!
//! One instance per name per run: a name already instantiated is returned as
//! it is; otherwise its file is found and compiled (see [`Modules`]), checked
//! to be of the kind the asker links, and instantiated while its name is on
//! the cycle stack (asking for it meanwhile is a cycle, not a hang). How a
//! kind links its imports is the kind's own ([`Kind`], in `core_module` and
//! `component`); what was linked is kept across runs by file and content hash
//! ([`HostFunctions::prelinked`]).
//!
//! [`Modules`]: super::modules::Modules
//! [`HostFunctions::prelinked`]: super::host::HostFunctions::prelinked

use std::path::Path;
use std::sync::Arc;

use wasmtime::{AsContextMut, StoreContextMut, Trap, WasmBacktrace};

use super::host::Host;
use super::modules::{Instantiated, Ready};
use super::use_error::{Site, UseError};
use crate::cache::Artifact;
use crate::source::ContentHash;

/// A kind of module file a run instantiates: a core module or a component.
pub(super) trait Kind: Sized {
    /// An instance of this kind.
    type Instance: Copy;
    /// Why an artifact of the other kind cannot serve an importer of this one.
    const OTHER_KIND: &'static str;

    /// This kind's code in `artifact`, if it is of this kind.
    fn of(artifact: Artifact) -> Option<Self>;

    /// This kind's instance in `ready`, if it is of this kind.
    fn instance(ready: &Instantiated) -> Option<Self::Instance>;

    /// `instance` as the run keeps it.
    fn ready(&self, instance: Self::Instance) -> Instantiated;

    /// Links this code's imports (`file`, at the version of `hash`) and
    /// instantiates it, running its start function.
    fn instantiate(
        &self,
        store: StoreContextMut<'_, Host>,
        file: &str,
        hash: Option<ContentHash>,
    ) -> wasmtime::Result<Self::Instance>;

    /// What a used instance needs before anything else is asked of it (a WASI
    /// reactor's `_initialize`); the entry's is the run's to call.
    fn initialise(
        _store: StoreContextMut<'_, Host>,
        _instance: Self::Instance,
    ) -> wasmtime::Result<()> {
        Ok(())
    }
}

/// Instantiates the entry `code`, under its name, so that what it uses can
/// use it back.
pub(super) fn entry<K: Kind>(
    store: StoreContextMut<'_, Host>,
    code: &K,
) -> wasmtime::Result<K::Instance> {
    let files = Arc::clone(&store.data().modules.files);
    instantiate_named(store, &files.entry_name, code, files.entry())
}

/// Instantiates the entry `component`, already linked as `pre` (a version
/// `--serve` answers with), under its name, as [`entry`] does.
pub(super) fn entry_prelinked(
    mut store: StoreContextMut<'_, Host>,
    pre: &wasmtime::component::InstancePre<Host>,
    component: &wasmtime::component::Component,
) -> wasmtime::Result<wasmtime::component::Instance> {
    let files = Arc::clone(&store.data().modules.files);
    let name = &files.entry_name;
    let modules = &mut store.data_mut().modules;
    let file = modules.label(files.entry());
    modules.enter(name);
    let instantiated = pre.instantiate(&mut store);
    let modules = &mut store.data_mut().modules;
    modules.leave();
    let instance = instantiated.map_err(|err| ran_or_unlinkable(err, &file))?;
    let ready = Ready {
        instance: component.ready(instance),
        file,
    };
    modules.insert(name, ready);
    Ok(instance)
}

/// The instance of module `name` in this run, instantiated now if this run has
/// not yet. `site` is who asked, for error messages.
pub(super) fn instance<K: Kind>(
    mut store: StoreContextMut<'_, Host>,
    name: &str,
    site: &Site,
) -> wasmtime::Result<K::Instance> {
    let modules = &mut store.data_mut().modules;
    if let Some(ready) = modules.ready(name) {
        return K::instance(&ready.instance).ok_or_else(|| {
            let file = ready.file.clone();
            other_kind::<K>(site, file).into()
        });
    }
    let (path, artifact) = modules.find(name, site)?;
    let Some(code) = K::of(artifact) else {
        return Err(other_kind::<K>(site, modules.label(&path)).into());
    };
    let instance = instantiate_named(store.as_context_mut(), name, &code, &path)?;
    K::initialise(store, instance)?;
    Ok(instance)
}

/// The error for `file`, asked for by `site`, being of the other kind.
fn other_kind<K: Kind>(site: &Site, file: String) -> UseError {
    UseError::Invalid {
        site: site.clone(),
        file,
        message: K::OTHER_KIND.to_owned(),
        place: None,
        validation: false,
    }
}

/// Instantiates `code`, from `path`, as this run's `name`.
fn instantiate_named<K: Kind>(
    mut store: StoreContextMut<'_, Host>,
    name: &str,
    code: &K,
    path: &Path,
) -> wasmtime::Result<K::Instance> {
    let modules = &mut store.data_mut().modules;
    let file = modules.label(path);
    let hash = modules.hash_of(path);
    modules.enter(name);
    let instantiated = code.instantiate(store.as_context_mut(), &file, hash);
    let modules = &mut store.data_mut().modules;
    modules.leave();
    let instance = instantiated.map_err(|err| ran_or_unlinkable(err, &file))?;
    let ready = Ready {
        instance: code.ready(instance),
        file,
    };
    modules.insert(name, ready);
    Ok(instance)
}

/// What ran in the start function (a trap, a failed `use` inside it) passes
/// through as it is; the rest says why `file` could not be linked.
fn ran_or_unlinkable(err: wasmtime::Error, file: &str) -> wasmtime::Error {
    if err.is::<Trap>() || err.is::<UseError>() || err.is::<WasmBacktrace>() {
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
}
