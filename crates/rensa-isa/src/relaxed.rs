//! Rows of `f32` shared between threads without locks (Hogwild), read and written four
//! elements per instruction.
//!
//! A row is a slice of [`AtomicU32`] holding `f32` bit patterns. Every element is read and
//! written as if by a relaxed atomic load or store: two threads may race on a row, and a reader
//! then sees each element either before or after a writer's store, never a torn value. Plain
//! loops of relaxed atomics are correct but the compiler does not vectorise them (one 4-byte move
//! per element, against one 16-byte move per four); these functions move four elements at a time.
//!
//! # Why the 16-byte moves are relaxed element accesses
//! On x86-64 the moves are written in inline assembly (`movups`, or its VEX form `vmovups` on
//! CPUs with AVX, which avoids the penalty of mixing legacy SSE with AVX code). An inline
//! assembly block may do anything that some sequence of operations of the Rust abstract machine
//! could do; here that sequence is four relaxed atomic accesses of the four aligned 4-byte
//! elements. The hardware performs a 16-byte move as one access, or as several smaller
//! accesses that split it at 8-byte or cache-line boundaries; a 4-byte-aligned element never
//! crosses either, so it is read or written whole, which is exactly what a relaxed 4-byte
//! atomic access guarantees (and all it guarantees: the four elements are not one atomic unit,
//! and these functions promise no more). This is also the assumption under which word2vec.c,
//! gensim and fastText run their lock-free training loops with ordinary vector instructions.
//!
//! On other architectures the functions are loops of relaxed atomics.
//!
//! [`add`] is a load, an addition and a store, not an atomic read-modify-write: an update racing
//! with another thread's update of the same element can be lost, as in every Hogwild trainer.

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

/// Copies `row` into `dst` (the shorter length of the two), each element a relaxed load.
#[inline]
pub fn load(row: &[AtomicU32], dst: &mut [f32]) {
    let n = row.len().min(dst.len());
    let (row, dst) = (&row[..n], &mut dst[..n]);
    let wide = if cfg!(target_arch = "x86_64") {
        n / 4 * 4
    } else {
        0
    };
    #[cfg(target_arch = "x86_64")]
    x86::load(&row[..wide], &mut dst[..wide]);
    for (d, s) in dst[wide..].iter_mut().zip(&row[wide..]) {
        *d = f32::from_bits(s.load(Relaxed));
    }
}

/// Copies `src` into `row` (the shorter length of the two), each element a relaxed store.
#[inline]
pub fn store(row: &[AtomicU32], src: &[f32]) {
    let n = row.len().min(src.len());
    let (row, src) = (&row[..n], &src[..n]);
    let wide = if cfg!(target_arch = "x86_64") {
        n / 4 * 4
    } else {
        0
    };
    #[cfg(target_arch = "x86_64")]
    x86::store(&row[..wide], &src[..wide]);
    for (d, s) in row[wide..].iter().zip(&src[wide..]) {
        d.store(s.to_bits(), Relaxed);
    }
}

