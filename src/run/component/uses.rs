//! `use` across components: an import of an interface the host does not
//! provide (not `wasi:*`, not `live:*`) is served by the sibling component its
//! package names (`demo:testmod/api` -> `testmod.wat`, else `testmod.wasm`).
//!
//! Each function of such an interface is bound to a trampoline that, on its
//! first call in a run, reads, compiles and instantiates the provider, then
//! forwards the call: a provider nobody calls is never loaded. One instance per
//! name per run, shared by every importer. A component's linker (the host's
//! functions and its trampolines) is built once per version of its file.
//!
//! A trampoline holds its call's values on the host until the provider
//! returns: they count against the run's bound on values in flight
//! ([`values`]), and a call past it is refused by name.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use wasmtime::component::types::{ComponentFunc, ComponentItem, Type};
use wasmtime::component::{Component, Func, Instance, InstancePre, Val};
use wasmtime::{AsContextMut, StoreContextMut};

use super::{unversioned, values};
use crate::cache::Artifact;
use crate::run::host::{Host, Prelinked};
use crate::run::instantiate::{self, Kind};
use crate::run::modules::Instantiated;
use crate::run::use_error::{Site, UseError};
use crate::source::ContentHash;

/// Interfaces of these packages are the host's: WASI's and `live`'s.
const HOST_PACKAGES: &[&str] = &["wasi:", "live:"];

impl Kind for Component {
    type Instance = Instance;
    const OTHER_KIND: &'static str =
        "it is a core module: a component's imports are served by components";

    fn of(artifact: Artifact) -> Option<Self> {
        match artifact {
            Artifact::Component(component) => Some(component),
            Artifact::Module(_) => None,
        }
    }

    fn instance(ready: &Instantiated) -> Option<Instance> {
        match ready {
            Instantiated::Component(instance, _) => Some(*instance),
            Instantiated::Core(_) => None,
        }
    }

    fn ready(&self, instance: Instance) -> Instantiated {
        Instantiated::Component(instance, self.clone())
    }

    fn instantiate(
        &self,
        mut store: StoreContextMut<'_, Host>,
        file: &str,
        hash: Option<ContentHash>,
    ) -> wasmtime::Result<Instance> {
        let functions = Arc::clone(&store.data().functions);
        let pre = match hash.and_then(|hash| functions.prelinked(file, hash)) {
            Some(Prelinked::Component(pre)) => pre,
            _ => {
                let pre = prelink(&store, self, file)?;
                if let Some(hash) = hash {
                    functions.keep(file, hash, Prelinked::Component(pre.clone()));
                }
                pre
            }
        };
        pre.instantiate(&mut store)
    }
}

/// `component` (from `file`) linked to the host's functions and to
/// trampolines for what it imports from siblings.
pub(in crate::run) fn prelink(
    store: &StoreContextMut<'_, Host>,
    component: &Component,
    file: &str,
) -> Result<InstancePre<Host>, UseError> {
    let host = store.data();
    let mut linker = host.functions.component.clone();
    let engine = store.engine().clone();
    let site = |import: &str| Site {
        file: Some(file.to_owned()),
        import: import.to_owned(),
    };
    for (import, item) in component.component_type().imports(&engine) {
        if crate::cache::is_part(import) {
            // A core module the cache took out of the component and compiled
            // on its own: given back where it was.
            let module = host
                .modules
                .files
                .part(import)
                .ok_or_else(|| UseError::Unlinkable {
                    site: site(import),
                    why: "its core module is no longer compiled".to_owned(),
                })?;
            linker
                .root()
                .module(import, &module)
                .map_err(|err| unlinkable(site(import), err))?;
            continue;
        }
        if HOST_PACKAGES.iter().any(|host| import.starts_with(host)) {
            if import.starts_with("wasi:http/") && !host.functions.http {
                return Err(UseError::Unlinkable {
                    site: site(import),
                    why: "HTTP (`wasi:http`) is not granted: serve the component with \
                          --serve, or grant its outgoing requests with -S http"
                        .to_owned(),
                });
            }
            continue;
        }
        let ComponentItem::ComponentInstance(interface) = item.ty else {
            return Err(UseError::Unlinkable {
                site: site(import),
                why: "only interfaces (`namespace:package/interface`) are served by \
                      sibling components; this import is not one"
                    .to_owned(),
            });
        };
        let provider = provider_name(import).ok_or_else(|| UseError::Unlinkable {
            site: site(import),
            why: "an interface name must be `namespace:package/interface`".to_owned(),
        })?;
        let mut bound = linker
            .instance(import)
            .map_err(|err| unlinkable(site(import), err))?;
        for (name, export) in interface.exports(&engine) {
            match export.ty {
                ComponentItem::ComponentFunc(_) => {
                    let call = Trampoline {
                        id: NEXT_TRAMPOLINE.fetch_add(1, Ordering::Relaxed),
                        provider: provider.to_owned(),
                        interface: import.to_owned(),
                        func: name.to_owned(),
                        site: site(&format!("{import}.{name}")),
                    };
                    bound
                        .func_new(name, move |store, ty, params, results| {
                            call.call(store, &ty, params, results)
                        })
                        .map_err(|err| unlinkable(site(import), err))?;
                }
                ComponentItem::Type(_) => {}
                ComponentItem::Resource(_) => {
                    return Err(UseError::Unlinkable {
                        site: site(import),
                        why: format!(
                            "resource `{name}`: resources do not cross components yet; \
                             pass plain values (records, lists, strings, variants)"
                        ),
                    });
                }
                _ => {
                    return Err(UseError::Unlinkable {
                        site: site(import),
                        why: format!("`{name}` is not a function: only functions are linked"),
                    });
                }
            }
        }
    }
    linker
        .instantiate_pre(component)
        .map_err(|err| unlinkable(site(""), err))
}

