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

use crate::activation::Activation;

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
/// or the baseline target.
///
/// The kernels' gate math is plain loops over slices (`exp`, `tanh` and `σ` branch-free, see
/// [`Real::exp_v`]), which LLVM vectorises as wide as the enabled target features allow; the
/// portable build only has 4-lane SSE2. `f` and everything it calls are `#[inline(always)]`, so
/// they are compiled into each of the instruction-set functions below, and the CPU picks one at
/// run time. Every build performs the same IEEE operations in the same order (Rust does not
/// contract `a · b + c` into fused multiply-adds), so results do not depend on the machine.
#[allow(unsafe_code)]
#[inline(always)]
fn with_best_isa<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")]
        fn avx512<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        #[target_feature(enable = "avx2,fma")]
        fn avx2<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        use std::is_x86_feature_detected as has;
        if has!("avx2") && has!("fma") {
            if has!("avx512f") && has!("avx512vl") && has!("avx512dq") && has!("avx512bw") {
                // SAFETY: the CPU was just checked to have every feature `avx512` is compiled
                // for; `f` itself is ordinary safe code.
                return unsafe { avx512(f) };
            }
            // SAFETY: as above, for AVX2 and FMA.
            return unsafe { avx2(f) };
        }
    }
    f()
}

/// `a · b` into the row-major `out` (`[a.rows, b.cols]`), for the input projection and its
/// gradients. A right factor that is a transposed view is copied to row-major first (the GEMM
/// runs several times slower on it).
pub fn matmul<E: Real>(a: ArrayView2<E>, b: ArrayView2<E>, out: &mut [E]) {
    if b.strides()[1] == 1 {
        gemm(a, b, E::zero(), out);
    } else {
        let b = b.as_standard_layout();
        gemm(a, b.view(), E::zero(), out);
    }
}

/// `out = a · b + beta · out` for row-major `out` of shape `[a.rows, b.cols]`; `beta` is 0 or 1.
fn gemm<E: Real>(a: ArrayView2<E>, b: ArrayView2<E>, beta: E, out: &mut [E]) {
    let shape = (a.nrows(), b.ncols());
    let out = ArrayViewMut2::from_shape(shape, out).expect("GEMM output buffer");
    gemm_into(a, b, beta, out);
}

/// `out = a · b + beta · out` on views with any (non-negative) strides; `beta` is 0 or 1.
///
/// Runs the `gemm` crate's kernels (AVX-512 or AVX2 as the CPU has), on the current rayon pool
/// when the product is large enough to pay for it.
#[allow(unsafe_code)]
fn gemm_into<E: Real>(a: ArrayView2<E>, b: ArrayView2<E>, beta: E, mut out: ArrayViewMut2<E>) {
    let (m, k) = a.dim();
    let n = b.ncols();
    assert_eq!(b.nrows(), k, "GEMM inner dimensions");
    assert_eq!(out.dim(), (m, n), "GEMM output shape");
    assert!(beta == E::zero() || beta == E::one(), "GEMM beta is 0 or 1");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if beta == E::zero() {
            out.fill(E::zero());
        }
        return;
    }
    let (a_s, b_s, o_s) = (a.strides(), b.strides(), out.strides());
    assert!(
        a_s.iter().chain(b_s).chain(o_s).all(|&s| s >= 0),
        "GEMM views have non-negative strides"
    );
    // Handing a per-step product (64×256×1024 at the benchmark's size) to a second thread costs
    // more than it saves (measured: LSTM forward + backward 144 ms threaded, 111 ms serial);
    // only the all-steps weight-gradient products are big enough.
    let parallelism = if m * n * k >= 1 << 26 {
        gemm::Parallelism::Rayon(0) // the current pool's threads
    } else {
        gemm::Parallelism::None
    };
    let (out_rs, out_cs) = (o_s[0], o_s[1]);
    let out_ptr = out.as_mut_ptr();
    // SAFETY: each view's pointer and strides address exactly its own elements (ndarray's view
    // invariant), all valid for the lengths checked above: `a` is m×k, `b` is k×n and `out` is
    // m×n, with non-negative strides; gemm reads only `a` and `b` within those extents and writes
    // only `out`'s. `out` is a unique borrow, so it aliases neither input. E is f32 or f64,
    // both of which gemm implements.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out_ptr,
            out_cs,
            out_rs,
            beta == E::one(),
            a.as_ptr(),
            a_s[1],
            a_s[0],
            b.as_ptr(),
            b_s[1],
            b_s[0],
            E::one(),
            E::one(),
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// The transpose of row-major `[rows, cols]`, row-major. A GEMM with a transposed *view* as
/// its right factor runs several times slower (measured with the gemm crate: 35 against 228
/// GFLOPS at 32×1024×256), so the backward passes copy `Wₕₕᵀ` once. Copied in 16×16 tiles, so
/// that both the reads and the writes stay within a few cache lines.
fn transposed<E: Real>(m: &[E], rows: usize, cols: usize) -> Vec<E> {
    const TILE: usize = 16;
    assert_eq!(m.len(), rows * cols, "matrix buffer");
    let mut t = vec![E::zero(); m.len()];
    for r0 in (0..rows).step_by(TILE) {
        for c0 in (0..cols).step_by(TILE) {
            for r in r0..(r0 + TILE).min(rows) {
                for c in c0..(c0 + TILE).min(cols) {
                    t[c * rows + r] = m[r * cols + c];
                }
            }
        }
    }
    t
}

