//! An interruptible `wasi_snapshot_preview1.poll_oneoff` for sleeping guests.
//!
//! Epoch interruption stops wasm code, not a host call: a guest in a 10-second
//! `sleep` would hold the next run back for 10 seconds. So a poll that only waits
//! on relative clocks (what every `sleep` compiles to) waits here, on the run's
//! [`Interrupt`](super::interrupt::Interrupt), and a save wakes it at once.
//! Every other poll (file descriptors, absolute clocks) goes to wasmtime-wasi.

use std::time::Duration;

use anyhow::Result;
use wasmtime::{Caller, Extern, Linker, Trap};

use super::host::Host;

const MODULE: &str = "wasi_snapshot_preview1";
const SUBSCRIPTION_SIZE: usize = 48;
const EVENT_SIZE: usize = 32;
const ERRNO_SUCCESS: i32 = 0;
const ERRNO_FAULT: i32 = 21;

/// Replaces `poll_oneoff` in `linker`, delegating what it does not handle to the
/// definition already there.
pub fn shadow_poll_oneoff(linker: &mut Linker<Host>) -> Result<()> {
    let wasi = linker.clone();
    linker.allow_shadowing(true);
    linker.func_wrap(
        MODULE,
        "poll_oneoff",
        move |mut caller: Caller<'_, Host>,
              subs: i32,
              events: i32,
              count: i32,
              nevents: i32|
              -> wasmtime::Result<i32> {
            let Some(memory) = caller.get_export("memory").and_then(Extern::into_memory) else {
                return delegate(&wasi, &mut caller, (subs, events, count, nevents));
            };
            let Some(timers) = relative_timers(memory.data(&caller), subs, count) else {
                return delegate(&wasi, &mut caller, (subs, events, count, nevents));
            };
            let Some(shortest) = timers.iter().map(|timer| timer.timeout).min() else {
                return delegate(&wasi, &mut caller, (subs, events, count, nevents));
            };
            if caller
                .data()
                .interrupt
                .sleep(Duration::from_nanos(shortest))
                .is_err()
            {
                return Err(Trap::Interrupt.into());
            }
            let fired: Vec<&Timer> = timers.iter().filter(|t| t.timeout == shortest).collect();
            let data = memory.data_mut(&mut caller);
            for (slot, timer) in fired.iter().enumerate() {
                let Some(event) = slice_at(data, events, slot * EVENT_SIZE, EVENT_SIZE) else {
                    return Ok(ERRNO_FAULT);
                };
                event.fill(0);
                event[..8].copy_from_slice(&timer.userdata.to_le_bytes());
                // error = 0 (success), type = 0 (clock): already zero.
            }
            let Some(out) = slice_at(data, nevents, 0, 4) else {
                return Ok(ERRNO_FAULT);
            };
            let fired_count = u32::try_from(fired.len()).unwrap_or(u32::MAX);
            out.copy_from_slice(&fired_count.to_le_bytes());
            Ok(ERRNO_SUCCESS)
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// A relative clock subscription.
struct Timer {
    userdata: u64,
    timeout: u64,
}

/// The subscriptions, if every one is a relative clock; `None` otherwise (or when
/// they lie outside memory: wasmtime-wasi then reports the fault).
fn relative_timers(memory: &[u8], subs: i32, count: i32) -> Option<Vec<Timer>> {
    let count = usize::try_from(count).ok()?;
    let all = slice_at_const(memory, subs, count.checked_mul(SUBSCRIPTION_SIZE)?)?;
    all.chunks_exact(SUBSCRIPTION_SIZE)
        .map(|sub| {
            let tag = sub[8];
            let flags = u16::from_le_bytes([sub[40], sub[41]]);
            let is_relative_clock = tag == 0 && flags & 1 == 0;
            if !is_relative_clock {
                return None;
            }
            Some(Timer {
                userdata: u64::from_le_bytes(sub[0..8].try_into().ok()?),
                timeout: u64::from_le_bytes(sub[24..32].try_into().ok()?),
            })
        })
        .collect()
}

fn slice_at_const(memory: &[u8], ptr: i32, len: usize) -> Option<&[u8]> {
    let start = usize::try_from(ptr as u32).ok()?;
    memory.get(start..start.checked_add(len)?)
}

fn slice_at(memory: &mut [u8], ptr: i32, offset: usize, len: usize) -> Option<&mut [u8]> {
    let start = usize::try_from(ptr as u32).ok()?.checked_add(offset)?;
    memory.get_mut(start..start.checked_add(len)?)
}

fn delegate(
    wasi: &Linker<Host>,
    caller: &mut Caller<'_, Host>,
    args: (i32, i32, i32, i32),
) -> wasmtime::Result<i32> {
    let original = wasi
        .get(&mut *caller, MODULE, "poll_oneoff")?
        .into_func()
        .ok_or_else(|| wasmtime::format_err!("wasi poll_oneoff is not a function"))?;
    original
        .typed::<(i32, i32, i32, i32), i32>(&*caller)?
        .call(&mut *caller, args)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscription(userdata: u64, tag: u8, timeout: u64, flags: u16) -> [u8; SUBSCRIPTION_SIZE] {
        let mut sub = [0; SUBSCRIPTION_SIZE];
        sub[0..8].copy_from_slice(&userdata.to_le_bytes());
        sub[8] = tag;
        sub[24..32].copy_from_slice(&timeout.to_le_bytes());
        sub[40..42].copy_from_slice(&flags.to_le_bytes());
        sub
    }

    #[test]
    fn only_relative_clocks_are_ours() {
        let mut memory = vec![0u8; 8];
        memory.extend(subscription(7, 0, 1_000, 0));
        memory.extend(subscription(8, 0, 500, 0));
        let timers = relative_timers(&memory, 8, 2).expect("two timers");
        assert_eq!(timers.len(), 2);
        assert_eq!((timers[1].userdata, timers[1].timeout), (8, 500));

        memory.extend(subscription(9, 1, 0, 0)); // fd_read
        assert!(relative_timers(&memory, 8, 3).is_none());
        let absolute = subscription(10, 0, 1_000, 1);
        assert!(relative_timers(&absolute, 0, 1).is_none());
        assert!(
            relative_timers(&memory, 8, 1_000).is_none(),
            "out of bounds"
        );
        assert!(relative_timers(&memory, -1, 1).is_none(), "out of bounds");
    }
}