fn unlinkable(site: Site, err: wasmtime::Error) -> UseError {
    UseError::Unlinkable {
        site,
        why: format!("{err:#}"),
    }
}

/// The module name an interface's package gives: `demo:testmod/api@0.1.0` ->
/// `testmod`.
fn provider_name(interface: &str) -> Option<&str> {
    let (package, _) = interface.split_once('/')?;
    let (_, name) = package.rsplit_once(':')?;
    (!name.is_empty()).then_some(name)
}

/// Numbers the trampolines of the session: a run keeps what each resolved.
static NEXT_TRAMPOLINE: AtomicU64 = AtomicU64::new(0);

/// A function of an imported interface, forwarded to its provider.
struct Trampoline {
    /// Unique in the session.
    id: u64,
    provider: String,
    interface: String,
    func: String,
    site: Site,
}

impl Trampoline {
    /// Calls the provider's function, with `ty`, the importer's type of it,
    /// its arguments held against the bound on values in flight meanwhile.
    fn call(
        &self,
        mut store: StoreContextMut<'_, Host>,
        ty: &ComponentFunc,
        params: &[Val],
        results: &mut [Val],
    ) -> wasmtime::Result<()> {
        let caller = self.site.file.as_deref().unwrap_or("?");
        let bytes = values::held(params);
        store
            .data_mut()
            .memory
            .values
            .hold(caller, bytes)
            .map_err(|refused| UseError::ValuesTooLarge {
                site: self.site.clone(),
                refused,
            })?;
        values::set_fuel(store.as_context_mut());
        let called = self.forward(store.as_context_mut(), ty, params, results);
        // A refusal inside names the chain as it stood, this call in it.
        let called = called.map_err(|err| {
            let provider = store.data().modules.file_of(&self.provider);
            match values::refusal(store.data(), err.chain(), &self.site, &provider) {
                Some(refusal) => refusal.into(),
                None => err,
            }
        });
        store.data_mut().memory.values.release();
        values::set_fuel(store.as_context_mut());
        called
    }

    /// Calls the provider's function, resolved and checked once per run.
    fn forward(
        &self,
        mut store: StoreContextMut<'_, Host>,
        ty: &ComponentFunc,
        params: &[Val],
        results: &mut [Val],
    ) -> wasmtime::Result<()> {
        let func = match store.data().modules.bound(self.id) {
            Some(func) => func,
            None => {
                let func = self.resolve(store.as_context_mut(), ty)?;
                store.data_mut().modules.bind(self.id, func);
                func
            }
        };
        func.call(&mut store, params, results)
    }

