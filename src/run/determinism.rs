//! `--deterministic`: what a guest sees of time and chance, the same in every
//! run, so that the same code prints the same output.
//!
//! Each run gets a fresh [`VirtualClock`]: its wall clock starts at
//! 2000-01-01T00:00:00Z and its monotonic clock at 0, and both move only when
//! the guest sleeps (by exactly the time it asked for, or to the deadline it
//! gave) and, with `--fuel`, with the fuel it uses (1 ns a unit). A sleep
//! still takes its time, on the run's stop switch as before, so a program that
//! paces its output still does and a save still stops it at once. The fuel is
//! in the store, which the clock cannot reach: the shadowed calls that read or
//! wait on the clock fold it in first ([`VirtualClock::fold_fuel`]).
//!
//! Every source of randomness (`random_get`, `wasi:random/random`,
//! `wasi:random/insecure`, `insecure-seed`) is a ChaCha12 generator seeded from
//! one seed (`--seed`), each with a seed of its own drawn from it.
//!
//! What comes from outside is not virtual: a poll mixing clocks with file
//! descriptors or sockets waits in real time for whichever comes first (a
//! WASI 0.1 one is wasmtime-wasi's own and moves no clock; a 0.2 one moves it
//! when its deadline comes first).

use std::future::poll_fn;
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Poll;
use std::time::Duration;

use rand::rngs::ChaCha12Rng;
use rand::{Rng, SeedableRng};
use tokio::time::Sleep;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtxBuilder};
use wasmtime_wasi_io::poll::Pollable;

use crate::plan::Plan;

/// The session's `--deterministic`: the seed, and the fuel budget whose use
/// moves the clocks.
#[derive(Debug, Clone, Copy)]
pub(super) struct Determinism {
    seed: u64,
    fuel: Option<u64>,
}

impl Determinism {
    /// What `plan` asks for, if it asks for deterministic runs.
    pub(super) fn new(plan: &Plan) -> Option<Self> {
        let determinism = plan.sandbox.determinism?;
        Some(Self {
            seed: determinism.seed,
            fuel: plan.limits.fuel,
        })
    }

    /// Whether fuel moves the clocks (`--fuel`): then every read of a clock
    /// folds in the fuel used first.
    pub(super) fn counts_fuel(&self) -> bool {
        self.fuel.is_some()
    }

    /// Gives a run's WASI context its clock and randomness, the same at the
    /// start of every run; the clock is returned for the waits to move.
    pub(super) fn start_run(&self, wasi: &mut WasiCtxBuilder) -> Arc<VirtualClock> {
        let clock = Arc::new(VirtualClock::new(self.fuel));
        wasi.wall_clock(WallClock(Arc::clone(&clock)))
            .monotonic_clock(MonotonicClock(Arc::clone(&clock)));
        let mut seeds = ChaCha12Rng::seed_from_u64(self.seed);
        wasi.secure_random(ChaCha12Rng::seed_from_u64(seeds.next_u64()))
            .insecure_random(ChaCha12Rng::seed_from_u64(seeds.next_u64()))
            .insecure_random_seed(
                u128::from(seeds.next_u64()) << 64 | u128::from(seeds.next_u64()),
            );
        clock
    }
}

/// A run's time, in nanoseconds since its start: what the guest slept, plus
/// the fuel it used when fuel counts.
pub(super) struct VirtualClock {
    time: Mutex<Time>,
    /// `--fuel`: the fuel the run started with, so that what is left tells
    /// what was used.
    budget: Option<u64>,
}

#[derive(Default)]
struct Time {
    /// How far the guest's sleeps moved the clock.
    slept: u64,
    /// The fuel used, as of the last look.
    worked: u64,
    /// The deadlines of the pollables waited on right now.
    waiting: Vec<u64>,
}

impl Time {
    fn now(&self) -> u64 {
        self.slept.saturating_add(self.worked)
    }
}

