//! Our own code on 2 MiB pages, so that a save after a pause does not pay for
//! a thousand cold 4 KiB ones.
//!
//! On a virtual machine like the ones we measure on, the first touch of a page
//! after the CPU has been idle costs a trip through the hypervisor's page
//! tables: ~9 µs per 4 KiB page here, against ~0.02 µs back to back. A small
//! edit touches ~1,200 pages of our own code and read-only data (the parser,
//! wasmtime, cranelift): ~10 ms after a pause, more than the whole run back to
//! back. The same bytes on 2 MiB pages are a dozen pages.
//!
//! Linux maps file-backed code on huge pages only with
//! `CONFIG_READ_ONLY_THP_FOR_FS`, which is rarely built in, but maps anonymous
//! memory on them whenever transparent huge pages are not off. So, at start and
//! while the process has one thread, each read-only segment of the executable
//! is copied into anonymous memory marked for huge pages and moved over itself
//! (`mremap`), at the same addresses with the same bytes and protection: what
//! HHVM and Chromium do with their text. `build.rs` aligns the segments to
//! 2 MiB so that the copies can sit where the originals were.
//!
//! The rest of what a save touches goes on huge pages too: the heap (the
//! binary's allocator, mimalloc, maps its arenas on them), and the stacks of
//! the runner and of the compile threads ([`HugeStack`]). What stays on 4 KiB
//! pages is ~55 pages a save: libc, our writable data, the other threads'
//! stacks, the new code.
//!
//! The cost: the code is private memory (~22 MiB more RSS, no longer shared
//! with other processes running the same binary) and ~40 ms at start; and
//! `perf` no longer sees the file behind those addresses (set
//! `LIVE_WASM_HUGE_PAGES=0` to profile).

/// The size of a huge page on x86-64 and aarch64 (with 4 KiB base pages).
#[cfg(target_os = "linux")]
const HUGE: usize = 2 << 20;

/// Moves the executable's read-only segments (its code among them) onto 2 MiB
/// pages, at the same addresses with the same bytes: a save after a pause
/// then touches a dozen pages of our code instead of ~1,200. Does nothing where
/// the system has no transparent huge pages or the user said
/// `LIVE_WASM_HUGE_PAGES=0`.
///
/// # Safety
///
/// Call it first thing in `main`, while the process has only one thread: each
/// segment is briefly a copy being moved over itself, and another thread
/// running or reading it meanwhile would fault.
pub unsafe fn move_code() {
    #[cfg(target_os = "linux")]
    // SAFETY: the caller guarantees no other thread runs yet.
    unsafe {
        linux::move_code()
    };
}

/// Runs `work` on a stack of `size` bytes (a multiple of 2 MiB) on huge
/// pages, kept between calls: the thread that compiles and runs guests touches
/// ~30 pages of stack per save, each a cold 4 KiB page after a pause. Where
/// the stack cannot be made, or stacks cannot be switched, `work` runs on the
/// thread's own stack.
pub struct HugeStack {
    #[cfg(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    ))]
    stack: Option<linux::Stack>,
}

