//! What the values crossing component `use` cost the host, and the refusal of
//! those past their bound (`--max-memory`, see
//! [`InFlight`](crate::run::limits::InFlight)).
//!
//! wasmtime copies a call's values out of the calling guest before our
//! trampoline runs, each `list<u8>` element as a whole `Val`; a hop keeps them
//! until the provider it calls returns. The bound is held through wasmtime's
//! hostcall fuel, set to what is left before each call, so a call past it fails
//! in wasmtime before its values exist; this module counts what each hop holds
//! as the fuel counts it, and names the failure.

use std::error::Error;
use std::mem::size_of;

use wasmtime::component::Val;
use wasmtime::{AsContextMut, StoreContextMut};

use crate::run::host::Host;
use crate::run::use_error::{Site, UseError};

/// The start of wasmtime's message when a host call's copy runs out of fuel
/// (`HostcallFuelExhausted`, private to it).
const OUT_OF_HOSTCALL_FUEL: &str = "too much data is being copied between the host and the guest";

/// The host bytes `values` hold: each value's own size, and what its strings,
/// lists and names took (their capacity: wasmtime's copy of a list grows as it
/// is made, up to twice the length).
pub(super) fn held(values: &[Val]) -> u64 {
    values
        .iter()
        .map(|value| own(1).saturating_add(beyond(value)))
        .fold(0, u64::saturating_add)
}

/// `count` values' own size.
fn own(count: usize) -> u64 {
    (count as u64).saturating_mul(size_of::<Val>() as u64)
}

/// A list of `items`: its spare capacity, then the items.
fn list(items: &Vec<Val>) -> u64 {
    own(items.capacity() - items.len()).saturating_add(held(items))
}

/// What `value` holds beyond its own size. (Recursion as deep as the type's
/// nesting, which wasmtime's copy of the value went through first.)
fn beyond(value: &Val) -> u64 {
    let boxed = |payload: &Option<Box<Val>>| {
        payload
            .as_deref()
            .map_or(0, |inner| own(1).saturating_add(beyond(inner)))
    };
    let named = |name: &String| (size_of::<String>() + name.capacity()) as u64;
    match value {
        Val::String(text) | Val::Enum(text) => text.capacity() as u64,
        Val::List(items) | Val::Tuple(items) | Val::FixedLengthList(items) => list(items),
        Val::Map(pairs) => pairs
            .iter()
            .map(|(key, value)| {
                own(2)
                    .saturating_add(beyond(key))
                    .saturating_add(beyond(value))
            })
            .fold(
                own(2 * (pairs.capacity() - pairs.len())),
                u64::saturating_add,
            ),
        Val::Record(fields) => fields
            .iter()
            .map(|(name, value)| {
                named(name)
                    .saturating_add(own(1))
                    .saturating_add(beyond(value))
            })
            .fold(0, u64::saturating_add),
        Val::Variant(name, payload) => (name.capacity() as u64).saturating_add(boxed(payload)),
        Val::Option(payload) | Val::Result(Ok(payload) | Err(payload)) => boxed(payload),
        Val::Flags(names) => names.iter().map(named).fold(0, u64::saturating_add),
        _ => 0,
    }
}

/// Sets what the next host call may copy out of a guest to what the bound
/// leaves (once at the start of a run, then around each hop).
pub(super) fn set_fuel(mut store: StoreContextMut<'_, Host>) {
    let fuel = store.data().memory.values.fuel();
    store.as_context_mut().set_hostcall_fuel(fuel);
}

/// The refusal of the values `caller` passed or returned, when the error whose
/// `causes` these are is wasmtime's refusal to copy them (out of hostcall
/// fuel) and not yet named. `site` is the call in progress that saw it.
pub(super) fn refusal<'a>(
    host: &Host,
    causes: impl Iterator<Item = &'a (dyn Error + 'static)>,
    site: &Site,
    caller: &str,
) -> Option<UseError> {
    unnamed_refusal(causes).then(|| UseError::ValuesTooLarge {
        site: site.clone(),
        refused: host.memory.values.refused(caller, None),
    })
}

/// True when wasmtime's refusal to copy values is among `causes` and no
/// [`UseError`] (a refusal a trampoline inside has named already).
fn unnamed_refusal<'a>(causes: impl Iterator<Item = &'a (dyn Error + 'static)>) -> bool {
    let mut refused = false;
    for cause in causes {
        if cause.is::<UseError>() {
            return false;
        }
        refused |= cause.to_string().starts_with(OUT_OF_HOSTCALL_FUEL);
    }
    refused
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_count_their_own_size_and_their_bytes() {
        let one = size_of::<Val>() as u64;
        assert_eq!(held(&[Val::U32(7)]), one);
        assert_eq!(held(&[Val::String("abc".into())]), one + 3);
        // A list<u8> of 1,000 costs 1,000 values, not 1,000 bytes; and its
        // spare room too.
        let bytes = Val::List(vec![Val::U8(0); 1000]);
        assert_eq!(held(&[bytes]), one + 1000 * one);
        let mut grown = Vec::with_capacity(2048);
        grown.extend(std::iter::repeat_n(Val::U8(0), 1025));
        assert_eq!(held(&[Val::List(grown)]), one + 2048 * one);
        let record = Val::Record(vec![("name".into(), Val::Enum("red".into()))]);
        assert_eq!(
            held(&[record]),
            one + (size_of::<String>() as u64 + 4) + one + 3
        );
        let nested = Val::Option(Some(Box::new(Val::List(vec![Val::Bool(true)]))));
        assert_eq!(held(&[nested]), one + one + one);
    }

    #[test]
    fn wasmtimes_refusal_is_known_by_its_words_unless_already_named() {
        let words = "too much data is being copied between the host and the guest: fuel \
                     allocated for hostcalls has been exhausted";
        let err = wasmtime::Error::msg(words).context("error while executing at wasm function 1");
        assert!(unnamed_refusal(err.chain()));
        assert!(!unnamed_refusal(wasmtime::Error::msg("other").chain()));
        let named = UseError::UnknownHostImport {
            site: Site::entry(),
        };
        let err = wasmtime::Error::new(named).context(words);
        assert!(!unnamed_refusal(err.chain()));
    }
}
