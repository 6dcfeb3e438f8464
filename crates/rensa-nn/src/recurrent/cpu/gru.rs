//! The GRU's forward and backward loops, in both forms.

use super::*;

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
/// [`CellKind::Gru`](crate::recurrent::CellKind::Gru)).
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
