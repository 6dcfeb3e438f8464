//! The training loop: [`Fit`].

use burn::lr_scheduler::LrScheduler;
use burn::lr_scheduler::constant::ConstantLr;
use burn::module::{AutodiffModule, Module};
use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use indicatif::ProgressBar;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use crate::checkpoint::{self, Checkpoints, Contents, Settings};
use crate::data::no_batches;
use crate::guard::non_finite_weights;
use crate::history::best_index;
use crate::{Batches, EpochRecord, Error, FitConfig, History, Objective, SplitMix64, StepInfo};

/// A caller's hook run after every epoch ([`Fit::on_epoch`]).
type EpochHook<'a> = Box<dyn FnMut(&EpochRecord) + 'a>;
/// A caller's rule that ends training after an epoch ([`Fit::stop_when`]).
type StopRule<'a> = Box<dyn FnMut(&EpochRecord) -> bool + 'a>;
/// What a caller writes once the run is admitted ([`Fit::on_start`]).
type StartHook<'a> = Box<dyn FnOnce() -> std::result::Result<(), crate::BoxError> + 'a>;

/// The training loop, configured step by step and run once.
///
/// ```no_run
/// # use burn::backend::{Autodiff, NdArray};
/// # use burn::optim::AdamConfig;
/// # use rensa_train::{Checkpoints, Fit, FitConfig, Items, Objective};
/// # fn demo<M, T>(model: M, items: &[T], batcher: impl Fn(&[&T]) -> M::Batch)
/// # where
/// #     M: burn::module::AutodiffModule<Autodiff<NdArray>> + Objective<Autodiff<NdArray>>,
/// #     M::InnerModule: Objective<NdArray, Batch = M::Batch>,
/// # {
/// let config = FitConfig::for_epochs(80, 16).with_validation_split(0.2);
/// let mut optimizer = AdamConfig::new().init();
/// let (model, history) = Fit::new(config)
///     .checkpoints(Checkpoints::new("runs/demo", 10))
///     .progress(true)
///     .on_epoch(|e| println!("epoch {} loss {:.5}", e.epoch, e.loss))
///     .run(model, &mut optimizer, Items::new(items, batcher), &Default::default())
///     .unwrap();
/// # }
/// ```
///
/// Every epoch seeds the backend with a hash of `(seed, epoch)` ([`backend_seed`]);
/// [`Items`](crate::Items) shuffles by `(seed, epoch)`, so a run resumed from a checkpoint ends with the same weights as an
/// uninterrupted one. A batch whose loss is NaN or infinite stops the run with
/// [`Error::NonFiniteLoss`] before any step is taken with it; weights that hold a NaN or an
/// infinity after a step, and a non-finite validation loss or metric, stop it with
/// [`Error::NonFinite`] before anything is saved: the last good checkpoint stays as it was, and
/// when the last finished epoch's checkpoint was not due (checkpoints every few epochs), that
/// epoch is saved as it ended, so the run leaves its last good state.
///
/// The run's settings (those of its [`FitConfig`] but the number of epochs, the patience and
/// `restore_best`; the learning-rate scheduler's type; and whatever the caller adds with
/// [`settings`](Fit::settings): the model's shape, the optimiser, a data fingerprint, the
/// schedule's parameters) are saved with every checkpoint; a resume with other ones is
/// [`Error::SettingsChanged`] unless forced ([`Checkpoints::forcing`]), and a fresh run into a
/// folder that holds a checkpoint is [`Error::CheckpointExists`] unless
/// [`Checkpoints::overwriting`].
pub struct Fit<'a, S = ConstantLr> {
    config: FitConfig,
    settings: Settings,
    checkpoints: Option<Checkpoints>,
    scheduler: S,
    on_epoch: Option<EpochHook<'a>>,
    stop_when: Option<StopRule<'a>>,
    on_start: Option<StartHook<'a>>,
    progress: bool,
    #[cfg(feature = "distributed")]
    peer: Option<crate::distributed::Peer>,
}

impl<'a> Fit<'a> {
    /// A loop with `config`'s settings and its constant learning rate.
    pub fn new(config: FitConfig) -> Self {
        Self {
            scheduler: ConstantLr::new(config.learning_rate),
            config,
            settings: Settings::new(),
            checkpoints: None,
            on_epoch: None,
            stop_when: None,
            on_start: None,
            progress: false,
            #[cfg(feature = "distributed")]
            peer: None,
        }
    }
}

/// The numbers of one step, read from the device.
struct StepValues {
    loss: f64,
    items: usize,
    parts: Vec<(String, f64)>,
    metrics: Vec<(String, f64)>,
}

