//! Native CPU recurrences: the forward and backward passes of the simple RNN, the LSTM and the GRU
//! as loops over contiguous buffers.
//!
//! Each step is one GEMM (the `gemm` crate, on strided views, so transposes cost nothing)
//! followed by **one** pass of the gate pointwise math over `[batch, G·H]`, written in place.
//! The backward pass runs the same loops backwards over time and forms every weight gradient as
//! one GEMM over all `batch · time` rows at the end. The loops are compiled for AVX-512, AVX2
//! and the baseline target and the CPU picks the widest at run time.
//!
//! Layouts: the input projection, the outputs and their gradients are batch-first
//! (`[batch, time, ·]`), as the layers hand them over; everything the forward pass keeps for the
//! backward pass (the "tape") is time-major in processing order (`[time, batch, ·]`, step `k` is
//! the `k`-th step processed, time index `order[k]`), so a step's rows are one contiguous slab.
//! Masks follow [`RecurrentBackend`](super::RecurrentBackend): on padding the state is carried
//! over and the output is zero.

use ndarray::{ArrayView2, ArrayViewMut2, Axis, Slice};
use num_traits::Float;

mod adam;
mod additive;
mod bernoulli;
mod dense;
mod gemm;
mod gru;
mod lstm;
mod parallel;
mod rnn;
mod window;

pub(crate) use adam::{AdamScalars, adam_step};
pub(crate) use additive::{ScoreDims, additive_scores, additive_scores_backward, tanh_in_place};
pub(crate) use bernoulli::{bernoulli_nll, bernoulli_nll_backward};
pub(crate) use dense::{column_sums, dense_layer, relu_backward};
pub(crate) use gemm::matmul;
use gemm::*;
pub(crate) use gru::{GruTape, gru_backward, gru_forward};
pub(crate) use lstm::{LstmTape, lstm_backward, lstm_forward};
#[cfg(test)]
use parallel::batch_parts;
pub(crate) use parallel::{Grads, Inputs, par_backward, par_forward};
pub(crate) use rnn::{RnnTape, rnn_backward, rnn_forward};
pub(crate) use window::{fold, unfold};

/// The element types the kernels run in.
pub trait Real: Float + ndarray::LinalgScalar + Send + Sync + core::fmt::Debug + 'static {
    /// The most negative input for which `e^{-x}` is finite (the same clamp as
    /// [`activation::sigmoid`](crate::activation::sigmoid)).
    const SIGMOID_FLOOR: Self;
    /// Converts a literal.
    fn lit(x: f64) -> Self;
    /// `e^x` for `x ≤ -SIGMOID_FLOOR`, branch-free so that loops over slices vectorise.
    fn exp_v(self) -> Self;
    /// `tanh(x)`, branch-free like [`exp_v`](Self::exp_v).
    fn tanh_v(self) -> Self;
    /// `ln(1 + x)` for `0 ≤ x ≤ 1` (the `log1p(e^{−|l|})` of a softplus), branch-free like
    /// [`exp_v`](Self::exp_v).
    fn log1p_v(self) -> Self;
}

impl Real for f32 {
    const SIGMOID_FLOOR: Self = -88.0;
    fn lit(x: f64) -> Self {
        x as f32
    }

    #[inline(always)]
    /// Cody–Waite range reduction `x = n ln2 + r`, |r| ≤ ln2/2, and Cephes's degree-7
    /// polynomial for `e^r` (within 2 ulp of `f32::exp` on the clamped range; tested), scaled
    /// by `2ⁿ` through the exponent bits.
    fn exp_v(self) -> Self {
        const LOG2E: f32 = std::f32::consts::LOG2_E;
        const LN2_HI: f32 = 0.693_359_4;
        const LN2_LO: f32 = -2.121_944_4e-4;
        // 1.5·2²³: adding it rounds to an integer held in the low mantissa bits.
        const ROUND: f32 = 12_582_912.0;
        let x = self.clamp(-87.0, 88.0);
        let t = x * LOG2E + ROUND;
        let n = t - ROUND;
        let k = t.to_bits().wrapping_sub(ROUND.to_bits()) as i32; // n as an integer
        let r = x - n * LN2_HI - n * LN2_LO;
        let mut p = 1.987_569_1e-4_f32;
        p = p * r + 1.398_199_9e-3;
        p = p * r + 8.333_452e-3;
        p = p * r + 4.166_579_6e-2;
        p = p * r + 1.666_666_5e-1;
        p = p * r + 0.5; // Cephes: 5.0000001201e-1, which is 0.5 in f32
        let e = p * r * r + r + 1.0;
        e * f32::from_bits(((k + 127) << 23) as u32)
    }

