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

    /// Checks the source against the settings of a data-parallel run of `world` peers (see
    /// [`train_shard`](Self::train_shard)); the default, which hands whole batches out, accepts
    /// every count.
    fn check_peers(&self, config: &FitConfig, world: usize) -> Result<()> {
        let _ = (config, world);
        Ok(())
    }

    /// The training batches of `epoch` (from 1).
    fn train(&mut self, config: &FitConfig, epoch: usize) -> impl Iterator<Item = T>;

    /// The validation batches (none for no validation).
    fn valid(&mut self, config: &FitConfig) -> impl Iterator<Item = V>;

    /// Peer `rank`'s share of the training batches of `epoch` in a data-parallel run of `world`
    /// peers (see `distributed`, with the `distributed` feature): every peer gets the same number
    /// of batches, and the shares of one step never overlap.
    ///
    /// The default hands whole batches out in turn (peer `r` takes batches `r`, `r + world`, ...)
    /// and drops an incomplete last round, so one step covers `world` of the source's batches;
    /// [`Items`] overrides it to cut every batch into `world` shards instead.
    fn train_shard(
        &mut self,
        config: &FitConfig,
        epoch: usize,
        rank: usize,
        world: usize,
    ) -> impl Iterator<Item = T> {
        let mut batches = self.train(config, epoch);
        std::iter::from_fn(move || {
            let mut mine = None;
            for r in 0..world {
                let batch = batches.next()?;
                if r == rank {
                    mine = Some(batch);
                }
            }
            mine
        })
    }
}

/// Batches of a slice of items: the last `validation_split` of them are held out for
/// validation (as Keras's `validation_split` does), or the validation items are given apart
/// ([`with_validation`](Items::with_validation), as Keras's `validation_data`); the training
/// items are visited in a new order every epoch (keyed by `(seed, epoch)`, see [`shuffled`]) in
/// batches of `batch_size`. `batcher` lays a batch's items out (borrowed: the dataset is never
/// copied, only each batch's values).
///
/// Uses `batch_size`, `validation_split`, `shuffle` and `seed` of the [`FitConfig`].
pub struct Items<'a, T, F> {
    items: &'a [T],
    valid: Option<&'a [T]>,
    batcher: F,
}

impl<'a, T, F> Items<'a, T, F> {
    /// `items`, batched by `batcher`; the config's `validation_split` holds the last of them out.
    pub fn new(items: &'a [T], batcher: F) -> Self {
        Self {
            items,
            valid: None,
            batcher,
        }
    }

    /// Trains on all of `train` and validates on `valid`, both batched by `batcher`: for data
    /// whose validation items must be chosen by the caller, such as windows cut from long
    /// conversations, where holding out the last windows would put one conversation on both
    /// sides. The config's `validation_split` must then be 0; an empty `valid` means no
    /// validation.
    pub fn with_validation(train: &'a [T], valid: &'a [T], batcher: F) -> Self {
        Self {
            items: train,
            valid: Some(valid),
            batcher,
        }
    }

    fn split(&self, config: &FitConfig) -> (&'a [T], &'a [T]) {
        if let Some(valid) = self.valid {
            return (self.items, valid);
        }
        let n_train = config.check(self.items.len()).unwrap_or(self.items.len());
        self.items.split_at(n_train)
    }
}

impl<T, X, F: Fn(&[&T]) -> X> Batches<X, X> for Items<'_, T, F> {
    fn check(&self, config: &FitConfig) -> Result<()> {
        if self.valid.is_some() && config.validation_split != 0.0 {
            return Err(Error::config(
                "validation_split",
                "0 when the validation items are given apart (Items::with_validation)",
                config.validation_split,
            ));
        }
        config.check(self.items.len()).map(|_| ())
    }

    /// Every batch is cut into one shard per peer: a batch needs at least `world` items.
    fn check_peers(&self, config: &FitConfig, world: usize) -> Result<()> {
        if config.batch_size < world {
            return Err(Error::config(
                "batch_size",
                format!("at least the number of peers ({world})"),
                config.batch_size,
            ));
        }
        Ok(())
    }

    fn train(&mut self, config: &FitConfig, epoch: usize) -> impl Iterator<Item = X> {
        self.train_shard(config, epoch, 0, 1)
    }

    /// Every batch (as [`train`](Batches::train) makes it) cut into `world` contiguous shards
    /// whose sizes differ by at most one item; peer `rank` gets shard `rank`. A batch of fewer
    /// than `world` items (an epoch's last) is skipped by every peer.
    fn train_shard(
        &mut self,
        config: &FitConfig,
        epoch: usize,
        rank: usize,
        world: usize,
    ) -> impl Iterator<Item = X> {
        let (train, _) = self.split(config);
        let order: Vec<usize> = if config.shuffle {
            shuffled(train.len(), config.seed, epoch)
        } else {
            (0..train.len()).collect()
        };
        let batcher = &self.batcher;
        let size = config.batch_size.max(1);
        let world = world.max(1);
        (0..order.len().div_ceil(size)).filter_map(move |b| {
            let chunk = &order[b * size..((b + 1) * size).min(order.len())];
            let m = chunk.len();
            if m < world {
                return None;
            }
            let shard = &chunk[m * rank / world..m * (rank + 1) / world];
            let refs: Vec<&T> = shard.iter().map(|&i| &train[i]).collect();
            Some(batcher(&refs))
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
///
/// A resumed run sees epoch `e`'s batches only if `train(e)` makes them from `e` alone: a burn
/// `DataLoader` that shuffles keeps one generator that each `iter()` advances and that no
/// checkpoint saves, so a resume replays the first epoch's order (build the loader for epoch
/// `e` with a seed keyed by `e`, or use [`Items`], for a resume that ends as an uninterrupted
/// run does).
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
