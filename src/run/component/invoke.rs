//! `--invoke` for components: a call written in WAVE (`add(1, 2)`,
//! `greet("you")`, `demo:math/api.add(1, 2)`), its results printed in WAVE, as
//! `wasmtime run --invoke` does.

use std::io::Write;

use anyhow::{Context, Result, anyhow, bail};
use wasmtime::Store;
use wasmtime::component::types::{ComponentFunc, ComponentInstance, ComponentItem};
use wasmtime::component::wasm_wave::untyped::UntypedFuncCall;
use wasmtime::component::wasm_wave::wasm::{DisplayFuncResults, WasmFunc};
use wasmtime::component::{Component, ComponentExportIndex, Instance, Val};

use super::unversioned;
use crate::run::host::Host;

/// A parsed `--invoke` call, not yet checked against a component.
pub(super) struct Call(UntypedFuncCall<'static>);

impl Call {
    /// Parses `text` as a WAVE function call.
    pub(super) fn parse(text: &str) -> Result<Call> {
        UntypedFuncCall::parse(text)
            .map(|call| Call(call.into_owned()))
            .map_err(|err| {
                anyhow!(
                    "--invoke {text:?}: not a WAVE call ({err}); write NAME(ARGS), \
                     e.g. 'add(1, 2)' or 'greet(\"you\")'"
                )
            })
    }

    /// Calls the function on `instance` of `component` and prints its results.
    pub(super) fn run(
        &self,
        store: &mut Store<Host>,
        component: &Component,
        instance: &Instance,
    ) -> Result<()> {
        let name = self.0.name();
        let (index, ty) = find_func(store, component, name)?;
        let types: Vec<_> = WasmFunc::params(&ty).collect();
        let params: Vec<Val> = self
            .0
            .to_wasm_params(&types)
            .map_err(|err| anyhow!("--invoke {:?}: {err}", self.0.source()))?;
        let func = instance
            .get_func(&mut *store, index)
            .with_context(|| format!("--invoke: `{name}` is not a function"))?;
        let mut results = vec![Val::Bool(false); ty.results().len()];
        func.call(&mut *store, &params, &mut results)?;
        if !results.is_empty() {
            writeln!(std::io::stdout().lock(), "{}", DisplayFuncResults(&results))?;
        }
        Ok(())
    }
}

/// The exported function `name` names: `f` at the top level, else the one `f`
/// of an exported interface; `interface.f` inside one, the
/// interface named in full, without its version, or by its last part.
fn find_func(
    store: &Store<Host>,
    component: &Component,
    name: &str,
) -> Result<(ComponentExportIndex, ComponentFunc)> {
    let engine = store.engine();
    let interfaces: Vec<(String, ComponentInstance)> = component
        .component_type()
        .exports(engine)
        .filter_map(|(name, export)| match export.ty {
            ComponentItem::ComponentInstance(exports) => Some((name.to_owned(), exports)),
            _ => None,
        })
        .collect();
    if let Some((given, func)) = name.rsplit_once('.') {
        // `demo:math/api`, or just `api`, stands for `demo:math/api@0.1.0`.
        let short = |name| unversioned(name).rsplit('/').next().unwrap_or_default();
        let matches: Vec<&String> = interfaces
            .iter()
            .map(|(name, _)| name)
            .filter(|name| *name == given || unversioned(name) == given || short(name) == given)
            .collect();
        let interface = match matches.as_slice() {
            [interface] => interface,
            [] => bail!("--invoke: the component exports no interface `{given}`"),
            many => bail!(
                "--invoke: `{given}` could be any of {}: name it in full",
                many.iter()
                    .map(|name| name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let inside = component.get_export_index(None, interface.as_str());
        return match component.get_export(inside.as_ref(), func) {
            Some((ComponentItem::ComponentFunc(ty), index)) if inside.is_some() => Ok((index, ty)),
            _ => bail!("--invoke: the component exports no function `{func}` in `{interface}`"),
        };
    }
    if let Some((ComponentItem::ComponentFunc(ty), index)) = component.get_export(None, name) {
        return Ok((index, ty));
    }
    let found: Vec<String> = interfaces
        .iter()
        .filter(|(_, exports)| exports.get_export(engine, name).is_some())
        .map(|(interface, _)| interface.clone())
        .collect();
    match found.as_slice() {
        [interface] => {
            let inside = component.get_export_index(None, interface.as_str());
            match component.get_export(inside.as_ref(), name) {
                Some((ComponentItem::ComponentFunc(ty), index)) => Ok((index, ty)),
                _ => bail!("--invoke: `{interface}.{name}` is not a function"),
            }
        }
        [] => bail!("--invoke: the component exports no function `{name}`"),
        many => bail!(
            "--invoke: `{name}` is exported by {}: say which, e.g. '{}.{name}(...)'",
            many.join(", "),
            many[0]
        ),
    }
}
