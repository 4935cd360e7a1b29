//! `use`: modules that link modules, on demand, one instance per name per run.
//!
//! An import from a module that is not a host namespace names another module
//! file (see [`crate::names`]). A function import is bound to a trampoline of the
//! same type that instantiates its module when first called, so a dependency
//! nobody calls is never loaded, and a program runs up to the first call of a
//! dependency that does not exist yet. Memories, tables and globals cannot wait:
//! their modules are instantiated with the importer. Every instance of a run lives
//! in the run's [`Modules`](super::modules::Modules); nothing survives into the
//! next run.

use std::sync::{Arc, OnceLock, PoisonError};

use wasmtime::{
    AsContextMut, Extern, ExternType, Func, FuncType, ImportType, Instance, InstancePre, Module,
    StoreContextMut, WasmBacktrace,
};

use super::host::Host;
use super::use_error::{Site, UseError};
use crate::cache::Artifact;
use crate::names;

/// Reads and compiles the entry, of either kind: the run branches on it.
pub fn load_entry(store: &mut wasmtime::Store<Host>) -> Result<Artifact, UseError> {
    let modules = &mut store.data_mut().modules;
    let name = modules.linking.entry_name.clone();
    let entry = modules.open_entry(&Site::entry())?;
    modules.load(&name, entry, &Site::entry())
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
    let (path, module) = match modules.find(name, site)? {
        (path, Artifact::Module(module)) => (path, module),
        (path, Artifact::Component(_)) => {
            let why = "it is a component: `use` links core modules";
            return Err(modules.other_kind(site, &path, why).into());
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
    let instantiated = match prelinked(&store, module, file) {
        Some(pre) => pre.instantiate(&mut store),
        None => {
            let mut externs = Vec::new();
            for import in module.imports() {
                externs.push(import_extern(store.as_context_mut(), &import, file)?);
            }
            Instance::new(&mut store, module, &externs)
        }
    };
    instantiated.map_err(|err| {
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

/// `module` linked to the host's functions ahead of the run, when all it
/// imports is the host's (a WASI command: an interpreter, a compiled program):
/// linked once per version of `file`, then only instantiated in each run.
fn prelinked(
    store: &StoreContextMut<'_, Host>,
    module: &Module,
    file: &str,
) -> Option<InstancePre<Host>> {
    let host = store.data();
    let linking = &host.modules.linking;
    let mut prelinked = linking
        .prelinked
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(pre) = prelinked.get(file)
        && Module::same(pre.module(), module)
    {
        return Some(pre.clone());
    }
    if !module
        .imports()
        .all(|import| names::is_host_namespace(import.module()))
    {
        return None;
    }
    // An import the host does not define: the usual path says which.
    let pre = host.linkers.core.instantiate_pre(module).ok()?;
    prelinked.insert(file.to_owned(), pre.clone());
    Some(pre)
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
        let linkers = Arc::clone(&store.data().linkers);
        return linkers
            .core
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
