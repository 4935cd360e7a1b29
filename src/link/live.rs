//! The `live` host interface for core modules: `live.use`, the explicit form of
//! an import. Its ABI is documented in `wit/live.wit`.

use anyhow::Result;
use wasmtime::{AsContextMut, Caller, Extern, Linker, Trap};

use super::{Site, UseError, instance};
use crate::host::Host;

/// The module is ready (it was, or is now, instantiated in this run).
pub const OK: i32 = 0;
/// Neither `N.wat` nor `N.wasm` exists.
pub const NOT_FOUND: i32 = -1;
/// The file is not a valid module, or its imports cannot be satisfied.
pub const INVALID: i32 = -2;
/// Its start function (or `_initialize`) trapped.
pub const TRAPPED: i32 = -3;
/// It needs, while being instantiated, a module that is waiting for it.
pub const CYCLE: i32 = -4;
/// The name is refused, or (pointer, length) is not inside the caller's memory,
/// or it is not UTF-8.
pub const BAD_NAME: i32 = -5;

/// Defines `live.use: (func (param i32 i32) (result i32))` in `linker`.
pub fn add_to_linker(linker: &mut Linker<Host>) -> Result<()> {
    linker.func_wrap(
        "live",
        "use",
        |mut caller: Caller<'_, Host>, ptr: i32, len: i32| -> wasmtime::Result<i32> {
            let name = match read_name(&mut caller, ptr, len) {
                Ok(name) => name,
                Err(why) => {
                    crate::report::use_failed(&format!("live.use({ptr:#x}, {len}): {why}"));
                    return Ok(BAD_NAME);
                }
            };
            let site = Site {
                file: None,
                import: format!("live.use({name:?})"),
            };
            match instance(caller.as_context_mut(), &name, &site) {
                Ok(_) => Ok(OK),
                Err(err) => code_for(err),
            }
        },
    )?;
    Ok(())
}

/// The code for a failed `use`, with the detail on stderr; errors that must end
/// the run (a stop, running out of a limit, `proc_exit`) pass through.
fn code_for(err: wasmtime::Error) -> wasmtime::Result<i32> {
    if let Some(use_error) = err.downcast_ref::<UseError>() {
        crate::report::use_failed(&use_error.to_string());
        return Ok(use_error.code());
    }
    match err.downcast_ref::<Trap>() {
        // The run must end: stopped by a save or Ctrl-C, or out of fuel.
        Some(Trap::Interrupt | Trap::OutOfFuel) => Err(err),
        Some(trap) => {
            crate::report::use_failed(&format!(
                "live.use: the module's start trapped: {}",
                crate::outcome::trap_words(*trap)
            ));
            Ok(TRAPPED)
        }
        // `proc_exit` in a start function, or a host call that failed.
        None => Err(err),
    }
}

/// The module name at (ptr, len) in the caller's exported `memory`.
fn read_name(caller: &mut Caller<'_, Host>, ptr: i32, len: i32) -> Result<String, &'static str> {
    let memory = caller
        .get_export("memory")
        .and_then(Extern::into_memory)
        .ok_or("the caller exports no `memory`")?;
    let start = ptr as u32 as usize;
    let end = start
        .checked_add(len as u32 as usize)
        .ok_or("bad pointer")?;
    let bytes = memory
        .data(&*caller)
        .get(start..end)
        .ok_or("the name lies outside the caller's memory")?;
    String::from_utf8(bytes.to_vec()).map_err(|_| "the name is not UTF-8")
}
