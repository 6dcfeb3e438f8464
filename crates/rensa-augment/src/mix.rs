//! Batch mixing on tensors: MixUp (Zhang et al., 2018) and CutMix (Yun et al., 2019), with
//! their label mixing. One draw per batch, keyed by (seed, epoch, batch index).

use crate::error::{AugmentError, Result};
use crate::rng::{SampleKey, SampleRng};
use burn::tensor::{Int, Tensor, TensorData, backend::Backend};

/// Keeps the mixing draws apart from the per-image draws of a pipeline with the same seed.
const MIX_DOMAIN: u64 = 0x6d69_7875_7063_7574;

/// What a mixing step drew: the weight of the original batch, the partner of each image, and
/// for CutMix the pasted box `[x, y, width, height]`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MixDraw {
    /// Share of the original image in the result (for CutMix: after clipping the box).
    pub lambda: f64,
    /// Image `i` is mixed with image `partner[i]`.
    pub partner: Vec<usize>,
    /// CutMix's box.
    pub rect: Option<[usize; 4]>,
}

impl MixDraw {
    /// Checks that the draw fits a batch of images `[n, c, height, width]`: `lambda` in
    /// `[0, 1]`, one partner per image and each an image of the batch, the box (if any) inside
    /// the image. A draw read back from a log may not.
    ///
    /// # Errors
    /// [`AugmentError::Batch`] naming the first problem.
    pub fn check(&self, [n, _, height, width]: [usize; 4]) -> Result<()> {
        let bad = |what: String| Err(AugmentError::Batch(format!("mix draw: {what}")));
        if !(0.0..=1.0).contains(&self.lambda) {
            return bad(format!("lambda {} is not in [0, 1]", self.lambda));
        }
        if self.partner.len() != n {
            return bad(format!(
                "{} partners for a batch of {n} images",
                self.partner.len()
            ));
        }
        if let Some(&p) = self.partner.iter().find(|&&p| p >= n) {
            return bad(format!("partner {p} is not an image of a batch of {n}"));
        }
        if let Some([x, y, w, h]) = self.rect {
            let inside = x.checked_add(w).is_some_and(|r| r <= width)
                && y.checked_add(h).is_some_and(|b| b <= height);
            if !inside {
                return bad(format!(
                    "the box {w}x{h} at ({x}, {y}) is not inside {width}x{height}"
                ));
            }
        }
        Ok(())
    }
}

/// The settings both mixers share: `Beta(alpha, alpha)` draws keyed by `seed`.
#[derive(Clone, Debug, PartialEq)]
struct BetaDraws {
    alpha: f64,
    seed: u64,
}

impl BetaDraws {
    fn new(op: &'static str, alpha: f64, seed: u64) -> Result<Self> {
        if alpha.is_finite() && alpha > 0.0 {
            Ok(Self { alpha, seed })
        } else {
            Err(AugmentError::Parameter {
                op,
                name: "alpha",
                message: format!("= {alpha} must be positive"),
            })
        }
    }

    /// The generator of batch `batch` of `epoch`; `stream` keeps the mixers' draws apart.
    fn rng(&self, stream: u64, epoch: u64, batch: u64) -> SampleRng {
        SampleRng::new(SampleKey::new(
            self.seed ^ MIX_DOMAIN ^ stream,
            epoch,
            batch,
        ))
    }
}

/// A batch mixer: draws per batch, mixes the images its way and the labels by the drawn weight.
/// [`MixUp`] and [`CutMix`] implement it; import the trait to call [`apply`](Self::apply).
pub trait BatchMix {
    /// The mixer's name in errors.
    fn name(&self) -> &'static str;

    /// The draw for batch `batch` of `epoch`, for images of shape `[n, c, height, width]`.
    fn draw_for(&self, dims: [usize; 4], epoch: u64, batch: u64) -> MixDraw;

    /// The mixed images, given the draw.
    ///
    /// # Panics
    /// On a draw that does not fit the images ([`MixDraw::check`] says why).
    fn mix_images<B: Backend>(&self, images: Tensor<B, 4>, draw: &MixDraw) -> Tensor<B, 4>;

    /// Mixes `images` `[B, C, H, W]` and `labels` `[B, K]` (one-hot or soft):
    /// `y' = λ y + (1 - λ) y[partner]`.
    ///
    /// # Errors
    /// [`AugmentError::Batch`] when the two do not have the same (non-zero) batch size.
    fn apply<B: Backend>(
        &self,
        images: Tensor<B, 4>,
        labels: Tensor<B, 2>,
        epoch: u64,
        batch: u64,
    ) -> Result<(Tensor<B, 4>, Tensor<B, 2>, MixDraw)> {
        same_batch(self.name(), images.dims()[0], labels.dims()[0])?;
        let d = self.draw_for(images.dims(), epoch, batch);
        let idx = partners::<B>(&d.partner, &images.device());
        let x = self.mix_images(images, &d);
        let l = d.lambda as f32;
        let y = labels.clone() * l + labels.select(0, idx) * (1.0 - l);
        Ok((x, y, d))
    }
}

