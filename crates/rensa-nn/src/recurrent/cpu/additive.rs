//! The additive (Bahdanau) attention score as native loops: `s[b,i,j] = Σₐ vₐ·tanh(q[b,i,a] +
//! k[b,j,a])` for projected queries `q` `[B, T, A]` and keys `k` `[B, S, A]`, and its
//! gradients.
//!
//! Written with tensor ops the score builds `tanh(q + k)` as a `[B, T, S, A]` tensor, and its
//! backward pass three more of that size; here no such tensor exists: each `(i, j)` pair is one
//! pass over the `A` units, and the backward pass recomputes `tanh` instead of storing it. The
//! batch rows run in parallel, each compiled for the widest instruction set the CPU has; the sum
//! over the units keeps eight partial sums (a loop LLVM vectorises without reordering any
//! addition across runs), so results do not depend on the machine or the thread count.

use rayon::prelude::*;

use super::{Real, d_tanh, with_best_isa};

/// Partial sums kept while summing over the units.
const LANES: usize = 8;

/// The sizes of an additive score: batch `B`, queries `T`, keys `S`, units `A`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ScoreDims {
    pub batch: usize,
    pub queries: usize,
    pub keys: usize,
    pub units: usize,
}

/// `Σₓ xs[x]` with [`LANES`] partial sums, then those in order.
#[inline(always)]
fn lane_sum<E: Real>(xs: &[E]) -> E {
    let mut acc = [E::zero(); LANES];
    let chunks = xs.chunks_exact(LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        for l in 0..LANES {
            acc[l] = acc[l] + chunk[l];
        }
    }
    let mut total = E::zero();
    for (l, &x) in rest.iter().enumerate() {
        acc[l] = acc[l] + x;
    }
    for a in acc {
        total = total + a;
    }
    total
}

/// One batch row of the forward pass: `scores` `[T, S]` from `q` `[T, A]` and `k` `[S, A]`.
#[inline(always)]
fn forward_row<E: Real>(q: &[E], k: &[E], v: &[E], d: ScoreDims, scores: &mut [E]) {
    let a = d.units;
    let v = &v[..a];
    let mut term = vec![E::zero(); a];
    for (i, q_i) in q.chunks_exact(a).enumerate() {
        for (j, k_j) in k.chunks_exact(a).enumerate() {
            for ((out, &vx), (&qx, &kx)) in term.iter_mut().zip(v).zip(q_i.iter().zip(k_j)) {
                *out = vx * (qx + kx).tanh_v();
            }
            scores[i * d.keys + j] = lane_sum(&term);
        }
    }
}

/// The scores `[B, T, S]`.
pub(crate) fn additive_scores<E: Real>(q: &[E], k: &[E], v: &[E], d: ScoreDims) -> Vec<E> {
    let (t, s, a) = (d.queries, d.keys, d.units);
    let mut scores = vec![E::zero(); d.batch * t * s];
    scores
        .par_chunks_mut((t * s).max(1))
        .enumerate()
        .for_each(|(b, out)| {
            let (q_b, k_b) = (
                &q[b * t * a..(b + 1) * t * a],
                &k[b * s * a..(b + 1) * s * a],
            );
            with_best_isa(
                #[inline(always)]
                || forward_row(q_b, k_b, v, d, out),
            );
        });
    scores
}

/// The gradients of [`additive_scores`] from the scores' gradient `g` `[B, T, S]`.
pub(crate) struct ScoreGrads<E> {
    /// `[B, T, A]`.
    pub d_q: Vec<E>,
    /// `[B, S, A]`.
    pub d_k: Vec<E>,
    /// `[A]`.
    pub d_v: Vec<E>,
}

/// One batch row of the backward pass: adds into `d_q` `[T, A]`, `d_k` `[S, A]` and `d_v`
/// `[A]`. A pair whose score gradient is zero (a masked key) adds nothing and is skipped.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn backward_row<E: Real>(
    (q, k, v): (&[E], &[E], &[E]),
    g: &[E],
    d: ScoreDims,
    d_q: &mut [E],
    d_k: &mut [E],
    d_v: &mut [E],
) {
    let a = d.units;
    let (v, d_v) = (&v[..a], &mut d_v[..a]);
    for (i, q_i) in q.chunks_exact(a).enumerate() {
        let d_q_i = &mut d_q[i * a..(i + 1) * a];
        for (j, k_j) in k.chunks_exact(a).enumerate() {
            let g_ij = g[i * d.keys + j];
            if g_ij == E::zero() {
                continue;
            }
            let (k_j, d_k_j) = (&k_j[..a], &mut d_k[j * a..(j + 1) * a]);
            let q_i = &q_i[..a];
            for x in 0..a {
                let t = (q_i[x] + k_j[x]).tanh_v();
                d_v[x] = d_v[x] + g_ij * t;
                let h = g_ij * v[x] * d_tanh(t);
                d_q_i[x] = d_q_i[x] + h;
                d_k_j[x] = d_k_j[x] + h;
            }
        }
    }
}

