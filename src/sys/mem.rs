//! `memcpy` and `memmove` for the static x86_64 musl build.
//!
//! Why: musl's x86_64 `memcpy` is `rep movsq` with byte loops on either side, slow to start
//! for the small copies a proxied HTTP request makes by the dozen (field names and values,
//! moved structs and futures of 100-300 bytes): under `wrk` it was 11% of the proxy's CPU
//! (bench/PROFILE.md). Here a copy of up to 32 bytes is two overlapping loads and stores, up
//! to 2 KiB a loop of 32-byte chunks, and beyond that one `rep movsb`, which x86_64
//! processors run at full speed for long copies.
//!
//! The exported symbols exist only in x86_64 musl builds, where they take the place of the C
//! library's (the linker then needs none of its `memcpy` or `memmove`); every other build
//! keeps its C library's routines. The copy routines are compiled for every target, so the
//! tests check them anywhere.
//!
//! They must never call `memcpy` or `memmove` themselves: no `ptr::copy*` of a variable
//! length, no slice copies, only fixed-size unaligned loads and stores (which LLVM emits as
//! plain moves). What they copy is taken as `MaybeUninit`: the bytes may be padding or
//! uninitialized, which an integer must not hold. LLVM does not turn a loop into a call to the function
//! it is compiling when that function is `memcpy` or `memmove`; should that ever change, the
//! static binary would recurse at its first copy, and `make static` runs the binary once to
//! catch exactly that.
// Outside x86_64 musl builds only the tests call the routines.
#![cfg_attr(
    not(all(target_arch = "x86_64", target_env = "musl")),
    allow(dead_code)
)]

use std::mem::MaybeUninit;
use std::ptr;

/// Loads a `T`-sized run of bytes at `p`, whatever they hold.
///
/// # Safety
/// `size_of::<T>()` readable bytes at `p`.
#[inline(always)]
unsafe fn ld<T>(p: *const u8) -> MaybeUninit<T> {
    // SAFETY: the caller's readable bytes; unaligned, and `MaybeUninit` takes any bytes.
    unsafe { ptr::read_unaligned(p.cast::<MaybeUninit<T>>()) }
}

/// Stores what `ld` loaded at `p`.
///
/// # Safety
/// `size_of::<T>()` writable bytes at `p`.
#[inline(always)]
unsafe fn st<T>(p: *mut u8, v: MaybeUninit<T>) {
    // SAFETY: the caller's writable bytes; unaligned.
    unsafe { ptr::write_unaligned(p.cast::<MaybeUninit<T>>(), v) }
}

/// Copies `n` bytes from `s` to `d`, for `n <= 32`, loading everything before storing
/// anything (so the ranges may overlap).
///
/// # Safety
/// `s..s+n` readable, `d..d+n` writable.
#[inline(always)]
unsafe fn up_to_32(d: *mut u8, s: *const u8, n: usize) {
    // SAFETY (all branches): every access is within `0..n` of its range; loads and stores
    // are unaligned.
    unsafe {
        if n >= 16 {
            let a = ld::<u128>(s);
            let b = ld::<u128>(s.add(n - 16));
            st::<u128>(d, a);
            st::<u128>(d.add(n - 16), b);
        } else if n >= 8 {
            let a = ld::<u64>(s);
            let b = ld::<u64>(s.add(n - 8));
            st::<u64>(d, a);
            st::<u64>(d.add(n - 8), b);
        } else if n >= 4 {
            let a = ld::<u32>(s);
            let b = ld::<u32>(s.add(n - 4));
            st::<u32>(d, a);
            st::<u32>(d.add(n - 4), b);
        } else if n > 0 {
            // 1..=3 bytes: first, middle, last (some are the same byte).
            let a = ld::<u8>(s);
            let b = ld::<u8>(s.add(n / 2));
            let c = ld::<u8>(s.add(n - 1));
            st(d, a);
            st(d.add(n / 2), b);
            st(d.add(n - 1), c);
        }
    }
}

/// Loads 32 bytes at `s`.
///
/// # Safety
/// `s..s+32` readable.
#[inline(always)]
unsafe fn load32(s: *const u8) -> (MaybeUninit<u128>, MaybeUninit<u128>) {
    // SAFETY: within the caller's 32 readable bytes.
    unsafe { (ld::<u128>(s), ld::<u128>(s.add(16))) }
}

/// Stores 32 bytes at `d`.
///
/// # Safety
/// `d..d+32` writable.
#[inline(always)]
unsafe fn store32(d: *mut u8, (a, b): (MaybeUninit<u128>, MaybeUninit<u128>)) {
    // SAFETY: within the caller's 32 writable bytes.
    unsafe {
        st::<u128>(d, a);
        st::<u128>(d.add(16), b);
    }
}

/// Beyond this many bytes a forward copy is one `rep movsb` (on x86_64; elsewhere the
/// loop does all sizes).
const REP_FROM: usize = 2048;

/// Copies `n` bytes from `s` to `d` front to back: correct for disjoint ranges and for
/// `d <= s` (a chunk is loaded before it is stored, and no store reaches source bytes not
/// yet loaded).
///
/// # Safety
/// `s..s+n` readable, `d..d+n` writable, and either disjoint or `d <= s`.
#[inline(always)]
unsafe fn forward(d: *mut u8, s: *const u8, n: usize) {
    // SAFETY (all branches): offsets stay within `0..n`; see the contract above for overlap.
    unsafe {
        if n <= 32 {
            up_to_32(d, s, n);
        } else if !bulk(d, s, n) {
            // The last 32 bytes are loaded first and stored last, so the loop can stop at
            // any chunk boundary and the tail may overlap the last chunk.
            let tail = load32(s.add(n - 32));
            let mut i = 0;
            while i + 32 < n {
                store32(d.add(i), load32(s.add(i)));
                i += 32;
            }
            store32(d.add(n - 32), tail);
        }
    }
}

