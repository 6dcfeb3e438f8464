//! im2col and col2im as native loops over channels-last buffers (see
//! [`RecurrentBackend::unfold`](crate::recurrent::RecurrentBackend::unfold)): for each output
//! pixel and kernel tap, one copy (or one addition) of the `C` contiguous channel values of a
//! pixel. The images run in parallel; each image's sums are formed in a fixed order, so results do
//! not depend on the thread count.

use rayon::prelude::*;

use super::Real;
use crate::recurrent::Window;

/// The input pixel read by output position `o` with tap `k` on one axis, or `None` in the
/// padding.
#[inline(always)]
fn source(o: usize, k: usize, stride: usize, padding: usize, side: usize) -> Option<usize> {
    (o * stride + k).checked_sub(padding).filter(|&i| i < side)
}

/// `x` `[N, H, W, C]` → `[N · H_out · W_out, k_h · k_w · C]`.
pub(crate) fn unfold<E: Real>(x: &[E], w: Window) -> Vec<E> {
    let [ho, wo] = w.output().expect("a window that fits the padded image");
    let [kh, kw] = w.kernel;
    let (c, [h, wi]) = (w.channels, w.image);
    let row = kh * kw * c;
    let mut out = vec![E::zero(); w.batch * ho * wo * row];
    if out.is_empty() {
        return out;
    }
    out.par_chunks_mut(ho * wo * row)
        .zip(x.par_chunks(h * wi * c))
        .for_each(|(cols, image)| {
            for (p, dst) in cols.chunks_exact_mut(row).enumerate() {
                let (i, j) = (p / wo, p % wo);
                for u in 0..kh {
                    let Some(y) = source(i, u, w.stride[0], w.padding[0], h) else {
                        continue; // stays zero
                    };
                    for v in 0..kw {
                        if let Some(xx) = source(j, v, w.stride[1], w.padding[1], wi) {
                            let at = (y * wi + xx) * c;
                            dst[(u * kw + v) * c..][..c].copy_from_slice(&image[at..at + c]);
                        }
                    }
                }
            }
        });
    out
}

/// `[N · H_out · W_out, k_h · k_w · C]` → `[N, H, W, C]`, adding every entry into its pixel.
pub(crate) fn fold<E: Real>(columns: &[E], w: Window) -> Vec<E> {
    let [ho, wo] = w.output().expect("a window that fits the padded image");
    let [kh, kw] = w.kernel;
    let (c, [h, wi]) = (w.channels, w.image);
    let row = kh * kw * c;
    let mut out = vec![E::zero(); w.batch * h * wi * c];
    if out.is_empty() {
        return out;
    }
    out.par_chunks_mut(h * wi * c)
        .zip(columns.par_chunks(ho * wo * row))
        .for_each(|(image, cols)| {
            for (p, src) in cols.chunks_exact(row).enumerate() {
                let (i, j) = (p / wo, p % wo);
                for u in 0..kh {
                    let Some(y) = source(i, u, w.stride[0], w.padding[0], h) else {
                        continue;
                    };
                    for v in 0..kw {
                        if let Some(xx) = source(j, v, w.stride[1], w.padding[1], wi) {
                            let at = (y * wi + xx) * c;
                            let from = &src[(u * kw + v) * c..][..c];
                            for (d, &s) in image[at..at + c].iter_mut().zip(from) {
                                *d = *d + s;
                            }
                        }
                    }
                }
            }
        });
    out
}
