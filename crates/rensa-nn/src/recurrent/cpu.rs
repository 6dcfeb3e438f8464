//! Native CPU recurrences: the forward and backward passes of the simple RNN, the LSTM and the GRU
//! as loops over contiguous buffers.
//!
//! Each step is one GEMM (matrixmultiply, through `ndarray::linalg::general_mat_mul`, which
//! accepts transposed views without copying) followed by **one** pass of the gate pointwise math
//! over `[batch, G·H]`, written in place. The backward pass runs the same loops backwards over
//! time and forms every weight gradient as one GEMM over all `batch · time` rows at the end.
//!
//! Layouts: the input projection, the outputs and their gradients are batch-first
//! (`[batch, time, ·]`), as the layers hand them over; everything the forward pass keeps for the
//! backward pass (the "tape") is time-major in processing order (`[time, batch, ·]`, step `k` is
//! the `k`-th step processed, time index `order[k]`), so a step's rows are one contiguous slab.
//! Masks follow [`RecurrentBackend`](super::RecurrentBackend): on padding the state is carried
//! over and the output is zero.

use ndarray::linalg::general_mat_mul;
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
}

impl Real for f32 {
    const SIGMOID_FLOOR: Self = -88.0;
    fn lit(x: f64) -> Self {
        x as f32
    }
}

impl Real for f64 {
    const SIGMOID_FLOOR: Self = -700.0;
    fn lit(x: f64) -> Self {
        x
    }
}

fn sigmoid<E: Real>(x: E) -> E {
    E::one() / (E::one() + (-x.max(E::SIGMOID_FLOOR)).exp())
}

/// `σ'` from `σ`'s output.
fn d_sigmoid<E: Real>(s: E) -> E {
    s * (E::one() - s)
}

/// `tanh'` from `tanh`'s output.
fn d_tanh<E: Real>(t: E) -> E {
    E::one() - t * t
}

/// `old + m (new − old)`: `new` on a real step, `old` on padding.
fn carry<E: Real>(old: E, new: E, m: E) -> E {
    if m == E::one() {
        new
    } else if m == E::zero() {
        old
    } else {
        old + m * (new - old)
    }
}