impl VirtualClock {
    fn new(budget: Option<u64>) -> Self {
        Self {
            time: Mutex::default(),
            budget,
        }
    }

    /// Nanoseconds since the run started.
    pub(super) fn now(&self) -> u64 {
        self.lock().now()
    }

    /// The wall clock's time: since the Unix epoch.
    pub(super) fn wall(&self) -> Duration {
        Duration::from_secs(crate::plan::Determinism::WALL_CLOCK_START)
            + Duration::from_nanos(self.now())
    }

    /// Takes the fuel used so far into account, given the fuel `left` in the
    /// store (nothing without `--fuel`).
    pub(super) fn fold_fuel(&self, left: Option<u64>) {
        if let (Some(budget), Some(left)) = (self.budget, left) {
            let mut time = self.lock();
            // Fuel only goes down: the clock never goes back.
            time.worked = time.worked.max(budget.saturating_sub(left));
        }
    }

    /// A sleep of `slept` has ended.
    pub(super) fn advance(&self, slept: Duration) {
        let slept = u64::try_from(slept.as_nanos()).unwrap_or(u64::MAX);
        let mut time = self.lock();
        time.slept = time.slept.saturating_add(slept);
    }

    /// A pollable ready when the clock reads `deadline`.
    pub(super) fn pollable(self: &Arc<Self>, deadline: u64) -> Deadline {
        Deadline {
            clock: Arc::clone(self),
            at: deadline,
            yield_first: deadline <= self.now(),
        }
    }

    /// Runs `look` (a poll or a block of the guest's pollables, on `state`)
    /// until it is done. When the first deadline its [`Deadline`]s wait for
    /// comes first, in real time, the clock moves to it and `look` runs again,
    /// from the start: every pollable due by then is ready in that one look,
    /// whatever their order or the timers' jitter, so a poll on clocks gives
    /// the same answer in every run. (A look never moves the clock itself:
    /// its pollables are looked at in turn, and a move in the middle would
    /// make the ones before it miss it.)
    pub(super) async fn wait<S, T>(
        &self,
        state: &mut S,
        mut look: impl AsyncFnMut(&mut S) -> T,
    ) -> T {
        loop {
            let first = {
                let mut looking = pin!(look(state));
                let mut timer: Option<(u64, Pin<Box<Sleep>>)> = None;
                let came = poll_fn(|cx| {
                    if let Poll::Ready(done) = looking.as_mut().poll(cx) {
                        return Poll::Ready(Ok(done));
                    }
                    let Some(first) = self.first_waiting() else {
                        return Poll::Pending;
                    };
                    let sleep = match &mut timer {
                        Some((at, sleep)) if *at == first => sleep,
                        unset => {
                            let sleep = Box::pin(tokio::time::sleep(self.left(first)));
                            &mut unset.insert((first, sleep)).1
                        }
                    };
                    sleep.as_mut().poll(cx).map(|()| Err(first))
                })
                .await;
                match came {
                    Ok(done) => return done,
                    Err(first) => first,
                }
            };
            let mut time = self.lock();
            let now = time.now();
            if first > now {
                time.slept = time.slept.saturating_add(first - now);
            }
        }
    }

    /// How long, in real time, until the clock reads `deadline`.
    fn left(&self, deadline: u64) -> Duration {
        Duration::from_nanos(deadline.saturating_sub(self.now()))
    }

    /// Notes that a pollable waits for `deadline`, until the guard drops.
    fn wait_for(&self, deadline: u64) -> Waiting<'_> {
        self.lock().waiting.push(deadline);
        Waiting {
            clock: self,
            deadline,
        }
    }

    /// The first deadline waited on.
    fn first_waiting(&self) -> Option<u64> {
        self.lock().waiting.iter().min().copied()
    }

    fn lock(&self) -> MutexGuard<'_, Time> {
        self.time.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A deadline being waited on; forgotten when the wait ends either way.
