//! The CubeCL kernel that runs recurrence steps: the recurrent matmul and the gate pointwise math
//! of a step in one pass, for a block of batch rows and a block of hidden units per cube.
//!
//! Layouts (all contiguous, row-major): `projected [B, T, G·H]`, `mask [B, T]`, `h0`, `c0
//! [B, H]`, `weight [H, G·H]`, `bias_hn [H]`; outputs `states [B, T, H]` (the state after each
//! time step, carried over padding), `cells [B, T, H]` (LSTM memory cells, likewise) and `saved
//! [B, T, S·H]` (the activations the backward pass needs, by time index).
//!
//! A cube owns `rows` batch rows (comptime) and the hidden units `[j_lo, j_lo + block)`; its
//! threads stride over those units. The previous state of the cube's rows, all `H` units of it,
//! sits in shared memory (double-buffered). When one cube holds all `H` units (`block == H`), its
//! rows' recurrence is independent of every other cube, so a single launch runs any number of
//! steps: the state written by step `s` is the shared state read by step `s + 1`. When the units
//! are split over several cubes, each launch runs one step and reloads the state from `states`.

// The `cube` macro generates launch items without documentation.
#![allow(missing_docs)]

use burn_cubecl::cubecl;
use cubecl::prelude::*;

/// Simple RNN (`G = 1`).
pub const RNN: u32 = 0;
/// LSTM, gates `(i, f, g, o)` (`G = 4`).
pub const LSTM: u32 = 1;
/// GRU with the reset gate before the recurrent matmul (`G = 3`).
pub const GRU_BEFORE: u32 = 2;
/// GRU with the reset gate after the recurrent matmul (`G = 3`).
pub const GRU_AFTER: u32 = 3;

/// Activation codes of the simple RNN (`alpha` is leaky ReLU's slope).
pub const ACT_TANH: u32 = 0;
/// See [`ACT_TANH`].
pub const ACT_RELU: u32 = 1;
/// See [`ACT_TANH`].
pub const ACT_SIGMOID: u32 = 2;
/// See [`ACT_TANH`].
pub const ACT_LEAKY: u32 = 3;

#[cube]
fn sigmoid<F: Float>(x: F) -> F {
    F::new(1.0) / (F::new(1.0) + F::exp(F::new(0.0) - x))
}

#[cube]
fn activate<F: Float>(x: F, alpha: F, #[comptime] act: u32) -> F {
    if comptime!(act == ACT_TANH) {
        F::tanh(x)
    } else if comptime!(act == ACT_SIGMOID) {
        sigmoid::<F>(x)
    } else if comptime!(act == ACT_RELU) {
        F::max(x, F::new(0.0))
    } else if x < F::new(0.0) {
        x * alpha
    } else {
        x
    }
}

/// The state after a step: `new` where the step belongs to its sequence, `old` on padding.
#[cube]
fn carry<F: Float>(old: F, new: F, m: F, #[comptime] masked: bool) -> F {
    if comptime!(masked) {
        old + m * (new - old)
    } else {
        new
    }
}

/// Saved activations per unit in the tape: LSTM `i, f, g, o, tanh(c)`; GRU `r, z, n` (and `hn`
/// in the reset-after form); the simple RNN keeps only its states.
pub fn saved_units(cell: u32) -> u32 {
    match cell {
        RNN => 0,
        LSTM => 5,
        GRU_BEFORE => 3,
        _ => 4,
    }
}

/// The number of gates of a cell.
pub fn gates(cell: u32) -> u32 {
    match cell {
        RNN => 1,
        LSTM => 4,
        _ => 3,
    }
}

