//! The `live` host interface for core modules: `live.use`, the explicit form of
//! an import. Its ABI is documented in `wit/live.wit`.

use anyhow::Result;
use wasmtime::{AsContextMut, Caller, Extern, Linker, Module};

use crate::names::{BadName, MAX_NAME_LEN};
use crate::run::host::Host;
use crate::run::instantiate;
use crate::run::live::failed_use;
use crate::run::notes::Note;
use crate::run::problem::{Problem, ProblemKind};
use crate::run::use_error::{BAD_NAME, OK, Site};

/// Defines `live.use: (func (param i32 i32) (result i32))` in `linker`.
pub(super) fn add_to_linker(linker: &mut Linker<Host>) -> Result<()> {
    linker.func_wrap(
        "live",
        "use",
        |mut caller: Caller<'_, Host>, ptr: i32, len: i32| -> wasmtime::Result<i32> {
            let name = match read_name(&mut caller, ptr, len) {
                Ok(name) => name,
                Err(why) => {
                    let message = format!("live.use({ptr:#x}, {len}): {why}");
                    caller.data().notes.say(Note::UseFailed {
                        code: BAD_NAME,
                        problem: Problem::new(ProblemKind::BadName, &message),
                        detail: message,
                    });
                    return Ok(BAD_NAME);
                }
            };
            let site = Site::live_use(&name);
            match instantiate::instance::<Module>(caller.as_context_mut(), &name, &site) {
                Ok(_) => Ok(OK),
                Err(err) => failed_use(&caller.data().notes, err),
            }
        },
    )?;
    Ok(())
}

/// The module name at (ptr, len) in the caller's exported `memory`; a name
/// longer than any path is refused before it is copied.
fn read_name(caller: &mut Caller<'_, Host>, ptr: i32, len: i32) -> Result<String, String> {
    let memory = caller
        .get_export("memory")
        .and_then(Extern::into_memory)
        .ok_or("the caller exports no `memory`")?;
    let (start, len) = (ptr as u32 as usize, len as u32 as usize);
    if len > MAX_NAME_LEN {
        return Err(BadName::TooLong(len).to_string());
    }
    let bytes = start
        .checked_add(len)
        .and_then(|end| memory.data(&*caller).get(start..end))
        .ok_or("the name lies outside the caller's memory")?;
    String::from_utf8(bytes.to_vec()).map_err(|_| "the name is not UTF-8".to_owned())
}