struct Waiting<'a> {
    clock: &'a VirtualClock,
    deadline: u64,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut time = self.clock.lock();
        if let Some(at) = time.waiting.iter().position(|at| *at == self.deadline) {
            time.waiting.swap_remove(at);
        }
    }
}

/// The wall clock a run's WASI context reads.
struct WallClock(Arc<VirtualClock>);

impl HostWallClock for WallClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }

    fn now(&self) -> Duration {
        self.0.wall()
    }
}

/// The monotonic clock a run's WASI context reads.
struct MonotonicClock(Arc<VirtualClock>);

impl HostMonotonicClock for MonotonicClock {
    fn resolution(&self) -> u64 {
        1
    }

    fn now(&self) -> u64 {
        self.0.now()
    }
}

/// A component's `subscribe-duration` or `subscribe-instant` on the virtual
/// clock: ready once the clock reads its deadline.
///
/// It never moves the clock: waited on, it notes its deadline for
/// [`VirtualClock::wait`] (which `poll` and `pollable.block` run, see
/// `component/waits.rs`) to wait for in real time and move the clock to.
pub(super) struct Deadline {
    clock: Arc<VirtualClock>,
    at: u64,
    /// Due when made (a zero timeout): the first look yields once, as
    /// wasmtime-wasi's own past deadline does, so that a guest polling in a
    /// busy loop with a zero timeout lets the runtime's other work go on.
    yield_first: bool,
}

