//! The simple RNN's forward and backward loops.

use super::*;
use crate::activation::Activation;

/// The simple RNN's tape: the state before each step and the activation's output.
#[derive(Clone, Debug)]
pub struct RnnTape<E> {
    /// `[time, batch, H]`.
    pub h_prev: Vec<E>,
    /// `[time, batch, H]`.
    pub h_new: Vec<E>,
}

#[inline(always)]
pub(super) fn activate<E: Real>(activation: Activation, a: E) -> E {
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
pub(super) fn activation_slope<E: Real>(activation: Activation, y: E) -> E {
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
pub(super) fn activate_all<E: Real>(activation: Activation, xs: &mut [E]) {
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
pub(super) fn slopes<E: Real>(activation: Activation, ys: &[E], out: &mut [E]) {
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
