//! AVX2 for the serpent parser's busiest loop: copying the runs of plain text in a str
//! literal with escapes. A long text with many escapes (one per line, say) is thousands
//! of short runs; a general search routine pays its setup per run, and a copy per run
//! pays a `memcpy` call. [`StopSet::copy_run`] instead copies 32 bytes per step while
//! it tests them for the end of the run.
//!
//! Decoded text that [`ascii_text`] finds all ASCII is handed on as a `str` without a
//! second pass to check it as UTF-8.
//!
//! This is pyro-codec's only unsafe code: unaligned 32-byte loads from a slice, stores
//! into a vector's reserved capacity, a `str` made of bytes checked to be ASCII, and the
//! call into code compiled for AVX2 after the CPU was checked for it.
#![allow(unsafe_code)]

use core::arch::x86_64::{
    __m256i, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_movemask_epi8, _mm256_or_si256,
    _mm256_set1_epi8, _mm256_setzero_si256, _mm256_storeu_si256,
};

/// Whether this CPU has AVX2 (std keeps the answer after the first check).
#[inline]
pub(crate) fn available() -> bool {
    #[cfg(test)]
    if PORTABLE.with(std::cell::Cell::get) {
        return false;
    }
    std::arch::is_x86_feature_detected!("avx2")
}

#[cfg(test)]
thread_local! {
    /// Set by unit tests to take the portable paths on this thread, as a CPU without
    /// AVX2 would.
    pub(crate) static PORTABLE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// `bytes` as a `str` when every byte is ASCII (below 0x80), which makes them UTF-8.
#[target_feature(enable = "avx2")]
pub(crate) fn ascii_text(bytes: &[u8]) -> Option<&str> {
    let mut high = _mm256_setzero_si256();
    let mut chunks = bytes.chunks_exact(32);
    for chunk in &mut chunks {
        // SAFETY: `chunk` is 32 readable bytes; the load has no alignment requirement.
        let v = unsafe { _mm256_loadu_si256(chunk.as_ptr().cast()) };
        high = _mm256_or_si256(high, v);
    }
    if _mm256_movemask_epi8(high) != 0 || !chunks.remainder().is_ascii() {
        return None;
    }
    // SAFETY: every byte is below 0x80 (the sign bits of all 32-byte chunks OR-ed together
    // are clear, and the remainder was checked), and ASCII bytes are valid UTF-8.
    Some(unsafe { std::str::from_utf8_unchecked(bytes) })
}

/// What [`scan_input`] found in a whole document.
pub(crate) struct InputScan<'a> {
    /// The document as text, when it is all ASCII (and so UTF-8).
    pub(crate) ascii: Option<&'a str>,
    /// It holds a NUL byte.
    pub(crate) nul: bool,
    /// It holds a CR byte.
    pub(crate) cr: bool,
}

/// One pass over a whole document for what the parser checks before it starts: NUL
/// bytes (an error), CR bytes (which turn off the one-line fast paths) and whether it is
/// all ASCII, which makes it UTF-8 without the validator's own pass.
#[target_feature(enable = "avx2")]
pub(crate) fn scan_input(bytes: &[u8]) -> InputScan<'_> {
    let zero = _mm256_setzero_si256();
    let cr = _mm256_set1_epi8(b'\r' as i8);
    let (mut high, mut nuls, mut crs) = (zero, zero, zero);
    let mut chunks = bytes.chunks_exact(32);
    for chunk in &mut chunks {
        // SAFETY: `chunk` is 32 readable bytes; the load has no alignment requirement.
        let v = unsafe { _mm256_loadu_si256(chunk.as_ptr().cast()) };
        high = _mm256_or_si256(high, v);
        nuls = _mm256_or_si256(nuls, _mm256_cmpeq_epi8(v, zero));
        crs = _mm256_or_si256(crs, _mm256_cmpeq_epi8(v, cr));
    }
    let rest = chunks.remainder();
    let ascii = _mm256_movemask_epi8(high) == 0 && rest.is_ascii();
    InputScan {
        // SAFETY: every byte is below 0x80 (the sign bits of all 32-byte chunks OR-ed
        // together are clear, and the remainder was checked): ASCII is valid UTF-8.
        ascii: ascii.then(|| unsafe { std::str::from_utf8_unchecked(bytes) }),
        nul: _mm256_movemask_epi8(nuls) != 0 || rest.contains(&0),
        cr: _mm256_movemask_epi8(crs) != 0 || rest.contains(&b'\r'),
    }
}

/// The bytes that end a run inside a one-line str literal: its quote, a backslash, and a
/// newline (not allowed there).
#[derive(Clone, Copy)]
pub(crate) struct StopSet {
    quote: u8,
    q: __m256i,
    bs: __m256i,
    nl: __m256i,
}

impl StopSet {
    #[target_feature(enable = "avx2")]
    #[inline]
    pub(crate) fn new(quote: u8) -> StopSet {
        StopSet {
            quote,
            q: _mm256_set1_epi8(quote as i8),
            bs: _mm256_set1_epi8(b'\\' as i8),
            nl: _mm256_set1_epi8(b'\n' as i8),
        }
    }

    /// Append to `out` the bytes of `h` before its first stop, and return that stop's
    /// index (`h.len()` when there is none). Each step loads 32 bytes, stores them all
    /// behind what `out` holds, and keeps only those before a stop.
    #[target_feature(enable = "avx2")]
    #[inline]
    pub(crate) fn copy_run(&self, h: &[u8], out: &mut Vec<u8>) -> usize {
        out.reserve(h.len() + 32);
        let start = out.len();
        let dst = out.spare_capacity_mut().as_mut_ptr().cast::<u8>();
        let mut i = 0;
        while i + 32 <= h.len() {
            // SAFETY: `h[i..i + 32]` is in bounds (loop condition); loads and stores have no
            // alignment requirement; `dst` has room for `h.len() + 32` bytes (reserved
            // above), so `dst + i .. dst + i + 32` is inside it; AVX2 is enabled here.
            let mask = unsafe {
                let v = _mm256_loadu_si256(h.as_ptr().add(i).cast());
                _mm256_storeu_si256(dst.add(i).cast(), v);
                let hit = _mm256_or_si256(
                    _mm256_or_si256(_mm256_cmpeq_epi8(v, self.q), _mm256_cmpeq_epi8(v, self.bs)),
                    _mm256_cmpeq_epi8(v, self.nl),
                );
                _mm256_movemask_epi8(hit) as u32
            };
            if mask != 0 {
                let n = i + mask.trailing_zeros() as usize;
                // SAFETY: bytes `start .. start + n` of `out` were written: `dst[..i + 32]`.
                unsafe { out.set_len(start + n) };
                return n;
            }
            i += 32;
        }
        while let Some(&c) = h.get(i) {
            if c == self.quote || c == b'\\' || c == b'\n' {
                break;
            }
            // SAFETY: `i < h.len()`, inside the reserved room.
            unsafe { dst.add(i).write(c) };
            i += 1;
        }
        // SAFETY: bytes `start .. start + i` were written, by the loops above.
        unsafe { out.set_len(start + i) };
        i
    }
}