/// `out = a · b + beta · out` for row-major `out` of shape `[a.rows, b.cols]`.
fn gemm<E: Real>(a: ArrayView2<E>, b: ArrayView2<E>, beta: E, out: &mut [E]) {
    let shape = (a.nrows(), b.ncols());
    let mut out = ArrayViewMut2::from_shape(shape, out).expect("GEMM output buffer");
    general_mat_mul(E::one(), &a, &b, beta, &mut out);
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
    fn t(&self, k: usize) -> usize {
        if self.reverse { self.time - 1 - k } else { k }
    }

    /// The mask value of `(b, t)`: `1` without a mask.
    fn m<E: Real>(&self, mask: Option<&[E]>, b: usize, t: usize) -> E {
        mask.map_or(E::one(), |m| m[b * self.time + t])
    }

    /// Copies step `t` of a batch-first `[batch, time, width]` buffer into `[batch, width]`.
    fn gather<E: Real>(&self, src: &[E], t: usize, width: usize, dst: &mut [E]) {
        for b in 0..self.batch {
            let from = (b * self.time + t) * width;
            dst[b * width..(b + 1) * width].copy_from_slice(&src[from..from + width]);
        }
    }

    /// Copies `[batch, width]` into step `t` of a batch-first `[batch, time, width]` buffer.
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

/// What a forward pass returns: outputs `[batch, time, H]`, final `h` (and `c`) `[batch, H]`,
/// and the tape when asked for.
#[derive(Clone, Debug)]
pub struct Forward<E, T> {
    /// Outputs, batch-first.
    pub output: Vec<E>,
    /// Final hidden state.
    pub h: Vec<E>,
    /// Final memory cell (LSTM only; empty otherwise).
    pub c: Vec<E>,
    /// What the backward pass needs.
    pub tape: Option<T>,
}

/// The gradients of a recurrence's inputs.
#[derive(Clone, Debug)]
pub struct Backward<E> {
    /// Of the input projection, `[batch, time, G·H]`.
    pub d_projected: Vec<E>,
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
fn through<E: Real>(dy: E, dh: E, m: E) -> (E, E) {
    ((dy + dh) * m, dh * (E::one() - m))
}

/// Turns the tape-order gradient rows `[time, batch, W]` into batch-first `[batch, time, W]`.
fn batch_first<E: Real>(dims: &Dims, rows: &[E], width: usize) -> Vec<E> {
    let mut out = vec![E::zero(); rows.len()];
    let slab = dims.batch * width;
    for k in 0..dims.time {
        dims.scatter(&rows[k * slab..(k + 1) * slab], dims.t(k), width, &mut out);
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

fn activate<E: Real>(activation: Activation, a: E) -> E {
    match activation {
        Activation::Tanh => a.tanh(),
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

/// Simple-RNN forward. `projected` `[batch, time, H]`, `weight_hh` `[H, H]`.
pub fn rnn_forward<E: Real>(
    dims: &Dims,
    projected: &[E],
    h0: &[E],
    weight_hh: &[E],
    mask: Option<&[E]>,
    activation: Activation,
    keep_tape: bool,
) -> Forward<E, RnnTape<E>> {
    let (batch, hidden) = (dims.batch, dims.hidden);
    let w = view(weight_hh, hidden, hidden);
    let mut h = h0.to_vec();
    let mut output = vec![E::zero(); batch * dims.time * hidden];
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
        for b in 0..batch {
            let m = dims.m(mask, b, t);
            for j in 0..hidden {
                let i = b * hidden + j;
                let y = activate(activation, a[i]);
                a[i] = y;
                output[(b * dims.time + t) * hidden + j] = y * m;
                h[i] = carry(h[i], y, m);
            }
        }
        if let Some(tape) = tape.as_mut() {
            tape.h_new.extend_from_slice(&a);
        }
    }
    Forward {
        output,
        h,
        c: Vec::new(),
        tape,
    }
}

/// Simple-RNN backward from the gradients of the outputs `[batch, time, H]` and the final state.
pub fn rnn_backward<E: Real>(
    dims: &Dims,
    tape: &RnnTape<E>,
    weight_hh: &[E],
    mask: Option<&[E]>,
    activation: Activation,
    d_output: &[E],
    d_h_last: &[E],
) -> Backward<E> {
    let (batch, hidden) = (dims.batch, dims.hidden);
    let w_t = view(weight_hh, hidden, hidden).reversed_axes();
    let slab = batch * hidden;
    let mut da = vec![E::zero(); dims.rows() * hidden];
    let mut dh = d_h_last.to_vec();
    for k in (0..dims.time).rev() {
        let t = dims.t(k);
        let y = &tape.h_new[k * slab..(k + 1) * slab];
        let da_k = &mut da[k * slab..(k + 1) * slab];
        for b in 0..batch {
            let m = dims.m(mask, b, t);
            for j in 0..hidden {
                let i = b * hidden + j;
                let (g, passed) = through(d_output[(b * dims.time + t) * hidden + j], dh[i], m);
                da_k[i] = g * activation_slope(activation, y[i]);
                dh[i] = passed;
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
    Backward {
        d_projected: batch_first(dims, &da, hidden),
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

/// LSTM forward, gate order (i, f, g, o). `projected` `[batch, time, 4H]`, `weight_hh` `[H, 4H]`.
pub fn lstm_forward<E: Real>(
    dims: &Dims,
    projected: &[E],
    h0: &[E],
    c0: &[E],
    weight_hh: &[E],
    mask: Option<&[E]>,
    keep_tape: bool,
) -> Forward<E, LstmTape<E>> {
    let (batch, hidden) = (dims.batch, dims.hidden);
    let g4 = 4 * hidden;
    let w = view(weight_hh, hidden, g4);
    let (mut h, mut c) = (h0.to_vec(), c0.to_vec());
    let mut output = vec![E::zero(); batch * dims.time * hidden];
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
            for j in 0..hidden {
                let i = b * hidden + j;
                let ig = sigmoid(row[j]);
                let fg = sigmoid(row[hidden + j]);
                let gg = row[2 * hidden + j].tanh();
                let og = sigmoid(row[3 * hidden + j]);
                row[j] = ig;
                row[hidden + j] = fg;
                row[2 * hidden + j] = gg;
                row[3 * hidden + j] = og;
                let c_new = fg * c[i] + ig * gg;
                let t_c = c_new.tanh();
                let h_new = og * t_c;
                tc[i] = t_c;
                output[(b * dims.time + t) * hidden + j] = h_new * m;
                h[i] = carry(h[i], h_new, m);
                c[i] = carry(c[i], c_new, m);
            }
        }
        if let Some(tape) = tape.as_mut() {
            tape.gates.extend_from_slice(&a);
            tape.tanh_c.extend_from_slice(&tc);
        }
    }
    Forward { output, h, c, tape }
}

/// LSTM backward (the course's `LSTM.backward`, step by step from the last).
pub fn lstm_backward<E: Real>(
    dims: &Dims,
    tape: &LstmTape<E>,
    weight_hh: &[E],
    mask: Option<&[E]>,
    d_output: &[E],
    d_h_last: &[E],
    d_c_last: &[E],
) -> Backward<E> {
    let (batch, hidden) = (dims.batch, dims.hidden);
    let g4 = 4 * hidden;
    let w_t = view(weight_hh, hidden, g4).reversed_axes();
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
            let (g_row, d_row) = (
                &gates[b * g4..(b + 1) * g4],
                &mut da_k[b * g4..(b + 1) * g4],
            );
            for j in 0..hidden {
                let i = b * hidden + j;
                let (gh, h_passed) = through(d_output[(b * dims.time + t) * hidden + j], dh[i], m);
                let (gc, c_passed) = through(E::zero(), dc[i], m);
                let (ig, fg, gg, og) = (
                    g_row[j],
                    g_row[hidden + j],
                    g_row[2 * hidden + j],
                    g_row[3 * hidden + j],
                );
                let t_c = tanh_c[i];
                let ds = gc + gh * og * d_tanh(t_c);
                d_row[j] = ds * gg * d_sigmoid(ig);
                d_row[hidden + j] = ds * c_prev[i] * d_sigmoid(fg);
                d_row[2 * hidden + j] = ds * ig * d_tanh(gg);
                d_row[3 * hidden + j] = gh * t_c * d_sigmoid(og);
                dc[i] = ds * fg + c_passed;
                dh[i] = h_passed;
            }
        }
        gemm(view(da_k, batch, g4), w_t, E::one(), &mut dh);
    }
    let mut d_weight = vec![E::zero(); hidden * g4];
    let h_prev = view(&tape.h_prev, dims.rows(), hidden).reversed_axes();
    gemm(h_prev, view(&da, dims.rows(), g4), E::zero(), &mut d_weight);
    Backward {
        d_projected: batch_first(dims, &da, g4),
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
/// `projected` `[batch, time, 3H]`, `weight_hh` `[H, 3H]`, `bias_hn` `[H]` or empty.
pub fn gru_forward<E: Real>(
    dims: &Dims,
    projected: &[E],
    h0: &[E],
    weight_hh: &[E],
    bias_hn: &[E],
    reset_after: bool,
    mask: Option<&[E]>,
    keep_tape: bool,
) -> Forward<E, GruTape<E>> {
    let (batch, hidden) = (dims.batch, dims.hidden);
    let g3 = 3 * hidden;
    let w = view(weight_hh, hidden, g3);
    let mut h = h0.to_vec();
    let mut output = vec![E::zero(); batch * dims.time * hidden];
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
    let bias = |j: usize| bias_hn.get(j).copied().unwrap_or(E::zero());
    for k in 0..dims.time {
        let t = dims.t(k);
        dims.gather(projected, t, g3, &mut x);
        let hv = view(&h, batch, hidden);
        if reset_after {
            gemm(hv, w, E::zero(), &mut hw);
        } else {
            gemm(hv, cols(w, ..2 * hidden), E::zero(), &mut hw);
        }
        // r and z; in the reset-after form also the candidate.
        for b in 0..batch {
            let width = hw.len() / batch;
            let (xr, hr) = (
                &mut x[b * g3..(b + 1) * g3],
                &hw[b * width..(b + 1) * width],
            );
            for j in 0..hidden {
                let r = sigmoid(xr[j] + hr[j]);
                xr[j] = r;
                xr[hidden + j] = sigmoid(xr[hidden + j] + hr[hidden + j]);
                if reset_after {
                    let hn = hr[2 * hidden + j] + bias(j);
                    hn_step[b * hidden + j] = hn;
                    xr[2 * hidden + j] = (xr[2 * hidden + j] + r * hn).tanh();
                } else {
                    rh[b * hidden + j] = r * h[b * hidden + j];
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
                    *n = (*n + cand[b * hidden + j]).tanh();
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
            for j in 0..hidden {
                let i = b * hidden + j;
                let (z, n) = (x[b * g3 + hidden + j], x[b * g3 + 2 * hidden + j]);
                let h_new = n + z * (h[i] - n);
                output[(b * dims.time + t) * hidden + j] = h_new * m;
                h[i] = carry(h[i], h_new, m);
            }
        }
    }
    Forward {
        output,
        h,
        c: Vec::new(),
        tape,
    }
}

/// GRU backward in either form.
pub fn gru_backward<E: Real>(
    dims: &Dims,
    tape: &GruTape<E>,
    weight_hh: &[E],
    reset_after: bool,
    mask: Option<&[E]>,
    d_output: &[E],
    d_h_last: &[E],
) -> Backward<E> {
    let (batch, hidden) = (dims.batch, dims.hidden);
    let (g2, g3) = (2 * hidden, 3 * hidden);
    let w = view(weight_hh, hidden, g3);
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
            gemm(view(d_hw_k, batch, g3), w.t(), E::one(), &mut dh);
        } else {
            // ∂(r ⊙ h) = daₙ Wₕₙᵀ
            let da_n = ArrayView2::from_shape((batch, g3), &*da_k)
                .expect("gate gradients")
                .slice_axis_move(Axis(1), Slice::from(g2..));
            gemm(da_n, cols(w, g2..).t(), E::zero(), &mut d_rh);
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
            gemm(d_rz, cols(w, ..g2).t(), E::one(), &mut dh);
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
        general_mat_mul(
            E::one(),
            &h_prev,
            &cols(all, ..g2),
            E::zero(),
            &mut dw.slice_axis_mut(Axis(1), Slice::from(..g2)),
        );
        general_mat_mul(
            E::one(),
            &view(&rh, rows, hidden).reversed_axes(),
            &cols(all, g2..),
            E::zero(),
            &mut dw.slice_axis_mut(Axis(1), Slice::from(g2..)),
        );
    }
    Backward {
        d_projected: batch_first(dims, &da, g3),
        d_h0: dh,
        d_c0: Vec::new(),
        d_weight,
        d_bias_hn,
    }
}
