//! Checkpoints that survive a crash at any moment: the model, the optimiser and schedule state,
//! the history and the run's settings.
//!
//! Layout: `<dir>/checkpoints/epoch-000012-000003/` (the epoch, then a save number that keeps
//! a repeated epoch's folders apart) holds `model.bin`, `optimizer.bin`,
//! `scheduler.bin`, `history.json`, `history.csv`, `settings.json`, with
//! [`restore_best`](crate::FitConfig::restore_best) `best.bin` (the best epoch's model, when it
//! is not the last) and, written last, `manifest.json` (every other file's size and FNV-1a 64-bit
//! hash). A save:
//! 1. writes everything into `checkpoints/.epoch-000012-000003.tmp/`, fsyncing each file, then
//!    the manifest, then the folder;
//! 2. renames that folder to `epoch-000012-000003` (a name not in use) and fsyncs `checkpoints/`: the single step at which
//!    the new checkpoint comes into being (SQLite's and Orbax's rule: durable content first, one
//!    atomic rename to publish it);
//! 3. only then removes the older checkpoints and any leftover temporary folders.
//!
//! Loading takes the newest checkpoint whose manifest verifies (every file present with its size
//! and hash) and falls back to older ones, so a crash (or a power loss, the data being fsynced
//! before the rename) anywhere in a save leaves the previous good checkpoint loadable.

use burn::module::Module;
use burn::record::{BinFileRecorder, FileRecorder, FullPrecisionSettings, Recorder, RecorderError};
use burn::tensor::backend::Backend;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{Error, History, Result};

/// A run's settings as saved with its checkpoints: name → value, compared on resume.
pub type Settings = BTreeMap<String, String>;

/// Where and how often [`Fit`](crate::Fit) saves, and whether it resumes.
#[derive(Clone, Debug)]
pub struct Checkpoints {
    /// The run's folder; the checkpoints are in its `checkpoints/` subfolder.
    pub dir: PathBuf,
    /// Save after every `every` epochs (and always after the last one).
    pub every: usize,
    /// Continue from the newest checkpoint in `dir` instead of starting afresh.
    pub resume: bool,
    /// Resume even when the run's settings differ from the saved ones (the differences are
    /// recorded in the history's notes).
    pub force: bool,
    /// Start afresh even when `dir` holds a checkpoint (the first save replaces it).
    pub overwrite: bool,
}

/// A complete checkpoint on disk, found by [`Checkpoints::latest`].
#[derive(Clone, Debug, PartialEq)]
pub struct SavedCheckpoint {
    /// Its folder.
    pub path: PathBuf,
    /// The epoch it was saved after.
    pub epoch: usize,
    /// Newer checkpoint folders that were passed over, each with the reason (incomplete or
    /// corrupt).
    pub skipped: Vec<String>,
}

impl SavedCheckpoint {
    /// The model's record (burn's `BinFileRecorder` with full precision), for
    /// `Module::load_file`.
    pub fn model_file(&self) -> PathBuf {
        self.path.join("model.bin")
    }

    /// The best epoch's model, kept beside the last one's (`best.bin`) when the run restores
    /// its best epoch ([`FitConfig::restore_best`](crate::FitConfig::restore_best)) and that
    /// was not the last; `None` otherwise.
    pub fn best_model_file(&self) -> Option<PathBuf> {
        Some(self.path.join(BEST)).filter(|p| p.is_file())
    }

    /// The model `Fit` hands back for the run as saved here: the best epoch's
    /// ([`best_model_file`](Self::best_model_file)) where the checkpoint keeps one, else the last
    /// epoch's ([`model_file`](Self::model_file)); with [`returned_epoch`](Self::returned_epoch),
    /// what a program that uses a trained model (to translate, to chat, to evaluate) loads.
    pub fn returned_model_file(&self) -> PathBuf {
        self.best_model_file().unwrap_or_else(|| self.model_file())
    }

    /// The epoch (from 1) of [`returned_model_file`](Self::returned_model_file)'s model.
    ///
    /// # Errors
    /// When the saved history cannot be read.
    pub fn returned_epoch(&self) -> Result<usize> {
        if self.best_model_file().is_none() {
            return Ok(self.epoch);
        }
        let history = History::load(&self.path)?;
        history.best_epoch().ok_or_else(|| Error::Format {
            path: self.path.join("history.json").display().to_string(),
            message: "a best model is kept but the history has no epoch".into(),
        })
    }

