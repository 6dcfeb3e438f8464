//! The GEMMs of the kernels: the `gemm` crate on strided ndarray views.

use ndarray::{ArrayView2, ArrayViewMut2, Axis, Slice};

use super::Real;

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
pub(super) fn gemm<E: Real>(a: ArrayView2<E>, b: ArrayView2<E>, beta: E, out: &mut [E]) {
    let shape = (a.nrows(), b.ncols());
    let out = ArrayViewMut2::from_shape(shape, out).expect("GEMM output buffer");
    gemm_into(a, b, beta, out);
}

/// `out = a · b + beta · out` on views with any (non-negative) strides; `beta` is 0 or 1.
///
/// Runs the `gemm` crate's kernels (AVX-512 or AVX2 as the CPU has), on the current rayon pool
/// when the product is large enough to pay for it.
#[allow(unsafe_code)]
pub(super) fn gemm_into<E: Real>(
    a: ArrayView2<E>,
    b: ArrayView2<E>,
    beta: E,
    mut out: ArrayViewMut2<E>,
) {
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
pub(super) fn transposed<E: Real>(m: &[E], rows: usize, cols: usize) -> Vec<E> {
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
pub(super) fn cols<E: Real>(m: ArrayView2<'_, E>, range: impl Into<Slice>) -> ArrayView2<'_, E> {
    m.slice_axis_move(Axis(1), range.into())
}

pub(super) fn view<E: Real>(data: &[E], rows: usize, cols: usize) -> ArrayView2<'_, E> {
    ArrayView2::from_shape((rows, cols), data).expect("matrix buffer")
}