/// The gradients of the scores with respect to `q`, `k` and `v`.
pub(crate) fn additive_scores_backward<E: Real>(
    q: &[E],
    k: &[E],
    v: &[E],
    g: &[E],
    d: ScoreDims,
) -> ScoreGrads<E> {
    let (t, s, a) = (d.queries, d.keys, d.units);
    let mut d_q = vec![E::zero(); d.batch * t * a];
    let mut d_k = vec![E::zero(); d.batch * s * a];
    // One `d_v` per batch row, summed in row order afterwards (the same order on any thread
    // count).
    let mut d_v_rows = vec![E::zero(); d.batch * a];
    d_q.par_chunks_mut((t * a).max(1))
        .zip(d_k.par_chunks_mut((s * a).max(1)))
        .zip(d_v_rows.par_chunks_mut(a.max(1)))
        .enumerate()
        .for_each(|(b, ((d_q_b, d_k_b), d_v_b))| {
            let inputs = (
                &q[b * t * a..(b + 1) * t * a],
                &k[b * s * a..(b + 1) * s * a],
                v,
            );
            let g_b = &g[b * t * s..(b + 1) * t * s];
            with_best_isa(
                #[inline(always)]
                || backward_row(inputs, g_b, d, d_q_b, d_k_b, d_v_b),
            );
        });
    let mut d_v = vec![E::zero(); a];
    for row in d_v_rows.chunks_exact(a.max(1)) {
        for (acc, &x) in d_v.iter_mut().zip(row) {
            *acc = *acc + x;
        }
    }
    ScoreGrads { d_q, d_k, d_v }
}

/// Elements per parallel chunk of [`tanh_in_place`].
const TANH_CHUNK: usize = 1 << 14;

/// `tanh` of every element, in place ([`Real::tanh_v`], vectorised; large buffers in parallel
/// chunks).
pub(crate) fn tanh_in_place<E: Real>(xs: &mut [E]) {
    xs.par_chunks_mut(TANH_CHUNK).for_each(|chunk| {
        with_best_isa(
            #[inline(always)]
            || {
                for x in chunk.iter_mut() {
                    *x = x.tanh_v();
                }
            },
        );
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scores and gradients by the definition, in f64, term by term.
    fn by_definition(
        q: &[f64],
        k: &[f64],
        v: &[f64],
        g: &[f64],
        d: ScoreDims,
    ) -> (Vec<f64>, ScoreGrads<f64>) {
        let (b, t, s, a) = (d.batch, d.queries, d.keys, d.units);
        let mut scores = vec![0.0; b * t * s];
        let mut grads = ScoreGrads {
            d_q: vec![0.0; b * t * a],
            d_k: vec![0.0; b * s * a],
            d_v: vec![0.0; a],
        };
        for bi in 0..b {
            for i in 0..t {
                for j in 0..s {
                    let o = (bi * t + i) * s + j;
                    for x in 0..a {
                        let th = (q[(bi * t + i) * a + x] + k[(bi * s + j) * a + x]).tanh();
                        scores[o] += v[x] * th;
                        grads.d_v[x] += g[o] * th;
                        let h = g[o] * v[x] * (1.0 - th * th);
                        grads.d_q[(bi * t + i) * a + x] += h;
                        grads.d_k[(bi * s + j) * a + x] += h;
                    }
                }
            }
        }
        (scores, grads)
    }

    fn close(a: &[f64], b: &[f64], what: &str) {
        assert_eq!(a.len(), b.len(), "{what}");
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-5 * (1.0 + y.abs()), "{what}: {x} vs {y}");
        }
    }

    #[test]
    fn tanh_in_place_matches_std_tanh() {
        let xs: Vec<f32> = (0..40_000).map(|i| (i as f32 - 20_000.0) * 1e-3).collect();
        let mut ys = xs.clone();
        tanh_in_place(&mut ys);
        for (x, y) in xs.iter().zip(&ys) {
            assert!(
                (y - x.tanh()).abs() <= 2e-7 * (1.0 + x.tanh().abs()),
                "tanh({x}) = {y}"
            );
        }
    }

    #[test]
    fn kernels_match_the_definition_including_an_odd_unit_count_and_zero_gradients() {
        // 19 units: two full runs of eight and a remainder of three.
        let d = ScoreDims {
            batch: 3,
            queries: 2,
            keys: 5,
            units: 19,
        };
        let wave = |n: usize, f: f64| {
            (0..n)
                .map(|i| (i as f64 * f).sin() * 1.5)
                .collect::<Vec<_>>()
        };
        let q = wave(d.batch * d.queries * d.units, 0.37);
        let k = wave(d.batch * d.keys * d.units, 0.71);
        let v = wave(d.units, 1.3);
        let mut g = wave(d.batch * d.queries * d.keys, 0.53);
        g[3] = 0.0; // a masked key
        let (scores, grads) = by_definition(&q, &k, &v, &g, d);
        let f32s = |x: &[f64]| x.iter().map(|&y| y as f32).collect::<Vec<f32>>();
        let f64s = |x: &[f32]| x.iter().map(|&y| f64::from(y)).collect::<Vec<f64>>();
        close(&additive_scores(&q, &k, &v, d), &scores, "f64 scores");
        let ours = additive_scores_backward(&q, &k, &v, &g, d);
        close(&ours.d_q, &grads.d_q, "f64 d_q");
        close(&ours.d_k, &grads.d_k, "f64 d_k");
        close(&ours.d_v, &grads.d_v, "f64 d_v");
        let (q32, k32, v32, g32) = (f32s(&q), f32s(&k), f32s(&v), f32s(&g));
        let s32 = additive_scores(&q32, &k32, &v32, d);
        let tol = |a: &[f32], b: &[f64], what: &str| {
            for (x, y) in f64s(a).iter().zip(b) {
                assert!((x - y).abs() < 1e-4 * (1.0 + y.abs()), "{what}: {x} vs {y}");
            }
        };
        tol(&s32, &scores, "f32 scores");
        let ours = additive_scores_backward(&q32, &k32, &v32, &g32, d);
        tol(&ours.d_q, &grads.d_q, "f32 d_q");
        tol(&ours.d_k, &grads.d_k, "f32 d_k");
        tol(&ours.d_v, &grads.d_v, "f32 d_v");
    }
}
