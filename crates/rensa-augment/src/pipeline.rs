//! A pipeline: transforms plus a seed. Each sample's parameters are drawn from a generator keyed
//! by (seed, epoch, index) into a [`Plan`], which either path (CPU or tensor) executes and
//! which can be logged and replayed.

use crate::cpu;
use crate::error::{AugmentError, Result};
use crate::image::{Image, Size};
use crate::ops::Op;
use crate::rng::{SampleKey, SampleRng};
use crate::transforms::{OPERATIONS, Step, Transform};
use burn::tensor::{Tensor, TensorData, backend::Backend};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// A validated list of transforms and the seed their parameters are drawn with.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Pipeline {
    seed: u64,
    steps: Vec<Step>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PipelineFile {
    #[serde(default)]
    seed: u64,
    #[serde(default)]
    steps: Vec<Step>,
}

/// The drawn parameters of one sample: the operations to apply, in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The draw this plan came from.
    pub key: SampleKey,
    /// The input size it was drawn for.
    pub input: Size,
    /// The size it produces.
    pub output: Size,
    /// The operations.
    pub ops: Vec<Op>,
}

impl Plan {
    /// The normalisation at the end of the plan, if any: `(mean, std)`.
    pub fn normalization(&self) -> Option<([f32; 3], [f32; 3])> {
        self.ops.iter().find_map(|op| match op {
            Op::Normalize { mean, std } => Some((*mean, *std)),
            _ => None,
        })
    }

    fn check(&self, img: &Image) -> Result<()> {
        self.validate(img.size())
    }

    /// Checks that the plan was drawn for an input of `input` and that every operation's
    /// parameters are usable (a plan read from a log may have been edited).
    pub fn validate(&self, input: Size) -> Result<()> {
        if input != self.input {
            return Err(AugmentError::InvalidImage(format!(
                "the plan was drawn for a {} image, this one is {input}",
                self.input,
            )));
        }
        let bad = |op: &Op, message: String| AugmentError::Parameter {
            op: op.name(),
            name: "plan",
            message,
        };
        let finite = |op: &Op, values: &[f32]| {
            if values.iter().all(|v| v.is_finite()) {
                Ok(())
            } else {
                Err(bad(op, format!("non-finite parameters {values:?}")))
            }
        };
        // the CPU path normalises at the end, the tensor path in place: one, last, or none
        let normalize = |op: &&Op| matches!(op, Op::Normalize { .. });
        if let Some(k) = self.ops.iter().position(|op| normalize(&op))
            && k + 1 != self.ops.len()
        {
            return Err(bad(
                &self.ops[k],
                "normalize must be the last operation (and the only one)".into(),
            ));
        }
        let mut size = self.input;
        for op in &self.ops {
            match op {
                Op::Crop {
                    x,
                    y,
                    width,
                    height,
                } => {
                    let fits = |start: usize, len: usize, side: usize| {
                        len > 0 && start.checked_add(len).is_some_and(|end| end <= side)
                    };
                    if !(fits(*x, *width, size.width) && fits(*y, *height, size.height)) {
                        return Err(AugmentError::CropTooLarge {
                            op: "crop",
                            crop_width: *width,
                            crop_height: *height,
                            width: size.width.saturating_sub(*x),
                            height: size.height.saturating_sub(*y),
                        });
                    }
                }
                Op::Affine { inverse, .. } => {
                    // Bounds that keep the kernels' 16.16 fixed-point positions inside an i64
                    // for any image (sides up to 2^16): scale and shear entries up to 2^15,
                    // translations up to 2^30 pixels. No useful map comes near them.
                    let [a, b, tx, d, e, ty] = inverse.0;
                    let linear = [a, b, d, e]
                        .iter()
                        .all(|v| v.is_finite() && v.abs() <= 32768.0);
                    let shift = [tx, ty]
                        .iter()
                        .all(|v| v.is_finite() && v.abs() <= 1073741824.0);
                    if !(linear && shift) {
                        return Err(bad(
                            op,
                            format!(
                                "the matrix {:?} is not finite or is out of range",
                                inverse.0
                            ),
                        ));
                    }
                }
                Op::Blur { sigma } => {
                    // the pipeline's own bounds: below 0.01 the kernel's 2 sigma^2 underflows
                    if !(*sigma >= 0.01 && *sigma <= 50.0) {
                        return Err(bad(op, format!("sigma {sigma} outside [0.01, 50]")));
                    }
                }
                Op::Noise { std, mean, .. } => {
                    if !(std.is_finite() && mean.is_finite()) {
                        return Err(bad(op, "non-finite std or mean".into()));
                    }
                }
                Op::Erase { rects, .. } => {
                    for &[x, y, w, h] in rects {
                        let inside = |start: usize, len: usize, side: usize| {
                            len > 0 && start.checked_add(len).is_some_and(|end| end <= side)
                        };
                        if !(inside(x, w, size.width) && inside(y, h, size.height)) {
                            return Err(bad(
                                op,
                                format!("the rectangle {w}x{h} at ({x}, {y}) is not inside {size}"),
                            ));
                        }
                    }
                }
                Op::Linear { alpha, beta } => {
                    // where the CPU kernel's fixed point is exact (the transforms draw gains
                    // up to 10 and offsets up to one full range)
                    finite(op, &[*alpha, *beta])?;
                    if alpha.abs() > 64.0 || beta.abs() > 32.0 {
                        return Err(bad(
                            op,
                            format!("gain {alpha} or offset {beta} outside ±64 and ±32"),
                        ));
                    }
                }
                Op::Contrast { factor } => {
                    // the CPU kernel's gain and offset `(1 − factor) · mean` within its fixed
                    // point's exact range (the transforms draw factors up to 11)
                    finite(op, &[*factor])?;
                    if factor.abs() > 31.0 {
                        return Err(bad(op, format!("factor {factor} outside ±31")));
                    }
                }
                Op::Saturation { factor } => finite(op, &[*factor])?,
                Op::Hsv {
                    hue,
                    saturation,
                    value,
                } => finite(op, &[*hue, *saturation, *value])?,
                Op::Gamma { gamma } => {
                    if !(gamma.is_finite() && *gamma > 0.0) {
                        return Err(bad(op, format!("gamma {gamma} is not a positive number")));
                    }
                }
                Op::Normalize { mean, std } => {
                    finite(op, mean)?;
                    if !std.iter().all(|s| s.is_finite() && *s > 0.0) {
                        return Err(bad(op, format!("std {std:?} is not positive")));
                    }
                }
                // any parameters of these give a usable operation (the size is checked below)
                Op::HorizontalFlip
                | Op::VerticalFlip
                | Op::Rot90 { .. }
                | Op::Resize { .. }
                | Op::Pad { .. }
                | Op::Grayscale => {}
            }
            size = op.output_size(size);
            if let Some(why) = crate::transforms::size_problem(size.width, size.height) {
                return Err(bad(op, format!("produces an image of {why}")));
            }
        }
        if size != self.output {
            return Err(bad(
                self.ops.last().unwrap_or(&Op::Grayscale),
                format!(
                    "the operations produce {size}, the plan says {}",
                    self.output
                ),
            ));
        }
        Ok(())
    }