#[wasmtime_wasi_io::async_trait]
impl Pollable for Deadline {
    async fn ready(&mut self) {
        let clock = &*self.clock;
        let at = self.at;
        if clock.now() >= at {
            if self.yield_first {
                self.yield_first = false;
                tokio::task::yield_now().await;
            }
            return;
        }
        let _waiting = clock.wait_for(at);
        poll_fn(|_| match clock.now() >= at {
            true => Poll::Ready(()),
            false => Poll::Pending,
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use wasmtime::component::{Resource, ResourceTable};
    use wasmtime_wasi::WasiView;
    use wasmtime_wasi::p1::WasiP1Ctx;
    use wasmtime_wasi::p1::types::Clockid;
    use wasmtime_wasi::p1::wasi_snapshot_preview1::WasiSnapshotPreview1;
    use wasmtime_wasi::p2::bindings::random::{insecure, insecure_seed, random};
    use wasmtime_wasi_io::bindings::wasi::io::poll::Host as _;
    use wasmtime_wasi_io::poll::{DynPollable, subscribe};
    use wiggle::GuestMemory;

    use super::*;

    const MS: u64 = 1_000_000;
    const WALL_START: u64 = crate::plan::Determinism::WALL_CLOCK_START * 1_000_000_000;

    fn determinism(seed: u64, fuel: Option<u64>) -> Determinism {
        Determinism { seed, fuel }
    }

    /// A run's WASI context under `determinism`, and its clock.
    fn run(determinism: Determinism) -> (WasiP1Ctx, Arc<VirtualClock>) {
        let mut builder = WasiCtxBuilder::new();
        let clock = determinism.start_run(&mut builder);
        (builder.build_p1(), clock)
    }

    fn read(wasi: &mut WasiP1Ctx, id: Clockid) -> u64 {
        let mut no_memory = GuestMemory::Unshared(&mut []);
        wasi.clock_time_get(&mut no_memory, id, 0).expect("time")
    }

    #[test]
    fn the_clocks_start_at_the_same_instant_and_move_only_when_told() {
        for _ in 0..2 {
            let (mut wasi, clock) = run(determinism(0, None));
            assert_eq!(read(&mut wasi, Clockid::Realtime), WALL_START);
            assert_eq!(read(&mut wasi, Clockid::Monotonic), 0);
            let mut no_memory = GuestMemory::Unshared(&mut []);
            for id in [Clockid::Realtime, Clockid::Monotonic] {
                let resolution = wasi.clock_res_get(&mut no_memory, id).expect("resolution");
                assert_eq!(resolution, 1, "{id:?}");
            }
            clock.advance(Duration::from_millis(50));
            assert_eq!(read(&mut wasi, Clockid::Realtime), WALL_START + 50 * MS);
            assert_eq!(read(&mut wasi, Clockid::Monotonic), 50 * MS);
            // Without --fuel, work does not move it.
            clock.fold_fuel(Some(5));
            assert_eq!(clock.now(), 50 * MS);
        }
    }

    #[test]
    fn fuel_used_moves_the_clock_one_nanosecond_a_unit() {
        let (mut wasi, clock) = run(determinism(0, Some(1_000)));
        clock.fold_fuel(Some(1_000));
        assert_eq!(read(&mut wasi, Clockid::Monotonic), 0);
        clock.fold_fuel(Some(700));
        assert_eq!(read(&mut wasi, Clockid::Monotonic), 300);
        clock.advance(Duration::from_nanos(1_000));
        assert_eq!(read(&mut wasi, Clockid::Realtime), WALL_START + 1_300);
        // A stale look never takes it back.
        clock.fold_fuel(Some(900));
        assert_eq!(clock.now(), 1_300);
    }

    /// What each source of randomness of a run under `seed` gives first.
    fn draws(seed: u64) -> [u64; 4] {
        let (mut wasi, _) = run(determinism(seed, None));
        let mut bytes = [0u8; 8];
        let mut memory = GuestMemory::Unshared(&mut bytes);
        wasi.random_get(&mut memory, wiggle::GuestPtr::new(0), 8)
            .expect("random_get");
        let from_p1 = u64::from_le_bytes(bytes);
        let ctx = wasi.ctx().ctx;
        let secure = random::Host::get_random_u64(ctx.random()).expect("random");
        let fast = insecure::Host::get_insecure_random_u64(ctx.random()).expect("insecure");
        let (seed, _) = insecure_seed::Host::insecure_seed(ctx.random()).expect("seed");
        [from_p1, secure, fast, seed]
    }

    #[test]
    fn randomness_comes_from_the_seed_each_source_its_own() {
        let first = draws(0);
        assert_eq!(draws(0), first, "every run starts from the same seed");
        assert_ne!(draws(1), first);
        let [_, secure, insecure, seed] = first;
        assert!(secure != insecure && insecure != seed && secure != seed);
    }

    /// Polls `deadlines` (nanoseconds on a fresh clock) together, as a
    /// component's `poll` does: which were ready, the clock after, and how
    /// long it took.
    fn poll(deadlines: &[u64]) -> (Vec<u32>, u64, Duration) {
        let clock = Arc::new(VirtualClock::new(None));
        let mut table = ResourceTable::new();
        let pollables: Vec<Resource<DynPollable>> = deadlines
            .iter()
            .map(|at| {
                let deadline = table.push(clock.pollable(*at)).expect("push");
                subscribe(&mut table, deadline).expect("subscribe")
            })
            .collect();
        let started = Instant::now();
        let poll = clock.wait(&mut table, async |table| {
            let pollables = pollables.iter().map(|p| Resource::new_borrow(p.rep()));
            table.poll(pollables.collect()).await
        });
        let ready = wasmtime_wasi::runtime::in_tokio(poll).expect("poll");
        (ready, clock.now(), started.elapsed())
    }

    #[test]
    fn a_poll_on_virtual_clocks_waits_for_the_first_and_moves_the_clock_to_it() {
        let (ready, now, took) = poll(&[30 * MS, 10 * MS, 10 * MS]);
        assert_eq!((ready, now), (vec![1, 2], 10 * MS));
        assert!(took >= Duration::from_millis(10), "{took:?}");
        // Timers are coarser than the clock: one a hair later, firing with
        // the first, is not ready with it.
        let (ready, now, _) = poll(&[10 * MS + 1_000, 10 * MS]);
        assert_eq!((ready, now), (vec![1], 10 * MS));
        let (ready, now, _) = poll(&[0, 5 * MS]);
        assert_eq!((ready, now), (vec![0], 0));
    }
}
