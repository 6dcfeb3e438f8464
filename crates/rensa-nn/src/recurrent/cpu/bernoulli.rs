//! The Bernoulli negative log-likelihood of logits and its gradient, one pass over the pixels
//! each.
//!
//! For a logit `l` and a target `x ∈ [0, 1]`, `−log Bernoulli(x; σ(l)) = softplus(l) − x l`,
//! computed stably as `max(l, 0) + log1p(e^{−|l|}) − x l`; its derivative in `l` is
//! `σ(l) − x`, with `σ(l) = 1/(1 + e)` for `l ≥ 0` and `e/(1 + e)` below, `e = e^{−|l|}` (never
//! an overflowing exponential). In tensor ops the loss is nine passes over `[rows, cols]`, each
//! with its own buffer and its own backward node; here it is one loop forward and one backward.

use rayon::prelude::*;

use super::{Real, with_best_isa};

/// Elements per parallel task (whole rows, at least one).
const CHUNK: usize = 1 << 14;

/// Rows per parallel task for rows of `cols` elements.
fn rows_per_task(cols: usize) -> usize {
    (CHUNK / cols.max(1)).max(1)
}

/// Independent partial sums per row, so that the sum vectorises (a single running sum is a
/// chain of dependent additions that the compiler may not reorder).
const LANES: usize = 16;

#[inline(always)]
fn term<E: Real>(l: E, x: E) -> E {
    l.max(E::zero()) + (-l.abs()).exp_v().log1p_v() - x * l
}

/// `Σ_j softplus(l_j) − x_j l_j` of one row.
#[inline(always)]
fn row_loss<E: Real>(logits: &[E], targets: &[E]) -> E {
    let mut acc = [E::zero(); LANES];
    let (l_body, l_tail) = logits.split_at(logits.len() / LANES * LANES);
    let (x_body, x_tail) = targets.split_at(l_body.len());
    for (l, x) in l_body.chunks_exact(LANES).zip(x_body.chunks_exact(LANES)) {
        for k in 0..LANES {
            acc[k] = acc[k] + term(l[k], x[k]);
        }
    }
    let mut sum = l_tail
        .iter()
        .zip(x_tail)
        .fold(E::zero(), |s, (&l, &x)| s + term(l, x));
    for a in acc {
        sum = sum + a;
    }
    sum
}

/// The loss of every row of `logits` and `targets` (row-major, `cols` per row): one value per
/// row.
pub(crate) fn bernoulli_nll<E: Real>(logits: &[E], targets: &[E], cols: usize) -> Vec<E> {
    assert_eq!(logits.len(), targets.len(), "logits and targets");
    let rows = logits.len().checked_div(cols).unwrap_or(0);
    let mut out = vec![E::zero(); rows];
    if cols == 0 {
        return out;
    }
    let per = rows_per_task(cols);
    out.par_chunks_mut(per)
        .zip(
            logits
                .par_chunks(per * cols)
                .zip(targets.par_chunks(per * cols)),
        )
        .for_each(|(out, (l, x))| {
            with_best_isa(
                #[inline(always)]
                || {
                    for (o, (l, x)) in out
                        .iter_mut()
                        .zip(l.chunks_exact(cols).zip(x.chunks_exact(cols)))
                    {
                        *o = row_loss(l, x);
                    }
                },
            )
        });
    out
}

