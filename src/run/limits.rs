//! The memory cap of a run (`--max-memory`): a guest that hits it is refused
//! memory and the session goes on. (Time and fuel are enforced by the engine.)

use wasmtime::ResourceLimiter;

/// A memory request the cap refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// The total the run's memories would have reached, in bytes.
    pub wanted: u64,
    /// The cap, in bytes.
    pub limit: u64,
}

/// Caps the linear memory of a run: creating a memory above the cap fails the
/// instantiation; `memory.grow` above it returns -1, as the spec allows.
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

    /// The most linear memory the run's memories held together, in bytes.
    pub fn peak(&self) -> u64 {
        self.peak
    }

    /// The first request refused, if any.
    pub fn refused(&self) -> Option<Refusal> {
        self.refused
    }
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let wanted = self.used - current as u64 + desired as u64;
        if let Some(limit) = self.limit
            && wanted > limit
        {
            self.refused.get_or_insert(Refusal { wanted, limit });
            return Ok(false);
        }
        self.used = wanted;
        self.peak = self.peak.max(wanted);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(true)
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
}