    /// The settings the run was saved with.
    pub fn settings(&self) -> Result<Settings> {
        let path = self.path.join(SETTINGS);
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        serde_json::from_slice(&bytes).map_err(|e| format_err(&path, e))
    }
}

impl Checkpoints {
    /// Save every `every` epochs into `dir/checkpoints/`.
    pub fn new(dir: impl Into<PathBuf>, every: usize) -> Self {
        Self {
            dir: dir.into(),
            every,
            resume: false,
            force: false,
            overwrite: false,
        }
    }

    /// Resume from the newest checkpoint (set `resume`).
    pub fn resuming(mut self, resume: bool) -> Self {
        self.resume = resume;
        self
    }

    /// Resume even with other settings (set `force`).
    pub fn forcing(mut self, force: bool) -> Self {
        self.force = force;
        self
    }

    /// Replace an existing checkpoint on a fresh run (set `overwrite`).
    pub fn overwriting(mut self, overwrite: bool) -> Self {
        self.overwrite = overwrite;
        self
    }

    /// The folder the checkpoints live in.
    pub fn root(&self) -> PathBuf {
        self.dir.join("checkpoints")
    }

    /// The newest complete checkpoint, if there is one; newer folders that fail their manifest
    /// are passed over (and listed in [`SavedCheckpoint::skipped`]).
    ///
    /// # Errors
    /// When the folder exists but cannot be listed.
    pub fn latest(&self) -> Result<Option<SavedCheckpoint>> {
        let mut skipped = Vec::new();
        for ((epoch, _), path) in saved_folders(&self.root())? {
            match verify(&path) {
                Ok(()) => {
                    return Ok(Some(SavedCheckpoint {
                        path,
                        epoch,
                        skipped,
                    }));
                }
                Err(why) => skipped.push(format!("{}: {why}", path.display())),
            }
        }
        Ok(None)
    }
}

const MANIFEST: &str = "manifest.json";
const SETTINGS: &str = "settings.json";
/// The best epoch's model, kept beside the last one's when the run restores it.
const BEST: &str = "best.bin";
const PREFIX: &str = "epoch-";

/// What a manifest records of one file.
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct FileEntry {
    bytes: u64,
    fnv1a64: String,
}

impl FileEntry {
    /// The size and hash of the file at `path`, read in blocks (a model of gigabytes is not
    /// held in memory twice).
    fn of(path: &Path) -> std::io::Result<Self> {
        use std::io::Read;
        let mut file = File::open(path)?;
        let mut block = vec![0u8; 1 << 16];
        let (mut bytes, mut h) = (0u64, FNV_OFFSET);
        loop {
            let n = match file.read(&mut block) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            bytes += n as u64;
            h = fnv1a64_extend(h, &block[..n]);
        }
        Ok(Self {
            bytes,
            fnv1a64: format!("{h:016x}"),
        })
    }
}

/// A fingerprint of `data` (its FNV-1a 64-bit hash in hex), stable across platforms and
/// versions: for a run's settings (`Fit::settings`), so that a resume on other data is noticed.
pub fn fingerprint(data: &[u8]) -> String {
    fnv1a64(data)
}

