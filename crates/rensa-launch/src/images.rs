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

/// What a training run of an example needs besides its model and data.
#[derive(Clone, Copy, Debug)]
pub struct Run<'a> {
    /// Passes over the items.
    pub epochs: usize,
    /// Items per optimiser step.
    pub batch_size: usize,
    /// Adam's learning rate.
    pub lr: f64,
    /// Seed of the shuffling.
    pub seed: u64,
    /// The folder of the history, the loss curve and the checkpoints.
    pub out: &'a Path,
    /// How checkpoints are kept and resumed.
    pub resume: &'a Resume,
    /// Show a progress bar.
    pub progress: bool,
}

impl Run<'_> {
    /// Trains `model` on `items` (batched by `batcher`) with Adam in rensa-train's `Fit`, with
    /// `settings` saved beside the checkpoints (a resume with others is refused); saves the
    /// history and the loss curve (`loss.png`, titled `title`) in `out`.
    ///
    /// # Errors
    /// The folder cannot be written, a resume does not match, training fails.
    pub fn fit<M, T, X>(
        &self,
        model: M,
        settings: Vec<(&str, String)>,
        items: &[T],
        batcher: impl Fn(&[&T]) -> X,
        title: &str,
        device: &crate::Device,
    ) -> Result<(M, rensa_train::History)>
    where
        M: burn::module::AutodiffModule<crate::Train>
            + rensa_train::Objective<crate::Train, Batch = X>,
        M::InnerModule: rensa_train::Objective<Inner, Batch = X>,
    {
        std::fs::create_dir_all(self.out)
            .with_context(|| format!("cannot create the output folder {}", self.out.display()))?;
        let config = rensa_train::FitConfig::for_epochs(self.epochs, self.batch_size)
            .with_learning_rate(self.lr)
            .with_seed(self.seed);
        let (model, history) = rensa_train::Fit::new(config)
            .settings(settings)
            .checkpoints(self.resume.checkpoints(self.out))
            .progress(self.progress)
            .run(
                model,
                &mut rensa_nn::optim::FusedAdamConfig::new().init(),
                rensa_train::Items::new(items, batcher),
                device,
            )?;
        history.save(self.out)?;
        rensa_train::plot::history(&self.out.join("loss.png"), title, &history)?;
        Ok((model, history))
    }
}

/// The `("data", …)` setting of a training set: its size and a fingerprint of its pixels, so
/// that a resume on other images is refused.
pub fn data_setting(train: &Labelled) -> (&'static str, String) {
    (
        "data",
        format!(
            "{} training images, {}",
            train.len(),
            rensa_train::fingerprint(&train.images.pixels)
        ),
    )
}

/// Writes `originals` and their `reconstructed` images as a grid, eight per row, each row of
/// originals above its row of reconstructions.
///
/// # Errors
/// The picture cannot be written.
pub fn reconstruction_grid(
    path: &Path,
    originals: &[Vec<f32>],
    reconstructed: &[Vec<f32>],
    size: (usize, usize),
) -> Result<()> {
    let mut grid = Vec::new();
    for (o, r) in originals.chunks(8).zip(reconstructed.chunks(8)) {
        grid.extend_from_slice(o);
        grid.extend_from_slice(r);
    }
    rensa_train::plot::image_grid(
        path,
        "test images (odd rows) and their reconstructions (even rows)",
        &grid,
        size,
        8,
        3,
    )?;
    Ok(())
}