/// Runs processing steps `[step_start, step_start + n_steps)` of a recurrence.
///
/// `hidden` is `H`; `rows` the batch rows per cube. Shared memory holds `2·rows·H` values of
/// state (plus `2·rows·H` for the reset-before GRU's `r ⊙ h` and `z`).
#[allow(clippy::too_many_arguments)]
#[cube(launch)]
pub fn recurrence_kernel<F: Float>(
    projected: &Tensor<F>,
    mask: &Tensor<F>,
    h0: &Tensor<F>,
    c0: &Tensor<F>,
    weight: &Tensor<F>,
    bias_hn: &Tensor<F>,
    states: &mut Tensor<F>,
    cells: &mut Tensor<F>,
    saved: &mut Tensor<F>,
    step_start: u32,
    n_steps: u32,
    block: u32,
    alpha: f32,
    #[comptime] cell: u32,
    #[comptime] act: u32,
    #[comptime] masked: bool,
    #[comptime] reverse: bool,
    #[comptime] tape: bool,
    #[comptime] has_bias_hn: bool,
    #[comptime] rows: u32,
    #[comptime] hidden: u32,
) {
    let g_count = comptime!(gates(cell));
    // Gates computed by the first matmul pass: the reset-before GRU does `n` in a second one.
    let g_first = comptime!(if cell == GRU_BEFORE {
        2u32
    } else {
        gates(cell)
    });
    let acc_len = comptime!((rows * gates(cell)) as usize);
    let rows_u = comptime!(rows as usize);
    let h = comptime!(hidden as usize);
    let plane = comptime!((rows * hidden) as usize);
    let gh = comptime!((gates(cell) * hidden) as usize);
    let s_width = comptime!((saved_units(cell) * hidden) as usize);

    let batch = states.shape(0);
    let time = states.shape(1);
    let b0 = CUBE_POS_X as usize * rows_u;
    let j_lo = CUBE_POS_Y as usize * block as usize;
    let mut j_hi = j_lo + block as usize;
    if j_hi > h {
        j_hi = h;
    }
    let alpha = F::cast_from(alpha);
    let tid = UNIT_POS_X as usize;
    let n_threads = CUBE_DIM_X as usize;

    // Two planes of state: step s reads plane s % 2 and writes the other.
    let mut hs = SharedMemory::<F>::new(2 * plane);
    // Reset-before GRU: `r ⊙ h` and `z` of the current step, all units.
    let mut rh = SharedMemory::<F>::new(if comptime!(cell == GRU_BEFORE) {
        2 * plane
    } else {
        1usize
    });

    // The state before the first step of this launch, all units of the cube's rows.
    let first = step_start as usize;
    let t_first = if comptime!(reverse) {
        time - 1 - first
    } else {
        first
    };
    let mut idx = tid;
    while idx < plane {
        let r = idx / h;
        let k = idx % h;
        let b = b0 + r;
        let mut v = F::new(0.0);
        if b < batch {
            if first == 0 {
                v = h0[b * h + k];
            } else {
                let tp = if comptime!(reverse) {
                    t_first + 1
                } else {
                    t_first - 1
                };
                v = states[(b * time + tp) * h + k];
            }
        }
        hs[idx] = v;
        idx += n_threads;
    }
    sync_cube();

    for s in 0..n_steps as usize {
        let step = first + s;
        let t = if comptime!(reverse) {
            time - 1 - step
        } else {
            step
        };
        let cur = (s % 2) * plane;
        let nxt = ((s + 1) % 2) * plane;

        let mut j = j_lo + tid;
        while j < j_hi {
            let mut acc = Array::<F>::new(acc_len);
            #[unroll]
            for q in 0..acc_len {
                acc[q] = F::new(0.0);
            }
            for k in 0..h {
                #[unroll]
                for g in 0..g_first {
                    let w = weight[k * gh + comptime!(g as usize) * h + j];
                    #[unroll]
                    for r in 0..rows_u {
                        acc[r * comptime!(g_count as usize) + comptime!(g as usize)] +=
                            hs[cur + r * h + k] * w;
                    }
                }
            }
            #[unroll]
            for r in 0..rows_u {
                let b = b0 + r;
                if b < batch {
                    let bt = b * time + t;
                    let x = bt * gh;
                    let a = r * comptime!(g_count as usize);
                    let h_prev = hs[cur + r * h + j];
                    let mut m = F::new(1.0);
                    if comptime!(masked) {
                        m = mask[bt];
                    }
                    let mut h_new = F::new(0.0);
                    if comptime!(cell == RNN) {
                        h_new = activate::<F>(projected[x + j] + acc[a], alpha, act);
                    } else if comptime!(cell == LSTM) {
                        let gi = sigmoid::<F>(projected[x + j] + acc[a]);
                        let gf = sigmoid::<F>(projected[x + h + j] + acc[a + 1]);
                        let gg = F::tanh(projected[x + 2 * h + j] + acc[a + 2]);
                        let go = sigmoid::<F>(projected[x + 3 * h + j] + acc[a + 3]);
                        let tp = if comptime!(reverse) { t + 1 } else { t - 1 };
                        let c_prev = if step == 0 {
                            c0[b * h + j]
                        } else {
                            cells[(b * time + tp) * h + j]
                        };
                        let c_new = gf * c_prev + gi * gg;
                        let tc = F::tanh(c_new);
                        h_new = go * tc;
                        cells[bt * h + j] = carry::<F>(c_prev, c_new, m, masked);
                        if comptime!(tape) {
                            let o = bt * s_width;
                            saved[o + j] = gi;
                            saved[o + h + j] = gf;
                            saved[o + 2 * h + j] = gg;
                            saved[o + 3 * h + j] = go;
                            saved[o + 4 * h + j] = tc;
                        }
                    } else if comptime!(cell == GRU_AFTER) {
                        let gr = sigmoid::<F>(projected[x + j] + acc[a]);
                        let gz = sigmoid::<F>(projected[x + h + j] + acc[a + 1]);
                        let mut hn = acc[a + 2];
                        if comptime!(has_bias_hn) {
                            hn += bias_hn[j];
                        }
                        let gn = F::tanh(projected[x + 2 * h + j] + gr * hn);
                        h_new = gn + gz * (h_prev - gn);
                        if comptime!(tape) {
                            let o = bt * s_width;
                            saved[o + j] = gr;
                            saved[o + h + j] = gz;
                            saved[o + 2 * h + j] = gn;
                            saved[o + 3 * h + j] = hn;
                        }
                    } else {
                        // Reset-before GRU, first half: r and z; the candidate follows below.
                        let gr = sigmoid::<F>(projected[x + j] + acc[a]);
                        let gz = sigmoid::<F>(projected[x + h + j] + acc[a + 1]);
                        rh[r * h + j] = gr * h_prev;
                        rh[plane + r * h + j] = gz;
                        if comptime!(tape) {
                            let o = bt * s_width;
                            saved[o + j] = gr;
                            saved[o + h + j] = gz;
                        }
                    }
                    if comptime!(cell != GRU_BEFORE) {
                        let kept = carry::<F>(h_prev, h_new, m, masked);
                        states[bt * h + j] = kept;
                        hs[nxt + r * h + j] = kept;
                    }
                }
            }
            j += n_threads;
        }

        if comptime!(cell == GRU_BEFORE) {
            // The candidate needs `r ⊙ h` of every unit.
            sync_cube();
            let mut j = j_lo + tid;
            while j < j_hi {
                let mut acc = Array::<F>::new(rows_u);
                #[unroll]
                for r in 0..rows_u {
                    acc[r] = F::new(0.0);
                }
                for k in 0..h {
                    let w = weight[k * gh + 2 * h + j];
                    #[unroll]
                    for r in 0..rows_u {
                        acc[r] += rh[r * h + k] * w;
                    }
                }
                #[unroll]
                for r in 0..rows_u {
                    let b = b0 + r;
                    if b < batch {
                        let bt = b * time + t;
                        let h_prev = hs[cur + r * h + j];
                        let gz = rh[plane + r * h + j];
                        let gn = F::tanh(projected[bt * gh + 2 * h + j] + acc[r]);
                        let h_new = gn + gz * (h_prev - gn);
                        let mut m = F::new(1.0);
                        if comptime!(masked) {
                            m = mask[bt];
                        }
                        let kept = carry::<F>(h_prev, h_new, m, masked);
                        states[bt * h + j] = kept;
                        hs[nxt + r * h + j] = kept;
                        if comptime!(tape) {
                            saved[bt * s_width + 2 * h + j] = gn;
                        }
                    }
                }
                j += n_threads;
            }
        }
        sync_cube();
    }
}