fn fnv1a64(data: &[u8]) -> String {
    format!("{:016x}", fnv1a64_value(data))
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a, 64 bits.
pub(crate) fn fnv1a64_value(data: &[u8]) -> u64 {
    fnv1a64_extend(FNV_OFFSET, data)
}

/// FNV-1a's hash `h` of some bytes, extended by `data`.
fn fnv1a64_extend(mut h: u64, data: &[u8]) -> u64 {
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The checkpoint folders under `root` with their epoch and save number, newest first (an
/// absent `root` has none). Newest means the highest save number, whatever its epoch: a run
/// started over with `--overwrite` publishes epoch 1 with a number above the replaced run's
/// epoch 50, and that run's folder can outlive the publish when a crash comes between the two.
fn saved_folders(root: &Path) -> Result<Vec<((usize, u64), PathBuf)>> {
    let entries = match std::fs::read_dir(root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(root, e)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(root, e))?;
        let name = entry.file_name();
        let key = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|n| n.split_once('-'))
            .and_then(|(e, s)| Some((e.parse::<usize>().ok()?, s.parse::<u64>().ok()?)));
        if let Some(key) = key {
            found.push((key, entry.path()));
        }
    }
    found.sort_by_key(|&((epoch, number), _)| std::cmp::Reverse((number, epoch)));
    Ok(found)
}

/// Checks a checkpoint folder against its manifest.
fn verify(dir: &Path) -> std::result::Result<(), String> {
    let manifest = std::fs::read(dir.join(MANIFEST)).map_err(|e| format!("no manifest ({e})"))?;
    let files: BTreeMap<String, FileEntry> =
        serde_json::from_slice(&manifest).map_err(|e| format!("corrupt manifest ({e})"))?;
    for name in [
        "model.bin",
        "optimizer.bin",
        "scheduler.bin",
        "history.json",
    ] {
        if !files.contains_key(name) {
            return Err(format!("the manifest lists no {name}"));
        }
    }
    for (name, entry) in &files {
        if name.contains(['/', '\\']) || name == ".." {
            return Err(format!(
                "the manifest names a file outside the folder: {name}"
            ));
        }
        let got = FileEntry::of(&dir.join(name)).map_err(|e| format!("{name}: {e}"))?;
        if &got != entry {
            return Err(format!(
                "{name} has {} bytes (hash {}), the manifest says {} bytes (hash {})",
                got.bytes, got.fnv1a64, entry.bytes, entry.fnv1a64
            ));
        }
    }
    Ok(())
}

/// The test hook of the crash test: with `RENSA_TRAIN_PAUSE_AT_IO=n` in the environment, the
/// n-th file-system step of this process's checkpoint saves (1-based) prints
/// `paused at checkpoint io step n` and blocks, so that the test kills the process at exactly
/// that moment.
fn io_step() {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    static PAUSE: OnceLock<Option<u64>> = OnceLock::new();
    let n = COUNT.fetch_add(1, Ordering::SeqCst) + 1;
    let pause = PAUSE.get_or_init(|| {
        std::env::var("RENSA_TRAIN_PAUSE_AT_IO")
            .ok()
            .and_then(|v| v.parse().ok())
    });
    if *pause == Some(n) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "paused at checkpoint io step {n}");
        let _ = out.flush();
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
    IO_STEPS.store(n, Ordering::SeqCst);
}

static IO_STEPS: AtomicU64 = AtomicU64::new(0);

/// How many file-system steps this process's checkpoint saves have taken (for the crash test).
#[doc(hidden)]
pub fn io_steps() -> u64 {
    IO_STEPS.load(Ordering::SeqCst)
}

/// Flushes a file's data (or a folder's entries) to the disk. Folders cannot be opened for
/// syncing on Windows, where a rename is durable by itself; there this does nothing for them.
fn sync(path: &Path) -> Result<()> {
    io_step();
    if path.is_dir() {
        return match File::open(path) {
            Ok(f) => f.sync_all().map_err(|e| Error::io(path, e)),
            Err(_) if cfg!(windows) => Ok(()),
            Err(e) => Err(Error::io(path, e)),
        };
    }
    sync_file(path).map_err(|e| Error::io(path, e))
}

/// Flushes a file's data to the disk through a handle opened for writing (Windows refuses to
/// flush a read-only one); the file is not changed.
pub(crate) fn sync_file(path: &Path) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)?
        .sync_all()
}

/// Writes `bytes` to `path` and fsyncs it.
pub(crate) fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    io_step();
    let mut f = File::create(path).map_err(|e| Error::io(path, e))?;
    f.write_all(bytes).map_err(|e| Error::io(path, e))?;
    f.sync_all().map_err(|e| Error::io(path, e))
}

fn rename(from: &Path, to: &Path) -> Result<()> {
    io_step();
    std::fs::rename(from, to).map_err(|e| Error::io(to, e))
}

/// Whether `name` is a save's temporary folder (`.epoch-….tmp`).
fn is_temporary(name: &str) -> bool {
    name.strip_prefix('.')
        .is_some_and(|n| n.starts_with(PREFIX) && n.ends_with(".tmp"))
}

fn remove_all(path: &Path) -> Result<()> {
    io_step();
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(path, e)),
        _ => Ok(()),
    }
}

fn recorder() -> CheckpointRecorder {
    CheckpointRecorder
}

