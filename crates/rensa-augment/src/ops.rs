//! Concrete operations: what a transform becomes once its random parameters are drawn. A
//! [`Plan`](crate::Plan) is a list of these; it can be logged (serde) and replayed on either path.
//!
//! Coordinates: pixel `(x, y)` has its centre at `(x, y)`; `x` grows rightwards, `y` downwards.

use crate::image::Size;
use serde::{Deserialize, Serialize};

/// How samples are read between pixel centres.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Interp {
    /// The nearest pixel.
    Nearest,
    /// Bilinear interpolation of the four nearest pixels.
    #[default]
    Bilinear,
}

/// What is read outside the image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Border {
    /// One value in every channel.
    Constant(u8),
    /// Mirror about the edge pixels' centres (`dcb|abcd|cba`, OpenCV's REFLECT_101).
    Reflect,
    /// Repeat the edge pixels (`aaa|abcd|ddd`).
    Edge,
}

impl Default for Border {
    fn default() -> Self {
        Border::Constant(0)
    }
}

/// A 2x3 affine map `[a, b, c, d, e, f]`: `x' = a x + b y + c`, `y' = d x + e y + f`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Affine2(pub [f64; 6]);

impl Affine2 {
    /// The identity.
    pub const IDENTITY: Affine2 = Affine2([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]);

    /// `self ∘ other`: first `other`, then `self`.
    pub fn then_after(&self, other: &Affine2) -> Affine2 {
        let [a, b, c, d, e, f] = self.0;
        let [p, q, r, s, t, u] = other.0;
        Affine2([
            a * p + b * s,
            a * q + b * t,
            a * r + b * u + c,
            d * p + e * s,
            d * q + e * t,
            d * r + e * u + f,
        ])
    }

    /// Applies the map to a point.
    pub fn apply(&self, x: f64, y: f64) -> (f64, f64) {
        let [a, b, c, d, e, f] = self.0;
        (a * x + b * y + c, d * x + e * y + f)
    }

    /// The inverse map (`None` when singular).
    pub fn inverse(&self) -> Option<Affine2> {
        let [a, b, c, d, e, f] = self.0;
        let det = a * e - b * d;
        if det.abs() < 1e-12 {
            return None;
        }
        let (ia, ib, id, ie) = (e / det, -b / det, -d / det, a / det);
        Some(Affine2([
            ia,
            ib,
            -(ia * c + ib * f),
            id,
            ie,
            -(id * c + ie * f),
        ]))
    }

    /// Whether this is a map of pixel centres onto pixel centres: linear part a signed
    /// permutation, translation whole.
    pub fn is_integral(&self) -> bool {
        let [a, b, c, d, e, f] = self.0;
        let unit = |v: f64| v == 0.0 || v == 1.0 || v == -1.0;
        let whole = |v: f64| (v - v.round()).abs() < 1e-9;
        unit(a)
            && unit(b)
            && unit(d)
            && unit(e)
            && (a * e - b * d).abs() == 1.0
            && whole(c)
            && whole(f)
    }
}

/// Pattern: every geometric operation (the ones [`stages`] folds into warps). Matches use it in
/// place of listing them, so that a new operation is sorted into its family here, once, and every
/// exhaustive `match` on [`Op`] still has to say what it does with it.
macro_rules! geometric_op {
    () => {
        Op::HorizontalFlip
            | Op::VerticalFlip
            | Op::Rot90 { .. }
            | Op::Affine { .. }
            | Op::Crop { .. }
            | Op::Resize { .. }
            | Op::Pad { .. }
    };
}
pub(crate) use geometric_op;

/// Pattern: every colour operation (per pixel, channels mixed, no neighbours).
macro_rules! colour_op {
    () => {
        Op::Linear { .. }
            | Op::Contrast { .. }
            | Op::Saturation { .. }
            | Op::Hsv { .. }
            | Op::Gamma { .. }
            | Op::Grayscale
    };
}
pub(crate) use colour_op;

/// Pattern: every operation that keeps the pixel grid (colour, filters, erasing, normalising).
macro_rules! pixel_op {
    () => {
        colour_op!() | Op::Blur { .. } | Op::Noise { .. } | Op::Erase { .. } | Op::Normalize { .. }
    };
}

