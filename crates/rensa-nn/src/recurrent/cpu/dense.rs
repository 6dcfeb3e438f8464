//! A dense layer's pointwise work around its product: the bias added by the GEMM itself and the
//! ReLU in place going forward; going back, one pass that masks the gradient by the ReLU and sums
//! it over the rows for the bias (or, without a ReLU, the sums alone). In tensor ops each of these
//! is a pass with its own buffer (two for burn's `relu` and two for its backward pass).

use ndarray::ArrayView2;

use super::gemm::layer_product;
use super::{Real, with_best_isa};

/// `x W + b` (each row of `out` starts as `b`, or 0, and the GEMM adds the product to it), then
/// `relu` in place when `relu`: `[x.rows, w.cols]`, row-major. A right factor that is not
/// row-major is copied to row-major first, and large products run on the thread pool, as in
/// [`matmul`](super::matmul).
pub(crate) fn dense_layer<E: Real>(
    x: ArrayView2<E>,
    w: ArrayView2<E>,
    bias: Option<&[E]>,
    relu: bool,
) -> Vec<E> {
    let (rows, cols) = (x.nrows(), w.ncols());
    // with a bias, the GEMM adds the product to the rows it starts from (beta 1)
    let (mut out, beta) = match bias {
        Some(b) => {
            assert_eq!(b.len(), cols, "dense_layer: a bias of {cols} values");
            (b.repeat(rows), E::one())
        }
        None => (vec![E::zero(); rows * cols], E::zero()),
    };
    layer_product(x, w, beta, &mut out);
    if relu {
        with_best_isa(
            #[inline(always)]
            || {
                // `<= 0` (not `max`): 0 for −0 too, and NaN stays NaN, as burn's provided `relu`
                // and PyTorch's (burn-ndarray's own, a `clamp_min`, maps NaN to 0), so that a
                // NaN reaches the loss and the trainer's NaN guard
                for v in out.iter_mut() {
                    *v = if *v <= E::zero() { E::zero() } else { *v };
                }
            },
        );
    }
    out
}

/// The gradient of the pre-activation from the gradient `d` of a ReLU layer's output
/// (row-major, `cols` per row): `d` where the output `y` is positive, 0 where it is at most 0
/// (burn's mask; a NaN output passes `d`, as there). With `sums`, adds its sums over the rows
/// to `sums` in the same pass (a bias's gradient).
pub(crate) fn relu_backward<E: Real>(
    y: &[E],
    d: &[E],
    cols: usize,
    sums: Option<&mut [E]>,
) -> Vec<E> {
    assert_eq!(y.len(), d.len(), "relu_backward: output and gradient");
    let mut g = vec![E::zero(); d.len()];
    if cols == 0 {
        return g;
    }
    with_best_isa(
        #[inline(always)]
        || {
            let rows = g
                .chunks_exact_mut(cols)
                .zip(d.chunks_exact(cols).zip(y.chunks_exact(cols)));
            match sums {
                Some(sums) => {
                    for (g, (d, y)) in rows {
                        for (((g, &d), &y), s) in g.iter_mut().zip(d).zip(y).zip(sums.iter_mut()) {
                            *g = if y <= E::zero() { E::zero() } else { d };
                            *s = *s + *g;
                        }
                    }
                }
                None => {
                    for (g, (d, y)) in rows {
                        for ((g, &d), &y) in g.iter_mut().zip(d).zip(y) {
                            *g = if y <= E::zero() { E::zero() } else { d };
                        }
                    }
                }
            }
        },
    );
    g
}

/// The sums over the rows of row-major `g` (`cols` per row): a bias's gradient.
pub(crate) fn column_sums<E: Real>(g: &[E], cols: usize) -> Vec<E> {
    let mut sums = vec![E::zero(); cols];
    if cols == 0 {
        return sums;
    }
    with_best_isa(
        #[inline(always)]
        || {
            for row in g.chunks_exact(cols) {
                for (s, &v) in sums.iter_mut().zip(row) {
                    *s = *s + v;
                }
            }
        },
    );
    sums
}
