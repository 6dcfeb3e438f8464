//! The CPU path: per-image kernels on u8 HWC buffers. Geometry is folded into one resampling
//! pass per run of geometric operations; colour and filter operations work in place.
//!
//! The kernels are written as plain loops over arrays and marked `#[inline(always)]`;
//! `execute` and `to_chw` compile them a second time with AVX2 and FMA enabled, where LLVM
//! vectorises them 8 floats or 32 bytes wide (and rounds with one instruction instead of a
//! library call), and run that build on CPUs that have both ([`rensa_isa::with_best_isa`]).
//! Both builds do the same IEEE operations in the same order, so results are bit-identical on
//! every machine.

pub(crate) mod colour;
pub(crate) mod filter;
pub(crate) mod geometry;
pub(crate) mod isa;

use crate::image::Image;
use crate::ops::{Op, Stage, geometric_op, stages};
use rensa_isa::{Level, with_best_isa};
use std::borrow::Cow;

/// The widest instruction set the kernels are compiled for. AVX-512 is not used: it has not
/// been measured against AVX2 on these kernels (the u8 kernels gain little from wider vectors,
/// and some CPUs lower their clock for it).
const MAX_LEVEL: Level = Level::Avx2Fma;

/// Rounds to the nearest integer (ties to even) and saturates to 0..=255 without a float to
/// integer conversion: adding 2^23 leaves the rounded value in the low mantissa bits. This
/// vectorises; a saturating `as` conversion does not (its NaN case compiles to scalar code).
/// NaN gives 0.
#[inline(always)]
#[allow(clippy::manual_clamp)] // clamp would propagate NaN, which is what this avoids
pub(crate) fn round_u8(v: f32) -> u8 {
    ((v.max(0.0).min(255.0) + 8_388_608.0).to_bits() & 0xff) as u8
}

/// [`round_u8`] for values known to lie in `[0, 255]` up to rounding error (convex
/// combinations of samples: interpolation, blur): no clamping.
#[inline(always)]
pub(crate) fn round_u8_in_range(v: f32) -> u8 {
    (v + 8_388_608.0).to_bits() as u8
}

/// Applies `ops` to `img` (normalisation excepted: it happens on conversion to floats).
pub(crate) fn execute(ops: &[Op], img: &Image) -> Image {
    with_best_isa(
        MAX_LEVEL,
        #[inline(always)]
        || execute_inline(ops, img),
    )
}

#[inline(always)]
fn execute_inline(ops: &[Op], img: &Image) -> Image {
    let mut cur: Cow<'_, Image> = Cow::Borrowed(img);
    for stage in stages(ops, img.size()) {
        match stage {
            Stage::Warp(w) => {
                if !w.is_identity_on(cur.size()) {
                    cur = Cow::Owned(geometry::warp(&cur, &w.inverse, w.size, w.interp, w.border));
                }
            }
            Stage::Pixel(op) => pixel(cur.to_mut(), &op),
        }
    }
    cur.into_owned()
}

/// One non-geometric operation, in place.
#[inline(always)]
pub(crate) fn pixel(img: &mut Image, op: &Op) {
    let (w, h, c) = (img.width(), img.height(), img.channels());
    let data = img.data_mut();
    match *op {
        Op::Linear { alpha, beta } => colour::linear(data, alpha, beta * 255.0),
        Op::Contrast { factor } => colour::contrast(data, c, factor),
        Op::Saturation { factor } => colour::saturation(data, c, factor),
        Op::Hsv {
            hue,
            saturation,
            value,
        } => colour::hsv(data, c, hue, saturation, value),
        Op::Gamma { gamma } => colour::gamma(data, gamma),
        Op::Grayscale => colour::grayscale(data, c),
        Op::Blur { sigma } => filter::blur(data, w, h, c, sigma),
        Op::Noise {
            std,
            mean,
            per_channel,
            seed,
        } => {
            let field = filter::noise_field(data.len(), c, std, mean, per_channel, seed);
            filter::add_noise(data, &field);
        }
        Op::Erase { ref rects, fill } => filter::erase(data, w, c, rects, fill),
        Op::Normalize { .. } => {}
        geometric_op!() => unreachable!("geometric operations are folded into warps"),
    }
}

/// Writes `img` as floats in CHW order into `out` (length `c * h * w`): `(v/255 - mean) / std`
/// with the given normalisation, `v / 255` without.
pub(crate) fn to_chw(img: &Image, normalize: Option<([f32; 3], [f32; 3])>, out: &mut [f32]) {
    with_best_isa(
        MAX_LEVEL,
        #[inline(always)]
        || to_chw_inline(img, normalize, out),
    )
}

#[inline(always)]
fn to_chw_inline(img: &Image, normalize: Option<([f32; 3], [f32; 3])>, out: &mut [f32]) {
    let c = img.channels();
    let plane = img.width() * img.height();
    assert_eq!(out.len(), plane * c, "output buffer for {c}x{plane} floats");
    let (mut scale, mut shift) = ([1.0 / 255.0; 3], [0.0; 3]);
    if let Some((mean, std)) = normalize {
        for i in 0..3 {
            scale[i] = 1.0 / (255.0 * std[i]);
            shift[i] = -mean[i] / std[i];
        }
    }
    let data = img.data();
    if c == 1 {
        for (o, &v) in out.iter_mut().zip(data) {
            *o = v as f32 * scale[0] + shift[0];
        }
        return;
    }
    let (r, rest) = out.split_at_mut(plane);
    let (g, b) = rest.split_at_mut(plane);
    for (i, p) in data.chunks_exact(3).enumerate() {
        r[i] = p[0] as f32 * scale[0] + shift[0];
        g[i] = p[1] as f32 * scale[1] + shift[1];
        b[i] = p[2] as f32 * scale[2] + shift[2];
    }
}
