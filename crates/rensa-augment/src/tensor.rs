//! The batched tensor path: the same plans as the CPU path, executed on any burn backend.
//! Per image, consecutive geometric operations are one affine matrix; the whole batch is then
//! resampled by one `grid_sample_2d` per warp stage. Colour operations are per-image factors
//! broadcast over the batch, blur is one grouped convolution with per-image kernels, noise and
//! erasing masks come from the plans' recorded seeds and rectangles.
//!
//! Images whose plans have different stage sequences (a transform applied to some images and
//! not others, where that changes the sequence) are processed as separate sub-batches and put
//! back in order; runs of colour operations align position by position, with identity
//! parameters standing in, so a random order (colour jitter) or a skipped colour transform
//! does not split the batch.

use crate::cpu::{colour::LUMA, filter};
use crate::error::{AugmentError, Result};
use crate::image::{Image, Size};
use crate::ops::{Affine2, Border, Interp, Op, Stage, colour_op, geometric_op, stages};
use crate::pipeline::{Pipeline, Plan, batch_shape};
use burn::tensor::module::conv2d;
use burn::tensor::ops::{ConvOptions, GridSampleOptions, GridSamplePaddingMode, InterpolateMode};
use burn::tensor::{IndexingUpdateOp, Int, Tensor, TensorData, backend::Backend};

/// Stacks u8 HWC images of one size into a `[B, C, H, W]` float tensor with values in 0..1.
pub fn images_to_tensor<B: Backend>(images: &[Image], device: &B::Device) -> Result<Tensor<B, 4>> {
    let Some(first) = images.first() else {
        return Err(AugmentError::Batch("no images".into()));
    };
    let (w, h, c) = (first.width(), first.height(), first.channels());
    let mut buf = Vec::with_capacity(images.len() * w * h * c);
    for (i, img) in images.iter().enumerate() {
        if (img.width(), img.height(), img.channels()) != (w, h, c) {
            return Err(AugmentError::Batch(format!(
                "image {i} is {}x{}x{}, image 0 {w}x{h}x{c}",
                img.width(),
                img.height(),
                img.channels()
            )));
        }
        buf.extend(img.data().iter().map(|&v| v as f32 * (1.0 / 255.0)));
    }
    let t = Tensor::<B, 4>::from_data(TensorData::new(buf, [images.len(), h, w, c]), device);
    Ok(t.permute([0, 3, 1, 2]))
}

impl Pipeline {
    /// Augments a batch on `device` with the tensor path: the same parameter draw as
    /// [`Pipeline::to_tensor`] (the CPU path), the same result within interpolation tolerance.
    /// Input images must share one size; the result is `[B, C, H, W]`, normalised when the
    /// pipeline ends with `normalize` and in 0..1 otherwise.
    pub fn apply_tensor<B: Backend>(
        &self,
        images: &[Image],
        epoch: u64,
        first_index: u64,
        device: &B::Device,
    ) -> Result<Tensor<B, 4>> {
        let plans = self.plans(images, epoch, first_index)?;
        batch_shape(images, &plans)?;
        let input = images_to_tensor::<B>(images, device)?;
        apply_plans(input, &plans)
    }
}

/// What a stage is, for grouping images whose plans can run as one batch.
#[derive(Clone, Debug, PartialEq)]
enum Kind {
    Warp(Size, Interp, Option<Border>),
    Colour,
    Blur,
    Noise,
    Erase,
    Normalize,
}

/// A stage of one image, with colour operations gathered into runs.
enum Step {
    Warp(Affine2),
    Colour(Vec<Op>),
    Op(Op),
}

/// The colour operations, in the order [`colour_position`] runs them at one position of the
/// images' colour runs.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Colour {
    Linear,
    Contrast,
    Saturation,
    Hsv,
    Gamma,
    Grayscale,
}

impl Colour {
    const ALL: [Colour; 6] = [
        Colour::Linear,
        Colour::Contrast,
        Colour::Saturation,
        Colour::Hsv,
        Colour::Gamma,
        Colour::Grayscale,
    ];