/// One operation with all its parameters drawn.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// Mirror left-right.
    HorizontalFlip,
    /// Mirror top-bottom.
    VerticalFlip,
    /// Rotate by `k` quarter turns counter-clockwise (as `numpy.rot90`).
    Rot90 {
        /// Quarter turns, 0..=3.
        k: u8,
    },
    /// A general affine warp; the size is unchanged.
    Affine {
        /// Maps output pixel coordinates to input coordinates.
        inverse: Affine2,
        /// Interpolation.
        interp: Interp,
        /// What shows where the source lies outside the image.
        border: Border,
    },
    /// Keep the window with top-left corner `(x, y)`.
    Crop {
        /// Left column.
        x: usize,
        /// Top row.
        y: usize,
        /// Width of the window.
        width: usize,
        /// Height of the window.
        height: usize,
    },
    /// Resample to a new size (pixel-area aligned, as OpenCV and PIL).
    Resize {
        /// New width.
        width: usize,
        /// New height.
        height: usize,
        /// Interpolation.
        interp: Interp,
    },
    /// Add borders.
    Pad {
        /// Columns added on the left.
        left: usize,
        /// Rows added on top.
        top: usize,
        /// Columns added on the right.
        right: usize,
        /// Rows added at the bottom.
        bottom: usize,
        /// What fills them.
        border: Border,
    },
    /// `v * alpha + beta * 255` per sample (brightness, and brightness-contrast).
    Linear {
        /// Gain.
        alpha: f32,
        /// Offset, as a fraction of 255.
        beta: f32,
    },
    /// Blend with the mean gray level: `m + factor * (v - m)`.
    Contrast {
        /// 1 leaves the image as it is; 0 gives flat gray.
        factor: f32,
    },
    /// Blend with the pixel's gray level: `g + factor * (v - g)`.
    Saturation {
        /// 1 leaves the image as it is; 0 gives gray.
        factor: f32,
    },
    /// Shifts in HSV space: hue by a fraction of a turn, saturation and value additively.
    Hsv {
        /// Hue shift in turns (0.5 = 180 degrees).
        hue: f32,
        /// Added to saturation (0..1 scale).
        saturation: f32,
        /// Added to value (0..1 scale).
        value: f32,
    },
    /// `255 * (v / 255) ^ gamma`.
    Gamma {
        /// The exponent.
        gamma: f32,
    },
    /// Replace RGB by its luma `0.299 R + 0.587 G + 0.114 B` in all three channels.
    Grayscale,
    /// Separable Gaussian blur with reflected borders.
    Blur {
        /// Standard deviation in pixels.
        sigma: f32,
    },
    /// Add Gaussian noise drawn from `seed`.
    Noise {
        /// Standard deviation, in units of 255.
        std: f32,
        /// Mean, in units of 255.
        mean: f32,
        /// One draw per sample (true) or one per pixel shared by its channels (false).
        per_channel: bool,
        /// Seed of the noise field.
        seed: u64,
    },
    /// Fill rectangles `[x, y, width, height]` with a constant (random erasing, cutout).
    Erase {
        /// The rectangles.
        rects: Vec<[usize; 4]>,
        /// The fill value.
        fill: u8,
    },
    /// `(v / 255 - mean) / std` per channel, applied when the image becomes floats (last step).
    Normalize {
        /// Per-channel mean (0..1 scale).
        mean: [f32; 3],
        /// Per-channel standard deviation (0..1 scale).
        std: [f32; 3],
    },
}