/// Copies `n` bytes from `s` to `d` back to front, for overlapping ranges with `d > s`.
///
/// # Safety
/// `s..s+n` readable, `d..d+n` writable.
#[inline(always)]
unsafe fn backward(d: *mut u8, s: *const u8, n: usize) {
    // SAFETY (all branches): offsets stay within `0..n`; the head is loaded before any
    // store, each chunk is loaded before it is stored, and stores move downwards behind
    // the loads.
    unsafe {
        if n <= 32 {
            up_to_32(d, s, n);
        } else {
            let head = load32(s);
            let mut end = n;
            while end > 32 {
                let at = end - 32;
                store32(d.add(at), load32(s.add(at)));
                end = at;
            }
            store32(d, head);
        }
    }
}

/// Copies `n` bytes front to back with one `rep movsb` if `n` is beyond `REP_FROM`; says
/// whether it did.
///
/// # Safety
/// As `forward`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn bulk(d: *mut u8, s: *const u8, n: usize) -> bool {
    if n <= REP_FROM {
        return false;
    }
    // SAFETY: the caller's ranges. `rep movsb` copies rcx bytes from rsi to rdi upwards, one
    // byte after the other as far as overlap is concerned (the ABI has the direction flag
    // clear on entry).
    unsafe {
        std::arch::asm!(
            "rep movsb",
            inout("rcx") n => _,
            inout("rdi") d => _,
            inout("rsi") s => _,
            options(nostack, preserves_flags)
        );
    }
    true
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
unsafe fn bulk(_: *mut u8, _: *const u8, _: usize) -> bool {
    false
}

/// The C library's `memcpy` for the static x86_64 build.
///
/// # Safety
/// As C's `memcpy`: `n` readable bytes at `s`, `n` writable bytes at `d`, no overlap.
#[cfg(all(target_arch = "x86_64", target_env = "musl"))]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcpy(d: *mut u8, s: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller's contract; disjoint ranges suit `forward`.
    unsafe { forward(d, s, n) };
    d
}

/// The C library's `memmove` for the static x86_64 build.
///
/// # Safety
/// As C's `memmove`: `n` readable bytes at `s`, `n` writable bytes at `d`.
#[cfg(all(target_arch = "x86_64", target_env = "musl"))]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memmove(d: *mut u8, s: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller's contract; `move_bytes` picks the direction overlap needs.
    unsafe { move_bytes(d, s, n) };
    d
}

/// `memmove`'s body: forward unless the destination starts inside the source.
///
/// # Safety
/// As C's `memmove`.
#[inline(always)]
unsafe fn move_bytes(d: *mut u8, s: *const u8, n: usize) {
    // SAFETY: `forward` is correct for `d <= s` and disjoint ranges, `backward` for the rest.
    unsafe {
        if (d as usize).wrapping_sub(s as usize) >= n {
            forward(d, s, n);
        } else {
            backward(d, s, n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sizes around every branch: 0..=300 (the small cases and the chunk loop's starts and
    /// tails) and either side of `REP_FROM`.
    fn sizes() -> impl Iterator<Item = usize> {
        (0..=300).chain([1000, 2047, 2048, 2049, 2050, 4096 + 17])
    }

    /// A byte pattern with no period a wrong offset could hide behind.
    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 131 + i / 251) as u8).collect()
    }

    #[test]
    fn forward_copies_disjoint_ranges_of_any_size_and_alignment() {
        for n in sizes() {
            for (at_s, at_d) in [(0, 0), (1, 0), (0, 3), (7, 9), (15, 1)] {
                let src = pattern(n + 32);
                let mut dst = vec![0xAAu8; n + 32];
                // SAFETY: both ranges are within their vectors.
                unsafe { forward(dst.as_mut_ptr().add(at_d), src.as_ptr().add(at_s), n) };
                assert_eq!(
                    &dst[at_d..at_d + n],
                    &src[at_s..at_s + n],
                    "n={n} {at_s}->{at_d}"
                );
                assert!(
                    dst[..at_d].iter().all(|&b| b == 0xAA),
                    "wrote before, n={n}"
                );
                assert!(
                    dst[at_d + n..].iter().all(|&b| b == 0xAA),
                    "wrote after, n={n}"
                );
            }
        }
    }

    #[test]
    fn move_bytes_handles_overlap_in_both_directions() {
        for n in sizes() {
            for shift in [
                -40isize, -33, -32, -17, -16, -8, -1, 0, 1, 2, 8, 16, 17, 32, 33, 40,
            ] {
                let mut buf = pattern(n + 100);
                let mut want = buf.clone();
                let from = 50usize;
                let to = from.checked_add_signed(shift).unwrap();
                want.copy_within(from..from + n, to);
                let p = buf.as_mut_ptr();
                // SAFETY: both ranges are within `buf` (50 ± 40, plus n, within n + 100).
                unsafe { move_bytes(p.add(to), p.add(from), n) };
                assert!(buf == want, "n={n} shift={shift}");
            }
        }
    }
}