    /// The colour operation `op` is, if it is one.
    fn of(op: &Op) -> Option<Colour> {
        Some(match op {
            Op::Linear { .. } => Colour::Linear,
            Op::Contrast { .. } => Colour::Contrast,
            Op::Saturation { .. } => Colour::Saturation,
            Op::Hsv { .. } => Colour::Hsv,
            Op::Gamma { .. } => Colour::Gamma,
            Op::Grayscale => Colour::Grayscale,
            geometric_op!() => return None,
            Op::Blur { .. } | Op::Noise { .. } | Op::Erase { .. } | Op::Normalize { .. } => {
                return None;
            }
        })
    }
}

/// The stage kind of a non-geometric operation.
fn pixel_kind(op: &Op) -> Kind {
    match op {
        colour_op!() => Kind::Colour,
        Op::Blur { .. } => Kind::Blur,
        Op::Noise { .. } => Kind::Noise,
        Op::Erase { .. } => Kind::Erase,
        Op::Normalize { .. } => Kind::Normalize,
        geometric_op!() => unreachable!("geometric operations are folded into warps"),
    }
}

fn steps_of(plan: &Plan) -> (Vec<Kind>, Vec<Step>) {
    let (mut kinds, mut steps) = (Vec::new(), Vec::new());
    for st in stages(&plan.ops, plan.input) {
        match st {
            Stage::Warp(w) => {
                if kinds.is_empty() && w.is_identity_on(plan.input) {
                    continue;
                }
                let interp = w.interp.unwrap_or(Interp::Bilinear);
                kinds.push(Kind::Warp(w.size, interp, w.border));
                steps.push(Step::Warp(w.inverse));
            }
            Stage::Pixel(op) => match pixel_kind(&op) {
                Kind::Colour => {
                    if let Some(Step::Colour(run)) = steps.last_mut() {
                        run.push(op);
                    } else {
                        kinds.push(Kind::Colour);
                        steps.push(Step::Colour(vec![op]));
                    }
                }
                kind => {
                    kinds.push(kind);
                    steps.push(Step::Op(op));
                }
            },
        }
    }
    (kinds, steps)
}

/// Executes `plans` on a `[B, C, H, W]` batch in 0..1 (image `i` takes plan `i`).
pub fn apply_plans<B: Backend>(input: Tensor<B, 4>, plans: &[Plan]) -> Result<Tensor<B, 4>> {
    let [b, c, h, w] = input.dims();
    if b == 0 && plans.is_empty() {
        // an empty batch stays empty
        return Ok(input);
    }
    if plans.len() != b {
        return Err(AugmentError::Batch(format!(
            "{} plans for {b} images",
            plans.len()
        )));
    }
    if c != 1 && c != 3 {
        return Err(AugmentError::Batch(format!(
            "{c} channels: gray (1) or RGB (3) images only"
        )));
    }
    for p in plans {
        p.validate(Size::new(w, h))?;
    }
    if let Some((i, p)) = plans
        .iter()
        .enumerate()
        .find(|(_, p)| p.output != plans[0].output)
    {
        return Err(AugmentError::Batch(format!(
            "plan {i} produces {}, plan 0 {}",
            p.output, plans[0].output
        )));
    }
    let device = input.device();
    // (stage kinds, image indices, their stages)
    type Group = (Vec<Kind>, Vec<usize>, Vec<Vec<Step>>);
    let mut groups: Vec<Group> = Vec::new();
    for (i, plan) in plans.iter().enumerate() {
        let (kinds, steps) = steps_of(plan);
        match groups.iter_mut().find(|g| g.0 == kinds) {
            Some(g) => {
                g.1.push(i);
                g.2.push(steps);
            }
            None => groups.push((kinds, vec![i], vec![steps])),
        }
    }
    let out_size = plans[0].output;
    if groups.len() == 1 {
        let (kinds, _, steps) = groups.pop().expect("one group");
        return Ok(run_group(input, &kinds, &steps, c));
    }
    let mut out = Tensor::<B, 4>::zeros([b, c, out_size.height, out_size.width], &device);
    for (kinds, idx, steps) in groups {
        let index = Tensor::<B, 1, Int>::from_data(
            TensorData::new(
                idx.iter().map(|&i| i as i64).collect::<Vec<_>>(),
                [idx.len()],
            ),
            &device,
        );
        let part = run_group(input.clone().select(0, index.clone()), &kinds, &steps, c);
        if part.dims()[2..] != [out_size.height, out_size.width] {
            return Err(AugmentError::Batch(
                "images come out in different sizes".into(),
            ));
        }
        out = out.select_assign(0, index, part, IndexingUpdateOp::Add);
    }
    Ok(out)
}