/// The simple RNN's activation derivative from the activation's output `y` (subgradients at
/// kinks as [`Activation::derivative_from_output`](crate::activation::Activation)).
#[cube]
fn d_activate<F: Float>(y: F, alpha: F, #[comptime] act: u32) -> F {
    if comptime!(act == ACT_TANH) {
        F::new(1.0) - y * y
    } else if comptime!(act == ACT_SIGMOID) {
        y * (F::new(1.0) - y)
    } else {
        let mut d = F::new(1.0);
        if y <= F::new(0.0) {
            d = if comptime!(act == ACT_RELU) {
                F::new(0.0)
            } else {
                alpha
            };
        }
        d
    }
}

/// The hand-written backward pass of a whole recurrence in one launch, from the last processing
/// step to the first (the tape of [`recurrence_kernel()`] in, gradients out).
///
/// Per step, each thread turns the gradient reaching its units' new state into the gate
/// pre-activation gradients (`d_proj [B, T, G·H]`, also kept in shared memory), and after a
/// barrier the previous state's gradient `dh_prev = da · Wₕₕᵀ` (+ the direct and carried parts)
/// for its units. `weight_t` is `Wₕₕᵀ`, `[G·H, H]`. The running gradients of the state live in
/// `dh_state` / `dc_state` (`[B, H]`, each unit touched by one thread only) and end as `∂h0`,
/// `∂c0`. The reset-after GRU also writes `∂hn` (`d_hn [B, T, H]`), what its recurrent matmul
/// receives in the candidate's place.
#[allow(clippy::too_many_arguments)]
#[cube(launch)]
pub fn backward_kernel<F: Float>(
    states: &Tensor<F>,
    cells: &Tensor<F>,
    saved: &Tensor<F>,
    h0: &Tensor<F>,
    c0: &Tensor<F>,
    mask: &Tensor<F>,
    d_output: &Tensor<F>,
    d_h: &Tensor<F>,
    d_c: &Tensor<F>,
    weight_t: &Tensor<F>,
    d_proj: &mut Tensor<F>,
    d_hn: &mut Tensor<F>,
    dh_state: &mut Tensor<F>,
    dc_state: &mut Tensor<F>,
    alpha: f32,
    #[comptime] cell: u32,
    #[comptime] act: u32,
    #[comptime] masked: bool,
    #[comptime] reverse: bool,
    #[comptime] rows: u32,
    #[comptime] hidden: u32,
) {
    let rows_u = comptime!(rows as usize);
    let h = comptime!(hidden as usize);
    let gh = comptime!((gates(cell) * hidden) as usize);
    let s_width = comptime!((saved_units(cell) * hidden) as usize);
    // The reset-before GRU's candidate gradient goes through `Wₕₙ` to `r ⊙ h`, not to `h`.
    let q_len = comptime!(if cell == GRU_BEFORE {
        2 * hidden as usize
    } else {
        (gates(cell) * hidden) as usize
    });

    let alpha = F::cast_from(alpha);
    let batch = states.shape(0);
    let time = states.shape(1);
    let b0 = CUBE_POS_X as usize * rows_u;
    let tid = UNIT_POS_X as usize;
    let n_threads = CUBE_DIM_X as usize;
    let mut das = SharedMemory::<F>::new(comptime!(rows_u * gh));

    let mut j = tid;
    while j < h {
        #[unroll]
        for r in 0..rows_u {
            let b = b0 + r;
            if b < batch {
                dh_state[b * h + j] = d_h[b * h + j];
                if comptime!(cell == LSTM) {
                    dc_state[b * h + j] = d_c[b * h + j];
                }
            }
        }
        j += n_threads;
    }

    for k in 0..time {
        let step = time - 1 - k;
        let t = if comptime!(reverse) {
            time - 1 - step
        } else {
            step
        };
        let tp = if comptime!(reverse) { t + 1 } else { t - 1 };

        let mut j = tid;
        while j < h {
            #[unroll]
            for r in 0..rows_u {
                let b = b0 + r;
                if b < batch {
                    let bt = b * time + t;
                    let p = bt * gh;
                    let o = bt * s_width;
                    let sh = r * gh;
                    let dh = dh_state[b * h + j];
                    let mut m = F::new(1.0);
                    let mut carried = F::new(0.0);
                    if comptime!(masked) {
                        m = mask[bt];
                        carried = dh * (F::new(1.0) - m);
                    }
                    let g = (d_output[bt * h + j] + dh) * m;
                    let h_prev = if step == 0 {
                        h0[b * h + j]
                    } else {
                        states[(b * time + tp) * h + j]
                    };
                    if comptime!(cell == RNN) {
                        let d = g * d_activate::<F>(states[bt * h + j], alpha, act);
                        d_proj[p + j] = d;
                        das[sh + j] = d;
                        dh_state[b * h + j] = carried;
                    } else if comptime!(cell == LSTM) {
                        let gi = saved[o + j];
                        let gf = saved[o + h + j];
                        let gg = saved[o + 2 * h + j];
                        let go = saved[o + 3 * h + j];
                        let tc = saved[o + 4 * h + j];
                        let c_prev = if step == 0 {
                            c0[b * h + j]
                        } else {
                            cells[(b * time + tp) * h + j]
                        };
                        let dc = dc_state[b * h + j];
                        let mut gc = dc;
                        let mut carried_c = F::new(0.0);
                        if comptime!(masked) {
                            gc = dc * m;
                            carried_c = dc * (F::new(1.0) - m);
                        }
                        let dc_new = gc + g * go * (F::new(1.0) - tc * tc);
                        let da_i = dc_new * gg * gi * (F::new(1.0) - gi);
                        let da_f = dc_new * c_prev * gf * (F::new(1.0) - gf);
                        let da_g = dc_new * gi * (F::new(1.0) - gg * gg);
                        let da_o = g * tc * go * (F::new(1.0) - go);
                        d_proj[p + j] = da_i;
                        d_proj[p + h + j] = da_f;
                        d_proj[p + 2 * h + j] = da_g;
                        d_proj[p + 3 * h + j] = da_o;
                        das[sh + j] = da_i;
                        das[sh + h + j] = da_f;
                        das[sh + 2 * h + j] = da_g;
                        das[sh + 3 * h + j] = da_o;
                        dc_state[b * h + j] = dc_new * gf + carried_c;
                        dh_state[b * h + j] = carried;
                    } else {
                        let gz = saved[o + h + j];
                        let gn = saved[o + 2 * h + j];
                        let dn = g * (F::new(1.0) - gz);
                        let da_n = dn * (F::new(1.0) - gn * gn);
                        let da_z = g * (h_prev - gn) * gz * (F::new(1.0) - gz);
                        d_proj[p + h + j] = da_z;
                        d_proj[p + 2 * h + j] = da_n;
                        das[sh + h + j] = da_z;
                        dh_state[b * h + j] = g * gz + carried;
                        if comptime!(cell == GRU_AFTER) {
                            let gr = saved[o + j];
                            let hn = saved[o + 3 * h + j];
                            let da_r = da_n * hn * gr * (F::new(1.0) - gr);
                            let dhn = da_n * gr;
                            d_proj[p + j] = da_r;
                            das[sh + j] = da_r;
                            das[sh + 2 * h + j] = dhn;
                            d_hn[bt * h + j] = dhn;
                        } else {
                            das[sh + 2 * h + j] = da_n;
                        }
                    }
                }
            }
            j += n_threads;
        }
        sync_cube();

        if comptime!(cell == GRU_BEFORE) {
            // ∂(r ⊙ h) = daₙ Wₕₙᵀ, then the reset gate's gradient.
            let mut j = tid;
            while j < h {
                let mut acc = Array::<F>::new(rows_u);
                #[unroll]
                for r in 0..rows_u {
                    acc[r] = F::new(0.0);
                }
                for q in 0..h {
                    let w = weight_t[(2 * h + q) * h + j];
                    #[unroll]
                    for r in 0..rows_u {
                        acc[r] += das[r * gh + 2 * h + q] * w;
                    }
                }
                #[unroll]
                for r in 0..rows_u {
                    let b = b0 + r;
                    if b < batch {
                        let bt = b * time + t;
                        let gr = saved[bt * s_width + j];
                        let h_prev = if step == 0 {
                            h0[b * h + j]
                        } else {
                            states[(b * time + tp) * h + j]
                        };
                        let da_r = acc[r] * h_prev * gr * (F::new(1.0) - gr);
                        d_proj[bt * gh + j] = da_r;
                        das[r * gh + j] = da_r;
                        dh_state[b * h + j] += acc[r] * gr;
                    }
                }
                j += n_threads;
            }
            sync_cube();
        }

        // dh_prev += da · Wₕₕᵀ over the recurrent slots.
        let mut j = tid;
        while j < h {
            let mut acc = Array::<F>::new(rows_u);
            #[unroll]
            for r in 0..rows_u {
                acc[r] = F::new(0.0);
            }
            for q in 0..q_len {
                let w = weight_t[q * h + j];
                #[unroll]
                for r in 0..rows_u {
                    acc[r] += das[r * gh + q] * w;
                }
            }
            #[unroll]
            for r in 0..rows_u {
                let b = b0 + r;
                if b < batch {
                    dh_state[b * h + j] += acc[r];
                }
            }
            j += n_threads;
        }
        sync_cube();
    }
}
