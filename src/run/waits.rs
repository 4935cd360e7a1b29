//! The waits of a core module's WASI that a stop can cut short.
//!
//! Epoch interruption stops wasm code, not a host call: a guest asleep in
//! `poll_oneoff` would hold the next run (or `--timeout`, or Ctrl-C) back
//! until it woke. So `wasi_snapshot_preview1.poll_oneoff` is shadowed:
//! - a poll on clocks only (what every `sleep` compiles to) waits here, on the
//!   run's [`Interrupt`]; an absolute clock is first made relative against the
//!   clock the guest reads. (wasmtime-wasi's own poll sleeps the thread for a
//!   single relative clock, and nothing could wake it.)
//! - any other poll (a file descriptor among its subscriptions) runs
//!   wasmtime-wasi's own async implementation with the caller's memory, raced
//!   against the stop switch, as the component waits are.

use std::future::Future;
use std::time::Duration;

use anyhow::Result;
use wasmtime::{AsContextMut, Caller, Linker, Trap};
use wasmtime_wasi::p1::types::Clockid;
use wasmtime_wasi::p1::wasi_snapshot_preview1::{self as preview1, WasiSnapshotPreview1};
use wasmtime_wasi::runtime::in_tokio;
use wiggle::GuestMemory;

use super::host::{Host, memory_and_host};
use super::interrupt::Interrupt;

const MODULE: &str = "wasi_snapshot_preview1";
const SUBSCRIPTION_SIZE: usize = 48;
/// Where a clock subscription's `id`, `timeout`, `precision` and `flags` begin.
const CLOCK_AT: usize = 16;
const EVENT_SIZE: usize = 32;
const ERRNO_SUCCESS: i32 = 0;
const ERRNO_FAULT: i32 = 21;
const ERRNO_NOMEM: i32 = 48;
const CLOCK_REALTIME: u32 = 0;
const CLOCK_MONOTONIC: u32 = 1;
const TAG_CLOCK: u8 = 0;
const ABSOLUTE: u16 = 1;

/// Replaces `poll_oneoff` in `linker`.
pub fn shadow(linker: &mut Linker<Host>) -> Result<()> {
    linker.allow_shadowing(true);
    linker.func_wrap(MODULE, "poll_oneoff", poll_oneoff)?;
    linker.allow_shadowing(false);
    Ok(())
}

/// Runs one of wasmtime-wasi's calls until it returns or the run is asked to
/// stop, which ends the run as an epoch tick would.
fn until_stopped<T>(
    interrupt: &Interrupt,
    call: impl Future<Output = wasmtime::Result<T>>,
) -> wasmtime::Result<T> {
    in_tokio(interrupt.or_stop(call)).map_err(|_| Trap::Interrupt)?
}

/// `poll_oneoff(subs, events, count, nevents)`, returning its errno.
fn poll_oneoff(
    mut caller: Caller<'_, Host>,
    subs: i32,
    events: i32,
    count: i32,
    nevents: i32,
) -> wasmtime::Result<i32> {
    let fuel = caller.as_context_mut().hostcall_fuel();
    let (memory, host) = memory_and_host(&mut caller)?;
    // A count, unsigned, as wasmtime-wasi reads it; and what it answers a
    // poll bigger than the host may copy.
    let len = (count as u32 as usize).saturating_mul(SUBSCRIPTION_SIZE);
    if len > fuel {
        return Ok(ERRNO_NOMEM);
    }
    let Some(subscriptions) = guest_slice(memory, subs, len) else {
        return Ok(ERRNO_FAULT);
    };
    let timers = clocks(subscriptions, &mut host.wasi);
    let Some(shortest) = timers
        .as_ref()
        .and_then(|timers| timers.iter().map(|timer| timer.wait).min())
    else {
        // Not on clocks only, or on none at all: wasmtime-wasi waits, or
        // says what is wrong.
        let mut memory = GuestMemory::Unshared(memory);
        let poll = preview1::poll_oneoff(&mut host.wasi, &mut memory, subs, events, count, nevents);
        return until_stopped(&host.interrupt, poll);
    };
    if host.interrupt.sleep(shortest).is_err() {
        return Err(Trap::Interrupt.into());
    }
    let mut fired = 0u32;
    let timers = timers.unwrap_or_default();
    for timer in timers.iter().filter(|timer| timer.wait == shortest) {
        let offset = EVENT_SIZE * fired as usize;
        let Some(event) = guest_slice(memory, events, offset + EVENT_SIZE) else {
            return Ok(ERRNO_FAULT);
        };
        let event = &mut event[offset..];
        event.fill(0);
        // error 0 (success), type 0 (clock): already zero.
        event[..8].copy_from_slice(&timer.userdata.to_le_bytes());
        fired += 1;
    }
    let Some(out) = guest_slice(memory, nevents, 4) else {
        return Ok(ERRNO_FAULT);
    };
    out.copy_from_slice(&fired.to_le_bytes());
    Ok(ERRNO_SUCCESS)
}

/// A clock subscription, as long as it has left to wait.
#[derive(Debug, PartialEq, Eq)]
struct Timer {
    userdata: u64,
    wait: Duration,
}