    /// Applies the plan on the CPU (the normalisation excepted: see [`Plan::apply_f32`]).
    pub fn apply(&self, img: &Image) -> Result<Image> {
        self.check(img)?;
        Ok(cpu::execute(&self.ops, img))
    }

    /// Applies the plan and converts to floats in CHW order, normalised when the plan ends
    /// with a normalisation and scaled to 0..1 otherwise.
    pub fn apply_f32(&self, img: &Image) -> Result<Vec<f32>> {
        let out = self.apply(img)?;
        let mut buf = vec![0.0; out.data().len()];
        cpu::to_chw(&out, self.normalization(), &mut buf);
        Ok(buf)
    }
}

impl Pipeline {
    /// A pipeline of `steps`, validated: fails on an empty list, a parameter out of range, or a
    /// normalisation that is not the last step.
    pub fn new(seed: u64, steps: Vec<Step>) -> Result<Self> {
        Self::checked(seed, steps, "<pipeline>")
    }

    fn checked(seed: u64, steps: Vec<Step>, source_name: &str) -> Result<Self> {
        if steps.is_empty() {
            return Err(AugmentError::EmptyPipeline {
                source_name: source_name.into(),
            });
        }
        for (i, s) in steps.iter().enumerate() {
            s.validate()?;
            let last = i + 1 == steps.len();
            if s.has_normalize() && !(last && matches!(s, Step::Normalize(_))) {
                return Err(AugmentError::Parameter {
                    op: "normalize",
                    name: "position",
                    message: "must be the pipeline's last step (it turns the image into floats)"
                        .into(),
                });
            }
        }
        Ok(Self { seed, steps })
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }
    /// The steps.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }
    /// The same steps with another seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Reads a pipeline file: JSON (`.json`) or TOML (`.toml`), `{"seed": 0, "steps": [...]}`.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| AugmentError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        match path.extension().and_then(|e| e.to_str()) {
            Some("toml") => Self::from_toml(&text, &name),
            _ => Self::from_json(&text, &name),
        }
    }

    /// Parses a JSON pipeline; `source_name` appears in errors.
    pub fn from_json(text: &str, source_name: &str) -> Result<Self> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| syntax(source_name, e))?;
        Self::from_value(value, source_name)
    }

    /// Parses a TOML pipeline (`seed = 0` and `[[steps]]` tables).
    pub fn from_toml(text: &str, source_name: &str) -> Result<Self> {
        let value: serde_json::Value = toml::from_str(text).map_err(|e| syntax(source_name, e))?;
        Self::from_value(value, source_name)
    }

    /// Parses the command-line form: steps separated by spaces or `+`, each `name` or
    /// `name(key=value, ...)` with JSON values, e.g.
    /// `horizontal_flip rotate(limit=30) color_jitter(hue=0.05) normalize`.
    pub fn parse(text: &str, seed: u64) -> Result<Self> {
        let source_name = "command line";
        let mut steps = Vec::new();
        let mut rest = text.trim();
        while !rest.is_empty() {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let (name, after) = rest.split_at(end);
            if name.is_empty() {
                return Err(AugmentError::PipelineSyntax {
                    source_name: source_name.into(),
                    message: format!("expected an operation name at `{rest}`"),
                });
            }
            let mut obj = serde_json::Map::new();
            obj.insert("op".into(), name.into());
            rest = after.trim_start();
            if let Some(args) = rest.strip_prefix('(') {
                let close = matching_paren(args).ok_or_else(|| AugmentError::PipelineSyntax {
                    source_name: source_name.into(),
                    message: format!("`{name}(`: missing `)`"),
                })?;
                for arg in split_top(&args[..close]) {
                    let (k, v) =
                        arg.split_once('=')
                            .ok_or_else(|| AugmentError::PipelineSyntax {
                                source_name: source_name.into(),
                                message: format!("`{name}`: expected key=value, got `{arg}`"),
                            })?;
                    let v = v.trim();
                    let value = serde_json::from_str(v).unwrap_or_else(|_| v.into());
                    obj.insert(k.trim().into(), value);
                }
                rest = args[close + 1..].trim_start();
            }
            rest = rest.trim_start_matches(|c: char| c == '+' || c == ',' || c.is_whitespace());
            steps.push(serde_json::Value::Object(obj));
        }
        let value = serde_json::json!({ "seed": seed, "steps": steps });
        Self::from_value(value, source_name)
    }

    fn from_value(value: serde_json::Value, source_name: &str) -> Result<Self> {
        check_names(&value, source_name)?;
        let file: PipelineFile =
            serde_json::from_value(value).map_err(|e| syntax(source_name, e))?;
        Self::checked(file.seed, file.steps, source_name)
    }

    /// This pipeline as JSON (loadable with [`Pipeline::from_json`]).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("pipelines serialise")
    }

    /// Draws the parameters of sample `index` in `epoch` for an input of `size`.
    ///
    /// # Errors
    /// `size` is not an image size ([`Image::new`](crate::Image::new)'s rule), or a step
    /// cannot apply to it.
    pub fn plan(&self, size: Size, epoch: u64, index: u64) -> Result<Plan> {
        if let Some(why) = crate::transforms::size_problem(size.width, size.height) {
            return Err(AugmentError::InvalidImage(why));
        }
        let key = SampleKey::new(self.seed, epoch, index);
        let mut rng = SampleRng::new(key);
        let mut ops = Vec::new();
        let mut out = size;
        for s in &self.steps {
            out = s.plan(&mut rng, out, &mut ops)?;
        }
        let plan = Plan {
            key,
            input: size,
            output: out,
            ops,
        };
        // Every size on the way within the limits (padding past them, say).
        plan.validate(size)?;
        Ok(plan)
    }

    /// Augments one image on the CPU (a final normalisation is left to [`Pipeline::apply_f32`]).
    pub fn apply(&self, img: &Image, epoch: u64, index: u64) -> Result<Image> {
        self.plan(img.size(), epoch, index)?.apply(img)
    }

    /// Augments one image and returns it as CHW floats (normalised when the pipeline ends with
    /// `normalize`, in 0..1 otherwise).
    pub fn apply_f32(&self, img: &Image, epoch: u64, index: u64) -> Result<Vec<f32>> {
        self.plan(img.size(), epoch, index)?.apply_f32(img)
    }

    /// Augments a batch on the CPU, images in parallel; image `i` is sample `first_index + i`.
    /// The result does not depend on the number of threads.
    pub fn apply_batch(
        &self,
        images: &[Image],
        epoch: u64,
        first_index: u64,
    ) -> Result<Vec<Image>> {
        images
            .par_iter()
            .enumerate()
            .map(|(i, img)| self.apply(img, epoch, first_index + i as u64))
            .collect()
    }

    /// Augments a batch on the CPU (in parallel) and stacks it into a `[B, C, H, W]` tensor.
    /// All outputs must have one size and channel count.
    pub fn to_tensor<B: Backend>(
        &self,
        images: &[Image],
        epoch: u64,
        first_index: u64,
        device: &B::Device,
    ) -> Result<Tensor<B, 4>> {
        let plans = self.plans(images, epoch, first_index)?;
        let (c, size) = batch_shape(images, &plans)?;
        let per = c * size.width * size.height;
        let mut buf = vec![0f32; per * images.len()];
        buf.par_chunks_mut(per)
            .zip(images.par_iter().zip(plans.par_iter()))
            .for_each(|(out, (img, plan))| {
                let aug = cpu::execute(&plan.ops, img);
                cpu::to_chw(&aug, plan.normalization(), out);
            });
        let data = TensorData::new(buf, [images.len(), c, size.height, size.width]);
        Ok(Tensor::from_data(data, device))
    }

    /// The plans of a batch (image `i` is sample `first_index + i`).
    pub fn plans(&self, images: &[Image], epoch: u64, first_index: u64) -> Result<Vec<Plan>> {
        images
            .iter()
            .enumerate()
            .map(|(i, img)| self.plan(img.size(), epoch, first_index + i as u64))
            .collect()
    }
}

