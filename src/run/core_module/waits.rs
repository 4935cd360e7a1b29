//! The waits of a core module's WASI that a stop can cut short.
//!
//! Epoch interruption stops wasm code, not a host call: a guest asleep in
//! `poll_oneoff` or blocked reading stdin would hold the next run (or
//! `--timeout`, or Ctrl-C) back until it woke. So `poll_oneoff` and `fd_read`
//! are shadowed, under both names of WASI preview 1:
//! - a poll on clocks only (what every `sleep` compiles to) waits here, on the
//!   run's [`Interrupt`]; an absolute clock is first made relative against the
//!   clock the guest reads. (wasmtime-wasi's own poll sleeps the thread for a
//!   single relative clock, and nothing could wake it.) Under
//!   `--deterministic` the run's virtual clock then moves by the time waited:
//!   to the deadline (see `run/determinism.rs`).
//! - any other poll (a file descriptor among its subscriptions) and every
//!   `fd_read` run wasmtime-wasi's own async implementation with the caller's
//!   memory, raced against the stop switch, as the component waits are.
//!
//! `wasi_unstable` lays its subscriptions out otherwise: its clock has an
//! `identifier` first, making them 56 bytes, not 48. wasmtime-wasi's own (seen in 48)
//! `wasi_unstable.poll_oneoff` rewrites them in place as preview-1 ones but
//! reads them back 48 bytes apart, misreading all but the first; so a poll we
//! hand over is given as preview-1 subscriptions in memory of our own, and its
//! events (the same in both) are copied back.

use std::time::Duration;

use anyhow::Result;
use wasmtime::{AsContextMut, Caller, Linker, Trap};
use wasmtime_wasi::p0::wasi_unstable;
use wasmtime_wasi::p1::types::Clockid;
use wasmtime_wasi::p1::wasi_snapshot_preview1::{self as preview1, WasiSnapshotPreview1};
use wiggle::GuestMemory;

use super::clocks::fold_fuel;
use crate::run::host::{Host, memory_and_host};

const EVENT_SIZE: usize = 32;
const ERRNO_SUCCESS: i32 = 0;
const ERRNO_FAULT: i32 = 21;
const ERRNO_NOMEM: i32 = 48;
const CLOCK_REALTIME: u32 = 0;
const CLOCK_MONOTONIC: u32 = 1;
const TAG_CLOCK: u8 = 0;
const ABSOLUTE: u16 = 1;

/// The two names of WASI preview 1, which differ in how a subscription is
/// laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Abi {
    Preview1,
    Unstable,
}

impl Abi {
    fn module(self) -> &'static str {
        match self {
            Abi::Preview1 => "wasi_snapshot_preview1",
            Abi::Unstable => "wasi_unstable",
        }
    }

    /// The size of a subscription.
    fn size(self) -> usize {
        match self {
            Abi::Preview1 => 48,
            Abi::Unstable => 56,
        }
    }

    /// Where a clock subscription's `id`, `timeout`, `precision` and `flags`
    /// begin (32 bytes); an fd subscription's descriptor is at 16 in both.
    fn clock_at(self) -> usize {
        match self {
            Abi::Preview1 => 16,
            Abi::Unstable => 24,
        }
    }
}