/// The timers of `subscriptions`, if all are on the realtime or monotonic
/// clock; `None` otherwise: wasmtime-wasi's poll then waits on them, or says
/// what is wrong with them. An absolute timeout is measured against the time
/// `wasi` gives the guest.
fn clocks(subscriptions: &[u8], wasi: &mut impl WasiSnapshotPreview1) -> Option<Vec<Timer>> {
    subscriptions
        .chunks_exact(SUBSCRIPTION_SIZE)
        .map(|sub| {
            if sub[8] != TAG_CLOCK {
                return None;
            }
            let at = CLOCK_AT;
            let clock = u32::from_le_bytes(sub[at..at + 4].try_into().ok()?);
            let timeout = u64::from_le_bytes(sub[at + 8..at + 16].try_into().ok()?);
            let flags = u16::from_le_bytes(sub[at + 24..at + 26].try_into().ok()?);
            let id = match clock {
                CLOCK_REALTIME => Clockid::Realtime,
                CLOCK_MONOTONIC => Clockid::Monotonic,
                _ => return None,
            };
            let left = if flags & ABSOLUTE == 0 {
                timeout
            } else {
                let now = wasi.clock_time_get(&mut GuestMemory::Unshared(&mut []), id, 0);
                timeout.saturating_sub(now.ok()?)
            };
            Some(Timer {
                userdata: u64::from_le_bytes(sub[0..8].try_into().ok()?),
                wait: Duration::from_nanos(left),
            })
        })
        .collect()
}

/// The guest's `len` bytes at `ptr`, if they lie inside its memory.
fn guest_slice(memory: &mut [u8], ptr: i32, len: usize) -> Option<&mut [u8]> {
    let start = usize::try_from(ptr as u32).ok()?;
    memory.get_mut(start..start.checked_add(len)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime_wasi::p1::types as p1;
    use wiggle::{GuestPtr, GuestType};

    /// `subs` as wasmtime-wasi lays them out in a guest's memory.
    fn laid_out(subs: &[p1::Subscription]) -> Vec<u8> {
        let size = p1::Subscription::guest_size() as usize;
        assert_eq!(size, SUBSCRIPTION_SIZE);
        let mut bytes = vec![0; subs.len() * size];
        let mut memory = GuestMemory::Unshared(&mut bytes);
        for (at, sub) in (0..).step_by(size).zip(subs) {
            memory
                .write(GuestPtr::new(at), sub.clone())
                .expect("in bounds");
        }
        bytes
    }

    fn p1_clock(userdata: u64, id: p1::Clockid, timeout: u64, absolute: bool) -> p1::Subscription {
        let flags = if absolute {
            p1::Subclockflags::SUBSCRIPTION_CLOCK_ABSTIME
        } else {
            p1::Subclockflags::empty()
        };
        p1::Subscription {
            userdata,
            u: p1::SubscriptionU::Clock(p1::SubscriptionClock {
                id,
                timeout,
                precision: 0,
                flags,
            }),
        }
    }

    #[test]
    fn clocks_relative_and_absolute_are_timers() {
        let mut wasi = wasmtime_wasi::WasiCtxBuilder::new().build_p1();
        let mut no_memory = GuestMemory::Unshared(&mut []);
        let now = wasi
            .clock_time_get(&mut no_memory, p1::Clockid::Monotonic, 0)
            .expect("monotonic time");
        let hour = 3_600_000_000_000;
        let subs = [
            p1_clock(7, p1::Clockid::Monotonic, 1_000, false),
            p1_clock(8, p1::Clockid::Monotonic, now + hour, true),
            p1_clock(9, p1::Clockid::Realtime, 0, true),
        ];
        let timers = clocks(&laid_out(&subs), &mut wasi).expect("all clocks");
        assert_eq!(
            timers[0],
            Timer {
                userdata: 7,
                wait: Duration::from_nanos(1_000)
            }
        );
        assert_eq!(timers[1].userdata, 8);
        let wait = timers[1].wait;
        assert!(
            wait <= Duration::from_nanos(hour) && wait > Duration::from_secs(3500),
            "{wait:?}"
        );
        // Its time has passed.
        assert_eq!(
            timers[2],
            Timer {
                userdata: 9,
                wait: Duration::ZERO
            }
        );
    }

    #[test]
    fn fds_and_cpu_clocks_are_handed_over() {
        let mut wasi = wasmtime_wasi::WasiCtxBuilder::new().build_p1();
        let subs = [
            p1_clock(1, p1::Clockid::Monotonic, 5, true),
            p1::Subscription {
                userdata: 2,
                u: p1::SubscriptionU::FdRead(p1::SubscriptionFdReadwrite {
                    file_descriptor: p1::Fd::from(0),
                }),
            },
            p1::Subscription {
                userdata: 3,
                u: p1::SubscriptionU::FdWrite(p1::SubscriptionFdReadwrite {
                    file_descriptor: p1::Fd::from(1),
                }),
            },
            p1_clock(4, p1::Clockid::ProcessCputimeId, 5, false),
        ];
        let bytes = laid_out(&subs);
        for (index, sub) in bytes.chunks_exact(SUBSCRIPTION_SIZE).enumerate() {
            let ours = clocks(sub, &mut wasi);
            assert_eq!(ours.is_some(), index == 0, "subscription {index}");
        }
    }
}