/// The channel count and output size shared by a batch, or an error naming the odd one out.
pub(crate) fn batch_shape(images: &[Image], plans: &[Plan]) -> Result<(usize, Size)> {
    let (Some(first), Some(p0)) = (images.first(), plans.first()) else {
        return Err(AugmentError::Batch("no images".into()));
    };
    for (i, (img, p)) in images.iter().zip(plans).enumerate() {
        if img.channels() != first.channels() || p.output != p0.output {
            return Err(AugmentError::Batch(format!(
                "image {i} comes out {}x{} with {} channels, image 0 {}x{} with {}",
                p.output.width,
                p.output.height,
                img.channels(),
                p0.output.width,
                p0.output.height,
                first.channels()
            )));
        }
    }
    Ok((first.channels(), p0.output))
}

fn syntax(source_name: &str, e: impl std::fmt::Display) -> AugmentError {
    AugmentError::PipelineSyntax {
        source_name: source_name.into(),
        message: e.to_string(),
    }
}

/// Rejects unknown operation names with a list of the known ones (serde's message for an
/// internally tagged enum is less direct).
fn check_names(value: &serde_json::Value, source_name: &str) -> Result<()> {
    match value {
        serde_json::Value::Object(map) => {
            if let Some(op) = map.get("op") {
                let name = op.as_str().unwrap_or_default();
                if !OPERATIONS.contains(&name) {
                    return Err(AugmentError::UnknownOperation {
                        source_name: source_name.into(),
                        name: op.to_string().trim_matches('"').into(),
                        known: OPERATIONS.join(", "),
                    });
                }
            }
            map.values().try_for_each(|v| check_names(v, source_name))
        }
        serde_json::Value::Array(items) => {
            items.iter().try_for_each(|v| check_names(v, source_name))
        }
        _ => Ok(()),
    }
}

fn matching_paren(s: &str) -> Option<usize> {
    let mut depth = 0i32;
    for (i, ch) in s.char_indices() {
        match ch {
            '(' | '[' | '{' => depth += 1,
            ']' | '}' => depth -= 1,
            ')' if depth == 0 => return Some(i),
            ')' => depth -= 1,
            _ => {}
        }
    }
    None
}

fn split_top(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, ch) in s.char_indices() {
        match ch {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(s[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(s[start..].trim());
    parts.into_iter().filter(|p| !p.is_empty()).collect()
}