/// Item-weighted sums over an epoch's (or a validation pass's) batches.
#[derive(Default)]
struct Sums {
    loss: f64,
    items: usize,
    /// Each part's or metric's item-weighted sum and the items of the batches that reported it
    /// (a metric a model reports on some batches only is the mean over those).
    named: BTreeMap<String, (f64, usize)>,
}

impl Sums {
    fn add(&mut self, v: &StepValues) {
        let w = v.items as f64;
        self.loss += v.loss * w;
        self.items += v.items;
        for (name, value) in v.parts.iter().chain(&v.metrics) {
            let (sum, items) = self.named.entry(name.clone()).or_default();
            *sum += value * w;
            *items += v.items;
        }
    }

    fn mean_loss(&self) -> Option<f64> {
        (self.items > 0).then(|| self.loss / self.items as f64)
    }

    fn means<'s>(&'s self, prefix: &'s str) -> impl Iterator<Item = (String, f64)> + 's {
        self.named.iter().map(move |(name, &(sum, items))| {
            (format!("{prefix}{name}"), sum / items.max(1) as f64)
        })
    }
}

/// How the loop shares its work: [`Alone`], or as a peer of a data-parallel run.
trait Role {
    /// This peer's place and the number of peers.
    fn place(&self) -> (usize, usize) {
        (0, 1)
    }

    /// The validation figures every peer goes on with (the same on all).
    fn agree(&self, sums: Sums) -> crate::Result<Sums> {
        Ok(sums)
    }

    /// Whether any peer says stop.
    fn any(&self, stop: bool) -> crate::Result<bool> {
        Ok(stop)
    }
}

/// A run of one.
struct Alone;

impl Role for Alone {}

/// A peer; its collective calls run on the inner backend `I`.
#[cfg(feature = "distributed")]
struct Team<'p, I: Backend> {
    peer: &'p crate::distributed::Peer,
    device: I::Device,
}

#[cfg(feature = "distributed")]
impl<I: Backend> Role for Team<'_, I> {
    fn place(&self) -> (usize, usize) {
        (self.peer.rank(), self.peer.world())
    }

    /// The mean over the peers of their validation sums (each ran every validation batch, so
    /// they differ at most by rounding; the mean makes them equal).
    fn agree(&self, sums: Sums) -> crate::Result<Sums> {
        let mut values = vec![sums.loss, sums.items as f64];
        values.extend(
            sums.named
                .values()
                .flat_map(|&(sum, items)| [sum, items as f64]),
        );
        let summed = self.peer.sum_values::<I>(&values, &self.device)?;
        let n = self.peer.world() as f64;
        Ok(Sums {
            loss: summed[0] / n,
            items: (summed[1] / n).round() as usize,
            named: sums
                .named
                .keys()
                .zip(summed[2..].chunks_exact(2))
                .map(|(k, v)| (k.clone(), (v[0] / n, (v[1] / n).round() as usize)))
                .collect(),
        })
    }

    fn any(&self, stop: bool) -> crate::Result<bool> {
        let votes = self
            .peer
            .sum_values::<I>(&[if stop { 1.0 } else { 0.0 }], &self.device)?;
        Ok(votes[0] > 0.5)
    }
}

fn values<B: Backend, M>(output: &crate::Output<B, M>) -> crate::Result<StepValues> {
    let (loss, parts) = output.values()?;
    Ok(StepValues {
        loss,
        items: output.items,
        parts,
        metrics: output.metrics.clone(),
    })
}

/// The guard against training on a NaN or infinite loss: no step is taken with it.
fn check_finite(values: &StepValues, at: &StepInfo) -> crate::Result<()> {
    if values.loss.is_finite() {
        Ok(())
    } else {
        Err(Error::NonFiniteLoss {
            epoch: at.epoch,
            batch: at.batch,
            value: values.loss,
        })
    }
}

/// The guard against weights that hold a NaN or an infinity after the step `at`.
fn check_weights<B: Backend, M: Module<B>>(model: &M, at: &StepInfo) -> crate::Result<()> {
    match non_finite_weights(model) {
        None => Ok(()),
        Some(names) => Err(Error::NonFinite {
            what: format!("the weights ({})", names.join(", ")),
            epoch: at.epoch,
            step: at.step + 1,
            value: f64::NAN,
        }),
    }
}

/// The guard against a non-finite validation loss or metric (training metrics too): the run
/// stops before the epoch is recorded or saved.
fn check_record(record: &EpochRecord, step: usize) -> crate::Result<()> {
    let values = record
        .val_loss
        .map(|v| ("val_loss", v))
        .into_iter()
        .chain(record.metrics.iter().map(|(k, &v)| (k.as_str(), v)));
    for (what, value) in values {
        if !value.is_finite() {
            return Err(Error::NonFinite {
                what: what.to_string(),
                epoch: record.epoch,
                step,
                value,
            });
        }
    }
    Ok(())
}

