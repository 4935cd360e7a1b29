//! The memory cap of a run (`--max-memory`): a guest that hits it is refused
//! memory and the session goes on. (Time and fuel are enforced by the engine.)
//!
//! The cap bounds what the guest makes the host hold: linear memories and
//! tables together. A table costs host memory too (100M `funcref`s are 800 MB),
//! so a cap on memories alone let `table.grow` take the host's memory.

use wasmtime::ResourceLimiter;

/// Host bytes held per table element, as wasmtime stores it: a `funcref` is a
/// pointer; an `externref` or `anyref` is half that. (Continuation tables,
/// twice that, need stack switching, which the engine leaves off.)
const TABLE_ELEMENT_BYTES: u64 = 8;

/// A memory request the cap refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// The total the run's memories and tables would have reached, in bytes.
    pub wanted: u64,
    /// The cap, in bytes.
    pub limit: u64,
}

/// Caps the memories and tables of a run together: creating one above the cap
/// fails the instantiation; `memory.grow` or `table.grow` above it returns -1,
/// as the spec allows.
#[derive(Debug, Default)]
pub struct MemoryCap {
    limit: Option<u64>,
    used: u64,
    peak: u64,
    refused: Option<Refusal>,
}

impl MemoryCap {
    /// A cap of `limit` bytes, or none.
    pub fn new(limit: Option<u64>) -> Self {
        Self {
            limit,
            ..Self::default()
        }
    }

    /// The most the run's memories and tables held together, in bytes.
    pub fn peak(&self) -> u64 {
        self.peak
    }

    /// The first request refused, if any.
    pub fn refused(&self) -> Option<Refusal> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