/// `row[i] += a * x[i]` (the shorter length of the two): a relaxed load, the arithmetic (a
/// product and a sum, each rounded, never fused), a relaxed store.
#[inline]
pub fn add(row: &[AtomicU32], a: f32, x: &[f32]) {
    let n = row.len().min(x.len());
    let (row, x) = (&row[..n], &x[..n]);
    let wide = if cfg!(target_arch = "x86_64") {
        n / 4 * 4
    } else {
        0
    };
    #[cfg(target_arch = "x86_64")]
    x86::add(&row[..wide], a, &x[..wide]);
    for (d, &x) in row[wide..].iter().zip(&x[wide..]) {
        d.store((f32::from_bits(d.load(Relaxed)) + a * x).to_bits(), Relaxed);
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::asm;
    use std::arch::x86_64::{
        __m128, _mm_add_ps, _mm_loadu_ps, _mm_mul_ps, _mm_set1_ps, _mm_storeu_ps,
    };
    use std::sync::atomic::AtomicU32;

    /// Relaxed loads of `p[0..4]`, with the VEX encoding when `VEX`.
    #[inline(always)]
    fn load4<const VEX: bool>(p: &[AtomicU32]) -> __m128 {
        assert!(p.len() >= 4);
        let v: __m128;
        // SAFETY: `p` holds at least 4 elements, so the 16 bytes read are inside it; the read
        // is four relaxed element loads (see the module docs); the block touches no stack and
        // no flags. `VEX` is true only when the CPU has AVX.
        unsafe {
            if VEX {
                asm!("vmovups {v}, xmmword ptr [{p}]", p = in(reg) p.as_ptr(), v = out(xmm_reg) v,
                     options(nostack, readonly, preserves_flags));
            } else {
                asm!("movups {v}, xmmword ptr [{p}]", p = in(reg) p.as_ptr(), v = out(xmm_reg) v,
                     options(nostack, readonly, preserves_flags));
            }
        }
        v
    }

    /// Relaxed stores of `v` into `p[0..4]`, with the VEX encoding when `VEX`.
    #[inline(always)]
    fn store4<const VEX: bool>(p: &[AtomicU32], v: __m128) {
        assert!(p.len() >= 4);
        // SAFETY: as in `load4`; the elements are `AtomicU32`s, which may be written through a
        // shared reference.
        unsafe {
            if VEX {
                asm!("vmovups xmmword ptr [{p}], {v}", p = in(reg) p.as_ptr(), v = in(xmm_reg) v,
                     options(nostack, preserves_flags));
            } else {
                asm!("movups xmmword ptr [{p}], {v}", p = in(reg) p.as_ptr(), v = in(xmm_reg) v,
                     options(nostack, preserves_flags));
            }
        }
    }

    /// Four plain `f32`s of `x` (at least 4 long).
    #[inline(always)]
    fn get4(x: &[f32]) -> __m128 {
        assert!(x.len() >= 4);
        // SAFETY: SSE is part of x86-64; the 16 bytes read are inside `x`.
        unsafe { _mm_loadu_ps(x.as_ptr()) }
    }

    /// Writes four plain `f32`s into `x` (at least 4 long).
    #[inline(always)]
    fn put4(x: &mut [f32], v: __m128) {
        assert!(x.len() >= 4);
        // SAFETY: SSE is part of x86-64; the 16 bytes written are inside `x`.
        unsafe { _mm_storeu_ps(x.as_mut_ptr(), v) }
    }

    /// `row.len() == dst.len()`, a multiple of 4.
    #[inline]
    pub(super) fn load(row: &[AtomicU32], dst: &mut [f32]) {
        #[inline(always)]
        fn go<const VEX: bool>(row: &[AtomicU32], dst: &mut [f32]) {
            for (s, d) in row.chunks_exact(4).zip(dst.chunks_exact_mut(4)) {
                put4(d, load4::<VEX>(s));
            }
        }
        if crate::has_avx() {
            go::<true>(row, dst)
        } else {
            go::<false>(row, dst)
        }
    }

    /// `row.len() == src.len()`, a multiple of 4.
    #[inline]
    pub(super) fn store(row: &[AtomicU32], src: &[f32]) {
        #[inline(always)]
        fn go<const VEX: bool>(row: &[AtomicU32], src: &[f32]) {
            for (d, s) in row.chunks_exact(4).zip(src.chunks_exact(4)) {
                store4::<VEX>(d, get4(s));
            }
        }
        if crate::has_avx() {
            go::<true>(row, src)
        } else {
            go::<false>(row, src)
        }
    }

    /// `row.len() == x.len()`, a multiple of 4.
    #[inline]
    pub(super) fn add(row: &[AtomicU32], a: f32, x: &[f32]) {
        #[inline(always)]
        fn go<const VEX: bool>(row: &[AtomicU32], a: f32, x: &[f32]) {
            // SAFETY: SSE is part of x86-64 (a register operation, no memory).
            let a4 = unsafe { _mm_set1_ps(a) };
            for (d, s) in row.chunks_exact(4).zip(x.chunks_exact(4)) {
                // SAFETY: register arithmetic; a product and a sum, each rounded (no FMA).
                let v = unsafe { _mm_add_ps(load4::<VEX>(d), _mm_mul_ps(a4, get4(s))) };
                store4::<VEX>(d, v);
            }
        }
        if crate::has_avx() {
            go::<true>(row, a, x)
        } else {
            go::<false>(row, a, x)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    fn row(values: &[f32]) -> Vec<AtomicU32> {
        values.iter().map(|v| AtomicU32::new(v.to_bits())).collect()
    }

    fn read(row: &[AtomicU32]) -> Vec<f32> {
        row.iter()
            .map(|a| f32::from_bits(a.load(Relaxed)))
            .collect()
    }

    #[test]
    fn every_length_matches_element_by_element_loops() {
        for n in 0..23 {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let x: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
            let shared = row(&a);
            let mut got = vec![0.0; n];
            load(&shared, &mut got);
            assert_eq!(got, a, "load, length {n}");
            add(&shared, 0.3, &x);
            let want: Vec<f32> = a.iter().zip(&x).map(|(a, x)| a + 0.3 * x).collect();
            assert_eq!(read(&shared), want, "add, length {n}");
            store(&shared, &x);
            assert_eq!(read(&shared), x, "store, length {n}");
            // offsets that are not 16-byte aligned
            if n > 1 {
                let mut tail = vec![0.0; n - 1];
                load(&shared[1..], &mut tail);
                assert_eq!(tail, x[1..], "unaligned load, length {n}");
            }
        }
        // lengths differ: the shorter one wins
        let shared = row(&[1.0, 2.0, 3.0, 4.0, 5.0]);
        let mut two = [0.0; 2];
        load(&shared, &mut two);
        assert_eq!(two, [1.0, 2.0]);
        store(&shared, &[9.0; 3]);
        assert_eq!(read(&shared), [9.0, 9.0, 9.0, 4.0, 5.0]);
    }

    #[test]
    fn racing_threads_never_see_a_torn_element() {
        // Two writers store rows of two patterns whose elements differ in every byte; a reader
        // must only ever see elements of one pattern or the other (in any mix across elements).
        let a = f32::from_bits(0x1111_1111);
        let b = f32::from_bits(0xeeee_eeee);
        let shared: Vec<AtomicU32> = row(&[a; 64]);
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            for value in [a, b] {
                let (shared, stop) = (&shared, &stop);
                s.spawn(move || {
                    let src = [value; 63];
                    while !stop.load(Relaxed) {
                        // offset 1: moves that straddle 16-byte and cache-line boundaries
                        store(&shared[1..], &src);
                    }
                });
            }
            let mut seen = [0f32; 63];
            for _ in 0..100_000 {
                load(&shared[1..], &mut seen);
                for v in seen {
                    assert!(
                        v.to_bits() == a.to_bits() || v.to_bits() == b.to_bits(),
                        "torn element {:#x}",
                        v.to_bits()
                    );
                }
            }
            stop.store(true, Relaxed);
        });
    }
}