fn run_group<B: Backend>(
    mut x: Tensor<B, 4>,
    kinds: &[Kind],
    steps: &[Vec<Step>],
    c: usize,
) -> Tensor<B, 4> {
    let device = x.device();
    let n = steps.len();
    let scalars = |f: &dyn Fn(usize) -> f32| {
        Tensor::<B, 4>::from_data(
            TensorData::new((0..n).map(f).collect::<Vec<f32>>(), [n, 1, 1, 1]),
            &device,
        )
    };
    for (s, kind) in kinds.iter().enumerate() {
        match kind {
            Kind::Warp(size, interp, border) => {
                let mats: Vec<Affine2> = steps
                    .iter()
                    .map(|st| match &st[s] {
                        Step::Warp(m) => *m,
                        _ => unreachable!("grouped by kind"),
                    })
                    .collect();
                x = warp(x, &mats, *size, *interp, *border);
            }
            Kind::Colour => {
                let runs: Vec<&Vec<Op>> = steps
                    .iter()
                    .map(|st| match &st[s] {
                        Step::Colour(r) => r,
                        _ => unreachable!("grouped by kind"),
                    })
                    .collect();
                let longest = runs.iter().map(|r| r.len()).max().unwrap_or(0);
                for pos in 0..longest {
                    let at = |i: usize| runs[i].get(pos);
                    x = colour_position(x, c, n, &at, &scalars);
                }
            }
            Kind::Blur => {
                let sigmas: Vec<f32> = steps
                    .iter()
                    .map(|st| match &st[s] {
                        Step::Op(Op::Blur { sigma }) => *sigma,
                        _ => unreachable!("grouped by kind"),
                    })
                    .collect();
                x = blur(x, &sigmas);
            }
            Kind::Noise => {
                let [_, _, h, w] = x.dims();
                let mut field = Vec::with_capacity(n * c * h * w);
                for st in steps {
                    let Step::Op(Op::Noise {
                        std,
                        mean,
                        per_channel,
                        seed,
                    }) = &st[s]
                    else {
                        unreachable!("grouped by kind")
                    };
                    // the CPU path's field is in HWC order: reorder to CHW
                    let hwc = filter::noise_field(h * w * c, c, *std, *mean, *per_channel, *seed);
                    for ch in 0..c {
                        field.extend((0..h * w).map(|p| hwc[p * c + ch] / 255.0));
                    }
                }
                let noise =
                    Tensor::<B, 4>::from_data(TensorData::new(field, [n, c, h, w]), &device);
                x = (x + noise).clamp(0.0, 1.0);
            }
            Kind::Erase => {
                let [_, _, h, w] = x.dims();
                let mut mask = vec![0f32; n * h * w];
                let mut fills = Vec::with_capacity(n);
                for (i, st) in steps.iter().enumerate() {
                    let Step::Op(Op::Erase { rects, fill }) = &st[s] else {
                        unreachable!("grouped by kind")
                    };
                    for &[rx, ry, rw, rh] in rects {
                        for yy in ry.min(h)..ry.saturating_add(rh).min(h) {
                            let row = &mut mask[(i * h + yy) * w..(i * h + yy + 1) * w];
                            row[rx.min(w)..rx.saturating_add(rw).min(w)].fill(1.0);
                        }
                    }
                    fills.push(*fill as f32 / 255.0);
                }
                let m = Tensor::<B, 4>::from_data(TensorData::new(mask, [n, 1, h, w]), &device);
                let fill = scalars(&|i| fills[i]);
                x = x.clone() + m * (fill - x);
            }
            Kind::Normalize => {
                // each image's own mean and std (plans of one group may differ in them)
                let (mut means, mut stds) = (Vec::with_capacity(n * c), Vec::with_capacity(n * c));
                for image in steps {
                    let Step::Op(Op::Normalize { mean, std }) = &image[s] else {
                        unreachable!("grouped by kind")
                    };
                    means.extend_from_slice(&mean[..c]);
                    stds.extend_from_slice(&std[..c]);
                }
                let per_image = |v: Vec<f32>| {
                    Tensor::<B, 4>::from_data(TensorData::new(v, [n, c, 1, 1]), &device)
                };
                x = (x - per_image(means)) / per_image(stds);
            }
        }
    }
    x
}