/// Columns `range` of a matrix view.
fn cols<E: Real>(m: ArrayView2<'_, E>, range: impl Into<Slice>) -> ArrayView2<'_, E> {
    m.slice_axis_move(Axis(1), range.into())
}

fn view<E: Real>(data: &[E], rows: usize, cols: usize) -> ArrayView2<'_, E> {
    ArrayView2::from_shape((rows, cols), data).expect("matrix buffer")
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
fn through<E: Real>(dy: E, dh: E, m: E) -> (E, E) {
    ((dy + dh) * m, dh * (E::one() - m))
}

/// Writes the tape-order gradient rows `[time, batch, W]` into `out`, batch-first
/// `[batch, time, W]`.
#[inline(always)]
fn batch_first<E: Real>(dims: &Dims, rows: &[E], width: usize, out: &mut [E]) {
    assert_eq!(out.len(), rows.len(), "batch-first gradient buffer");
    let slab = dims.batch * width;
    for k in 0..dims.time {
        dims.scatter(&rows[k * slab..(k + 1) * slab], dims.t(k), width, out);
    }
}

/// Splits `buf` into the disjoint row blocks of `parts`, `width` values per batch row.
fn split_rows<'a, E>(
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

// ---------------------------------------------------------------------------------------------
// Threads over the batch

/// The batch's rows split into parts that run on separate threads: the rows of a recurrence are
/// independent from the first step to the last, so each part runs its whole sequence alone and
/// only the weight gradients are summed. The split depends on the batch size only (parts of at
/// least 32 rows, at most 8), never on the thread count, so results are the same on any machine.
pub fn batch_parts(batch: usize) -> Vec<std::ops::Range<usize>> {
    let parts = (batch / 32).clamp(1, 8);
    let base = batch / parts;
    let extra = batch % parts;
    let mut start = 0;
    (0..parts)
        .map(|p| {
            let len = base + usize::from(p < extra);
            let r = start..start + len;
            start += len;
            r
        })
        .collect()
}

/// The rows `r` of a row-major buffer of `width` values per batch row (empty stays empty).
fn rows_of<'a, E>(buf: &'a [E], r: &std::ops::Range<usize>, width: usize) -> &'a [E] {
    if buf.is_empty() {
        buf
    } else {
        &buf[r.start * width..r.end * width]
    }
}

/// Inputs of a forward pass, batch-first: projection `[batch, time, G·H]`, `h0`, `c0` (empty
/// without a cell state) and the mask `[batch, time]`.
#[derive(Clone, Copy, Debug)]
pub struct Inputs<'a, E> {
    /// `[batch, time, G·H]`.
    pub projected: &'a [E],
    /// `[batch, H]`.
    pub h0: &'a [E],
    /// `[batch, H]`, or empty.
    pub c0: &'a [E],
    /// `[batch, time]`.
    pub mask: Option<&'a [E]>,
}

/// Upstream gradients of a backward pass, batch-first.
#[derive(Clone, Copy, Debug)]
pub struct Grads<'a, E> {
    /// `[batch, time, H]`.
    pub d_output: &'a [E],
    /// `[batch, H]`.
    pub d_h: &'a [E],
    /// `[batch, H]`, or empty.
    pub d_c: &'a [E],
    /// `[batch, time]`.
    pub mask: Option<&'a [E]>,
}