    #[inline(always)]
    /// `(1 − e)/(1 + e)` with `e = e^{−2|x|}`, and the Taylor series `x − x³/3 + 2x⁵/15 − 17x⁷/315`
    /// below |x| = 0.0625, where the quotient would lose relative precision.
    fn tanh_v(self) -> Self {
        let a = self.abs();
        let e = (-2.0 * a).exp_v();
        let big = ((1.0 - e) / (1.0 + e)).copysign(self);
        let x2 = self * self;
        let small = self * (1.0 + x2 * (-1.0 / 3.0 + x2 * (2.0 / 15.0 + x2 * (-17.0 / 315.0))));
        if a < 0.0625 { small } else { big }
    }

    #[inline(always)]
    /// `ln(1 + x) = 2 atanh(s)` with `s = x / (2 + x) ≤ 1/3`, by the odd series
    /// `2 (s + s³/3 + … + s¹⁵/15)`: the first omitted term is below `2⁻²⁵ s`, so the result keeps
    /// full relative precision down to `x → 0` (tested against `f64::ln_1p`).
    fn log1p_v(self) -> Self {
        let s = self / (2.0 + self);
        let s2 = s * s;
        let mut p = 2.0 / 15.0;
        p = p * s2 + 2.0 / 13.0;
        p = p * s2 + 2.0 / 11.0;
        p = p * s2 + 2.0 / 9.0;
        p = p * s2 + 2.0 / 7.0;
        p = p * s2 + 2.0 / 5.0;
        p = p * s2 + 2.0 / 3.0;
        p = p * s2 + 2.0;
        s * p
    }
}

impl Real for f64 {
    const SIGMOID_FLOOR: Self = -700.0;
    fn lit(x: f64) -> Self {
        x
    }
    #[inline(always)]
    fn exp_v(self) -> Self {
        self.exp()
    }
    #[inline(always)]
    fn tanh_v(self) -> Self {
        self.tanh()
    }
    #[inline(always)]
    fn log1p_v(self) -> Self {
        self.ln_1p()
    }
}

#[inline(always)]
fn sigmoid<E: Real>(x: E) -> E {
    E::one() / (E::one() + (-x.max(E::SIGMOID_FLOOR)).exp_v())
}

/// Applies `f` to every element in place (a loop the compiler vectorises).
#[inline(always)]
fn map_in_place<E: Real>(xs: &mut [E], f: impl Fn(E) -> E) {
    for x in xs {
        *x = f(*x);
    }
}

/// `σ'` from `σ`'s output.
#[inline(always)]
fn d_sigmoid<E: Real>(s: E) -> E {
    s * (E::one() - s)
}

/// `tanh'` from `tanh`'s output.
#[inline(always)]
fn d_tanh<E: Real>(t: E) -> E {
    E::one() - t * t
}

/// `old + m (new − old)`: `new` on a real step, `old` on padding.
#[inline(always)]
fn carry<E: Real>(old: E, new: E, m: E) -> E {
    if m == E::one() {
        new
    } else if m == E::zero() {
        old
    } else {
        old + m * (new - old)
    }
}

/// Runs `row` with the row's mask value, passed as the constant 1 on a real step, so that
/// [`carry`] folds away there and the loop vectorises.
#[inline(always)]
fn with_mask<E: Real>(m: E, row: impl FnOnce(E)) {
    if m == E::one() { row(E::one()) } else { row(m) }
}