/// One grid-sample pass: output pixel `p` of image `i` reads `mats[i](p)`.
fn warp<B: Backend>(
    x: Tensor<B, 4>,
    mats: &[Affine2],
    size: Size,
    interp: Interp,
    border: Option<Border>,
) -> Tensor<B, 4> {
    let device = x.device();
    // With align_corners = true an axis of one pixel maps every coordinate onto that pixel, so
    // no read would fall outside it: such an axis gets a second pixel that holds what lies beyond
    // the first (the fill, or the pixel itself for the other borders, as reflecting a single
    // pixel repeats it), which the reads between and beyond the two then see as the CPU path does.
    let beyond = |x: &Tensor<B, 4>| match border {
        Some(Border::Constant(v)) => x.zeros_like() + v as f32 / 255.0,
        _ => x.clone(),
    };
    let mut x = x;
    if x.dims()[3] == 1 {
        x = Tensor::cat(vec![x.clone(), beyond(&x)], 3);
    }
    if x.dims()[2] == 1 {
        x = Tensor::cat(vec![x.clone(), beyond(&x)], 2);
    }
    let [n, _, h, w] = x.dims();
    // pixel -> normalised coordinates (align_corners = true: -1 and 1 are the edge pixels' centres)
    let (kx, ky) = (2.0 / (w - 1) as f64, 2.0 / (h - 1) as f64);
    let mut m = Vec::with_capacity(n * 6);
    for a in mats {
        let [p, q, r, s, t, u] = a.0;
        // rows of the [3, 2] matrix that maps (x, y, 1) to (gx, gy)
        m.extend([p * kx, s * ky, q * kx, t * ky, r * kx - 1.0, u * ky - 1.0].map(|v| v as f32));
    }
    let mats = Tensor::<B, 3>::from_data(TensorData::new(m, [n, 3, 2]), &device);
    let (ow, oh) = (size.width, size.height);
    // output pixel coordinates (x, y, 1), built on the device
    let xs = Tensor::<B, 1, Int>::arange(0..ow as i64, &device)
        .float()
        .reshape([1, ow, 1])
        .expand([oh, ow, 1]);
    let ys = Tensor::<B, 1, Int>::arange(0..oh as i64, &device)
        .float()
        .reshape([oh, 1, 1])
        .expand([oh, ow, 1]);
    let base = Tensor::cat(vec![xs.clone(), ys, xs.ones_like()], 2).reshape([1, oh * ow, 3]);
    let mut grid = base.matmul(mats).reshape([n, oh, ow, 2]);
    if interp == Interp::Nearest {
        // burn's grid_sample has no nearest mode on every backend: snap the grid to pixel
        // centres instead, where bilinear weights are 0 and 1.
        let half = Tensor::<B, 1>::from_floats([1.0 / kx as f32, 1.0 / ky as f32], &device)
            .reshape([1, 1, 1, 2]);
        let bias = crate::cpu::geometry::NEAREST_BIAS as f32;
        let px = ((grid + 1.0) * half.clone() + bias).floor();
        grid = px / half - 1.0;
    }
    let mode = InterpolateMode::Bilinear;
    let (padding, fill) = match border {
        Some(Border::Constant(v)) => (GridSamplePaddingMode::Zeros, v as f32 / 255.0),
        Some(Border::Reflect) => (GridSamplePaddingMode::Reflection, 0.0),
        Some(Border::Edge) | None => (GridSamplePaddingMode::Border, 0.0),
    };
    let options = GridSampleOptions::new(mode)
        .with_padding_mode(padding)
        .with_align_corners(true);
    if fill != 0.0 {
        // the bilinear weights' sum is 1 only to within rounding in f32 (on the GPU), so a 0
        // near the fill comes back as about -6e-8, which a later gamma would raise to NaN
        ((x - fill).grid_sample_2d(grid, options) + fill).clamp(0.0, 1.0)
    } else {
        x.grid_sample_2d(grid, options)
    }
}