/// Replaces `poll_oneoff` and `fd_read` of both WASI preview 1 namespaces in
/// `linker`.
pub(super) fn shadow(linker: &mut Linker<Host>) -> Result<()> {
    linker.allow_shadowing(true);
    for abi in [Abi::Preview1, Abi::Unstable] {
        linker.func_wrap(
            abi.module(),
            "poll_oneoff",
            move |mut caller: Caller<'_, Host>,
                  subs: i32,
                  events: i32,
                  count: i32,
                  nevents: i32| {
                poll_oneoff(&mut caller, abi, subs, events, count, nevents)
            },
        )?;
    }
    linker.func_wrap(
        Abi::Preview1.module(),
        "fd_read",
        |mut caller: Caller<'_, Host>, fd: i32, iovs: i32, len: i32, nread: i32| {
            let (memory, host) = memory_and_host(&mut caller)?;
            let mut memory = GuestMemory::Unshared(memory);
            let read = preview1::fd_read(&mut host.wasi, &mut memory, fd, iovs, len, nread);
            host.interrupt.until_stopped(read)?
        },
    )?;
    linker.func_wrap(
        Abi::Unstable.module(),
        "fd_read",
        |mut caller: Caller<'_, Host>, fd: i32, iovs: i32, len: i32, nread: i32| {
            let (memory, host) = memory_and_host(&mut caller)?;
            let mut memory = GuestMemory::Unshared(memory);
            let read = wasi_unstable::fd_read(&mut host.wasi, &mut memory, fd, iovs, len, nread);
            host.interrupt.until_stopped(read)?
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// `poll_oneoff(subs, events, count, nevents)` of `abi`, returning its errno.
fn poll_oneoff(
    caller: &mut Caller<'_, Host>,
    abi: Abi,
    subs: i32,
    events: i32,
    count: i32,
    nevents: i32,
) -> wasmtime::Result<i32> {
    let fuel = caller.as_context_mut().hostcall_fuel();
    // An absolute deadline is measured from the time the guest would read.
    fold_fuel(caller);
    let (memory, host) = memory_and_host(caller)?;
    // A count, unsigned, as wasmtime-wasi reads it; and what it answers a
    // poll bigger than the host may copy.
    let len = (count as u32 as usize).saturating_mul(abi.size());
    if len > fuel {
        return Ok(ERRNO_NOMEM);
    }
    let Some(subscriptions) = guest_slice(memory, subs, len) else {
        return Ok(ERRNO_FAULT);
    };
    let Some(timers) = clocks(subscriptions, abi, &mut host.wasi) else {
        let subscriptions = subscriptions.to_vec();
        return hand_over(memory, host, abi, &subscriptions, events, nevents);
    };
    let Some(shortest) = timers.iter().map(|timer| timer.wait).min() else {
        // No subscription at all: wasmtime-wasi says what that is.
        return hand_over(memory, host, abi, &[], events, nevents);
    };
    if host.interrupt.sleep(shortest).is_err() {
        return Err(Trap::Interrupt.into());
    }
    if let Some(clock) = &host.clock {
        clock.advance(shortest);
    }
    let mut fired = 0u32;
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

/// The timers of `subscriptions` (laid out as `abi` says), if all are on the
/// realtime or monotonic clock; `None` otherwise: wasmtime-wasi's poll then
/// waits on them, or says what is wrong with them. An absolute timeout is
/// measured against the time `wasi` gives the guest.
fn clocks(
    subscriptions: &[u8],
    abi: Abi,
    wasi: &mut impl WasiSnapshotPreview1,
) -> Option<Vec<Timer>> {
    subscriptions
        .chunks_exact(abi.size())
        .map(|sub| {
            if sub[8] != TAG_CLOCK {
                return None;
            }
            let at = abi.clock_at();
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

/// Hands a poll to wasmtime-wasi's own (preview 1) implementation, its
/// `subscriptions` (laid out as `abi` says) copied as preview-1 ones into a
/// memory of our own, and copies the events it returns into the guest's.
fn hand_over(
    memory: &mut [u8],
    host: &mut Host,
    abi: Abi,
    subscriptions: &[u8],
    events: i32,
    nevents: i32,
) -> wasmtime::Result<i32> {
    let size = Abi::Preview1.size();
    let count = subscriptions.len() / abi.size();
    let events_at = count * size;
    let nevents_at = events_at + count * EVENT_SIZE;
    let mut ours = vec![0u8; nevents_at + 4];
    for (from, to) in subscriptions
        .chunks_exact(abi.size())
        .zip(ours.chunks_exact_mut(size))
    {
        as_preview1(abi, from, to);
    }
    let (Ok(count_arg), Ok(events_arg), Ok(nevents_arg)) = (
        i32::try_from(count),
        i32::try_from(events_at),
        i32::try_from(nevents_at),
    ) else {
        return Ok(ERRNO_NOMEM);
    };
    let errno = {
        let mut scratch = GuestMemory::Unshared(&mut ours);
        let poll = preview1::poll_oneoff(
            &mut host.wasi,
            &mut scratch,
            0,
            events_arg,
            count_arg,
            nevents_arg,
        );
        host.interrupt.until_stopped(poll)??
    };
    if errno != ERRNO_SUCCESS {
        return Ok(errno);
    }
    let returned = u32::from_le_bytes(
        ours[nevents_at..nevents_at + 4]
            .try_into()
            .map_err(|_| wasmtime::format_err!("poll_oneoff: no event count"))?,
    );
    let returned_len = (returned as usize).min(count) * EVENT_SIZE;
    let Some(to) = guest_slice(memory, events, returned_len) else {
        return Ok(ERRNO_FAULT);
    };
    to.copy_from_slice(&ours[events_at..events_at + returned_len]);
    let Some(out) = guest_slice(memory, nevents, 4) else {
        return Ok(ERRNO_FAULT);
    };
    out.copy_from_slice(&returned.to_le_bytes());
    Ok(ERRNO_SUCCESS)
}

/// Copies subscription `from`, laid out as `abi` says, into `to` as a
/// preview-1 one.
fn as_preview1(abi: Abi, from: &[u8], to: &mut [u8]) {
    // userdata, tag
    to[..16].copy_from_slice(&from[..16]);
    if from[8] == TAG_CLOCK {
        let at = abi.clock_at();
        to[16..48].copy_from_slice(&from[at..at + 32]);
    } else {
        to[16..20].copy_from_slice(&from[16..20]);
    }
}

/// The guest's `len` bytes at `ptr`, if they lie inside its memory.
fn guest_slice(memory: &mut [u8], ptr: i32, len: usize) -> Option<&mut [u8]> {
    let start = usize::try_from(ptr as u32).ok()?;
    memory.get_mut(start..start.checked_add(len)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime_wasi::p0::types as unstable;
    use wasmtime_wasi::p1::types as p1;
    use wiggle::{GuestPtr, GuestType};

    /// `subs` as wasmtime-wasi lays them out in a guest's memory.
    fn laid_out<T: GuestType + Clone>(subs: &[T]) -> Vec<u8> {
        let size = T::guest_size() as usize;
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

    /// The same subscription as `wasi_unstable` has it.
    fn unstable(sub: &p1::Subscription) -> unstable::Subscription {
        let u = match &sub.u {
            p1::SubscriptionU::Clock(clock) => {
                unstable::SubscriptionU::Clock(unstable::SubscriptionClock {
                    identifier: 99,
                    id: match clock.id {
                        p1::Clockid::Realtime => unstable::Clockid::Realtime,
                        p1::Clockid::Monotonic => unstable::Clockid::Monotonic,
                        p1::Clockid::ProcessCputimeId => unstable::Clockid::ProcessCputimeId,
                        p1::Clockid::ThreadCputimeId => unstable::Clockid::ThreadCputimeId,
                    },
                    timeout: clock.timeout,
                    precision: clock.precision,
                    flags: unstable::Subclockflags::from_bits_truncate(clock.flags.bits()),
                })
            }
            p1::SubscriptionU::FdRead(fd) => {
                unstable::SubscriptionU::FdRead(unstable::SubscriptionFdReadwrite {
                    file_descriptor: fd.file_descriptor.into(),
                })
            }
            p1::SubscriptionU::FdWrite(fd) => {
                unstable::SubscriptionU::FdWrite(unstable::SubscriptionFdReadwrite {
                    file_descriptor: fd.file_descriptor.into(),
                })
            }
        };
        unstable::Subscription {
            userdata: sub.userdata,
            u,
        }
    }

    /// `subs` laid out as `abi` has them.
    fn in_layout(abi: Abi, subs: &[p1::Subscription]) -> Vec<u8> {
        let bytes = match abi {
            Abi::Preview1 => laid_out(subs),
            Abi::Unstable => laid_out(&subs.iter().map(unstable).collect::<Vec<_>>()),
        };
        assert_eq!(bytes.len(), subs.len() * abi.size(), "{abi:?}");
        bytes
    }

    #[test]
    fn clocks_relative_and_absolute_are_timers_in_both_layouts() {
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
        for abi in [Abi::Preview1, Abi::Unstable] {
            let timers = clocks(&in_layout(abi, &subs), abi, &mut wasi).expect("all clocks");
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
    }

    #[test]
    fn fds_and_cpu_clocks_are_handed_over_as_preview1_subscriptions() {
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
        let expected = laid_out(&subs);
        for abi in [Abi::Preview1, Abi::Unstable] {
            let bytes = in_layout(abi, &subs);
            for (index, sub) in bytes.chunks_exact(abi.size()).enumerate() {
                let ours = clocks(sub, abi, &mut wasi);
                assert_eq!(ours.is_some(), index == 0, "{abi:?} subscription {index}");
            }
            let mut preview1 = vec![0; expected.len()];
            for (from, to) in bytes
                .chunks_exact(abi.size())
                .zip(preview1.chunks_exact_mut(48))
            {
                as_preview1(abi, from, to);
            }
            assert_eq!(preview1, expected, "{abi:?}");
        }
    }
}