impl HugeStack {
    /// A stack of `size` bytes (rounded up to 2 MiB), reserved now and
    /// touched only as it is used.
    pub fn new(size: usize) -> HugeStack {
        // Elsewhere there is no huge-page stack: the size goes unused.
        #[cfg(not(all(
            target_os = "linux",
            any(target_arch = "x86_64", target_arch = "aarch64")
        )))]
        let _ = size;
        HugeStack {
            #[cfg(all(
                target_os = "linux",
                any(target_arch = "x86_64", target_arch = "aarch64")
            ))]
            stack: linux::Stack::new(size.next_multiple_of(HUGE)),
        }
    }

    /// Runs `work` on this stack, and returns what it returns (or goes on
    /// with its panic). `&mut`: the stack is not in use when this is called.
    pub fn run<R>(&mut self, work: impl FnOnce() -> R) -> R {
        #[cfg(all(
            target_os = "linux",
            any(target_arch = "x86_64", target_arch = "aarch64")
        ))]
        if let Some(stack) = &mut self.stack {
            let caught = stack.run(|| std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)));
            return caught.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        }
        work()
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use super::HUGE;

    /// A stack on huge pages, with a guard page below it.
    pub(super) struct Stack {
        mapping: *mut libc::c_void,
        mapping_len: usize,
        base: *mut u8,
        size: usize,
    }

    impl Stack {
        pub(super) fn new(size: usize) -> Option<Stack> {
            let page = 4096;
            let mapping_len = size + HUGE + page;
            let anonymous = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE;
            let read_write = libc::PROT_READ | libc::PROT_WRITE;
            // SAFETY: a fresh anonymous mapping of our own.
            let mapping = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    mapping_len,
                    read_write,
                    anonymous,
                    -1,
                    0,
                )
            };
            if mapping == libc::MAP_FAILED {
                return None;
            }
            // The stack starts on a huge page boundary, above a guard page.
            let base = (mapping as usize + page).next_multiple_of(HUGE);
            // SAFETY: the guard page and the stack lie inside the mapping,
            // which is unmapped again if there can be no guard.
            unsafe {
                if libc::mprotect((base - page) as *mut libc::c_void, page, libc::PROT_NONE) != 0 {
                    libc::munmap(mapping, mapping_len);
                    return None;
                }
                libc::madvise(base as *mut libc::c_void, size, libc::MADV_HUGEPAGE);
            }
            Some(Stack {
                mapping,
                mapping_len,
                base: base as *mut u8,
                size,
            })
        }

        /// Runs `work`, which must not unwind, on this stack.
        #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
        pub(super) fn run<R>(&mut self, work: impl FnOnce() -> R) -> R {
            // SAFETY: `base` is page aligned, `size` a multiple of 2 MiB, the
            // memory ours and unused (`&mut self`: no run is on it); the
            // caller catches unwinding.
            unsafe { psm::on_stack(self.base, self.size, work) }
        }
    }

    impl Drop for Stack {
        fn drop(&mut self) {
            // SAFETY: the mapping is ours and no code runs on it any more.
            unsafe { libc::munmap(self.mapping, self.mapping_len) };
        }
    }

    /// One line of `/proc/self/maps`.
    struct Mapping {
        start: usize,
        end: usize,
        writable: bool,
        executable: bool,
        path: String,
    }

    /// # Safety
    ///
    /// As [`super::move_code`]: no other thread runs.
    pub(super) unsafe fn move_code() {
        if std::env::var_os("LIVE_WASM_HUGE_PAGES").is_some_and(|value| value == "0") {
            return;
        }
        let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled");
        if !thp.is_ok_and(|modes| !modes.contains("[never]")) {
            return;
        }
        let (Ok(exe), Ok(maps)) = (
            std::fs::read_link("/proc/self/exe"),
            std::fs::read_to_string("/proc/self/maps"),
        ) else {
            return;
        };
        let exe = exe.to_string_lossy();
        let mappings: Vec<Mapping> = maps.lines().filter_map(parse).collect();
        for (index, mapping) in mappings.iter().enumerate() {
            if mapping.path != exe || mapping.writable {
                continue;
            }
            // The huge pages the segment overlaps, as far as the holes around
            // it let them reach (a huge page may not cover another mapping).
            let before = index.checked_sub(1).map_or(0, |i| mappings[i].end);
            let after = mappings
                .get(index + 1)
                .map_or(usize::MAX, |next| next.start);
            let mut first = mapping.start / HUGE * HUGE;
            if first < before {
                first += HUGE;
            }
            let mut last = mapping.end.next_multiple_of(HUGE);
            if last > after {
                last -= HUGE;
            }
            if last <= first {
                continue;
            }
            // SAFETY: [first, last) holds only this mapping of our own
            // read-only code or data and unmapped holes; the copy carries its
            // bytes and protection to the same addresses, and no other thread
            // runs yet.
            unsafe { move_to_huge_pages(mapping, first, last) };
        }
    }

    fn parse(line: &str) -> Option<Mapping> {
        let mut fields = line.split_whitespace();
        let (start, end) = fields.next()?.split_once('-')?;
        let perms = fields.next()?;
        Some(Mapping {
            start: usize::from_str_radix(start, 16).ok()?,
            end: usize::from_str_radix(end, 16).ok()?,
            writable: perms.contains('w'),
            executable: perms.contains('x'),
            path: fields.nth(3).unwrap_or_default().to_owned(),
        })
    }

    /// Copies the part of `mapping` in [first, last) into fresh huge pages
    /// and moves them over [first, last). On failure nothing has changed but
    /// a leaked copy.
    unsafe fn move_to_huge_pages(mapping: &Mapping, first: usize, last: usize) {
        let len = last - first;
        let read_write = libc::PROT_READ | libc::PROT_WRITE;
        let anonymous = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
        // SAFETY: a fresh anonymous mapping of our own, one huge page larger
        // than needed so that an aligned run of `len` bytes fits inside.
        let raw = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len + HUGE,
                read_write,
                anonymous,
                -1,
                0,
            )
        };
        if raw == libc::MAP_FAILED {
            return;
        }
        let raw_start = raw as usize;
        let copy = raw_start.next_multiple_of(HUGE);
        let protection = match mapping.executable {
            true => libc::PROT_READ | libc::PROT_EXEC,
            false => libc::PROT_READ,
        };
        let from = mapping.start.max(first);
        let to = mapping.end.min(last);
        // SAFETY: `copy..copy + len` lies in the fresh mapping; the source is
        // the readable part of `mapping` inside [first, last).
        unsafe {
            libc::madvise(copy as *mut libc::c_void, len, libc::MADV_HUGEPAGE);
            std::ptr::copy_nonoverlapping(
                from as *const u8,
                (copy + (from - first)) as *mut u8,
                to - from,
            );
            if libc::mprotect(copy as *mut libc::c_void, len, protection) == 0 {
                libc::mremap(
                    copy as *mut libc::c_void,
                    len,
                    len,
                    libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
                    first as *mut libc::c_void,
                );
            }
        }
        // SAFETY: the slack before and after the aligned copy is ours and unused.
        unsafe {
            if copy > raw_start {
                libc::munmap(raw, copy - raw_start);
            }
            let raw_end = raw_start + len + HUGE;
            if raw_end > copy + len {
                libc::munmap((copy + len) as *mut libc::c_void, raw_end - (copy + len));
            }
        }
    }
}