/// burn's [`BinFileRecorder`] format, read with a bound. Saving is burn's own (the same bytes,
/// metadata included). bincode allocates a string or byte buffer as long as its length prefix
/// says before it reads the bytes, so a crafted length would abort the process on a failed
/// allocation; this reader lets the decoder claim at most 16 times the file's size (a valid
/// file claims no more than 8 bytes of memory per byte of file: a one-byte integer decodes to
/// eight; the limit is the next power of two above that).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct CheckpointRecorder;

impl<B: Backend> Recorder<B> for CheckpointRecorder {
    type Settings = FullPrecisionSettings;
    type RecordArgs = PathBuf;
    type RecordOutput = ();
    type LoadArgs = PathBuf;

    fn record<R: burn::record::Record<B>>(
        &self,
        record: R,
        file: PathBuf,
    ) -> std::result::Result<(), RecorderError> {
        Recorder::<B>::record(
            &BinFileRecorder::<FullPrecisionSettings>::new(),
            record,
            file,
        )
    }

    fn save_item<I: serde::Serialize>(
        &self,
        item: I,
        file: PathBuf,
    ) -> std::result::Result<(), RecorderError> {
        Recorder::<B>::save_item(&BinFileRecorder::<FullPrecisionSettings>::new(), item, file)
    }

    fn load_item<I: serde::de::DeserializeOwned>(
        &self,
        file: &mut PathBuf,
    ) -> std::result::Result<I, RecorderError> {
        file.set_extension(<Self as FileRecorder<B>>::file_extension());
        let open = std::fs::File::open(&*file).and_then(|f| Ok((f.metadata()?.len(), f)));
        let (len, f) = open.map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => RecorderError::FileNotFound(e.to_string()),
            _ => RecorderError::Unknown(e.to_string()),
        })?;
        decode_bounded(std::io::BufReader::new(f), len).map_err(RecorderError::Unknown)
    }
}

impl<B: Backend> FileRecorder<B> for CheckpointRecorder {
    fn file_extension() -> &'static str {
        "bin"
    }
}

/// Runs `load`, a load of the record in `file`, with a panic inside it turned into an error
/// naming the file. Decoding checks the bytes' form, not what they say: a crafted record whose
/// tensor data does not fill its shape, of another rank or of a byte count that is not a whole
/// number of elements reaches the backend's tensor constructors, which panic on it (rensa's
/// patched burn-ndarray checks the length where the published one trusted it).
fn refuse_panics<T>(file: &Path, load: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(load)).unwrap_or_else(|payload| {
        let why = panic_message(payload.as_ref());
        Err(format_err(
            file,
            format!("its tensor data does not fit its shapes ({why}): corrupt or crafted"),
        ))
    })
}

/// The message a panic was raised with (empty when it carried something else).
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

/// `2^bits`, or the largest `usize` where that does not fit.
const fn limit(bits: u32) -> usize {
    if bits >= usize::BITS {
        usize::MAX
    } else {
        1 << bits
    }
}

/// Decodes one bincode record from `reader`, a file of `len` bytes, its claims bounded by the
/// smallest power of two (bincode takes its limit as a type parameter) that is at least 8
/// times `len`.
fn decode_bounded<I: serde::de::DeserializeOwned>(
    mut reader: impl std::io::Read,
    len: u64,
) -> std::result::Result<I, String> {
    use bincode::config::standard;
    use bincode::error::DecodeError;
    let finish = |decoded: std::result::Result<I, DecodeError>| match decoded {
        Ok(item) => Ok(item),
        Err(DecodeError::LimitExceeded) => Err(format!(
            "a length in the file claims more memory than its {len} bytes can hold: corrupt"
        )),
        Err(e) => Err(e.to_string()),
    };
    let need = usize::try_from(len).unwrap_or(usize::MAX).saturating_mul(8);
    macro_rules! within {
        ($($bits:literal)*) => {$(
            if need <= limit($bits) {
                let config = standard().with_limit::<{ limit($bits) }>();
                return finish(bincode::serde::decode_from_std_read(&mut reader, config));
            }
        )*};
    }
    // every power of two, so that the limit is at most twice the need: 16 times the file
    within!(20 21 22 23 24 25 26 27 28 29 30 31 32 33 34 35 36 37 38 39 40 64);
    Err(format!("{len} bytes: too large to read"))
}

