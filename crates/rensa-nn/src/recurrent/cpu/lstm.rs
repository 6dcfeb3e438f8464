//! The LSTM's forward and backward loops (the course's `LSTM.forward` and `LSTM.backward`
//! over contiguous buffers).

use super::*;

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