impl Op {
    /// The operation's name, as in pipeline files.
    pub fn name(&self) -> &'static str {
        match self {
            Op::HorizontalFlip => "horizontal_flip",
            Op::VerticalFlip => "vertical_flip",
            Op::Rot90 { .. } => "rot90",
            Op::Affine { .. } => "affine",
            Op::Crop { .. } => "crop",
            Op::Resize { .. } => "resize",
            Op::Pad { .. } => "pad",
            Op::Linear { .. } => "linear",
            Op::Contrast { .. } => "contrast",
            Op::Saturation { .. } => "saturation",
            Op::Hsv { .. } => "hsv",
            Op::Gamma { .. } => "gamma",
            Op::Grayscale => "grayscale",
            Op::Blur { .. } => "blur",
            Op::Noise { .. } => "noise",
            Op::Erase { .. } => "erase",
            Op::Normalize { .. } => "normalize",
        }
    }

    /// The size after this operation, for an input of `size`.
    pub fn output_size(&self, size: Size) -> Size {
        match *self {
            Op::Rot90 { k } if k % 2 == 1 => Size::new(size.height, size.width),
            Op::Crop { width, height, .. } | Op::Resize { width, height, .. } => {
                Size::new(width, height)
            }
            Op::Pad {
                left,
                top,
                right,
                bottom,
                ..
            } => Size::new(
                // saturating: a crafted plan's padding is refused by the size check, not by an
                // overflow
                size.width.saturating_add(left).saturating_add(right),
                size.height.saturating_add(top).saturating_add(bottom),
            ),
            Op::HorizontalFlip | Op::VerticalFlip | Op::Rot90 { .. } | Op::Affine { .. } => size,
            pixel_op!() => size,
        }
    }

    /// For a geometric operation: the map from output to input pixel coordinates, the
    /// interpolation it needs (`None` when it only moves whole pixels) and what it reads outside
    /// the input (`None` when it never does).
    pub fn geometry(&self, size: Size) -> Option<(Affine2, Option<Interp>, Option<Border>)> {
        let (w, h) = (size.width as f64, size.height as f64);
        let g = match *self {
            Op::HorizontalFlip => (Affine2([-1.0, 0.0, w - 1.0, 0.0, 1.0, 0.0]), None, None),
            Op::VerticalFlip => (Affine2([1.0, 0.0, 0.0, 0.0, -1.0, h - 1.0]), None, None),
            Op::Rot90 { k } => {
                let m = match k % 4 {
                    0 => Affine2::IDENTITY,
                    1 => Affine2([0.0, -1.0, w - 1.0, 1.0, 0.0, 0.0]),
                    2 => Affine2([-1.0, 0.0, w - 1.0, 0.0, -1.0, h - 1.0]),
                    _ => Affine2([0.0, 1.0, 0.0, -1.0, 0.0, h - 1.0]),
                };
                (m, None, None)
            }
            Op::Affine {
                inverse,
                interp,
                border,
            } => (inverse, Some(interp), Some(border)),
            Op::Crop { x, y, .. } => (
                Affine2([1.0, 0.0, x as f64, 0.0, 1.0, y as f64]),
                None,
                None,
            ),
            Op::Resize {
                width,
                height,
                interp,
            } => {
                let (sx, sy) = (w / width as f64, h / height as f64);
                (
                    Affine2([sx, 0.0, 0.5 * sx - 0.5, 0.0, sy, 0.5 * sy - 0.5]),
                    Some(interp),
                    None,
                )
            }
            Op::Pad {
                left, top, border, ..
            } => (
                Affine2([1.0, 0.0, -(left as f64), 0.0, 1.0, -(top as f64)]),
                None,
                Some(border),
            ),
            pixel_op!() => return None,
        };
        Some(g)
    }
}

/// A run of operations as the executors see it: consecutive geometric operations folded into
/// one warp (one resampling pass), everything else as it is.
#[derive(Clone, Debug, PartialEq)]
pub enum Stage {
    /// Resample.
    Warp(Warp),
    /// A non-geometric operation.
    Pixel(Op),
}

/// One resampling pass: output pixel `p` reads input position `inverse(p)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Warp {
    /// Output to input coordinates.
    pub inverse: Affine2,
    /// Output size.
    pub size: Size,
    /// `None` when the map moves whole pixels only.
    pub interp: Option<Interp>,
    /// `None` when the map never reads outside the input.
    pub border: Option<Border>,
}

impl Warp {
    /// Whether the warp leaves an image of size `input` as it is (nothing to resample).
    pub fn is_identity_on(&self, input: Size) -> bool {
        self.inverse == Affine2::IDENTITY && self.size == input
    }

    /// Folds the next geometric operation (`then`: its inverse map, output size, interpolation
    /// and border) into this warp, unless its interpolation or border differs from what the warp
    /// already uses; says whether it did.
    fn absorb(&mut self, then: Warp) -> bool {
        let interp_ok =
            then.interp.is_none() || self.interp.is_none() || self.interp == then.interp;
        let border_ok =
            then.border.is_none() || self.border.is_none() || self.border == then.border;
        if interp_ok && border_ok {
            self.inverse = self.inverse.then_after(&then.inverse);
            self.size = then.size;
            self.interp = self.interp.or(then.interp);
            self.border = self.border.or(then.border);
        }
        interp_ok && border_ok
    }
}

