//! The `live` host interface for core modules: `live.use`, the explicit form of
//! an import. Its ABI is documented in `wit/live.wit`.

use anyhow::Result;
use wasmtime::{AsContextMut, Caller, Extern, Linker, Trap};

use super::host::Host;
use super::link::instance;
use super::notes::Note;
use super::outcome::trap_words;
use super::problem::{Problem, ProblemKind};
use super::use_error::{BAD_NAME, OK, Site, TRAPPED, UseError};
use crate::names::{BadName, MAX_NAME_LEN};

/// Defines `live.use: (func (param i32 i32) (result i32))` in `linker`.
pub fn add_to_linker(linker: &mut Linker<Host>) -> Result<()> {
    linker.func_wrap(
        "live",
        "use",
        |mut caller: Caller<'_, Host>, ptr: i32, len: i32| -> wasmtime::Result<i32> {
            let name = match read_name(&mut caller, ptr, len) {
                Ok(name) => name,
                Err(why) => {
                    let message = format!("live.use({ptr:#x}, {len}): {why}");
                    say_failed(
                        &caller,
                        BAD_NAME,
                        Problem::new(ProblemKind::BadName, &message),
                        message,
                    );
                    return Ok(BAD_NAME);
                }
            };
            let site = Site::live_use(&name);
            match instance(caller.as_context_mut(), &name, &site) {
                Ok(_) => Ok(OK),
                Err(err) => code_for(&caller, err),
            }
        },
    )?;
    Ok(())
}

/// The code for a failed `use`, with the detail said as a note; errors that must
/// end the run (a stop, running out of a limit, `proc_exit`) pass through.
fn code_for(caller: &Caller<'_, Host>, err: wasmtime::Error) -> wasmtime::Result<i32> {
    if let Some(use_error) = err.downcast_ref::<UseError>() {
        let code = use_error.code();
        say_failed(caller, code, use_error.problem(), use_error.to_string());
        return Ok(code);
    }
    match err.downcast_ref::<Trap>() {
        // The run must end: stopped by a save or Ctrl-C, or out of fuel.
        Some(Trap::Interrupt | Trap::OutOfFuel) => Err(err),
        Some(trap) => {
            let message = format!(
                "live.use: the module's start trapped: {}",
                trap_words(*trap)
            );
            say_failed(
                caller,
                TRAPPED,
                Problem::new(ProblemKind::Trap, &message),
                message,
            );
            Ok(TRAPPED)
        }
        // `proc_exit` in a start function, or a host call that failed.
        None => Err(err),
    }
}

fn say_failed(caller: &Caller<'_, Host>, code: i32, problem: Problem, detail: String) {
    caller.data().notes.say(Note::UseFailed {
        code,
        problem,
        detail,
    });
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