/// Runs `run` on every part of the batch ([`batch_parts`]) in parallel, each writing its rows
/// of `output` (`[batch, time, H]`), and joins the final states; the tape is one per part.
///
/// Each part runs inside an instruction-set dispatch (AVX-512, AVX2 or the baseline target,
/// whichever is the widest the CPU has): for the gate math to be compiled for it, `run` must be
/// a `#[inline(always)]` closure calling the kernels (which are `#[inline(always)]` too), as in
///
/// ```ignore
/// par_forward(&dims, 1, x, #[inline(always)] |d, x| rnn_forward(d, x.projected, /* … */));
/// ```
/// Anything else still works, with the gate math of the portable build.
pub fn par_forward<E: Real, K: Send>(
    dims: &Dims,
    gates: usize,
    x: Inputs<'_, E>,
    output: &mut [E],
    run: impl Fn(&Dims, Inputs<'_, E>, &mut [E]) -> Forward<E, K> + Sync,
) -> Forward<E, Vec<K>> {
    use rayon::prelude::*;
    let (t, h) = (dims.time, dims.hidden);
    assert_eq!(output.len(), dims.batch * t * h, "output buffer");
    let ranges = batch_parts(dims.batch);
    let outputs = split_rows(output, &ranges, t * h);
    let parts: Vec<Forward<E, K>> = ranges
        .into_par_iter()
        .zip(outputs)
        .map(|(r, output)| {
            let part = Dims {
                batch: r.len(),
                ..dims.clone()
            };
            let x = Inputs {
                projected: rows_of(x.projected, &r, t * gates * h),
                h0: rows_of(x.h0, &r, h),
                c0: rows_of(x.c0, &r, h),
                mask: x.mask.map(|m| rows_of(m, &r, t)),
            };
            with_best_isa(
                #[inline(always)]
                || run(&part, x, output),
            )
        })
        .collect();
    let mut out = Forward {
        h: Vec::with_capacity(dims.batch * h),
        c: Vec::new(),
        tape: Some(Vec::with_capacity(parts.len())),
    };
    for p in parts {
        out.h.extend(p.h);
        out.c.extend(p.c);
        match (p.tape, out.tape.as_mut()) {
            (Some(k), Some(all)) => all.push(k),
            _ => out.tape = None,
        }
    }
    out
}

/// The backward pass of [`par_forward`]: `run` on every part with its own tape, in parallel,
/// each writing its rows of `d_projected` (`[batch, time, G·H]`); the state gradients are joined
/// and the weight gradients summed. Dispatched like [`par_forward`], with the same advice for
/// `run`.
pub fn par_backward<E: Real, K: Sync>(
    dims: &Dims,
    gates: usize,
    tapes: &[K],
    g: Grads<'_, E>,
    d_projected: &mut [E],
    run: impl Fn(&Dims, &K, Grads<'_, E>, &mut [E]) -> Backward<E> + Sync,
) -> Backward<E> {
    use rayon::prelude::*;
    let (t, h) = (dims.time, dims.hidden);
    assert_eq!(
        d_projected.len(),
        dims.batch * t * gates * h,
        "projection gradient buffer"
    );
    let ranges = batch_parts(dims.batch);
    assert_eq!(ranges.len(), tapes.len(), "one tape per part of the batch");
    let d_parts = split_rows(d_projected, &ranges, t * gates * h);
    let parts: Vec<Backward<E>> = ranges
        .into_par_iter()
        .zip(tapes.par_iter())
        .zip(d_parts)
        .map(|((r, tape), d_projected)| {
            let part = Dims {
                batch: r.len(),
                ..dims.clone()
            };
            let g = Grads {
                d_output: rows_of(g.d_output, &r, t * h),
                d_h: rows_of(g.d_h, &r, h),
                d_c: rows_of(g.d_c, &r, h),
                mask: g.mask.map(|m| rows_of(m, &r, t)),
            };
            with_best_isa(
                #[inline(always)]
                || run(&part, tape, g, d_projected),
            )
        })
        .collect();
    let mut out = Backward {
        d_h0: Vec::with_capacity(dims.batch * h),
        d_c0: Vec::new(),
        d_weight: Vec::new(),
        d_bias_hn: Vec::new(),
    };
    let add = |acc: &mut Vec<E>, v: Vec<E>| {
        if acc.is_empty() {
            *acc = v;
        } else {
            acc.iter_mut().zip(v).for_each(|(a, b)| *a = *a + b);
        }
    };
    for p in parts {
        out.d_h0.extend(p.d_h0);
        out.d_c0.extend(p.d_c0);
        add(&mut out.d_weight, p.d_weight);
        add(&mut out.d_bias_hn, p.d_bias_hn);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Simple RNN

/// The simple RNN's tape: the state before each step and the activation's output.
#[derive(Clone, Debug)]
pub struct RnnTape<E> {
    /// `[time, batch, H]`.
    pub h_prev: Vec<E>,
    /// `[time, batch, H]`.
    pub h_new: Vec<E>,
}

#[inline(always)]
fn activate<E: Real>(activation: Activation, a: E) -> E {
    match activation {
        Activation::Tanh => a.tanh_v(),
        Activation::Sigmoid => sigmoid(a),
        Activation::Relu => a.max(E::zero()),
        Activation::LeakyRelu { alpha } => {
            if a > E::zero() {
                a
            } else {
                a * E::lit(alpha)
            }
        }
    }
}

/// The activation's derivative from its output (the subgradient convention at kinks, as
/// [`Activation::derivative_from_output`]).
#[inline(always)]
fn activation_slope<E: Real>(activation: Activation, y: E) -> E {
    match activation {
        Activation::Tanh => d_tanh(y),
        Activation::Sigmoid => d_sigmoid(y),
        Activation::Relu => {
            if y > E::zero() {
                E::one()
            } else {
                E::zero()
            }
        }
        Activation::LeakyRelu { alpha } => {
            if y > E::zero() {
                E::one()
            } else {
                E::lit(f64::from(alpha as f32))
            }
        }
    }
}

/// Applies the activation to every element in place, with the choice of function made once.
#[inline(always)]
fn activate_all<E: Real>(activation: Activation, xs: &mut [E]) {
    match activation {
        Activation::Tanh => map_in_place(xs, Real::tanh_v),
        Activation::Sigmoid => map_in_place(xs, sigmoid),
        Activation::Relu | Activation::LeakyRelu { .. } => {
            map_in_place(xs, |a| activate(activation, a))
        }
    }
}

/// Writes the activation's slope at each output `ys` into `out`.
#[inline(always)]
fn slopes<E: Real>(activation: Activation, ys: &[E], out: &mut [E]) {
    let each = |f: &dyn Fn(E) -> E, out: &mut [E]| {
        for (o, &y) in out.iter_mut().zip(ys) {
            *o = f(y);
        }
    };
    match activation {
        Activation::Tanh => {
            for (o, &y) in out.iter_mut().zip(ys) {
                *o = d_tanh(y);
            }
        }
        Activation::Sigmoid => {
            for (o, &y) in out.iter_mut().zip(ys) {
                *o = d_sigmoid(y);
            }
        }
        _ => each(&|y| activation_slope(activation, y), out),
    }
}

/// Simple-RNN forward. `projected` `[batch, time, H]`, `weight_hh` `[H, H]`; the outputs go to
/// `output` `[batch, time, H]`.
#[inline(always)]
pub fn rnn_forward<E: Real>(
    dims: &Dims,
    projected: &[E],
    h0: &[E],
    weight_hh: &[E],
    mask: Option<&[E]>,
    activation: Activation,
    keep_tape: bool,
    output: &mut [E],
) -> Forward<E, RnnTape<E>> {
    let (batch, hidden) = (dims.batch, dims.hidden);
    let w = view(weight_hh, hidden, hidden);
    let mut h = h0.to_vec();
    assert_eq!(output.len(), batch * dims.time * hidden, "output buffer");
    let mut a = vec![E::zero(); batch * hidden];
    let mut tape = keep_tape.then(|| RnnTape {
        h_prev: Vec::with_capacity(dims.rows() * hidden),
        h_new: Vec::with_capacity(dims.rows() * hidden),
    });
    for k in 0..dims.time {
        let t = dims.t(k);
        dims.gather(projected, t, hidden, &mut a);
        gemm(view(&h, batch, hidden), w, E::one(), &mut a);
        if let Some(tape) = tape.as_mut() {
            tape.h_prev.extend_from_slice(&h);
        }
        activate_all(activation, &mut a);
        for b in 0..batch {
            let m = dims.m(mask, b, t);
            let (y, hs) = (
                &a[b * hidden..(b + 1) * hidden],
                &mut h[b * hidden..(b + 1) * hidden],
            );
            let out = &mut output[(b * dims.time + t) * hidden..][..hidden];
            with_mask(m, |m| {
                for j in 0..hidden {
                    out[j] = y[j] * m;
                    hs[j] = carry(hs[j], y[j], m);
                }
            });
        }
        if let Some(tape) = tape.as_mut() {
            tape.h_new.extend_from_slice(&a);
        }
    }
    Forward {
        h,
        c: Vec::new(),
        tape,
    }
}

/// Simple-RNN backward from the gradients of the outputs `[batch, time, H]` and the final state;
/// the projection's gradient goes to `d_projected` `[batch, time, H]`.
#[inline(always)]
pub fn rnn_backward<E: Real>(
    dims: &Dims,
    tape: &RnnTape<E>,
    weight_hh: &[E],
    mask: Option<&[E]>,
    activation: Activation,
    d_output: &[E],
    d_h_last: &[E],
    d_projected: &mut [E],
) -> Backward<E> {
    let (batch, hidden) = (dims.batch, dims.hidden);
    let w_t = transposed(weight_hh, hidden, hidden);
    let w_t = view(&w_t, hidden, hidden);
    let slab = batch * hidden;
    let mut da = vec![E::zero(); dims.rows() * hidden];
    let mut dh = d_h_last.to_vec();
    for k in (0..dims.time).rev() {
        let t = dims.t(k);
        let y = &tape.h_new[k * slab..(k + 1) * slab];
        let da_k = &mut da[k * slab..(k + 1) * slab];
        slopes(activation, y, da_k);
        for b in 0..batch {
            let m = dims.m(mask, b, t);
            let dy = &d_output[(b * dims.time + t) * hidden..][..hidden];
            let (d_row, dh_row) = (
                &mut da_k[b * hidden..(b + 1) * hidden],
                &mut dh[b * hidden..(b + 1) * hidden],
            );
            for j in 0..hidden {
                let (g, passed) = through(dy[j], dh_row[j], m);
                d_row[j] = g * d_row[j];
                dh_row[j] = passed;
            }
        }
        gemm(view(da_k, batch, hidden), w_t, E::one(), &mut dh);
    }
    let mut d_weight = vec![E::zero(); hidden * hidden];
    let h_prev = view(&tape.h_prev, dims.rows(), hidden).reversed_axes();
    gemm(
        h_prev,
        view(&da, dims.rows(), hidden),
        E::zero(),
        &mut d_weight,
    );
    batch_first(dims, &da, hidden, d_projected);
    Backward {
        d_h0: dh,
        d_c0: Vec::new(),
        d_weight,
        d_bias_hn: Vec::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// LSTM

/// The LSTM's tape: the course's `LSTM.cache` for every step.
#[derive(Clone, Debug)]
pub struct LstmTape<E> {
    /// `[time, batch, H]`.
    pub h_prev: Vec<E>,
    /// `[time, batch, H]`.
    pub c_prev: Vec<E>,
    /// Activated gates (i, f, g, o), `[time, batch, 4H]`.
    pub gates: Vec<E>,
    /// `tanh(c_new)`, `[time, batch, H]`.
    pub tanh_c: Vec<E>,
}

/// LSTM forward, gate order (i, f, g, o). `projected` `[batch, time, 4H]`, `weight_hh` `[H, 4H]`;
/// the outputs go to `output` `[batch, time, H]`.
#[inline(always)]
pub fn lstm_forward<E: Real>(
    dims: &Dims,
    projected: &[E],
    h0: &[E],
    c0: &[E],
    weight_hh: &[E],
    mask: Option<&[E]>,
    keep_tape: bool,
    output: &mut [E],
) -> Forward<E, LstmTape<E>> {
    let (batch, hidden) = (dims.batch, dims.hidden);
    let g4 = 4 * hidden;
    let w = view(weight_hh, hidden, g4);
    let (mut h, mut c) = (h0.to_vec(), c0.to_vec());
    assert_eq!(output.len(), batch * dims.time * hidden, "output buffer");
    let mut a = vec![E::zero(); batch * g4];
    let mut tc = vec![E::zero(); batch * hidden];
    let mut tape = keep_tape.then(|| LstmTape {
        h_prev: Vec::with_capacity(dims.rows() * hidden),
        c_prev: Vec::with_capacity(dims.rows() * hidden),
        gates: Vec::with_capacity(dims.rows() * g4),
        tanh_c: Vec::with_capacity(dims.rows() * hidden),
    });
    for k in 0..dims.time {
        let t = dims.t(k);
        dims.gather(projected, t, g4, &mut a);
        gemm(view(&h, batch, hidden), w, E::one(), &mut a);
        if let Some(tape) = tape.as_mut() {
            tape.h_prev.extend_from_slice(&h);
            tape.c_prev.extend_from_slice(&c);
        }
        for b in 0..batch {
            let m = dims.m(mask, b, t);
            let row = &mut a[b * g4..(b + 1) * g4];
            // Activate the gates in place: σ on i, f and o, tanh on g.
            let (ifg, o) = row.split_at_mut(3 * hidden);
            map_in_place(&mut ifg[..2 * hidden], sigmoid);
            map_in_place(&mut ifg[2 * hidden..], Real::tanh_v);
            map_in_place(o, sigmoid);
            let row = &a[b * g4..(b + 1) * g4];
            let (hs, cs, tcs) = (
                &mut h[b * hidden..(b + 1) * hidden],
                &mut c[b * hidden..(b + 1) * hidden],
                &mut tc[b * hidden..(b + 1) * hidden],
            );
            let out = &mut output[(b * dims.time + t) * hidden..][..hidden];
            let (i_g, rest) = row.split_at(hidden);
            let (f_g, rest) = rest.split_at(hidden);
            let (g_g, o_g) = rest.split_at(hidden);
            with_mask(m, |m| {
                for j in 0..hidden {
                    let c_new = f_g[j] * cs[j] + i_g[j] * g_g[j];
                    let t_c = c_new.tanh_v();
                    let h_new = o_g[j] * t_c;
                    tcs[j] = t_c;
                    out[j] = h_new * m;
                    hs[j] = carry(hs[j], h_new, m);
                    cs[j] = carry(cs[j], c_new, m);
                }
            });
        }
        if let Some(tape) = tape.as_mut() {
            tape.gates.extend_from_slice(&a);
            tape.tanh_c.extend_from_slice(&tc);
        }
    }
    Forward { h, c, tape }
}

/// LSTM backward (the course's `LSTM.backward`, step by step from the last); the projection's
/// gradient goes to `d_projected` `[batch, time, 4H]`.
#[inline(always)]
pub fn lstm_backward<E: Real>(
    dims: &Dims,
    tape: &LstmTape<E>,
    weight_hh: &[E],
    mask: Option<&[E]>,
    d_output: &[E],
    d_h_last: &[E],
    d_c_last: &[E],
    d_projected: &mut [E],
) -> Backward<E> {
    let (batch, hidden) = (dims.batch, dims.hidden);
    let g4 = 4 * hidden;
    let w_t = transposed(weight_hh, hidden, g4);
    let w_t = view(&w_t, g4, hidden);
    let (slab, slab4) = (batch * hidden, batch * g4);
    let mut da = vec![E::zero(); dims.rows() * g4];
    let (mut dh, mut dc) = (d_h_last.to_vec(), d_c_last.to_vec());
    for k in (0..dims.time).rev() {
        let t = dims.t(k);
        let gates = &tape.gates[k * slab4..(k + 1) * slab4];
        let tanh_c = &tape.tanh_c[k * slab..(k + 1) * slab];
        let c_prev = &tape.c_prev[k * slab..(k + 1) * slab];
        let da_k = &mut da[k * slab4..(k + 1) * slab4];
        for b in 0..batch {
            let m = dims.m(mask, b, t);
            let rows = b * hidden..(b + 1) * hidden;
            let (gi, rest) = gates[b * g4..(b + 1) * g4].split_at(hidden);
            let (gf, rest) = rest.split_at(hidden);
            let (gg, go) = rest.split_at(hidden);
            let (di, rest) = da_k[b * g4..(b + 1) * g4].split_at_mut(hidden);
            let (df, rest) = rest.split_at_mut(hidden);
            let (dg, d_o) = rest.split_at_mut(hidden);
            let dy = &d_output[(b * dims.time + t) * hidden..][..hidden];
            let (tc, cp) = (&tanh_c[rows.clone()], &c_prev[rows.clone()]);
            let (dhr, dcr) = (&mut dh[rows.clone()], &mut dc[rows]);
            for j in 0..hidden {
                let (gh, h_passed) = through(dy[j], dhr[j], m);
                let (gc, c_passed) = through(E::zero(), dcr[j], m);
                let ds = gc + gh * go[j] * d_tanh(tc[j]);
                di[j] = ds * gg[j] * d_sigmoid(gi[j]);
                df[j] = ds * cp[j] * d_sigmoid(gf[j]);
                dg[j] = ds * gi[j] * d_tanh(gg[j]);
                d_o[j] = gh * tc[j] * d_sigmoid(go[j]);
                dcr[j] = ds * gf[j] + c_passed;
                dhr[j] = h_passed;
            }
        }
        gemm(view(da_k, batch, g4), w_t, E::one(), &mut dh);
    }
    let mut d_weight = vec![E::zero(); hidden * g4];
    let h_prev = view(&tape.h_prev, dims.rows(), hidden).reversed_axes();
    gemm(h_prev, view(&da, dims.rows(), g4), E::zero(), &mut d_weight);
    batch_first(dims, &da, g4, d_projected);
    Backward {
        d_h0: dh,
        d_c0: dc,
        d_weight,
        d_bias_hn: Vec::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// GRU

/// The GRU's tape.
#[derive(Clone, Debug)]
pub struct GruTape<E> {
    /// `[time, batch, H]`.
    pub h_prev: Vec<E>,
    /// Gates (r, z, n) after their activations, `[time, batch, 3H]`.
    pub gates: Vec<E>,
    /// Reset-after form: `h Wₕₙ + bₕₙ`, `[time, batch, H]`; empty otherwise.
    pub hn: Vec<E>,
}

/// GRU forward, gate order (r, z, n), in either form (see
/// [`RecurrentBackend::gru_recurrence`](super::RecurrentBackend::gru_recurrence)).
/// `projected` `[batch, time, 3H]`, `weight_hh` `[H, 3H]`, `bias_hn` `[H]` or empty; the outputs
/// go to `output` `[batch, time, H]`.
#[inline(always)]
pub fn gru_forward<E: Real>(
    dims: &Dims,
    projected: &[E],
    h0: &[E],
    weight_hh: &[E],
    bias_hn: &[E],
    reset_after: bool,
    mask: Option<&[E]>,
    keep_tape: bool,
    output: &mut [E],
) -> Forward<E, GruTape<E>> {
    let (batch, hidden) = (dims.batch, dims.hidden);
    let g3 = 3 * hidden;
    let w = view(weight_hh, hidden, g3);
    let mut h = h0.to_vec();
    assert_eq!(output.len(), batch * dims.time * hidden, "output buffer");
    let mut x = vec![E::zero(); batch * g3]; // the step's projection, then its gates
    let mut hw = vec![E::zero(); batch * if reset_after { g3 } else { 2 * hidden }];
    let mut rh = vec![E::zero(); if reset_after { 0 } else { batch * hidden }];
    let mut cand = vec![E::zero(); if reset_after { 0 } else { batch * hidden }];
    let mut hn_step = vec![E::zero(); if reset_after { batch * hidden } else { 0 }];
    let mut tape = keep_tape.then(|| GruTape {
        h_prev: Vec::with_capacity(dims.rows() * hidden),
        gates: Vec::with_capacity(dims.rows() * g3),
        hn: Vec::with_capacity(if reset_after { dims.rows() * hidden } else { 0 }),
    });
    let bias = if bias_hn.is_empty() {
        vec![E::zero(); hidden]
    } else {
        bias_hn.to_vec()
    };
    let width = hw.len() / batch;
    for k in 0..dims.time {
        let t = dims.t(k);
        dims.gather(projected, t, g3, &mut x);
        let hv = view(&h, batch, hidden);
        if reset_after {
            gemm(hv, w, E::zero(), &mut hw);
        } else {
            gemm(hv, cols(w, ..2 * hidden), E::zero(), &mut hw);
        }
        // r and z in one pass over both blocks; then, reset after, the candidate.
        for b in 0..batch {
            let (xr, hr) = (
                &mut x[b * g3..(b + 1) * g3],
                &hw[b * width..(b + 1) * width],
            );
            let (rz, n) = xr.split_at_mut(2 * hidden);
            for (a, &hv) in rz.iter_mut().zip(&hr[..2 * hidden]) {
                *a = sigmoid(*a + hv);
            }
            let rows = b * hidden..(b + 1) * hidden;
            if reset_after {
                let hn_row = &mut hn_step[rows];
                let (r, hw_n) = (&rz[..hidden], &hr[2 * hidden..]);
                for j in 0..hidden {
                    let hn = hw_n[j] + bias[j];
                    hn_row[j] = hn;
                    n[j] = (n[j] + r[j] * hn).tanh_v();
                }
            } else {
                let (rh_row, h_row) = (&mut rh[rows.clone()], &h[rows]);
                for j in 0..hidden {
                    rh_row[j] = rz[j] * h_row[j];
                }
            }
        }
        if !reset_after {
            gemm(
                view(&rh, batch, hidden),
                cols(w, 2 * hidden..),
                E::zero(),
                &mut cand,
            );
            for b in 0..batch {
                for j in 0..hidden {
                    let n = &mut x[b * g3 + 2 * hidden + j];
                    *n = (*n + cand[b * hidden + j]).tanh_v();
                }
            }
        }
        if let Some(tape) = tape.as_mut() {
            tape.h_prev.extend_from_slice(&h);
            tape.gates.extend_from_slice(&x);
            tape.hn.extend_from_slice(&hn_step);
        }
        for b in 0..batch {
            let m = dims.m(mask, b, t);
            let (z, n) = (
                &x[b * g3 + hidden..b * g3 + 2 * hidden],
                &x[b * g3 + 2 * hidden..(b + 1) * g3],
            );
            let hs = &mut h[b * hidden..(b + 1) * hidden];
            let out = &mut output[(b * dims.time + t) * hidden..][..hidden];
            with_mask(m, |m| {
                for j in 0..hidden {
                    let h_new = n[j] + z[j] * (hs[j] - n[j]);
                    out[j] = h_new * m;
                    hs[j] = carry(hs[j], h_new, m);
                }
            });
        }
    }
    Forward {
        h,
        c: Vec::new(),
        tape,
    }
}

/// GRU backward in either form; the projection's gradient goes to `d_projected`
/// `[batch, time, 3H]`.
#[inline(always)]
pub fn gru_backward<E: Real>(
    dims: &Dims,
    tape: &GruTape<E>,
    weight_hh: &[E],
    reset_after: bool,
    mask: Option<&[E]>,
    d_output: &[E],
    d_h_last: &[E],
    d_projected: &mut [E],
) -> Backward<E> {
    let (batch, hidden) = (dims.batch, dims.hidden);
    let (g2, g3) = (2 * hidden, 3 * hidden);
    let w_t = transposed(weight_hh, hidden, g3); // [3H, H]: rows r, z, n
    let (w_rz_t, w_n_t) = (
        view(&w_t[..g2 * hidden], g2, hidden),
        view(&w_t[g2 * hidden..], hidden, hidden),
    );
    let w_t = view(&w_t, g3, hidden);
    let (slab, slab3) = (batch * hidden, batch * g3);
    // Gradients of the pre-activations (r, z, n): the projection's gradient.
    let mut da = vec![E::zero(); dims.rows() * g3];
    // Reset after: the recurrent matmul's output gradient [da_r, da_z, ∂hn] per row.
    // Reset before: ∂(r ⊙ h) per step, then (r ⊙ h) for the weight gradient.
    let mut d_hw = vec![E::zero(); if reset_after { dims.rows() * g3 } else { 0 }];
    let mut rh = vec![E::zero(); if reset_after { 0 } else { dims.rows() * hidden }];
    let mut d_rh = vec![E::zero(); if reset_after { 0 } else { slab }];
    let mut dh = d_h_last.to_vec();
    for k in (0..dims.time).rev() {
        let t = dims.t(k);
        let gates = &tape.gates[k * slab3..(k + 1) * slab3];
        let h_prev = &tape.h_prev[k * slab..(k + 1) * slab];
        let da_k = &mut da[k * slab3..(k + 1) * slab3];
        // dn, dz and the candidate's pre-activation; dh keeps what passes padding plus g ⊙ z.
        for b in 0..batch {
            let m = dims.m(mask, b, t);
            for j in 0..hidden {
                let i = b * hidden + j;
                let (g, passed) = through(d_output[(b * dims.time + t) * hidden + j], dh[i], m);
                let (z, n) = (gates[b * g3 + hidden + j], gates[b * g3 + 2 * hidden + j]);
                da_k[b * g3 + hidden + j] = g * (h_prev[i] - n) * d_sigmoid(z);
                da_k[b * g3 + 2 * hidden + j] = g * (E::one() - z) * d_tanh(n);
                dh[i] = passed + g * z;
            }
        }
        if reset_after {
            let hn = &tape.hn[k * slab..(k + 1) * slab];
            let d_hw_k = &mut d_hw[k * slab3..(k + 1) * slab3];
            for b in 0..batch {
                for j in 0..hidden {
                    let i = b * hidden + j;
                    let r = gates[b * g3 + j];
                    let da_n = da_k[b * g3 + 2 * hidden + j];
                    let da_r = da_n * hn[i] * d_sigmoid(r);
                    da_k[b * g3 + j] = da_r;
                    d_hw_k[b * g3 + j] = da_r;
                    d_hw_k[b * g3 + hidden + j] = da_k[b * g3 + hidden + j];
                    d_hw_k[b * g3 + 2 * hidden + j] = da_n * r;
                }
            }
            gemm(view(d_hw_k, batch, g3), w_t, E::one(), &mut dh);
        } else {
            // ∂(r ⊙ h) = daₙ Wₕₙᵀ
            let da_n = ArrayView2::from_shape((batch, g3), &*da_k)
                .expect("gate gradients")
                .slice_axis_move(Axis(1), Slice::from(g2..));
            gemm(da_n, w_n_t, E::zero(), &mut d_rh);
            let rh_k = &mut rh[k * slab..(k + 1) * slab];
            for b in 0..batch {
                for j in 0..hidden {
                    let i = b * hidden + j;
                    let r = gates[b * g3 + j];
                    da_k[b * g3 + j] = d_rh[i] * h_prev[i] * d_sigmoid(r);
                    dh[i] = dh[i] + d_rh[i] * r;
                    rh_k[i] = r * h_prev[i];
                }
            }
            let d_rz = ArrayView2::from_shape((batch, g3), &*da_k)
                .expect("gate gradients")
                .slice_axis_move(Axis(1), Slice::from(..g2));
            gemm(d_rz, w_rz_t, E::one(), &mut dh);
        }
    }
    let rows = dims.rows();
    let h_prev = view(&tape.h_prev, rows, hidden).reversed_axes();
    let mut d_weight = vec![E::zero(); hidden * g3];
    let mut d_bias_hn = Vec::new();
    if reset_after {
        gemm(h_prev, view(&d_hw, rows, g3), E::zero(), &mut d_weight);
        d_bias_hn = vec![E::zero(); hidden];
        for row in d_hw.chunks(g3) {
            for (acc, &d) in d_bias_hn.iter_mut().zip(&row[g2..]) {
                *acc = *acc + d;
            }
        }
    } else {
        let all = view(&da, rows, g3);
        let mut dw = ArrayViewMut2::from_shape((hidden, g3), &mut d_weight[..]).expect("dW");
        let rh = view(&rh, rows, hidden).reversed_axes();
        gemm_into(
            h_prev,
            cols(all, ..g2),
            E::zero(),
            dw.slice_axis_mut(Axis(1), Slice::from(..g2)),
        );
        gemm_into(
            rh,
            cols(all, g2..),
            E::zero(),
            dw.slice_axis_mut(Axis(1), Slice::from(g2..)),
        );
    }
    batch_first(dims, &da, g3, d_projected);
    Backward {
        d_h0: dh,
        d_c0: Vec::new(),
        d_weight,
        d_bias_hn,
    }
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
}
