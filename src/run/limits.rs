//! The memory cap of a run (`--max-memory`): a guest that hits it is refused
//! memory and the session goes on. (Time and fuel are enforced by the engine.)
//!
//! The cap bounds what the guest makes the host hold: linear memories and
//! tables together. A table costs host memory too (100M `funcref`s are 800 MB),
//! so a cap on memories alone let `table.grow` take the host's memory.
//!
//! It bounds too the values crossing component `use` that the host holds at
//! once ([`InFlight`]): each hop of a chain keeps its arguments while the next
//! provider runs, so a list forwarded down twelve components was twelve copies
//! on the host, uncounted.

use wasmtime::ResourceLimiter;

/// Host bytes held per table element, as wasmtime stores it: a `funcref` is a
/// pointer; an `externref` or `anyref` is half that. (Continuation tables,
/// twice that, need stack switching, which the engine leaves off.)
const TABLE_ELEMENT_BYTES: u64 = 8;

/// Without `--max-memory`, the most host memory the values crossing `use` may
/// hold at once: enough that one call may copy what wasmtime lets it by
/// default ([`ONE_CALL`], taking up to [`GROWTH`] times that while it is made).
pub(super) const VALUES_WITHOUT_CAP: u64 = GROWTH * ONE_CALL;

/// wasmtime's own bound on what one host call copies out of a guest (its
/// default hostcall fuel), as it counts it: the budget only ever lowers it.
const ONE_CALL: u64 = 128 << 20;

/// How much more than wasmtime's count a copy may take while it is made: a
/// list's copy grows by doubling, to up to twice its length, and the half it
/// grew from is held while the rest is copied.
const GROWTH: u64 = 3;

/// A memory request the cap refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Refusal {
    /// The total the run's memories and tables would have reached, in bytes.
    pub wanted: u64,
    /// The cap, in bytes.
    pub limit: u64,
}

/// Caps the memories and tables of a run together: creating one above the cap
/// fails the instantiation; `memory.grow` or `table.grow` above it returns -1,
/// as the spec allows.
#[derive(Debug, Default)]
pub(super) struct MemoryCap {
    limit: Option<u64>,
    used: u64,
    peak: u64,
    refused: Option<Refusal>,
    /// The values crossing `use` held now, bounded by the same `limit` (or
    /// [`VALUES_WITHOUT_CAP`]) apart from memories and tables.
    pub values: InFlight,
}

impl MemoryCap {
    /// A cap of `limit` bytes, or none.
    pub(super) fn new(limit: Option<u64>) -> Self {
        Self {
            limit,
            values: InFlight::new(limit.unwrap_or(VALUES_WITHOUT_CAP)),
            ..Self::default()
        }
    }

    /// The most the run's memories and tables held together, in bytes.
    pub(super) fn peak(&self) -> u64 {
        self.peak
    }

    /// The first request refused, if any.
    pub(super) fn refused(&self) -> Option<Refusal> {
        self.refused
    }

    /// Decides a growth from `current` to `desired` bytes. A growth past the
    /// memory's or table's own `maximum` is refused without counting it: wasmtime
    /// would fail it after asking, and the count would keep bytes never held.
    fn growing(&mut self, current: u64, desired: u64, maximum: Option<u64>) -> bool {
        if maximum.is_some_and(|maximum| desired > maximum) {
            return false;
        }
        let wanted = (self.used - current.min(self.used)).saturating_add(desired);
        if let Some(limit) = self.limit
            && wanted > limit
        {
            self.refused.get_or_insert(Refusal { wanted, limit });
            return false;
        }
        self.used = wanted;
        self.peak = self.peak.max(wanted);
        true
    }
}

/// The values of the calls across component `use` in progress, held on the
/// host while the providers they called run: at most `limit` bytes together,
/// each call's as its copy took them (see `component::values::held`).
///
/// The bound holds before anything is copied: each host call may copy only
/// what fits in what is left ([`InFlight::fuel`], wasmtime's hostcall fuel),
/// so a call that would pass the bound fails before its values are made.
#[derive(Debug)]
pub(super) struct InFlight {
    limit: u64,
    held: u64,
    /// Per call in progress, outermost first: its caller's file and the bytes
    /// of its arguments.
    calls: Vec<(String, u64)>,
}

impl Default for InFlight {
    fn default() -> Self {
        Self::new(VALUES_WITHOUT_CAP)
    }
}

/// A call whose values would pass the bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TooMuchInFlight {
    /// The bound, in bytes.
    pub limit: u64,
    /// What the calls in progress held, in bytes.
    pub held: u64,
    /// The callers' files, outermost first, the refused call's caller last.
    pub chain: Vec<String>,
    /// The refused call's bytes, when known (else: more than was left).
    pub passed: Option<u64>,
    /// What one call could still copy, in bytes.
    pub left: u64,
}

impl InFlight {
    /// At most `limit` bytes of values in flight.
    pub(super) fn new(limit: u64) -> Self {
        Self {
            limit,
            held: 0,
            calls: Vec::new(),
        }
    }

    /// What the next host call may copy out of a guest, as wasmtime counts
    /// it: as much as fits in what is left while the copy grows, and no more
    /// than wasmtime's own bound for one call.
    pub(super) fn fuel(&self) -> usize {
        let left = (self.limit.saturating_sub(self.held) / GROWTH).min(ONE_CALL);
        usize::try_from(left).unwrap_or(usize::MAX)
    }