/// Checks that `images` and `labels` are one batch: the same number of rows, at least one.
fn same_batch(op: &str, images: usize, labels: usize) -> Result<()> {
    if images != labels || images == 0 {
        return Err(AugmentError::Batch(format!(
            "{op}: {images} images and {labels} labels (one label row per image, at least one)"
        )));
    }
    Ok(())
}

fn partners<B: Backend>(partner: &[usize], device: &B::Device) -> Tensor<B, 1, Int> {
    let idx: Vec<i64> = partner.iter().map(|&i| i as i64).collect();
    Tensor::from_data(TensorData::new(idx, [partner.len()]), device)
}

/// MixUp: `x' = λ x + (1 - λ) x[perm]`, labels likewise, `λ ~ Beta(alpha, alpha)`.
#[derive(Clone, Debug, PartialEq)]
pub struct MixUp(BetaDraws);

impl MixUp {
    /// MixUp with `Beta(alpha, alpha)` weights (0.2 to 0.4 are usual).
    pub fn new(alpha: f64, seed: u64) -> Result<Self> {
        BetaDraws::new("mixup", alpha, seed).map(Self)
    }

    /// The draw for batch `batch` of `epoch` with `n` images.
    pub fn draw(&self, n: usize, epoch: u64, batch: u64) -> MixDraw {
        let mut rng = self.0.rng(0, epoch, batch);
        let lambda = rng.beta(self.0.alpha);
        MixDraw {
            lambda,
            partner: rng.permutation(n),
            rect: None,
        }
    }
}

impl BatchMix for MixUp {
    fn name(&self) -> &'static str {
        "mixup"
    }

    fn draw_for(&self, dims: [usize; 4], epoch: u64, batch: u64) -> MixDraw {
        self.draw(dims[0], epoch, batch)
    }

    fn mix_images<B: Backend>(&self, images: Tensor<B, 4>, draw: &MixDraw) -> Tensor<B, 4> {
        draw.check(images.dims()).unwrap_or_else(|e| panic!("{e}"));
        let (l, idx) = (
            draw.lambda as f32,
            partners::<B>(&draw.partner, &images.device()),
        );
        images.clone() * l + images.select(0, idx) * (1.0 - l)
    }
}

/// CutMix: a box covering about `1 - λ` of the image is pasted from the partner image; labels
/// are mixed by the box's actual share of the area.
#[derive(Clone, Debug, PartialEq)]
pub struct CutMix(BetaDraws);

impl CutMix {
    /// CutMix with `Beta(alpha, alpha)` box areas (1.0 is usual).
    pub fn new(alpha: f64, seed: u64) -> Result<Self> {
        BetaDraws::new("cutmix", alpha, seed).map(Self)
    }

    /// The draw for batch `batch` of `epoch` with `n` images of `width x height`.
    pub fn draw(&self, n: usize, width: usize, height: usize, epoch: u64, batch: u64) -> MixDraw {
        let mut rng = self.0.rng(1, epoch, batch);
        let lam = rng.beta(self.0.alpha);
        let cut = (1.0 - lam).sqrt();
        let (cw, ch) = (width as f64 * cut, height as f64 * cut);
        let cx = rng.uniform(0.0, width as f64);
        let cy = rng.uniform(0.0, height as f64);
        let x0 = (cx - cw / 2.0).round().clamp(0.0, width as f64) as usize;
        let x1 = (cx + cw / 2.0).round().clamp(0.0, width as f64) as usize;
        let y0 = (cy - ch / 2.0).round().clamp(0.0, height as f64) as usize;
        let y1 = (cy + ch / 2.0).round().clamp(0.0, height as f64) as usize;
        let area = ((x1 - x0) * (y1 - y0)) as f64;
        MixDraw {
            lambda: 1.0 - area / (width * height) as f64,
            partner: rng.permutation(n),
            rect: Some([x0, y0, x1 - x0, y1 - y0]),
        }
    }
}

impl BatchMix for CutMix {
    fn name(&self) -> &'static str {
        "cutmix"
    }

    fn draw_for(&self, [n, _, h, w]: [usize; 4], epoch: u64, batch: u64) -> MixDraw {
        self.draw(n, w, h, epoch, batch)
    }

    fn mix_images<B: Backend>(&self, images: Tensor<B, 4>, draw: &MixDraw) -> Tensor<B, 4> {
        draw.check(images.dims()).unwrap_or_else(|e| panic!("{e}"));
        let [n, c, ..] = images.dims();
        let idx = partners::<B>(&draw.partner, &images.device());
        let [x0, y0, bw, bh] = draw
            .rect
            .unwrap_or_else(|| panic!("mix draw: cutmix needs a box, the draw has none"));
        if bw > 0 && bh > 0 {
            let region = [0..n, 0..c, y0..y0 + bh, x0..x0 + bw];
            let pasted = images.clone().select(0, idx).slice(region.clone());
            images.slice_assign(region, pasted)
        } else {
            images
        }
    }
}
