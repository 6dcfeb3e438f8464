//! Checkpoints: the model, the optimiser state and the history, written atomically so that a run
//! stopped at any moment (or by a NaN loss) leaves the last good state on disk.

use burn::module::Module;
use burn::record::{BinFileRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::backend::Backend;
use std::path::{Path, PathBuf};

use crate::{Error, History, Result};

/// Where and how often [`Fit`](crate::Fit) saves, and whether it resumes.
#[derive(Clone, Debug)]
pub struct Checkpoints {
    /// The run's folder; the checkpoint is its `checkpoint/` subfolder.
    pub dir: PathBuf,
    /// Save after every `every` epochs (and always after the last one).
    pub every: usize,
    /// Continue from the checkpoint in `dir` instead of starting afresh.
    pub resume: bool,
}

impl Checkpoints {
    /// Save every `every` epochs into `dir/checkpoint/`.
    pub fn new(dir: impl Into<PathBuf>, every: usize) -> Self {
        Self {
            dir: dir.into(),
            every,
            resume: false,
        }
    }

    /// Resume from the checkpoint (set `resume`).
    pub fn resuming(mut self, resume: bool) -> Self {
        self.resume = resume;
        self
    }

    /// The checkpoint folder.
    pub fn path(&self) -> PathBuf {
        self.dir.join("checkpoint")
    }
}

fn recorder() -> BinFileRecorder<FullPrecisionSettings> {
    BinFileRecorder::new()
}

fn format_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Format {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Writes model, optimiser and learning-rate scheduler records and history into
/// `dir/checkpoint/` atomically: everything goes into `checkpoint.tmp/`, which then replaces the
/// previous checkpoint by renames.
pub(crate) fn save<B, M, R, S>(
    ckpt: &Checkpoints,
    model: &M,
    optimizer: R,
    scheduler: S,
    history: &History,
) -> Result<()>
where
    B: Backend,
    M: Module<B>,
    R: burn::record::Record<B>,
    S: burn::record::Record<B>,
{
    let final_dir = ckpt.path();
    let tmp = ckpt.dir.join("checkpoint.tmp");
    let old = ckpt.dir.join("checkpoint.old");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    model
        .clone()
        .save_file(tmp.join("model"), &recorder())
        .map_err(|e| format_err(&tmp.join("model.bin"), e))?;
    Recorder::<B>::record(&recorder(), optimizer, tmp.join("optimizer"))
        .map_err(|e| format_err(&tmp.join("optimizer.bin"), e))?;
    Recorder::<B>::record(&recorder(), scheduler, tmp.join("scheduler"))
        .map_err(|e| format_err(&tmp.join("scheduler.bin"), e))?;
    history.save(&tmp)?;
    let _ = std::fs::remove_dir_all(&old);
    if final_dir.exists() {
        std::fs::rename(&final_dir, &old).map_err(|e| Error::io(&final_dir, e))?;
    }
    std::fs::rename(&tmp, &final_dir).map_err(|e| Error::io(&final_dir, e))?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

/// Loads what [`save`] wrote: the model (into `model`'s structure), the optimiser and scheduler
/// records and the history. A missing or corrupt checkpoint is an error naming the file.
pub(crate) fn load<B, M, R, S>(
    ckpt: &Checkpoints,
    model: M,
    device: &B::Device,
) -> Result<(M, R, S, History)>
where
    B: Backend,
    M: Module<B>,
    R: burn::record::Record<B>,
    S: burn::record::Record<B>,
{
    let dir = ckpt.path();
    if !dir.join("history.json").exists() {
        return Err(Error::Format {
            path: dir.display().to_string(),
            message: "no checkpoint to resume from".into(),
        });
    }
    let history = History::load(&dir)?;
    let model = model
        .load_file(dir.join("model"), &recorder(), device)
        .map_err(|e| format_err(&dir.join("model.bin"), e))?;
    let optimizer = Recorder::<B>::load(&recorder(), dir.join("optimizer"), device)
        .map_err(|e| format_err(&dir.join("optimizer.bin"), e))?;
    let scheduler = Recorder::<B>::load(&recorder(), dir.join("scheduler"), device)
        .map_err(|e| format_err(&dir.join("scheduler.bin"), e))?;
    Ok((model, optimizer, scheduler, history))
}