    /// Holds the `bytes` of a call made by `caller` until [`InFlight::release`],
    /// or refuses them when they would pass the bound.
    pub(super) fn hold(&mut self, caller: &str, bytes: u64) -> Result<(), TooMuchInFlight> {
        let held = self.held.saturating_add(bytes);
        if held > self.limit {
            return Err(self.refused(caller, Some(bytes)));
        }
        self.held = held;
        self.calls.push((caller.to_owned(), bytes));
        Ok(())
    }

    /// Lets go of the innermost call's values: it has returned.
    pub(super) fn release(&mut self) {
        if let Some((_, bytes)) = self.calls.pop() {
            self.held -= bytes;
        }
    }

    /// The refusal of a call by `caller` of `passed` bytes (`None`: more than
    /// [`InFlight::fuel`] let it copy), while the calls in progress hold theirs.
    pub(super) fn refused(&self, caller: &str, passed: Option<u64>) -> TooMuchInFlight {
        let mut chain: Vec<String> = self.calls.iter().map(|(file, _)| file.clone()).collect();
        chain.push(caller.to_owned());
        TooMuchInFlight {
            limit: self.limit,
            held: self.held,
            chain,
            passed,
            left: self.fuel() as u64,
        }
    }
}

/// Table sizes, in elements, as host bytes.
fn table_bytes(elements: usize) -> u64 {
    (elements as u64).saturating_mul(TABLE_ELEMENT_BYTES)
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(self.growing(
            current as u64,
            desired as u64,
            maximum.map(|maximum| maximum as u64),
        ))
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(self.growing(
            table_bytes(current),
            table_bytes(desired),
            maximum.map(table_bytes),
        ))
    }
}

/// A size for humans: `640 B`, `64.0 KiB`, `16.0 MiB`.
pub(super) fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_well() {
        assert_eq!(size(640), "640 B");
        assert_eq!(size(65536), "64.0 KiB");
        assert_eq!(size(16 << 20), "16.0 MiB");
    }

    #[test]
    fn memories_count_together_against_the_cap() {
        let mut cap = MemoryCap::new(Some(3 * 65536));
        assert!(cap.memory_growing(0, 65536, None).expect("first memory"));
        assert!(
            cap.memory_growing(0, 2 * 65536, None)
                .expect("second memory")
        );
        assert!(
            !cap.memory_growing(2 * 65536, 3 * 65536, None)
                .expect("refused")
        );
        assert_eq!(
            cap.refused(),
            Some(Refusal {
                wanted: 4 * 65536,
                limit: 3 * 65536
            })
        );
        assert_eq!(cap.peak(), 3 * 65536);
        assert!(
            MemoryCap::new(None)
                .memory_growing(0, usize::MAX / 2, None)
                .expect("no cap")
        );
    }

    #[test]
    fn tables_count_at_their_host_size_with_memories() {
        let mut cap = MemoryCap::new(Some(1 << 20));
        assert!(cap.memory_growing(0, 65536, None).expect("memory"));
        // 10 elements: 80 bytes.
        assert!(cap.table_growing(0, 10, None).expect("small table"));
        assert_eq!(cap.peak(), 65536 + 80);
        // 100M elements: 800 MB, over 1 MiB.
        assert!(!cap.table_growing(10, 100_000_000, None).expect("refused"));
        assert_eq!(
            cap.refused(),
            Some(Refusal {
                wanted: 65536 + 800_000_000,
                limit: 1 << 20
            })
        );
        // A table of 2^64 - 1 elements (a 64-bit table's minimum) does not wrap.
        assert!(!cap.table_growing(0, usize::MAX, None).expect("refused"));
    }

    #[test]
    fn values_in_flight_are_bounded_together_and_released_innermost_first() {
        let mut values = InFlight::new(300 << 20);
        // A third of what is left: a copy may take three times its count.
        assert_eq!(values.fuel(), 100 << 20);
        values.hold("main.wat", 120 << 20).expect("first hop");
        values.hold("p1.wat", 120 << 20).expect("second hop");
        assert_eq!(values.fuel(), 20 << 20);
        assert_eq!(
            values.hold("p2.wat", 90 << 20),
            Err(TooMuchInFlight {
                limit: 300 << 20,
                held: 240 << 20,
                chain: vec!["main.wat".into(), "p1.wat".into(), "p2.wat".into()],
                passed: Some(90 << 20),
                left: 20 << 20,
            })
        );
        values.release();
        values.hold("p1.wat", 150 << 20).expect("room again");
        values.release();
        values.release();
        values.release();
        assert_eq!(values.fuel(), 100 << 20);
        // One call never copies more than wasmtime's own default allows,
        // which is what the bound without --max-memory leaves it.
        assert_eq!(InFlight::new(1 << 40).fuel(), 128 << 20);
        assert_eq!(MemoryCap::new(None).values.fuel(), 128 << 20);
        assert_eq!(MemoryCap::new(Some(3 << 20)).values.fuel(), 1 << 20);
    }

    #[test]
    fn a_growth_past_the_declared_maximum_is_not_counted() {
        let mut cap = MemoryCap::new(Some(1 << 20));
        assert!(cap.table_growing(0, 10, Some(20)).expect("table"));
        assert!(!cap.table_growing(10, 30, Some(20)).expect("over its max"));
        assert!(
            !cap.memory_growing(0, 3 * 65536, Some(2 * 65536))
                .expect("over its max")
        );
        assert_eq!((cap.peak(), cap.refused()), (80, None));
    }
}