    /// The provider's function, instantiating the provider if this run has not
    /// yet, checked against `ty`, the importer's type of it.
    fn resolve(
        &self,
        mut store: StoreContextMut<'_, Host>,
        ty: &ComponentFunc,
    ) -> wasmtime::Result<Func> {
        let instance =
            instantiate::instance::<Component>(store.as_context_mut(), &self.provider, &self.site)?;
        let func = self.export(&mut store, instance)?;
        let found = func.ty(&store);
        if !same_signature(ty, &found) {
            return Err(UseError::TypeMismatch {
                site: self.site.clone(),
                file: store.data().modules.file_of(&self.provider),
                expected: signature(ty),
                found: signature(&found),
            }
            .into());
        }
        Ok(func)
    }

    /// The provider's export of this function: under the interface's exact name,
    /// else under the same interface at another version.
    fn export(
        &self,
        store: &mut StoreContextMut<'_, Host>,
        instance: Instance,
    ) -> Result<Func, UseError> {
        let file = store.data().modules.file_of(&self.provider);
        let missing = |export: String| UseError::MissingExport {
            site: self.site.clone(),
            file: file.clone(),
            export,
            expected: "a function".to_owned(),
        };
        // `instance` made it this run's instance of a component.
        let ready = store.data().modules.ready(&self.provider);
        let Some(Instantiated::Component(_, component)) = ready.map(|ready| &ready.instance) else {
            return Err(missing(self.interface.clone()));
        };
        let component = component.clone();
        let wanted = unversioned(&self.interface);
        let engine = store.engine().clone();
        let exported = component
            .component_type()
            .exports(&engine)
            .map(|(name, _)| name.to_owned())
            .find(|name| *name == self.interface || unversioned(name) == wanted);
        let interface = exported.ok_or_else(|| missing(self.interface.clone()))?;
        let func = instance
            .get_export_index(&mut *store, None, &interface)
            .and_then(|index| instance.get_export_index(&mut *store, Some(&index), &self.func))
            .and_then(|index| instance.get_func(&mut *store, index));
        func.ok_or_else(|| missing(format!("{interface}.{}", self.func)))
    }
}

/// True when both take and return the same types (names aside).
fn same_signature(a: &ComponentFunc, b: &ComponentFunc) -> bool {
    a.params()
        .map(|(_, ty)| ty)
        .eq(b.params().map(|(_, ty)| ty))
        && a.results().eq(b.results())
}

/// `func(u32, string) -> list<u8>`, for messages.
fn signature(func: &ComponentFunc) -> String {
    let params: Vec<String> = func.params().map(|(_, ty)| type_name(&ty)).collect();
    let results: Vec<String> = func.results().map(|ty| type_name(&ty)).collect();
    match results.as_slice() {
        [] => format!("func({})", params.join(", ")),
        _ => format!("func({}) -> {}", params.join(", "), results.join(", ")),
    }
}

/// A value type's WIT name, nested types spelled out where short.
fn type_name(ty: &Type) -> String {
    let simple = match ty {
        Type::Bool => "bool",
        Type::S8 => "s8",
        Type::U8 => "u8",
        Type::S16 => "s16",
        Type::U16 => "u16",
        Type::S32 => "s32",
        Type::U32 => "u32",
        Type::S64 => "s64",
        Type::U64 => "u64",
        Type::Float32 => "f32",
        Type::Float64 => "f64",
        Type::Char => "char",
        Type::String => "string",
        Type::List(list) => return format!("list<{}>", type_name(&list.ty())),
        Type::Option(option) => return format!("option<{}>", type_name(&option.ty())),
        Type::Record(_) => "record",
        Type::Tuple(_) => "tuple",
        Type::Variant(_) => "variant",
        Type::Enum(_) => "enum",
        Type::Result(_) => "result",
        Type::Flags(_) => "flags",
        Type::Own(_) => "own",
        Type::Borrow(_) => "borrow",
        _ => "another type",
    };
    simple.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packages_name_their_providers() {
        assert_eq!(provider_name("demo:testmod/api@0.1.0"), Some("testmod"));
        assert_eq!(provider_name("demo:testmod/api"), Some("testmod"));
        assert_eq!(provider_name("a:b:lib/x"), Some("lib"));
        assert_eq!(provider_name("plain"), None);
        assert_eq!(provider_name("demo:/api"), None);
    }
}