/// Runs `f` compiled for the widest vector instruction set the CPU has: AVX-512, AVX2 with FMA,
/// or the baseline target ([`rensa_isa::with_best_isa`], the workspace's one dispatch).
///
/// The kernels' gate math is plain loops over slices (`exp`, `tanh` and `σ` branch-free, see
/// [`Real::exp_v`]), which LLVM vectorises as wide as the enabled target features allow; the
/// portable build only has 4-lane SSE2. `f` and everything it calls are `#[inline(always)]`, so
/// they are compiled into each instruction-set wrapper, and the CPU picks one at run time. Every
/// build performs the same IEEE operations in the same order (Rust does not contract `a · b + c`
/// into fused multiply-adds), so results do not depend on the machine.
#[inline(always)]
fn with_best_isa<R>(f: impl FnOnce() -> R) -> R {
    rensa_isa::with_best_isa(rensa_isa::Level::Avx512, f)
}

/// The shape of a recurrence and the order its steps run in.
#[derive(Clone, Debug)]
pub struct Dims {
    /// Batch size.
    pub batch: usize,
    /// Number of steps.
    pub time: usize,
    /// Hidden size `H`.
    pub hidden: usize,
    /// Run from the last step to the first.
    pub reverse: bool,
}

impl Dims {
    /// The time index of processing step `k`.
    #[inline(always)]
    fn t(&self, k: usize) -> usize {
        if self.reverse { self.time - 1 - k } else { k }
    }

    /// The mask value of `(b, t)`: `1` without a mask.
    #[inline(always)]
    fn m<E: Real>(&self, mask: Option<&[E]>, b: usize, t: usize) -> E {
        mask.map_or(E::one(), |m| m[b * self.time + t])
    }

    /// Copies step `t` of a batch-first `[batch, time, width]` buffer into `[batch, width]`.
    #[inline(always)]
    fn gather<E: Real>(&self, src: &[E], t: usize, width: usize, dst: &mut [E]) {
        for b in 0..self.batch {
            let from = (b * self.time + t) * width;
            dst[b * width..(b + 1) * width].copy_from_slice(&src[from..from + width]);
        }
    }

    /// Copies `[batch, width]` into step `t` of a batch-first `[batch, time, width]` buffer.
    #[inline(always)]
    fn scatter<E: Real>(&self, src: &[E], t: usize, width: usize, dst: &mut [E]) {
        for b in 0..self.batch {
            let to = (b * self.time + t) * width;
            dst[to..to + width].copy_from_slice(&src[b * width..(b + 1) * width]);
        }
    }

    /// Rows in the tape (`time · batch`).
    fn rows(&self) -> usize {
        self.time * self.batch
    }
}

/// What a forward pass returns besides its outputs (which it writes into the caller's
/// `[batch, time, H]` buffer): final `h` (and `c`) `[batch, H]`, and the tape when asked for.
#[derive(Clone, Debug)]
pub struct Forward<E, T> {
    /// Final hidden state.
    pub h: Vec<E>,
    /// Final memory cell (LSTM only; empty otherwise).
    pub c: Vec<E>,
    /// What the backward pass needs.
    pub tape: Option<T>,
}

/// The gradients of a recurrence's inputs, besides that of the input projection (which a
/// backward pass writes into the caller's `[batch, time, G·H]` buffer).
#[derive(Clone, Debug)]
pub struct Backward<E> {
    /// Of the initial hidden state.
    pub d_h0: Vec<E>,
    /// Of the initial memory cell (LSTM only; empty otherwise).
    pub d_c0: Vec<E>,
    /// Of the recurrent weights `[H, G·H]`.
    pub d_weight: Vec<E>,
    /// Of the GRU's candidate recurrent bias `[H]` (reset-after form only; empty otherwise).
    pub d_bias_hn: Vec<E>,
}

