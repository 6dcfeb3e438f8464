//! The GEMMs of the kernels: the `gemm` crate on strided ndarray views.

use ndarray::{ArrayView2, ArrayViewMut2, Axis, Slice};

use super::Real;

/// `a · b` into the row-major `out` (`[a.rows, b.cols]`), for the input projection and its
/// gradients. A right factor that is a transposed view is copied to row-major first (the GEMM
/// runs several times slower on it).
///
/// One such product is a whole layer's work for a batch, so it goes to the thread pool from
/// [`PARALLEL_LAYER`] multiply-adds on, half the size at which the per-step products of the
/// recurrences do ([`PARALLEL_STEP`]).
pub fn matmul<E: Real>(a: ArrayView2<E>, b: ArrayView2<E>, out: &mut [E]) {
    layer_product(a, b, E::zero(), out);
}

/// `out = a · b + beta · out` for a whole layer (row-major `out`, `beta` 0 or 1), as
/// [`matmul`]: a right factor that is not row-major is copied first, and the thread pool takes
/// it from [`PARALLEL_LAYER`] multiply-adds on.
pub(super) fn layer_product<E: Real>(a: ArrayView2<E>, b: ArrayView2<E>, beta: E, out: &mut [E]) {
    let shape = (a.nrows(), b.ncols());
    let out = ArrayViewMut2::from_shape(shape, out).expect("GEMM output buffer");
    if b.strides()[1] == 1 {
        gemm_on(a, b, beta, out, PARALLEL_LAYER);
    } else {
        let b = b.as_standard_layout();
        gemm_on(a, b.view(), beta, out, PARALLEL_LAYER);
    }
}

/// The fewest multiply-adds of a per-step product of a recurrence that is worth handing to a
/// second thread: a step's product at the benchmark's size (64×256×1024, 2^24) ran slower
/// threaded (LSTM forward + backward 144 ms threaded, 111 ms serial); the all-steps
/// weight-gradient products are big enough.
const PARALLEL_STEP: usize = 1 << 26;

/// The fewest multiply-adds of a whole layer's product ([`matmul`]) that go to the thread pool:
/// the VAE's 128×784×400 products (2^25.3) ran its MLP epochs about 1.23x faster threaded on a
/// 2-core AMD EPYC (the same results: the split does not change the sums).
const PARALLEL_LAYER: usize = 1 << 25;

/// `out = a · b + beta · out` for row-major `out` of shape `[a.rows, b.cols]`; `beta` is 0 or 1.
pub(super) fn gemm<E: Real>(a: ArrayView2<E>, b: ArrayView2<E>, beta: E, out: &mut [E]) {
    let shape = (a.nrows(), b.ncols());
    let out = ArrayViewMut2::from_shape(shape, out).expect("GEMM output buffer");
    gemm_into(a, b, beta, out);
}

/// `out = a · b + beta · out` on views with any (non-negative) strides; `beta` is 0 or 1.
///
/// Runs the `gemm` crate's kernels (AVX-512 or AVX2 as the CPU has), on the current rayon pool
/// when the product is large enough to pay for it ([`PARALLEL_STEP`]).
pub(super) fn gemm_into<E: Real>(
    a: ArrayView2<E>,
    b: ArrayView2<E>,
    beta: E,
    out: ArrayViewMut2<E>,
) {
    gemm_on(a, b, beta, out, PARALLEL_STEP)
}

/// [`gemm_into`], on the current rayon pool from `parallel_from` multiply-adds on.
#[allow(unsafe_code)]
fn gemm_on<E: Real>(
    a: ArrayView2<E>,
    b: ArrayView2<E>,
    beta: E,
    mut out: ArrayViewMut2<E>,
    parallel_from: usize,
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
    let parallelism = if m * n * k >= parallel_from {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A layer-sized product ([`PARALLEL_LAYER`] and up) split over a two-thread pool gives the
    /// serial product's bits: the split is over output blocks, each sum over `k` unchanged.
    #[test]
    fn a_threaded_layer_product_equals_the_serial_one() {
        let (m, k, n) = (128, 784, 400);
        assert!(m * k * n >= PARALLEL_LAYER && m * k * n < PARALLEL_STEP);
        let a: Vec<f32> = (0..m * k)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
            .collect();
        let b: Vec<f32> = (0..k * n)
            .map(|i| ((i * 53 % 97) as f32 - 48.0) / 11.0)
            .collect();
        let (a, b) = (view(&a, m, k), view(&b, k, n));
        let mut serial = vec![0f32; m * n];
        gemm_on(
            a,
            b,
            0.0,
            ArrayViewMut2::from_shape((m, n), &mut serial[..]).unwrap(),
            usize::MAX,
        );
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let mut threaded = vec![0f32; m * n];
        pool.install(|| matmul(a, b, &mut threaded));
        assert!(
            serial
                .iter()
                .zip(&threaded)
                .all(|(s, t)| s.to_bits() == t.to_bits())
        );
        assert!(serial.iter().any(|&s| s != 0.0));
    }
}
