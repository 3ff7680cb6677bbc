//! The binary's global allocator: the C library's `malloc`, with a small per-thread cache of
//! freed blocks up to 4 KiB (27 size classes) in front of it.
//!
//! Why: musl's allocator (mallocng) is compact but slow per call, and a proxied HTTP request
//! makes dozens of short-lived allocations (heads, field values, futures). A freed block of a
//! cached size waits in its thread's list and goes to the next allocation of that size class
//! on the same thread, so the common case is a pointer pop and push. What a list holds is
//! bounded (`cap`: 32 KiB or 32 blocks per size class per thread, whichever holds more, so
//! at most about 1 MiB per thread over all classes), so memory at rest stays small; a block
//! freed beyond that goes back to `free`.
//!
//! The cache lives in a native thread-local (Linux targets, musl and glibc, mips included,
//! have them). On a target without, older std versions allocated key-based thread-locals
//! through the global allocator, which would recurse here.
//!
//! Every block handed out here, cached or not, is a plain `malloc` block of its class's full
//! size, so it can be freed, cached or `realloc`ed wherever it ends up (another thread's
//! cache included).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::ptr;

/// Size classes, in the 16-byte units of musl's allocator, whose own classes these are: a
/// block of `u` units holds `16 u - 4` bytes (4 go to its header), so asking `malloc` for a
/// class's size gets a slot of exactly that class, never one a class up (sizes rounded
/// twice would cost idle connections memory). Above 156 bytes, at most a fifth of a block
/// is unused.
const UNITS: [u16; 27] = [
    2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 15, 18, 20, 25, 31, 36, 42, 50, 63, 72, 84, 102, 127, 146, 170,
    204, 255,
];

const CLASSES: usize = UNITS.len();

/// The bytes a block of class `c` has.
const fn class_size(c: usize) -> usize {
    UNITS[c] as usize * 16 - 4
}

/// Blocks larger than this are not cached.
const MAX_CACHED: usize = class_size(CLASSES - 1);

/// `CLASS_BY_UNITS[u]`: the smallest class of at least `u` units.
const CLASS_BY_UNITS: [u8; 256] = {
    let mut table = [0u8; 256];
    let (mut u, mut c) = (0, 0);
    while u < 256 {
        while (UNITS[c] as usize) < u {
            c += 1;
        }
        table[u] = c as u8;
        u += 1;
    }
    table
};

/// The smallest class whose blocks hold `size` bytes (`1..=MAX_CACHED`).
fn class_of(size: usize) -> usize {
    let units = (size + 4).div_ceil(16);
    CLASS_BY_UNITS
        .get(units)
        .map_or(CLASSES - 1, |&c| c as usize)
}

/// What `cap` aims to keep of each class, in bytes, and its bounds in blocks.
const CACHE_BYTES_PER_CLASS: usize = 32 * 1024;
const MIN_BLOCKS_PER_CLASS: usize = 32;
const MAX_BLOCKS_PER_CLASS: usize = 128;

/// How many freed blocks of class `c` a thread keeps: 32 KiB worth, but never fewer than 32
/// blocks. Fewer large blocks (8 of 4 KiB) were too few for 64 busy keep-alive connections:
/// each request's future (3.7 KiB) and heads (2.5 KiB) went back to musl, which unmapped and
/// mapped their groups again, 0.05 mmap/munmap pairs and 0.3 page faults per request.
const fn cap(c: usize) -> usize {
    let n = CACHE_BYTES_PER_CLASS / class_size(c);
    if n < MIN_BLOCKS_PER_CLASS {
        MIN_BLOCKS_PER_CLASS
    } else if n > MAX_BLOCKS_PER_CLASS {
        MAX_BLOCKS_PER_CLASS
    } else {
        n
    }
}

/// The alignment every malloc block has (that of `max_align_t`).
const MALLOC_ALIGN: usize = if cfg!(target_pointer_width = "64") {
    16
} else {
    8
};

/// The class serving `layout`, if it is cached: 1..=4076 bytes, an alignment any malloc block
/// has (so a block cached from one layout suits every other layout of its class).
fn cached_class(layout: &Layout) -> Option<usize> {
    let size = layout.size();
    (size > 0 && size <= MAX_CACHED && layout.align() <= MALLOC_ALIGN).then(|| class_of(size))
}

/// A thread's freed blocks of one class: a list linked through each block's first word.
struct FreeList {
    head: Cell<*mut u8>,
    len: Cell<usize>,
}

impl FreeList {
    const fn new() -> Self {
        FreeList {
            head: Cell::new(ptr::null_mut()),
            len: Cell::new(0),
        }
    }
}

/// A thread's cache: off unless a `ThreadCache` guard is alive.
struct Cache {
    on: Cell<bool>,
    lists: [FreeList; CLASSES],
}

thread_local! {
    // Const-initialized and without destructors: reading it never allocates, and it stays
    // usable while the thread ends.
    static CACHE: Cache = const {
        Cache {
            on: Cell::new(false),
            lists: [const { FreeList::new() }; CLASSES],
        }
    };
}