/// Whether `inverse` maps the whole output rectangle of `output` pixels onto the whole input
/// rectangle of `input` pixels (a flip, a quarter turn, a resize, or several of them): then what
/// lies outside the output lies outside the input too.
fn fills_input(inverse: &Affine2, output: Size, input: Size) -> bool {
    let corners = |s: Size| {
        let (w, h) = (s.width as f64 - 0.5, s.height as f64 - 0.5);
        [(-0.5, -0.5), (w, -0.5), (-0.5, h), (w, h)]
    };
    let targets = corners(input);
    corners(output).into_iter().all(|(x, y)| {
        let (u, v) = inverse.apply(x, y);
        targets
            .iter()
            .any(|&(a, b)| (u - a).abs() < 1e-9 && (v - b).abs() < 1e-9)
    })
}

/// Whether `inverse` samples only inside the `input` image for every pixel of `output` (its
/// corners' centres map inside `[0, w - 1] x [0, h - 1]`; an affine map's extremes are there). A
/// crop, a flip or a shrinking resize does; a pad, most rotations and an enlarging resize (whose
/// edge pixels sample half a pixel beyond the edge, clamped) do not.
fn reads_inside(inverse: &Affine2, output: Size, input: Size) -> bool {
    let (w, h) = (output.width as f64 - 1.0, output.height as f64 - 1.0);
    let (iw, ih) = (input.width as f64 - 1.0, input.height as f64 - 1.0);
    [(0.0, 0.0), (w, 0.0), (0.0, h), (w, h)]
        .into_iter()
        .all(|(x, y)| {
            let (u, v) = inverse.apply(x, y);
            (-1e-9..=iw + 1e-9).contains(&u) && (-1e-9..=ih + 1e-9).contains(&v)
        })
}

