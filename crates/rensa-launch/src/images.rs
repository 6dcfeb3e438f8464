//! What the image examples (`vae`, `vq-vae`) share: the data options and their loading, the
//! checkpoint options, and tensors read back as rows of pixels for the pictures.

use anyhow::{Context, Result, bail};
use burn::tensor::Tensor;
use rensa_data::idx::{Labelled, Split, read_mnist_dir};
use rensa_train::Checkpoints;
use std::path::{Path, PathBuf};

use crate::Inner;

/// Fashion-MNIST's classes, in label order.
pub const FASHION_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// Where the images come from (flatten into an example's arguments).
#[derive(clap::Args, Clone, Debug)]
pub struct ImageData {
    /// Folder of the four MNIST-style IDX files (raw or .gz): MNIST, Fashion-MNIST or your own.
    /// Default: Fashion-MNIST, fetched on first use into rensa's data cache.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Train on the first N training images only (default: all).
    #[arg(long)]
    pub train: Option<usize>,
    /// Test on the first N test images only (default: all).
    #[arg(long)]
    pub test: Option<usize>,
}

impl ImageData {
    /// The data set, cut to `--train` / `--test`.
    ///
    /// # Errors
    /// The files cannot be fetched or read, or fewer training images than one batch of
    /// `batch_size`, or no test image.
    pub fn load(&self, batch_size: usize) -> Result<Split> {
        let dir = match &self.data {
            Some(dir) => dir.clone(),
            None => rensa_data::fetch::fashion_mnist()?,
        };
        let split = read_mnist_dir(&dir)
            .with_context(|| format!("cannot read the IDX files in {}", dir.display()))?;
        // no copy of the full set when no cut is asked for
        let cut = |set: Labelled, n: Option<usize>| match n {
            Some(n) => set.take(n),
            None => set,
        };
        let split = Split {
            train: cut(split.train, self.train),
            test: cut(split.test, self.test),
        };
        if split.train.len() < batch_size || split.test.is_empty() {
            bail!(
                "{} training images for batches of {} and {} test images: need at least a batch and one test image",
                split.train.len(),
                batch_size,
                split.test.len()
            );
        }
        Ok(split)
    }

    /// The names of the classes: Fashion-MNIST's for the default data, numbers for a folder.
    pub fn class_names(&self, classes: usize) -> Vec<String> {
        if self.data.is_none() {
            FASHION_CLASSES.iter().map(|s| s.to_string()).collect()
        } else {
            (0..classes).map(|c| c.to_string()).collect()
        }
    }
}

/// How a run keeps and resumes its checkpoints (flatten into an example's arguments).
#[derive(clap::Args, Clone, Debug)]
pub struct Resume {
    /// Save a checkpoint every this many epochs (and after the last one).
    #[arg(long, default_value_t = 1, value_parser = crate::at_least_one)]
    pub checkpoint_every: usize,
    /// Continue the run saved in `--out` up to `--epochs`.
    #[arg(long)]
    pub resume: bool,
    /// With --resume: go on even if the settings differ from those the run was saved with.
    #[arg(long, requires = "resume")]
    pub force: bool,
    /// Start afresh even if `--out` holds a checkpoint.
    #[arg(long, conflicts_with = "resume")]
    pub overwrite: bool,
}

impl Resume {
    /// The checkpoints of a run in `dir`, as the options say.
    pub fn checkpoints(&self, dir: &Path) -> Checkpoints {
        Checkpoints::new(dir, self.checkpoint_every)
            .resuming(self.resume)
            .forcing(self.force)
            .overwriting(self.overwrite)
    }
}

/// The rows of a `[n, d]` tensor as `f32` vectors (images for `rensa_train::plot::image_grid`).
pub fn rows_of(t: Tensor<Inner, 2>) -> Vec<Vec<f32>> {
    let [n, d] = t.dims();
    let v: Vec<f32> = t.into_data().convert::<f32>().to_vec().expect("f32 values");
    (0..n).map(|i| v[i * d..(i + 1) * d].to_vec()).collect()
}

/// The median of `values` (NaN for none).
pub fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        0.5 * (values[n / 2 - 1] + values[n / 2])
    }
}