/// The gradient in the logits, `g_i (σ(l_ij) − x_ij)`, for the rows' upstream gradients `g`.
pub(crate) fn bernoulli_nll_backward<E: Real>(
    logits: &[E],
    targets: &[E],
    g: &[E],
    cols: usize,
) -> Vec<E> {
    assert_eq!(logits.len(), targets.len(), "logits and targets");
    assert_eq!(
        g.len() * cols,
        logits.len(),
        "one upstream gradient per row"
    );
    let mut out = vec![E::zero(); logits.len()];
    if cols == 0 {
        return out;
    }
    let per = rows_per_task(cols);
    out.par_chunks_mut(per * cols)
        .zip(
            logits
                .par_chunks(per * cols)
                .zip(targets.par_chunks(per * cols)),
        )
        .zip(g.par_chunks(per))
        .for_each(|((out, (l, x)), g)| {
            with_best_isa(
                #[inline(always)]
                || {
                    for (((o, l), x), &g) in out
                        .chunks_exact_mut(cols)
                        .zip(l.chunks_exact(cols))
                        .zip(x.chunks_exact(cols))
                        .zip(g)
                    {
                        for ((o, &l), &x) in o.iter_mut().zip(l).zip(x) {
                            let e = (-l.abs()).exp_v();
                            let inv = E::one() / (E::one() + e);
                            let sigma = if l >= E::zero() { inv } else { e * inv };
                            *o = g * (sigma - x);
                        }
                    }
                },
            )
        });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logits(n: usize) -> Vec<f64> {
        // from saturated to tiny, both signs
        (0..n)
            .map(|i| {
                let t = i as f64 / n as f64;
                (t - 0.5) * 200.0 * (t * 37.0).sin().powi(3)
            })
            .collect()
    }

    fn targets(n: usize) -> Vec<f64> {
        (0..n).map(|i| ((i * 7919) % 101) as f64 / 100.0).collect()
    }

    /// The loss and gradient by the definition, in f64: `−x ln σ(l) − (1 − x) ln(1 − σ(l))`.
    #[test]
    fn loss_and_gradient_match_the_definition() {
        let (rows, cols) = (37, 53);
        let (l, x) = (logits(rows * cols), targets(rows * cols));
        let g: Vec<f64> = (0..rows).map(|r| 0.5 + r as f64 / 10.0).collect();
        let loss = bernoulli_nll(&l, &x, cols);
        let grad = bernoulli_nll_backward(&l, &x, &g, cols);
        for r in 0..rows {
            let mut want = 0.0;
            for j in r * cols..(r + 1) * cols {
                // ln σ(l) = −softplus(−l), ln(1 − σ(l)) = −softplus(l), with ln_1p for accuracy
                let sp = |v: f64| v.max(0.0) + (-v.abs()).exp().ln_1p();
                want += x[j] * sp(-l[j]) + (1.0 - x[j]) * sp(l[j]);
                let sigma = 1.0 / (1.0 + (-l[j]).exp());
                let d = g[r] * (sigma - x[j]);
                assert!((grad[j] - d).abs() < 1e-12, "grad {j}: {} vs {d}", grad[j]);
            }
            assert!(
                (loss[r] - want).abs() < 1e-9 * want.abs().max(1.0),
                "row {r}"
            );
        }
    }

    /// f32 against the f64 values, over the rows' lengths around the lane count.
    #[test]
    fn f32_follows_f64() {
        for cols in [1, 15, 16, 17, 784] {
            let rows = 5;
            let (l, x) = (logits(rows * cols), targets(rows * cols));
            let g = vec![1.0; rows];
            let (l32, x32): (Vec<f32>, Vec<f32>) = (
                l.iter().map(|&v| v as f32).collect(),
                x.iter().map(|&v| v as f32).collect(),
            );
            let l = l32.iter().map(|&v| v as f64).collect::<Vec<_>>();
            let want = bernoulli_nll(&l, &x, cols);
            let got = bernoulli_nll(&l32, &x32, cols);
            for (a, b) in got.iter().zip(&want) {
                assert!(
                    (*a as f64 - b).abs() < 1e-5 * b.abs().max(1.0),
                    "{cols}: {a} vs {b}"
                );
            }
            let want = bernoulli_nll_backward(&l, &x, &g, cols);
            let got = bernoulli_nll_backward(&l32, &x32, &[1.0f32; 5], cols);
            for (a, b) in got.iter().zip(&want) {
                assert!((*a as f64 - b).abs() < 1e-6, "{cols}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn saturated_logits_stay_finite_and_empty_rows_are_zero() {
        let l = [1e30f32, -1e30, 89.0, -89.0, 0.0];
        let x = [1.0f32, 0.0, 1.0, 0.0, 0.5];
        let loss = bernoulli_nll(&l, &x, 5);
        // all but the last are certain and right; the last is a fair coin
        assert!((loss[0] - 2f32.ln()).abs() < 1e-6, "{loss:?}");
        let grad = bernoulli_nll_backward(&l, &x, &[1.0], 5);
        assert!(
            grad[..4].iter().all(|g| g.abs() < 1e-6) && grad[4] == 0.0,
            "{grad:?}"
        );
        assert_eq!(bernoulli_nll::<f32>(&[], &[], 0), Vec::<f32>::new());
        assert_eq!(bernoulli_nll::<f32>(&[], &[], 3), Vec::<f32>::new());
    }
}