/// The luma of a `[N, 3, H, W]` batch as `[N, 1, H, W]`.
fn luma<B: Backend>(x: &Tensor<B, 4>) -> Tensor<B, 4> {
    let w = Tensor::<B, 1>::from_floats(LUMA, &x.device()).reshape([1, 3, 1, 1]);
    (x.clone() * w).sum_dim(1)
}

/// Builds a `[N, 1, 1, 1]` tensor of per-image values.
type Scalars<'a, B> = dyn Fn(&dyn Fn(usize) -> f32) -> Tensor<B, 4> + 'a;

/// Position `pos` of every image's colour run: each kind that occurs there runs once over the
/// batch, with identity parameters for the images that have another kind (or none) there.
fn colour_position<'a, B: Backend>(
    mut x: Tensor<B, 4>,
    c: usize,
    n: usize,
    at: &dyn Fn(usize) -> Option<&'a Op>,
    scalars: &Scalars<'_, B>,
) -> Tensor<B, 4> {
    for colour in Colour::ALL {
        if !(0..n).any(|i| at(i).and_then(Colour::of) == Some(colour)) {
            continue;
        }
        x = match colour {
            Colour::Linear => {
                let alpha = scalars(&|i| match at(i) {
                    Some(Op::Linear { alpha, .. }) => *alpha,
                    _ => 1.0,
                });
                let beta = scalars(&|i| match at(i) {
                    Some(Op::Linear { beta, .. }) => *beta,
                    _ => 0.0,
                });
                (x * alpha + beta).clamp(0.0, 1.0)
            }
            Colour::Contrast => {
                let f = scalars(&|i| match at(i) {
                    Some(Op::Contrast { factor }) => *factor,
                    _ => 1.0,
                });
                let mean = if c == 3 { luma(&x) } else { x.clone() }
                    .mean_dim(2)
                    .mean_dim(3);
                (x * f.clone() + mean * (f.neg() + 1.0)).clamp(0.0, 1.0)
            }
            Colour::Saturation if c != 3 => x,
            Colour::Saturation => {
                let f = scalars(&|i| match at(i) {
                    Some(Op::Saturation { factor }) => *factor,
                    _ => 1.0,
                });
                let g = luma(&x);
                (x * f.clone() + g * (f.neg() + 1.0)).clamp(0.0, 1.0)
            }
            Colour::Hsv => {
                let get = |k: usize| {
                    move |i: usize| match at(i) {
                        Some(Op::Hsv {
                            hue,
                            saturation,
                            value,
                        }) => [*hue, *saturation, *value][k],
                        _ => 0.0,
                    }
                };
                let (dh, ds, dv) = (scalars(&get(0)), scalars(&get(1)), scalars(&get(2)));
                if c == 3 {
                    hsv(x, dh, ds, dv)
                } else {
                    (x + dv).clamp(0.0, 1.0)
                }
            }
            Colour::Gamma => {
                let g = scalars(&|i| match at(i) {
                    Some(Op::Gamma { gamma }) => *gamma,
                    _ => 1.0,
                });
                let [_, _, h, w] = x.dims();
                x.powf(g.expand([n, c, h, w]))
            }
            Colour::Grayscale if c != 3 => x,
            Colour::Grayscale => {
                let on = scalars(&|i| {
                    if matches!(at(i), Some(Op::Grayscale)) {
                        1.0
                    } else {
                        0.0
                    }
                });
                let g = luma(&x);
                x.clone() + on * (g - x)
            }
        };
    }
    x
}