/// This thread caches freed blocks while the guard lives (a worker thread, around its
/// executor); when it drops, also while the thread unwinds, caching stops and what the cache
/// holds is freed. Only threads that say so cache: a short-lived helper thread (a name
/// lookup) that ended with blocks in its cache would leak them.
pub struct ThreadCache(());

impl ThreadCache {
    pub fn on() -> ThreadCache {
        cache_this_thread(true);
        ThreadCache(())
    }
}

impl Drop for ThreadCache {
    fn drop(&mut self) {
        cache_this_thread(false);
    }
}

fn cache_this_thread(on: bool) {
    let _ = CACHE.try_with(|cache| cache.on.set(on));
    if !on {
        for c in 0..CLASSES {
            while let Some(block) = pop(c) {
                // SAFETY: a cached block is a System block of its class's size.
                unsafe { System.dealloc(block, block_layout(c, MALLOC_ALIGN)) };
            }
        }
    }
}

/// A cached block of class `c`, if this thread has one.
fn pop(c: usize) -> Option<*mut u8> {
    CACHE
        .try_with(|cache| {
            let list = cache.lists.get(c)?;
            let block = list.head.get();
            if block.is_null() {
                return None;
            }
            // SAFETY: blocks in a list are live malloc blocks of at least 28 bytes whose
            // first word `push` set to the next block.
            list.head.set(unsafe { block.cast::<*mut u8>().read() });
            list.len.set(list.len.get() - 1);
            Some(block)
        })
        .ok()
        .flatten()
}

/// Keep `block` (of class `c`, no longer used) for the next allocation; false when this
/// thread's list is full.
fn push(c: usize, block: *mut u8) -> bool {
    CACHE
        .try_with(|cache| {
            let Some(list) = cache.lists.get(c).filter(|_| cache.on.get()) else {
                return false;
            };
            if list.len.get() >= cap(c) {
                return false;
            }
            // SAFETY: the caller gives up `block`, a malloc block of `class_size(c)` ≥ 28
            // bytes, aligned for a pointer.
            unsafe { block.cast::<*mut u8>().write(list.head.get()) };
            list.head.set(block);
            list.len.set(list.len.get() + 1);
            true
        })
        .unwrap_or(false)
}

/// The layout of the malloc block behind an allocation of class `c` (`align` ≤
/// `MALLOC_ALIGN`).
fn block_layout(c: usize, align: usize) -> Layout {
    debug_assert!(align.is_power_of_two() && align <= MALLOC_ALIGN);
    // SAFETY: a power of two, and `class_size(c)` ≤ 4076 cannot overflow rounded up to it.
    unsafe { Layout::from_size_align_unchecked(class_size(c), align) }
}

/// See the module documentation. Install with `#[global_allocator]` in the binary.
pub struct Cached;