/// The gradient reaching a step's new state, `(dY + dh) m`, and what of `dh` passes the step on
/// padding, `dh (1 − m)`.
#[inline(always)]
pub(super) fn through<E: Real>(dy: E, dh: E, m: E) -> (E, E) {
    ((dy + dh) * m, dh * (E::one() - m))
}

/// Writes the tape-order gradient rows `[time, batch, W]` into `out`, batch-first
/// `[batch, time, W]`.
#[inline(always)]
pub(super) fn batch_first<E: Real>(dims: &Dims, rows: &[E], width: usize, out: &mut [E]) {
    assert_eq!(out.len(), rows.len(), "batch-first gradient buffer");
    let slab = dims.batch * width;
    for k in 0..dims.time {
        dims.scatter(&rows[k * slab..(k + 1) * slab], dims.t(k), width, out);
    }
}

/// Splits `buf` into the disjoint row blocks of `parts`, `width` values per batch row.
pub(super) fn split_rows<'a, E>(
    mut buf: &'a mut [E],
    parts: &[std::ops::Range<usize>],
    width: usize,
) -> Vec<&'a mut [E]> {
    parts
        .iter()
        .map(|r| {
            let (part, rest) = std::mem::take(&mut buf).split_at_mut(r.len() * width);
            buf = rest;
            part
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{Real, batch_parts};

    #[test]
    fn batch_parts_cover_the_batch_and_depend_on_its_size_only() {
        assert_eq!(batch_parts(1), vec![0..1]);
        assert_eq!(batch_parts(63), vec![0..63]);
        assert_eq!(batch_parts(64), vec![0..32, 32..64]);
        assert_eq!(batch_parts(70), vec![0..35, 35..70]);
        let many = batch_parts(1001);
        assert_eq!(many.len(), 8);
        assert_eq!(many[0], 0..126);
        assert_eq!(many.last().unwrap().end, 1001);
        assert!(many.windows(2).all(|w| w[0].end == w[1].start));
    }

    #[test]
    fn vector_friendly_exp_and_tanh_match_the_standard_library() {
        let mut worst_exp = 0.0f64;
        let mut worst_tanh = 0.0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let rel = |a: f32, b: f32| ((a as f64 - b as f64) / (b as f64).abs().max(1e-30)).abs();
            worst_exp = worst_exp.max(rel(x.exp_v(), x.exp()));
            if x.abs() < 20.0 {
                worst_tanh = worst_tanh.max(rel(x.tanh_v(), x.tanh()));
            }
            x += 0.000_731;
        }
        assert!(worst_exp < 4.0 * f32::EPSILON as f64, "exp: {worst_exp:e}");
        assert!(
            worst_tanh < 8.0 * f32::EPSILON as f64,
            "tanh: {worst_tanh:e}"
        );
        assert_eq!(0.0f32.tanh_v(), 0.0);
        assert_eq!(1e30f32.tanh_v(), 1.0);
        assert_eq!((-1e30f32).tanh_v(), -1.0);
        assert!(1e-30f32.tanh_v() > 0.0);
    }

    #[test]
    fn vector_friendly_log1p_matches_f64_on_its_domain() {
        let mut worst = 0.0f64;
        // dense near 0, where ln(1 + x) ≈ x must keep its relative precision, and over [0, 1]
        let tiny = (0..400).map(|i| 1e-38f32 * 1.25f32.powi(i));
        let unit = (0..=100_000).map(|i| i as f32 / 100_000.0);
        for x in tiny.take_while(|&x| x < 1e-3).chain(unit) {
            let exact = (x as f64).ln_1p();
            let rel = ((x.log1p_v() as f64 - exact) / exact.max(1e-300)).abs();
            worst = worst.max(if x == 0.0 { 0.0 } else { rel });
        }
        assert!(worst < 2.0 * f32::EPSILON as f64, "log1p: {worst:e}");
        assert_eq!(0.0f32.log1p_v(), 0.0);
        assert_eq!(0.5f64.log1p_v(), 0.5f64.ln_1p());
    }
}
