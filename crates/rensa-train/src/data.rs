//! Where [`Fit`](crate::Fit) gets its batches.

use crate::{Error, FitConfig, Result, shuffled};

/// A source of training and validation batches for [`Fit`](crate::Fit).
///
/// Two are provided: [`Items`] batches a slice of items itself (shuffled per epoch, a Keras-style
/// validation split), and [`Loaders`] takes batches made elsewhere (a burn `DataLoader`, a
/// sampler, any iterator).
pub trait Batches<T, V> {
    /// Checks the source against the settings before any work; the default accepts everything.
    fn check(&self, config: &FitConfig) -> Result<()> {
        let _ = config;
        Ok(())
    }

    /// The training batches of `epoch` (from 1).
    fn train(&mut self, config: &FitConfig, epoch: usize) -> impl Iterator<Item = T>;

    /// The validation batches (none for no validation).
    fn valid(&mut self, config: &FitConfig) -> impl Iterator<Item = V>;
}

/// Batches of a slice of items: the last `validation_split` of them are held out for
/// validation (as Keras's `validation_split` does), the rest are visited in a new order every
/// epoch (keyed by `(seed, epoch)`, see [`shuffled`]) in batches of `batch_size`. `batcher`
/// lays a batch's items out (borrowed: the dataset is never copied, only each batch's values).
///
/// Uses `batch_size`, `validation_split`, `shuffle` and `seed` of the [`FitConfig`].
pub struct Items<'a, T, F> {
    items: &'a [T],
    batcher: F,
}

impl<'a, T, F> Items<'a, T, F> {
    /// `items`, batched by `batcher`.
    pub fn new(items: &'a [T], batcher: F) -> Self {
        Self { items, batcher }
    }

    fn split(&self, config: &FitConfig) -> (&'a [T], &'a [T]) {
        let n_train = config.check(self.items.len()).unwrap_or(self.items.len());
        self.items.split_at(n_train)
    }
}

impl<T, X, F: Fn(&[&T]) -> X> Batches<X, X> for Items<'_, T, F> {
    fn check(&self, config: &FitConfig) -> Result<()> {
        config.check(self.items.len()).map(|_| ())
    }

    fn train(&mut self, config: &FitConfig, epoch: usize) -> impl Iterator<Item = X> {
        let (train, _) = self.split(config);
        let order: Vec<usize> = if config.shuffle {
            shuffled(train.len(), config.seed, epoch)
        } else {
            (0..train.len()).collect()
        };
        let batcher = &self.batcher;
        let size = config.batch_size.max(1);
        (0..order.len().div_ceil(size)).map(move |b| {
            let chunk = &order[b * size..((b + 1) * size).min(order.len())];
            let refs: Vec<&T> = chunk.iter().map(|&i| &train[i]).collect();
            batcher(&refs)
        })
    }

    fn valid(&mut self, config: &FitConfig) -> impl Iterator<Item = X> {
        let (_, valid) = self.split(config);
        let batcher = &self.batcher;
        valid.chunks(config.batch_size.max(1)).map(move |chunk| {
            let refs: Vec<&T> = chunk.iter().collect();
            batcher(&refs)
        })
    }
}

/// Batches made elsewhere: `train(epoch)` gives an epoch's training batches (`|_| loader.iter()`
/// for a burn `DataLoader`, which shuffles itself), `valid()` the validation batches (an empty
/// iterator for none). Batching, shuffling and the split are the iterators' business; of the
/// [`FitConfig`] only `epochs`, `seed` and `patience` apply.
pub struct Loaders<FT, FV> {
    train: FT,
    valid: FV,
}

impl<FT, FV> Loaders<FT, FV> {
    /// The two batch sources.
    pub fn new(train: FT, valid: FV) -> Self {
        Self { train, valid }
    }
}

impl<T, V, IT, IV, FT, FV> Batches<T, V> for Loaders<FT, FV>
where
    FT: FnMut(usize) -> IT,
    FV: FnMut() -> IV,
    IT: IntoIterator<Item = T>,
    IV: IntoIterator<Item = V>,
{
    fn train(&mut self, _: &FitConfig, epoch: usize) -> impl Iterator<Item = T> {
        (self.train)(epoch).into_iter()
    }

    fn valid(&mut self, _: &FitConfig) -> impl Iterator<Item = V> {
        (self.valid)().into_iter()
    }
}

/// The error of an epoch without training batches.
pub(crate) fn no_batches(epoch: usize) -> Error {
    Error::config(
        "training batches",
        "at least one non-empty batch per epoch",
        format!("none in epoch {epoch}"),
    )
}