// SAFETY: cached blocks are malloc blocks at least as large and as aligned as the layouts
// they serve (`class_size(cached_class(l)) >= l.size()`, alignment ≤ `MALLOC_ALIGN`, which
// every malloc block has); all others go to `System` unchanged. The methods are kept out of
// line: inlined at every allocation site they cost about 100 KiB of binary.
unsafe impl GlobalAlloc for Cached {
    #[inline(never)]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match cached_class(&layout) {
            Some(c) => match pop(c) {
                Some(block) => block,
                // SAFETY: a non-zero size and a valid alignment.
                None => unsafe { System.alloc(block_layout(c, layout.align())) },
            },
            // SAFETY: passed on as given.
            None => unsafe { System.alloc(layout) },
        }
    }

    // Large zeroed buffers keep calloc (fresh pages need no memset).
    #[inline(never)]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if cached_class(&layout).is_none() {
            // SAFETY: passed on as given.
            return unsafe { System.alloc_zeroed(layout) };
        }
        // SAFETY: `alloc` returns null or a block of at least `layout.size()` bytes.
        unsafe {
            let block = self.alloc(layout);
            if !block.is_null() {
                block.write_bytes(0, layout.size());
            }
            block
        }
    }

    #[inline(never)]
    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        match cached_class(&layout) {
            Some(c) => {
                if !push(c, block) {
                    // SAFETY: `alloc` got this block from System with this layout.
                    unsafe { System.dealloc(block, block_layout(c, layout.align())) }
                }
            }
            // SAFETY: passed on as given.
            None => unsafe { System.dealloc(block, layout) },
        }
    }

    #[inline(never)]
    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return ptr::null_mut();
        };
        match (cached_class(&layout), cached_class(&new_layout)) {
            // The block already holds the new size.
            (Some(old), Some(new)) if old == new => block,
            // SAFETY: a System block, resized by System.
            (None, None) => unsafe { System.realloc(block, layout, new_size) },
            // Growing past the cached sizes: the block is a System block of its class's
            // size, and may grow in place.
            // SAFETY: that block with the layout it was allocated with.
            (Some(old), None) => unsafe {
                System.realloc(block, block_layout(old, layout.align()), new_size)
            },
            // Shrinking into a class: the System block is resized to the class's full size,
            // as every block of that class must have.
            // SAFETY: a System block with its layout; the new size is the class's.
            (None, Some(new)) => unsafe { System.realloc(block, layout, class_size(new)) },
            _ => {
                // SAFETY: the new block is distinct and holds `new_size`; the old one holds
                // `layout.size()`; the old one is freed once copied.
                unsafe {
                    let moved = self.alloc(new_layout);
                    if !moved.is_null() {
                        ptr::copy_nonoverlapping(block, moved, layout.size().min(new_size));
                        self.dealloc(block, layout);
                    }
                    moved
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_size_gets_the_smallest_class_that_holds_it() {
        assert_eq!(MAX_CACHED, 4076);
        for c in 1..CLASSES {
            assert!(class_size(c) > class_size(c - 1), "class {c}");
            assert_eq!(class_size(c) % 16, 12, "class {c}: a whole malloc slot");
        }
        for size in 1..=MAX_CACHED {
            let c = class_of(size);
            assert!(c < CLASSES, "size {size}");
            assert!(class_size(c) >= size, "size {size} in class {c}");
            assert!(
                c == 0 || class_size(c - 1) < size,
                "size {size}: class {c} too big"
            );
            // No more than a quarter of a block is left unused (above the 16-byte steps).
            assert!(
                size <= 156 || class_size(c) - size < class_size(c) / 4,
                "{size}"
            );
        }
    }

    #[test]
    fn a_freed_block_serves_the_next_allocation_of_its_class() {
        let _on = ThreadCache::on();
        let a = Cached;
        let small = Layout::from_size_align(100, 8).unwrap();
        let similar = Layout::from_size_align(108, MALLOC_ALIGN).unwrap();
        // SAFETY: matched alloc/dealloc pairs with their layouts; blocks are written
        // within their sizes.
        unsafe {
            let p = a.alloc(small);
            assert!(!p.is_null());
            p.write_bytes(0xa5, 100);
            a.dealloc(p, small);
            let q = a.alloc(similar);
            assert_eq!(q, p, "the same class reuses the cached block");
            q.write_bytes(0x5a, 108);
            let r = a.alloc(similar);
            assert_ne!(r, q);
            a.dealloc(q, similar);
            a.dealloc(r, similar);
        }
    }

    #[test]
    fn a_thread_keeps_at_most_cap_blocks_per_class() {
        let on = ThreadCache::on();
        let a = Cached;
        let layout = Layout::from_size_align(4000, 8).unwrap();
        let c = class_of(4000);
        let n = cap(c) + 5;
        // SAFETY: each block is allocated and then freed once, with its layout.
        let blocks: Vec<*mut u8> = (0..n).map(|_| unsafe { a.alloc(layout) }).collect();
        for &b in &blocks {
            unsafe { a.dealloc(b, layout) };
        }
        let held = CACHE.with(|cache| cache.lists[c].len.get());
        assert_eq!(held, cap(c));
        // Draining the list hands back exactly what it holds, newest first.
        let again: Vec<*mut u8> = (0..cap(c)).map(|_| pop(c).unwrap()).collect();
        assert_eq!(again.first(), blocks.get(cap(c) - 1));
        assert_eq!(pop(c), None);
        for b in again {
            unsafe { a.dealloc(b, layout) };
        }
        // Turning the cache off frees what it holds; a thread with it off keeps nothing.
        drop(on);
        assert_eq!(CACHE.with(|cache| cache.lists[c].len.get()), 0);
        let p = unsafe { a.alloc(layout) };
        unsafe { a.dealloc(p, layout) };
        assert_eq!(CACHE.with(|cache| cache.lists[c].len.get()), 0);
    }

    #[test]
    fn realloc_keeps_the_bytes_across_classes_and_sizes() {
        let _on = ThreadCache::on();
        let a = Cached;
        let mut layout = Layout::from_size_align(24, 8).unwrap();
        // SAFETY: each realloc gets the block and layout of the previous step.
        unsafe {
            let mut p = a.alloc(layout);
            for i in 0..24 {
                p.add(i).write(i as u8);
            }
            // Growing and shrinking within a class, across classes and past MAX_CACHED.
            for new_size in [30, 200, 3000, 5000, 70_000, 2000, 20] {
                p = a.realloc(p, layout, new_size);
                assert!(!p.is_null());
                layout = Layout::from_size_align(new_size, 8).unwrap();
                for i in 0..20 {
                    assert_eq!(p.add(i).read(), i as u8, "byte {i} after {new_size}");
                }
            }
            let same = a.realloc(p, layout, 28);
            assert_eq!(same, p, "20 and 28 bytes share a class");
            a.dealloc(same, Layout::from_size_align(28, 8).unwrap());
        }
    }
}