fn format_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Format {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// What one save writes.
pub(crate) struct Contents<'a, M, R, S> {
    pub epoch: usize,
    pub model: &'a M,
    /// The best epoch's model, when the run restores it and it is not `model`.
    pub best: Option<&'a M>,
    pub optimizer: R,
    pub scheduler: S,
    pub history: &'a History,
    pub settings: &'a Settings,
}

/// Saves a checkpoint as the [module docs](self) describe, then removes the older ones.
pub(crate) fn save<B, M, R, S>(ckpt: &Checkpoints, c: Contents<'_, M, R, S>) -> Result<()>
where
    B: Backend,
    M: Module<B>,
    R: burn::record::Record<B>,
    S: burn::record::Record<B>,
{
    let root = ckpt.root();
    let folders = saved_folders(&root)?;
    let number = match folders.first() {
        None => 0,
        Some(((_, n), path)) => n.checked_add(1).ok_or_else(|| Error::Format {
            path: path.display().to_string(),
            message: "the save number cannot grow past this folder's; move it away".into(),
        })?,
    };
    let name = format!("{PREFIX}{:06}-{number:06}", c.epoch);
    let tmp = root.join(format!(".{name}.tmp"));
    remove_all(&tmp)?;
    // the folders this save creates (the checkpoints folder, the run's), outermost last
    let created: Vec<PathBuf> = root
        .ancestors()
        .take_while(|a| !a.as_os_str().is_empty() && !a.exists())
        .map(Path::to_path_buf)
        .collect();
    io_step();
    std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    io_step();
    // a new folder's entry lives in its parent: synced, or a crash could lose the folder with
    // every checkpoint in it
    for folder in created.iter().rev() {
        match folder.parent() {
            // a relative path's first folder lives in the working directory
            Some(parent) if parent.as_os_str().is_empty() => sync(Path::new("."))?,
            Some(parent) => sync(parent)?,
            None => {}
        }
    }
    c.model
        .clone()
        .save_file(tmp.join("model"), &recorder())
        .map_err(|e| format_err(&tmp.join("model.bin"), e))?;
    io_step();
    Recorder::<B>::record(&recorder(), c.optimizer, tmp.join("optimizer"))
        .map_err(|e| format_err(&tmp.join("optimizer.bin"), e))?;
    io_step();
    Recorder::<B>::record(&recorder(), c.scheduler, tmp.join("scheduler"))
        .map_err(|e| format_err(&tmp.join("scheduler.bin"), e))?;
    let mut binaries = vec!["model.bin", "optimizer.bin", "scheduler.bin"];
    if let Some(best) = c.best {
        best.clone()
            .save_file(tmp.join("best"), &recorder())
            .map_err(|e| format_err(&tmp.join(BEST), e))?;
        io_step();
        binaries.push(BEST);
    }
    for file in &binaries {
        sync(&tmp.join(file))?;
    }
    let settings = serde_json::to_vec_pretty(c.settings).expect("settings serialise");
    write_synced(&tmp.join(SETTINGS), &settings)?;
    write_synced(&tmp.join("history.csv"), c.history.to_csv().as_bytes())?;
    write_synced(&tmp.join("history.json"), &c.history.to_json())?;
    let mut manifest = BTreeMap::new();
    for file in binaries
        .into_iter()
        .chain([SETTINGS, "history.csv", "history.json"])
    {
        let path = tmp.join(file);
        let entry = FileEntry::of(&path).map_err(|e| Error::io(&path, e))?;
        manifest.insert(file.to_string(), entry);
    }
    let manifest = serde_json::to_vec_pretty(&manifest).expect("a manifest serialises");
    write_synced(&tmp.join(MANIFEST), &manifest)?;
    sync(&tmp)?;
    let target = root.join(&name);
    rename(&tmp, &target)?;
    sync(&root)?;
    // Published: everything else is now surplus.
    for (_, path) in saved_folders(&root)? {
        if path != target {
            remove_all(&path)?;
        }
    }
    // the temporary folders of saves a crash interrupted; nothing else in the folder is ours to
    // remove, and a leftover that cannot be removed now is tried again at the next save
    let leftovers = std::fs::read_dir(&root).map_err(|e| Error::io(&root, e))?;
    for entry in leftovers.flatten() {
        if is_temporary(&entry.file_name().to_string_lossy()) {
            let _ = remove_all(&entry.path());
        }
    }
    sync(&root)
}

/// Loads the newest complete checkpoint: the model (into `model`'s structure), the optimiser
/// and scheduler records, the history and the settings. No checkpoint, or none complete, is an
/// error naming the folder.
pub(crate) fn load<B, M, R, S>(
    ckpt: &Checkpoints,
    model: M,
    device: &B::Device,
) -> Result<(M, R, S, History, SavedCheckpoint)>
where
    B: Backend,
    M: Module<B>,
    R: burn::record::Record<B>,
    S: burn::record::Record<B>,
{
    let Some(saved) = ckpt.latest()? else {
        let root = ckpt.root();
        let mut message = "no complete checkpoint to resume from".to_string();
        if let Ok(folders) = saved_folders(&root) {
            for (_, path) in folders {
                if let Err(why) = verify(&path) {
                    message.push_str(&format!("; {}: {why}", path.display()));
                }
            }
        }
        return Err(Error::Format {
            path: root.display().to_string(),
            message,
        });
    };
    let dir = &saved.path;
    let history = History::load(dir)?;
    let model = load_model(model, &dir.join("model"), device)?;
    fn record<B: Backend, T: burn::record::Record<B>>(
        dir: &Path,
        name: &str,
        device: &B::Device,
    ) -> Result<T> {
        let file = dir.join(name).with_extension("bin");
        refuse_panics(&file, || {
            Recorder::<B>::load(&recorder(), dir.join(name), device)
                .map_err(|e| format_err(&file, e))
        })
    }
    let optimizer = record::<B, R>(dir, "optimizer", device)?;
    let scheduler = record::<B, S>(dir, "scheduler", device)?;
    Ok((model, optimizer, scheduler, history, saved))
}

/// The best epoch's model a checkpoint keeps (`best.bin`, verified with the rest by the
/// manifest), loaded into `template`; `None` when it keeps none (the last epoch was the best, or
/// the run did not restore the best).
pub(crate) fn load_best<B: Backend, M: Module<B>>(
    saved: &SavedCheckpoint,
    template: M,
    device: &B::Device,
) -> Result<Option<M>> {
    if !saved.path.join(BEST).is_file() {
        return Ok(None);
    }
    load_model(template, &saved.path.join("best"), device).map(Some)
}

/// The differences between the settings a run was saved with and the current ones, one line
/// each (`seed: saved 0, now 1`).
pub(crate) fn differences(saved: &Settings, now: &Settings) -> Vec<String> {
    let keys: std::collections::BTreeSet<&String> = saved.keys().chain(now.keys()).collect();
    keys.into_iter()
        .filter_map(|k| {
            let (a, b) = (saved.get(k), now.get(k));
            (a != b).then(|| {
                let show = |v: Option<&String>| v.map_or("(not set)".to_string(), Clone::clone);
                format!("{k}: saved {}, now {}", show(a), show(b))
            })
        })
        .collect()
}

/// Loads the weights saved at `path` (`<path>.bin`, as checkpoints write them) into `model`,
/// checking that every parameter keeps its shape: burn's loader would put a tensor of another
/// shape in place silently (a model built with other sizes than it was saved with would then
/// fail, or worse compute, later).
///
/// # Errors
/// [`Error::Format`] naming the file and, for a shape mismatch, the parameter and both shapes.
pub fn load_model<B: Backend, M: Module<B>>(
    model: M,
    path: &Path,
    device: &B::Device,
) -> Result<M> {
    let file = path.with_extension("bin");
    let expected = parameter_shapes(&model);
    let loaded = refuse_panics(&file, || {
        model
            .load_file(path.to_path_buf(), &recorder(), device)
            .map_err(|e| format_err(&file, e))
    })?;
    let got = parameter_shapes(&loaded);
    let mismatch = expected.iter().zip(&got).position(|(a, b)| a != b);
    if let Some(k) =
        mismatch.or((expected.len() != got.len()).then_some(expected.len().min(got.len())))
    {
        let show = |v: &[Vec<usize>]| v.get(k).map_or("none".to_string(), |s| format!("{s:?}"));
        return Err(Error::Format {
            path: file.display().to_string(),
            message: format!(
                "parameter {} of {} is {} in the file and {} in the model (saved with other sizes?)",
                k + 1,
                expected.len(),
                show(&got),
                show(&expected)
            ),
        });
    }
    Ok(loaded)
}

/// The shapes of a module's float parameters, in the order burn visits them.
pub fn parameter_shapes<B: Backend, M: Module<B>>(module: &M) -> Vec<Vec<usize>> {
    struct Shapes(Vec<Vec<usize>>);
    impl<B: Backend> burn::module::ModuleVisitor<B> for Shapes {
        fn visit_float<const D: usize>(
            &mut self,
            param: &burn::module::Param<burn::tensor::Tensor<B, D>>,
        ) {
            self.0.push(param.val().dims().to_vec());
        }
    }
    let mut shapes = Shapes(Vec::new());
    module.visit(&mut shapes);
    shapes.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_matches_the_reference_values() {
        // The FNV-1a test vectors of the algorithm's authors.
        assert_eq!(fnv1a64(b""), "cbf29ce484222325");
        assert_eq!(fnv1a64(b"a"), "af63dc4c8601ec8c");
        assert_eq!(fnv1a64(b"foobar"), "85944171f73967e8");
    }

    #[test]
    fn a_file_is_hashed_in_blocks_as_a_whole() {
        let path = std::env::temp_dir().join(format!("rensa-ckpt-hash-{}", std::process::id()));
        // more than two blocks, the last one partial
        let data: Vec<u8> = (0..150_001u32).map(|k| (k * 7 % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let entry = FileEntry::of(&path).unwrap();
        assert_eq!(
            entry,
            FileEntry {
                bytes: data.len() as u64,
                fnv1a64: fnv1a64(&data),
            }
        );
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn only_a_saves_own_temporary_folders_are_leftovers() {
        assert!(is_temporary(".epoch-000002-000009.tmp"));
        for name in [
            ".DS_Store",
            ".git",
            ".epoch-000002-000009",
            "epoch-1.tmp",
            ".tmp",
        ] {
            assert!(!is_temporary(name), "{name}");
        }
    }

    #[test]
    fn the_newest_checkpoint_is_the_highest_save_number_whatever_its_epoch() {
        let root = std::env::temp_dir().join(format!("rensa-ckpt-order-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        // a run of 50 epochs, replaced by an `--overwrite` run whose first save was published
        // but whose removal of the old folder never happened; a temporary folder and a stranger
        for name in [
            "epoch-000050-000007",
            "epoch-000001-000008",
            "epoch-000049-000006",
            ".epoch-000002-000009.tmp",
            "notes",
        ] {
            std::fs::create_dir_all(root.join(name)).unwrap();
        }
        let keys: Vec<(usize, u64)> = saved_folders(&root)
            .unwrap()
            .into_iter()
            .map(|(key, _)| key)
            .collect();
        assert_eq!(keys, [(1, 8), (50, 7), (49, 6)]);
        // the largest number sorts first (a save after it is refused rather than wrapping to 0)
        std::fs::create_dir_all(root.join(format!("epoch-000003-{}", u64::MAX))).unwrap();
        let top = saved_folders(&root).unwrap()[0].0;
        assert_eq!(top, (3, u64::MAX));
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn a_length_prefix_cannot_claim_more_than_the_file() {
        let decode = |bytes: &[u8]| decode_bounded::<String>(bytes, bytes.len() as u64);
        // bincode's varint 0xfd announces a u64: a string of 2^40 bytes
        let crafted = [0xfd, 0, 0, 0, 0, 0, 1, 0, 0];
        let e = decode(&crafted).unwrap_err();
        assert!(e.contains("claims more memory"), "{e}");
        // (a sequence is read element by element, serde reserving a bounded amount: no claim)
        assert!(decode_bounded::<Vec<u8>>(&crafted[..], 9).is_err());
        assert_eq!(decode(&[3, b'a', b'b', b'c']).unwrap(), "abc");
    }

    #[test]
    fn differences_name_each_setting() {
        let saved: Settings = [("seed", "0"), ("lr", "0.001"), ("gone", "x")]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .into();
        let now: Settings = [("seed", "1"), ("lr", "0.001"), ("new", "y")]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .into();
        assert_eq!(
            differences(&saved, &now),
            [
                "gone: saved x, now (not set)",
                "new: saved (not set), now y",
                "seed: saved 0, now 1"
            ]
        );
    }
}