/// Folds `ops` (applied to an image of `size`) into stages. Geometric operations fold into the
/// current warp unless their interpolation or border differs from what the warp already uses,
/// or the operation reads outside its input (a pad, a rotation, a shift, an enlarging resize)
/// where the warp's output is less than its whole input (a crop, a rotation): the folded map
/// would read the original image there, where applying the operations one after the other shows
/// the border (or the clamped edge).
pub fn stages(ops: &[Op], mut size: Size) -> Vec<Stage> {
    let mut out: Vec<Stage> = Vec::new();
    let mut open = false;
    // the input size of the open warp
    let mut warp_input = size;
    for op in ops {
        let Some((m, interp, border)) = op.geometry(size) else {
            out.push(Stage::Pixel(op.clone()));
            open = false;
            size = op.output_size(size);
            continue;
        };
        let next = op.output_size(size);
        let warp = Warp {
            inverse: m,
            size: next,
            interp,
            border,
        };
        let folded = match out.last_mut() {
            Some(Stage::Warp(last)) if open => {
                let exact = reads_inside(&warp.inverse, warp.size, size)
                    || fills_input(&last.inverse, last.size, warp_input);
                // a warp without a border that samples beyond its input's edge (an enlarging
                // resize: its edge pixels read half a pixel out, clamped) keeps its edge pixels
                // only under a border that repeats the edge as the clamp does
                let edge_kept = last.border.is_some()
                    || matches!(warp.border, None | Some(Border::Edge))
                    || reads_inside(&last.inverse, last.size, warp_input);
                exact && edge_kept && last.absorb(warp)
            }
            _ => false,
        };
        if !folded {
            out.push(Stage::Warp(warp));
            open = true;
            warp_input = size;
        }
        size = next;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_maps_corners_where_expected() {
        let s = Size::new(4, 3);
        let map = |op: Op, x, y| op.geometry(s).unwrap().0.apply(x, y);
        assert_eq!(map(Op::HorizontalFlip, 0.0, 1.0), (3.0, 1.0));
        assert_eq!(map(Op::VerticalFlip, 2.0, 0.0), (2.0, 2.0));
        // rot90 k=1 (counter-clockwise): output is 3 wide, 4 tall; its top-left shows the
        // input's top-right.
        assert_eq!(map(Op::Rot90 { k: 1 }, 0.0, 0.0), (3.0, 0.0));
        assert_eq!(map(Op::Rot90 { k: 3 }, 0.0, 0.0), (0.0, 2.0));
        let r = Op::Resize {
            width: 2,
            height: 3,
            interp: Interp::Bilinear,
        };
        assert_eq!(map(r, 0.0, 0.0), (0.5, 0.0));
    }

    #[test]
    fn consecutive_geometry_folds_into_one_warp() {
        let ops = vec![
            Op::HorizontalFlip,
            Op::Crop {
                x: 1,
                y: 0,
                width: 2,
                height: 3,
            },
            Op::Linear {
                alpha: 1.0,
                beta: 0.1,
            },
            Op::VerticalFlip,
        ];
        let st = stages(&ops, Size::new(4, 3));
        assert_eq!(st.len(), 3);
        let Stage::Warp(Warp { inverse, size, .. }) = &st[0] else {
            panic!("{st:?}")
        };
        assert_eq!(*size, Size::new(2, 3));
        // output (0, 0) -> crop -> (1, 0) -> flip -> (2, 0)
        assert_eq!(inverse.apply(0.0, 0.0), (2.0, 0.0));
        assert!(inverse.is_integral());
        let m = Affine2([0.5, 0.2, 3.0, -0.1, 2.0, 1.0]);
        let id = m.then_after(&m.inverse().unwrap());
        for (a, b) in id.0.iter().zip(Affine2::IDENTITY.0) {
            assert!((a - b).abs() < 1e-12);
        }
    }

    #[test]
    fn an_operation_that_reads_outside_folds_only_after_whole_image_maps() {
        let s = Size::new(8, 6);
        let pad = Op::Pad {
            left: 1,
            top: 1,
            right: 1,
            bottom: 1,
            border: Border::Constant(0),
        };
        let rotate = Op::Affine {
            inverse: Affine2([0.8, -0.6, 2.0, 0.6, 0.8, -1.0]),
            interp: Interp::Bilinear,
            border: Border::Constant(0),
        };
        let crop = Op::Crop {
            x: 1,
            y: 1,
            width: 4,
            height: 3,
        };
        let resize = Op::Resize {
            width: 5,
            height: 7,
            interp: Interp::Bilinear,
        };
        let warps = |ops: &[Op]| stages(ops, s).len();
        // a crop, or a rotation, leaves part of the image out: what a pad or a rotation after it
        // reads beyond its edge is the border, not the image
        assert_eq!(warps(&[crop.clone(), pad.clone()]), 2);
        assert_eq!(warps(&[crop.clone(), rotate.clone()]), 2);
        assert_eq!(warps(&[rotate.clone(), rotate.clone()]), 2);
        assert_eq!(warps(&[rotate.clone(), pad.clone()]), 2);
        // after whole-image maps it folds; an operation that reads only inside folds anywhere
        let turn = Op::Rot90 { k: 1 };
        assert_eq!(
            warps(&[Op::HorizontalFlip, turn.clone(), rotate.clone()]),
            1
        );
        assert_eq!(warps(&[turn, Op::VerticalFlip, pad.clone()]), 1);
        // an enlarging resize samples beyond its input's edge, clamped: a later step with a
        // border that is not the edge's would blend its edge pixels with that border
        assert_eq!(warps(&[resize.clone(), rotate.clone()]), 2);
        assert_eq!(warps(&[resize.clone(), pad.clone()]), 2);
        let pad_edge = Op::Pad {
            left: 1,
            top: 1,
            right: 1,
            bottom: 1,
            border: Border::Edge,
        };
        assert_eq!(warps(&[resize.clone(), pad_edge]), 1);
        // an enlarging resize samples beyond its input's edge; a shrinking one does not
        assert_eq!(warps(&[crop.clone(), resize.clone()]), 2);
        let shrink = Op::Resize {
            width: 2,
            height: 2,
            interp: Interp::Bilinear,
        };
        assert_eq!(warps(&[crop.clone(), shrink.clone()]), 1);
        assert_eq!(warps(&[shrink, rotate.clone()]), 1);
        assert_eq!(
            warps(&[rotate.clone(), crop.clone(), Op::HorizontalFlip]),
            1
        );
        assert_eq!(
            warps(&[
                Op::Crop {
                    x: 0,
                    y: 0,
                    width: 8,
                    height: 6
                },
                pad
            ]),
            1
        );
    }
}