/// HSV shifts on a `[N, 3, H, W]` batch (the CPU kernel's formulas, as tensor operations).
fn hsv<B: Backend>(
    x: Tensor<B, 4>,
    dh: Tensor<B, 4>,
    ds: Tensor<B, 4>,
    dv: Tensor<B, 4>,
) -> Tensor<B, 4> {
    let [n, _, h, w] = x.dims();
    let ch = |i: usize| x.clone().slice([0..n, i..i + 1, 0..h, 0..w]);
    let (r, g, b) = (ch(0), ch(1), ch(2));
    let v = r.clone().max_pair(g.clone()).max_pair(b.clone());
    let mn = r.clone().min_pair(g.clone()).min_pair(b.clone());
    let delta = v.clone() - mn;
    let has = delta.clone().greater_elem(0.0);
    let safe = delta.clone().mask_fill(has.clone().bool_not(), 1.0);
    let hr = (g.clone() - b.clone()) / safe.clone();
    let hg = (b.clone() - r.clone()) / safe.clone() + 2.0;
    let hb = (r.clone() - g.clone()) / safe + 4.0;
    let is_r = v.clone().equal(r);
    let is_g = v.clone().equal(g);
    let hue = hb.mask_where(is_g, hg).mask_where(is_r, hr);
    let hue = hue.mask_fill(has.bool_not(), 0.0);
    let s = (delta / v.clone().mask_fill(v.clone().lower_equal_elem(0.0), 1.0))
        .mask_fill(v.clone().lower_equal_elem(0.0), 0.0);
    let hue = hue / 6.0 + dh;
    let hue = hue.clone() - hue.floor();
    let s = (s + ds).clamp(0.0, 1.0);
    let v = (v + dv).clamp(0.0, 1.0);
    let back = |k0: f32| {
        let k = hue.clone() * 6.0 + k0;
        let k = k
            .clone()
            .mask_where(k.clone().greater_equal_elem(6.0), k - 6.0);
        let f = k.clone().min_pair(k.neg() + 4.0).clamp(0.0, 1.0);
        v.clone() - v.clone() * s.clone() * f
    };
    Tensor::cat(vec![back(5.0), back(3.0), back(1.0)], 1)
}

/// Gaussian blur with one kernel per image: reflect-pad, then a horizontal and a vertical
/// grouped convolution (one group per image and channel).
fn blur<B: Backend>(x: Tensor<B, 4>, sigmas: &[f32]) -> Tensor<B, 4> {
    let device = x.device();
    let [n, c, h, w] = x.dims();
    let kernels: Vec<Vec<f32>> = sigmas.iter().map(|&s| filter::gaussian_kernel(s)).collect();
    let r = kernels.iter().map(|k| k.len() / 2).max().unwrap_or(1);
    let taps = 2 * r + 1;
    let mut wts = Vec::with_capacity(n * c * taps);
    for k in &kernels {
        let kr = k.len() / 2;
        let mut row = vec![0f32; taps];
        row[r - kr..r + kr + 1].copy_from_slice(k);
        for _ in 0..c {
            wts.extend_from_slice(&row);
        }
    }
    let reflect = |len: usize| {
        let idx: Vec<i64> = (0..len + 2 * r)
            .map(|i| {
                crate::cpu::geometry::resolve(i as isize - r as isize, len, Some(Border::Reflect))
                    .expect("reflection always resolves") as i64
            })
            .collect();
        Tensor::<B, 1, Int>::from_data(TensorData::new(idx, [len + 2 * r]), &device)
    };
    let padded = x.select(2, reflect(h)).select(3, reflect(w));
    let flat = padded.reshape([1, n * c, h + 2 * r, w + 2 * r]);
    let wh = Tensor::<B, 4>::from_data(TensorData::new(wts.clone(), [n * c, 1, 1, taps]), &device);
    let wv = Tensor::<B, 4>::from_data(TensorData::new(wts, [n * c, 1, taps, 1]), &device);
    let opts = ConvOptions::new([1, 1], [0, 0], [1, 1], n * c);
    let y = conv2d(flat, wh, None, opts.clone());
    let y = conv2d(y, wv, None, opts);
    y.reshape([n, c, h, w])
}