/// The validation pass: item-weighted means of the loss, parts and metrics over `batches`.
fn validate<B: Backend, V: Objective<B>>(
    model: &V,
    batches: impl Iterator<Item = V::Batch>,
    epoch: usize,
    step: usize,
) -> crate::Result<Sums> {
    let mut sums = Sums::default();
    for (b, batch) in batches.enumerate() {
        let at = StepInfo {
            epoch,
            step,
            batch: b + 1,
            lr: f64::NAN,
            training: false,
        };
        sums.add(&values(&model.step(&batch, &at))?);
    }
    Ok(sums)
}

impl<'a, S: LrScheduler> Fit<'a, S> {
    /// Saves [`Checkpoints`] (model, optimiser and schedule state, history) every
    /// `checkpoints.every` epochs and after the last one, or resumes from one.
    pub fn checkpoints(mut self, checkpoints: Checkpoints) -> Self {
        self.checkpoints = Some(checkpoints);
        self
    }

    /// Takes every step's learning rate from `scheduler` (any of burn's `LrScheduler`s: step,
    /// exponential, cosine annealing, linear, Noam, or their composition), whose state is saved
    /// in the checkpoints along with the model's and the optimiser's.
    pub fn scheduler<S2: LrScheduler>(self, scheduler: S2) -> Fit<'a, S2> {
        Fit {
            config: self.config,
            settings: self.settings,
            checkpoints: self.checkpoints,
            scheduler,
            on_epoch: self.on_epoch,
            stop_when: self.stop_when,
            on_start: self.on_start,
            progress: self.progress,
            #[cfg(feature = "distributed")]
            peer: self.peer,
        }
    }

    /// Adds settings of the run to those saved with its checkpoints and compared on resume
    /// (the model's shape, the optimiser and its clipping, a fingerprint of the data): name and
    /// value, e.g. `("hidden", 10)`.
    pub fn settings<K: Into<String>, V: std::fmt::Display>(
        mut self,
        settings: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        for (k, v) in settings {
            self.settings.insert(k.into(), v.to_string());
        }
        self
    }

    /// The settings saved with the checkpoints: the [`FitConfig`]'s but `epochs`, `patience` and
    /// `restore_best` (a resume may go on longer, wait longer or keep the best model too), the
    /// learning-rate scheduler's type (its parameters are the caller's to add: burn's schedulers
    /// do not describe themselves), and the caller's.
    fn all_settings(&self) -> Settings {
        let c = &self.config;
        let mut all: Settings = [
            ("batch_size", c.batch_size.to_string()),
            ("validation_split", c.validation_split.to_string()),
            ("shuffle", c.shuffle.to_string()),
            ("seed", c.seed.to_string()),
            ("learning_rate", c.learning_rate.to_string()),
            ("lr_scheduler", std::any::type_name::<S>().to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        all.extend(self.settings.clone());
        all
    }

    /// Calls `f` after every epoch with its record.
    pub fn on_epoch(mut self, f: impl FnMut(&EpochRecord) + 'a) -> Self {
        self.on_epoch = Some(Box::new(f));
        self
    }

    /// Stops after the first epoch for which `f` says so (e.g. a metric reached its goal); a
    /// checkpoint is saved then, and a resume of the run asks `f` again about its last epoch
    /// (a run that stopped stays stopped).
    pub fn stop_when(mut self, f: impl FnMut(&EpochRecord) -> bool + 'a) -> Self {
        self.stop_when = Some(Box::new(f));
        self
    }

    /// Calls `f` once the run is admitted (the settings fit the data; a resume's checkpoint loaded
    /// and its settings match; a fresh run overwrites no checkpoint, or may) and before its
    /// first step: the place to write what belongs beside the checkpoints (a vocabulary, the
    /// model's description), so that a refused run leaves the folder as it was. Its error stops
    /// the run as [`Error::Start`].
    pub fn on_start<E: Into<crate::BoxError>>(
        mut self,
        f: impl FnOnce() -> std::result::Result<(), E> + 'a,
    ) -> Self {
        self.on_start = Some(Box::new(move || f().map_err(Into::into)));
        self
    }

    /// Shows a progress bar over the epochs on stderr, with the loss, the validation loss, the
    /// parts of the loss and the throughput of the last epoch (hidden when stderr is not a
    /// terminal).
    pub fn progress(mut self, show: bool) -> Self {
        self.progress = show;
        self
    }

    /// Trains as `peer` of a data-parallel run ([`distributed`](crate::distributed)): this
    /// peer's shard of every batch, gradients summed over the peers before every step, the same
    /// parameters on every peer; only the leader writes checkpoints. [`run`](Self::run) only.
    #[cfg(feature = "distributed")]
    pub fn distributed(mut self, peer: crate::distributed::Peer) -> Self {
        self.peer = Some(peer);
        self
    }

    /// Trains an autodiff model with a burn optimiser: for every training batch, the model's
    /// [`Objective::step`], the gradients of its loss, the optimiser's step with the scheduler's
    /// learning rate, then the step's own update if it has one (a VQ-VAE's EMA codebook). The
    /// validation batches are run on `model.valid()` after every epoch.
    ///
    /// Weight decay and gradient clipping are options of burn's optimisers
    /// (`AdamConfig::with_weight_decay`, `with_grad_clipping`) and apply as configured.
    ///
    /// # Errors
    /// A [`Error::Config`] before any work when a setting does not fit the data; a
    /// [`Error::NonFiniteLoss`] as soon as a batch loss is NaN or infinite; I/O and format errors
    /// of the checkpoint.
    pub fn run<B, M, O, D>(
        mut self,
        model: M,
        optimizer: &mut O,
        mut data: D,
        device: &B::Device,
    ) -> crate::Result<(M, History)>
    where
        B: AutodiffBackend,
        M: AutodiffModule<B> + Objective<B>,
        M::InnerModule: Objective<B::InnerBackend>,
        O: Optimizer<M, B>,
        D: Batches<M::Batch, <M::InnerModule as Objective<B::InnerBackend>>::Batch>,
    {
        #[cfg(feature = "distributed")]
        if let Some(peer) = self.peer.clone() {
            return self.run_peer(peer, model, optimizer, data, device);
        }
        let (model, record, history, best) =
            self.start::<B, M, O::Record, _, _>(model, &data, device)?;
        let mut resumed = None;
        if let Some((record, file)) = record {
            *optimizer = optimizer.clone().load_record(record);
            resumed = Some(file);
        }
        let optimizer = std::cell::RefCell::new(optimizer);
        self.drive::<B, M, _, _, _, _>(
            (model, history, best),
            &mut data,
            device,
            Alone,
            |model, mut output, values, at| {
                check_finite(&values, at)?;
                let update = output.take_update();
                let grads = GradientsParams::from_grads(output.loss.backward(), &model);
                let mut model = optimizer_step(&mut resumed, model, |model| {
                    optimizer.borrow_mut().step(at.lr, model, grads)
                })?;
                if let Some(update) = update {
                    model = update(model);
                }
                check_weights(&model.valid(), at)?;
                Ok((model, values))
            },
            |model, batches, epoch, step| validate(&model.valid(), batches, epoch, step),
            || optimizer.borrow().to_record(),
        )
    }

    /// [`run`](Self::run) as a peer of a data-parallel run.
    #[cfg(feature = "distributed")]
    fn run_peer<B, M, O, D>(
        mut self,
        peer: crate::distributed::Peer,
        model: M,
        optimizer: &mut O,
        mut data: D,
        device: &B::Device,
    ) -> crate::Result<(M, History)>
    where
        B: AutodiffBackend,
        M: AutodiffModule<B> + Objective<B>,
        M::InnerModule: Objective<B::InnerBackend>,
        O: Optimizer<M, B>,
        D: Batches<M::Batch, <M::InnerModule as Objective<B::InnerBackend>>::Batch>,
    {
        use crate::distributed::{fnv, reduce_step, weights_checksum};
        type Inner<B> = <B as AutodiffBackend>::InnerBackend;
        // Fresh autodiff leaves: local peers handed clones of one model would otherwise share
        // their parameters' graph nodes, and burn's autodiff would join (and lock) their graphs.
        let model = model.fork(device);
        // refused before the run is admitted, so that the caller's on_start writes nothing
        data.check_peers(&self.config, peer.world())?;
        let (model, record, history, best) =
            self.start::<B, M, O::Record, _, _>(model, &data, device)?;
        let mut resumed = None;
        if let Some((record, file)) = record {
            *optimizer = optimizer.clone().load_record(record);
            resumed = Some(file);
        }
        peer.register::<Inner<B>>(device)?;
        let result = (|| {
            // the same model, settings and place in the run on every peer, before any step
            let mut entries: Vec<(String, u64)> = self
                .all_settings()
                .into_iter()
                .map(|(k, v)| (format!("setting `{k}`"), fnv(v.as_bytes())))
                .collect();
            let shapes = format!("{:?}", crate::parameter_shapes(&model));
            entries.push(("parameter shapes".into(), fnv(shapes.as_bytes())));
            entries.push(("weights".into(), weights_checksum(&model)));
            // a peer that stopped earlier would leave the others without it
            entries.push(("epochs".into(), self.config.epochs as u64));
            let patience = format!("{:?}", self.config.patience);
            entries.push(("patience".into(), fnv(patience.as_bytes())));
            entries.push((
                "epochs done (resumed from different checkpoints?)".into(),
                history.epochs.len() as u64,
            ));
            peer.agree::<Inner<B>>(&entries, device)?;
            let optimizer = std::cell::RefCell::new(&mut *optimizer);
            let team = Team::<Inner<B>> {
                peer: &peer,
                device: device.clone(),
            };
            self.drive::<B, M, _, _, _, _>(
                (model, history, best),
                &mut data,
                device,
                team,
                |model, mut output, values, at| {
                    if output.take_update().is_some() {
                        return Err(Error::config(
                            "the step's output",
                            "no update of the model's own state (Output::with_update) in \
                             data-parallel training, where each peer's update would differ",
                            "an update",
                        ));
                    }
                    let grads = GradientsParams::from_grads(output.loss.backward(), &model);
                    let mut tail = vec![values.loss];
                    tail.extend(values.parts.iter().chain(&values.metrics).map(|(_, v)| *v));
                    let (grads, items, means) =
                        reduce_step::<B, M>(&peer, &model, grads, values.items, &tail, device)?;
                    let named = |list: &[(String, f64)], from: usize| -> Vec<(String, f64)> {
                        list.iter()
                            .zip(&means[from..])
                            .map(|((k, _), &v)| (k.clone(), v))
                            .collect()
                    };
                    let values = StepValues {
                        loss: means[0],
                        items,
                        parts: named(&values.parts, 1),
                        metrics: named(&values.metrics, 1 + values.parts.len()),
                    };
                    // every peer sees the same summed loss, so all stop here together
                    check_finite(&values, at)?;
                    let model = optimizer_step(&mut resumed, model, |model| {
                        optimizer.borrow_mut().step(at.lr, model, grads)
                    })?;
                    check_weights(&model.valid(), at)?;
                    Ok((model, values))
                },
                |model, batches, epoch, step| validate(&model.valid(), batches, epoch, step),
                || optimizer.borrow().to_record(),
            )
        })();
        peer.finish::<Inner<B>>(result.is_ok());
        result
    }

    /// Trains a model that updates itself: every training batch's [`Output`](crate::Output)
    /// must carry the update ([`Output::with_update`](crate::Output::with_update)), e.g. a
    /// gradient step computed by a hand-written backward pass with the step's learning rate
    /// ([`StepInfo::lr`]). No autodiff backend is needed. Validation runs the model itself.
    /// Checkpoints hold the model, the schedule and the history.
    ///
    /// # Errors
    /// As [`run`](Self::run); also a [`Error::Config`] when a training step returns no update.
    pub fn run_manual<B: Backend, M: Module<B> + Objective<B>>(
        mut self,
        model: M,
        mut data: impl Batches<M::Batch, M::Batch>,
        device: &B::Device,
    ) -> crate::Result<(M, History)> {
        #[cfg(feature = "distributed")]
        if self.peer.is_some() {
            return Err(Error::config(
                "the training loop",
                "Fit::run for data-parallel training",
                "Fit::run_manual",
            ));
        }
        let (model, _, history, best) = self.start::<B, M, (), _, _>(model, &data, device)?;
        self.drive::<B, M, (), _, _, _>(
            (model, history, best),
            &mut data,
            device,
            Alone,
            |model, mut output, values, at| {
                check_finite(&values, at)?;
                let update = output.take_update().ok_or_else(|| {
                    Error::config(
                        "the step's output",
                        "an update (Output::with_update) on every training batch of Fit::run_manual",
                        "none",
                    )
                })?;
                let model = update(model);
                check_weights(&model, at)?;
                Ok((model, values))
            },
            |model, batches, epoch, step| validate(model, batches, epoch, step),
            || (),
        )
    }

    /// Checks the settings against the data, then, when resuming: the checkpoint's model,
    /// optimiser record and history (its settings checked against this run's), its schedule
    /// state restored in place. Otherwise `model` as it is and an empty history, after checking
    /// that no checkpoint would be overwritten. With `restore_best`, also the best epoch's model
    /// so far (the checkpoint's, or none before any epoch).
    /// Then the caller's [`on_start`](Self::on_start).
    fn start<B: Backend, M: Module<B>, R: burn::record::Record<B>, T, V>(
        &mut self,
        model: M,
        data: &impl Batches<T, V>,
        device: &B::Device,
    ) -> crate::Result<Admitted<M, R>> {
        let admitted = self.admit(model, data, device)?;
        if let Some(f) = self.on_start.take() {
            f().map_err(Error::Start)?;
        }
        Ok(admitted)
    }

    fn admit<B: Backend, M: Module<B>, R: burn::record::Record<B>, T, V>(
        &mut self,
        model: M,
        data: &impl Batches<T, V>,
        device: &B::Device,
    ) -> crate::Result<Admitted<M, R>> {
        self.check(data)?;
        let Some(c) = self.checkpoints.clone() else {
            return Ok((model, None, History::default(), None));
        };
        if !c.resume {
            if let Some(saved) = c.latest()?
                && !c.overwrite
            {
                return Err(Error::CheckpointExists {
                    path: saved.path.display().to_string(),
                    epoch: saved.epoch,
                });
            }
            return Ok((model, None, History::default(), None));
        }
        // settings first: a model of another shape would otherwise fail to load with a message
        // about tensor shapes instead of naming the setting that changed
        if !c.force
            && let Some(latest) = c.latest()?
        {
            let differences = checkpoint::differences(&latest.settings()?, &self.all_settings());
            if !differences.is_empty() {
                return Err(Error::SettingsChanged {
                    path: latest.path.display().to_string(),
                    differences,
                });
            }
        }
        // a template for the best model's weights (they overwrite whatever it holds)
        let template = self.config.restore_best.then(|| model.clone());
        let (model, record, schedule, mut history, saved) =
            checkpoint::load::<B, M, R, S::Record<B>>(&c, model, device)?;
        let epoch = saved.epoch;
        // the history must be the checkpoint's own: one record per epoch up to the saved one
        let numbers: Vec<usize> = history.epochs.iter().map(|e| e.epoch).collect();
        if numbers != (1..=epoch).collect::<Vec<_>>() {
            return Err(Error::Format {
                path: saved.path.join("history.json").display().to_string(),
                message: format!(
                    "the history records epochs {numbers:?}, the checkpoint is of epoch {epoch}"
                ),
            });
        }
        for skipped in &saved.skipped {
            history.notes.push(format!(
                "epoch {epoch}: resumed past an incomplete checkpoint, {skipped}"
            ));
        }
        let differences = checkpoint::differences(&saved.settings()?, &self.all_settings());
        if !differences.is_empty() {
            if !c.force {
                return Err(Error::SettingsChanged {
                    path: saved.path.display().to_string(),
                    differences,
                });
            }
            history.notes.push(format!(
                "epoch {epoch}: resumed by force with other settings: {}",
                differences.join("; ")
            ));
        }
        self.scheduler = self.scheduler.clone().load_record::<B>(schedule);
        let best = match (template, history.best_epoch()) {
            (Some(template), Some(best)) if best != epoch => Some(
                checkpoint::load_best(&saved, template, device)?.ok_or_else(|| Error::Format {
                    path: saved.path.display().to_string(),
                    message: format!(
                        "restore_best: the checkpoint keeps no model of epoch {best}, the best \
                         (it was saved without restore_best); resume without it"
                    ),
                })?,
            ),
            (Some(_), _) => Some(model.clone()),
            (None, _) => None,
        };
        Ok((
            model,
            Some((record, saved.path.join("optimizer.bin"))),
            history,
            best,
        ))
    }

    fn check<T, V>(&self, data: &impl Batches<T, V>) -> crate::Result<()> {
        self.config.check_epochs()?;
        data.check(&self.config)?;
        if let Some(c) = &self.checkpoints
            && c.every == 0
        {
            return Err(Error::config("checkpoint every", "at least 1 epoch", 0));
        }
        Ok(())
    }

    /// The loop both entry points share, from a model and its history so far. `train_step`
    /// takes one step (or stops the run with its error), `validate` runs the validation batches,
    /// `optimizer_record` gives what a checkpoint keeps of the optimiser.
    fn drive<B, M, R, T, V, D>(
        mut self,
        (mut model, mut history, mut best): (M, History, Option<M>),
        data: &mut D,
        device: &B::Device,
        role: impl Role,
        mut train_step: impl FnMut(
            M,
            crate::Output<B, M>,
            StepValues,
            &StepInfo,
        ) -> crate::Result<(M, StepValues)>,
        mut validate: impl FnMut(&M, &mut dyn Iterator<Item = V>, usize, usize) -> crate::Result<Sums>,
        optimizer_record: impl Fn() -> R,
    ) -> crate::Result<(M, History)>
    where
        B: Backend,
        M: Module<B> + Objective<B, Batch = T>,
        R: burn::record::Record<B>,
        D: Batches<T, V>,
    {
        let settings = self.all_settings();
        let (rank, world) = role.place();
        let config = self.config.clone();
        let bar = if self.progress {
            crate::progress::bar(config.epochs as u64, "epoch", false)
        } else {
            ProgressBar::hidden()
        };
        bar.set_position(history.epochs.len() as u64);
        let mut step = history.step_losses.len();
        // A run the caller's rule stopped stays stopped: a resume asks the rule again about the
        // last finished epoch (as patience is checked again from the history below).
        let stopped = match (history.epochs.last(), self.stop_when.as_mut()) {
            (Some(last), Some(f)) => f(last),
            _ => false,
        };
        let stopped = match role.any(stopped) {
            Ok(stopped) => stopped,
            Err(e) => {
                bar.abandon();
                return Err(e);
            }
        };
        let first = if stopped {
            config.epochs + 1
        } else {
            history.epochs.len() + 1
        };
        // The last finished epoch's state when its checkpoint was not written (checkpoints every
        // few epochs): a run that then fails saves it, so it leaves its last good state.
        let mut unsaved: Option<LastGood<M, R, S::Record<B>>> = None;
        let leave_last_good = |unsaved: Option<LastGood<M, R, S::Record<B>>>,
                               history: &History,
                               best: &Option<M>|
         -> crate::Result<()> {
            let (Some(c), Some(good)) = (&self.checkpoints, unsaved) else {
                return Ok(());
            };
            let mut kept = history.clone();
            kept.step_losses.truncate(good.steps);
            let since_best = epochs_since_best(&kept.epochs);
            let contents = Contents {
                epoch: good.epoch,
                model: &good.model,
                best: best.as_ref().filter(|_| since_best > 0),
                optimizer: good.optimizer,
                scheduler: good.scheduler,
                history: &kept,
                settings: &settings,
            };
            checkpoint::save::<B, M, R, S::Record<B>>(c, contents)
        };
        // Every way an epoch can fail: the bar stops where it was and the last finished epoch's
        // state, if it was not saved yet, is saved before the error is returned.
        macro_rules! fail {
            ($error:expr) => {{
                let error = $error;
                bar.abandon();
                // the epoch's error is the one to report; a save that fails too is told apart
                if let Err(save) = leave_last_good(unsaved, &history, &best) {
                    eprintln!("the last finished epoch could not be saved: {save}");
                }
                return Err(error);
            }};
        }
        for epoch in first..=config.epochs {
            if config
                .patience
                .is_some_and(|p| epochs_since_best(&history.epochs) >= p)
            {
                break;
            }
            let start = Instant::now();
            // peer 0 draws what a run of one draws; peers in other processes, streams of their
            // own (local peers share their process's generator: see `distributed`)
            let stream = (rank as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            B::seed(device, backend_seed(config.seed, epoch) ^ stream);
            let mut sums = Sums::default();
            let mut lr = f64::NAN;
            let batches: Box<dyn Iterator<Item = T> + '_> = if world == 1 {
                Box::new(data.train(&config, epoch))
            } else {
                Box::new(data.train_shard(&config, epoch, rank, world))
            };
            for (b, batch) in batches.enumerate() {
                lr = self.scheduler.step();
                let at = StepInfo {
                    epoch,
                    step,
                    batch: b + 1,
                    lr,
                    training: true,
                };
                // The step's values are read (and checked) before its update is applied.
                let output = model.step(&batch, &at);
                let local = match values(&output) {
                    Ok(local) => local,
                    Err(e) => fail!(e),
                };
                let (next, values) = match train_step(model, output, local, &at) {
                    Ok(stepped) => stepped,
                    Err(e) => fail!(e),
                };
                model = next;
                step += 1;
                history.step_losses.push(values.loss);
                sums.add(&values);
            }
            let Some(loss) = sums.mean_loss() else {
                fail!(no_batches(epoch));
            };
            let valid = match validate(&model, &mut data.valid(&config), epoch, step)
                .and_then(|valid| role.agree(valid))
            {
                Ok(valid) => valid,
                Err(e) => fail!(e),
            };
            let mut metrics: BTreeMap<String, f64> = sums.means("").collect();
            metrics.extend(valid.means("val_"));
            let record = EpochRecord {
                epoch,
                loss,
                val_loss: valid.mean_loss(),
                seconds: start.elapsed().as_secs_f64(),
                items: sums.items,
                lr,
                metrics,
            };
            if let Err(e) = check_record(&record, step) {
                fail!(e);
            }
            bar.set_message(record.summary());
            bar.inc(1);
            if let Some(f) = self.on_epoch.as_mut() {
                f(&record);
            }
            let stop = self.stop_when.as_mut().is_some_and(|f| f(&record));
            let stop = match role.any(stop) {
                Ok(stop) => stop,
                Err(e) => fail!(e),
            };
            history.epochs.push(record);
            let since_best = epochs_since_best(&history.epochs);
            if config.restore_best && since_best == 0 {
                best = Some(model.clone());
            }
            let stopping = stop || config.patience.is_some_and(|p| since_best >= p);
            let saving = epoch % self.checkpoints.as_ref().map_or(1, |c| c.every) == 0
                || epoch == config.epochs
                || stopping;
            unsaved = (self.checkpoints.is_some() && rank == 0 && !saving).then(|| LastGood {
                epoch,
                steps: step,
                model: model.clone(),
                optimizer: optimizer_record(),
                scheduler: self.scheduler.to_record::<B>(),
            });
            if let Some(c) = &self.checkpoints
                && rank == 0
                && saving
            {
                let contents = Contents {
                    epoch,
                    model: &model,
                    // the best model, when it is not this one
                    best: best.as_ref().filter(|_| since_best > 0),
                    optimizer: optimizer_record(),
                    scheduler: self.scheduler.to_record::<B>(),
                    history: &history,
                    settings: &settings,
                };
                checkpoint::save::<B, M, R, S::Record<B>>(c, contents)?;
            }
            if stop {
                break;
            }
        }
        bar.finish_and_clear();
        match best {
            Some(best) if config.restore_best => Ok((best, history)),
            _ => Ok((model, history)),
        }
    }
}

/// The seed of the backend's generator (dropout, sampled noise) in epoch `epoch` of a run seeded
/// with `seed`: a SplitMix64 hash of both, so that no two (seed, epoch) pairs share a stream
/// (with `seed + epoch`, seed 0's second epoch drew what seed 1's first did, and runs of
/// neighbouring seeds shared their noise one epoch apart).
pub fn backend_seed(seed: u64, epoch: usize) -> u64 {
    SplitMix64::new(seed ^ (epoch as u64).wrapping_mul(0x9FB2_1C65_1E98_DF25)).next_u64()
}

/// A finished epoch's state, kept until the next checkpoint in case the run fails before it.
struct LastGood<M, R, S> {
    epoch: usize,
    /// Optimiser steps taken by the end of the epoch.
    steps: usize,
    model: M,
    optimizer: R,
    scheduler: S,
}

/// What a run starts from: the model, the optimiser record of a resumed checkpoint with the
/// file it came from, the history and the best model so far.
type Admitted<M, R> = (M, Option<(R, PathBuf)>, History, Option<M>);

/// Runs the first optimiser step after a resume (`resumed` holds the optimiser record's file
/// until then) and any later one. burn's optimisers take a loaded state as it is, and their
/// records cannot be inspected generically: state tensors that do not fit the model's
/// parameters (a corrupt or crafted `optimizer.bin`, or another optimiser's) may panic at the
/// first step or broadcast and change the parameters' shapes, and either becomes an error
/// naming the file. A state that broadcasts to the parameters' shapes (a smaller one), or that
/// of a parameter the first batch gives no gradient, is not caught here.
fn optimizer_step<B: Backend, M: Module<B>>(
    resumed: &mut Option<PathBuf>,
    model: M,
    step: impl FnOnce(M) -> M,
) -> crate::Result<M> {
    let Some(file) = resumed.take() else {
        return Ok(step(model));
    };
    let refuse = |why: String| Error::Format {
        path: file.display().to_string(),
        message: format!(
            "the optimiser state does not fit the model ({why}): corrupt, crafted, or saved by \
             another optimiser"
        ),
    };
    let shapes = checkpoint::parameter_shapes(&model);
    let model = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| step(model)))
        .map_err(|payload| refuse(checkpoint::panic_message(payload.as_ref())))?;
    let after = checkpoint::parameter_shapes(&model);
    if after != shapes {
        return Err(refuse(format!(
            "its first step turned parameters of shapes {shapes:?} into {after:?}"
        )));
    }
    Ok(model)
}

/// Epochs since the monitored loss (validation loss if there is one, else training loss) was
/// last at its best; 0 for none.
fn epochs_since_best(epochs: &[EpochRecord]) -> usize {
    best_index(epochs).map_or(0, |best| epochs.len() - (best + 1))
}
