//! `use`: modules that link modules, on demand, one instance per name per run.
//!
//! An import from a module that is not one of the host's names another module
//! file (see [`crate::names`]). A function import is bound to a trampoline of the
//! same type that instantiates its module when first called, so a dependency
//! nobody calls is never loaded, and a program runs up to the first call of a
//! dependency that does not exist yet. Memories, tables and globals cannot wait:
//! their modules are instantiated with the importer. Every instance of a run lives
//! in the run's [`Modules`](crate::run::modules::Modules); nothing survives into the
//! next run.

use std::sync::{Arc, OnceLock};

use wasmtime::{
    AsContextMut, Extern, ExternType, Func, FuncType, ImportType, Instance, Module, StoreContextMut,
};

use crate::cache::Artifact;
use crate::names;
use crate::run::host::{Host, Prelinked};
use crate::run::instantiate::{self, Kind};
use crate::run::modules::Instantiated;
use crate::run::use_error::{Site, UseError};
use crate::source::ContentHash;

impl Kind for Module {
    type Instance = Instance;
    const OTHER_KIND: &'static str = "it is a component: `use` links core modules";

    fn of(artifact: Artifact) -> Option<Self> {
        match artifact {
            Artifact::Module(module) => Some(module),
            Artifact::Component(_) => None,
        }
    }

    fn instance(ready: &Instantiated) -> Option<Instance> {
        match ready {
            Instantiated::Core(instance) => Some(*instance),
            Instantiated::Component(..) => None,
        }
    }

    fn ready(&self, instance: Instance) -> Instantiated {
        Instantiated::Core(instance)
    }

    /// A module that imports only the host's functions (a WASI command: an
    /// interpreter, a compiled program) is linked once per version of its file,
    /// then only instantiated in each run; one that imports from other modules
    /// is linked in each run, to this run's instances and trampolines.
    fn instantiate(
        &self,
        mut store: StoreContextMut<'_, Host>,
        file: &str,
        hash: Option<ContentHash>,
    ) -> wasmtime::Result<Instance> {
        let functions = Arc::clone(&store.data().functions);
        if let Some(Prelinked::Core(pre)) = hash.and_then(|hash| functions.prelinked(file, hash)) {
            return pre.instantiate(&mut store);
        }
        let only_host = self
            .imports()
            .all(|import| names::is_host_module(import.module()));
        // An import the host does not define: the usual path says which.
        if only_host && let Ok(pre) = functions.core.instantiate_pre(self) {
            if let Some(hash) = hash {
                functions.keep(file, hash, Prelinked::Core(pre.clone()));
            }
            return pre.instantiate(&mut store);
        }
        let mut externs = Vec::new();
        for import in self.imports() {
            externs.push(import_extern(store.as_context_mut(), &import, file)?);
        }
        Instance::new(&mut store, self, &externs)
    }

    /// A used WASI reactor is initialised before anything else is asked of it;
    /// the entry's own `_initialize` is called by the run, before `_start`.
    fn initialise(
        mut store: StoreContextMut<'_, Host>,
        instance: Instance,
    ) -> wasmtime::Result<()> {
        if let Some(init) = instance.get_func(&mut store, "_initialize") {
            init.typed::<(), ()>(&store)?.call(&mut store, ())?;
        }
        Ok(())
    }
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
    if names::is_host_module(target) {
        let functions = Arc::clone(&store.data().functions);
        return functions
            .core
            .get_by_import(&mut store, import)
            .ok_or_else(|| UseError::UnknownHostImport { site: site() }.into());
    }
    match import.ty() {
        ExternType::Func(ty) => {
            // A module already there (the running entry, say) is bound directly.
            if let Some(ready) = store.data().modules.ready(target)
                && let Instantiated::Core(instance) = ready.instance
            {
                let provider = ready.file.clone();
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
            let instance =
                instantiate::instance::<Module>(store.as_context_mut(), target, &site())?;
            let provider = store.data().modules.file_of(target);
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
                let instance =
                    instantiate::instance::<Module>(caller.as_context_mut(), &target, &site)?;
                let file = caller.data().modules.file_of(&target);
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
