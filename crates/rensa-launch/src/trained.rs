//! A trained model as a program uses it after training (to translate, to chat, to evaluate):
//! the newest checkpoint in the run's folder, the model `Fit` handed back (the best epoch's
//! where the run restored it), and the vocabularies saved beside it, checked to be the ones the
//! model was trained with.
//!
//! A vocabulary file is written when a run starts, the checkpoint only after its first epochs:
//! a second run started in the same folder and stopped before its first save leaves the first
//! run's checkpoint beside its own vocabulary. Two vocabularies of the same size (a size cap
//! makes that common) would then decode every id to another word, silently. So a run records a
//! fingerprint of each vocabulary in its settings ([`vocab_setting`]) and a program that loads
//! the model compares it ([`check_vocab`]).

use std::path::Path;

use anyhow::{Context, Result, bail};
use burn::module::Module;
use rensa_data::vocab::Vocabulary;
use rensa_train::{Checkpoints, SavedCheckpoint};

use crate::{Device, Inner};

/// The fingerprint of a vocabulary's tokens in order (of its JSON form, so independent of how
/// the file is laid out).
pub fn vocab_fingerprint(vocab: &Vocabulary) -> String {
    rensa_train::fingerprint(vocab.to_json().as_bytes())
}

/// The run setting that records `vocab` under `key` (e.g. `vocabulary`), for
/// [`Fit::settings`](rensa_train::Fit::settings).
pub fn vocab_setting(key: &'static str, vocab: &Vocabulary) -> (&'static str, String) {
    (key, vocab_fingerprint(vocab))
}

/// The newest complete checkpoint in `out`, or an error that says to train first.
///
/// # Errors
/// No checkpoint, or the folder cannot be read.
pub fn latest(out: &Path) -> Result<SavedCheckpoint> {
    match Checkpoints::new(out, 1).latest()? {
        Some(saved) => Ok(saved),
        None => bail!(
            "no checkpoint in {}: train first (same --out)",
            out.join("checkpoints").display()
        ),
    }
}

/// Checks that `vocab`, read from `file`, is the vocabulary the checkpoint's run recorded under
/// `key`.
///
/// # Errors
/// The settings cannot be read, do not record `key` (a run of an older version), or record
/// another vocabulary.
pub fn check_vocab(
    saved: &SavedCheckpoint,
    key: &str,
    vocab: &Vocabulary,
    file: &Path,
) -> Result<()> {
    let settings = saved.settings()?;
    let Some(recorded) = settings.get(key) else {
        bail!(
            "the checkpoint {} does not record its vocabulary ({key}): it cannot be checked \
             against {}; train again",
            saved.path.display(),
            file.display()
        );
    };
    let found = vocab_fingerprint(vocab);
    if *recorded != found {
        bail!(
            "{} is not the vocabulary the model in {} was trained with (fingerprint {found}, the \
             checkpoint's {recorded}): was the folder used by another run since?",
            file.display(),
            saved.path.display()
        );
    }
    Ok(())
}

/// The model `Fit` handed back for the checkpoint's run (the best epoch's where it kept one, else
/// the last), loaded into `model`, and its epoch.
///
/// # Errors
/// The file cannot be read or holds a model of other sizes (the message names `described`, the
/// file that describes the model).
pub fn load_model<M: Module<Inner>>(
    saved: &SavedCheckpoint,
    model: M,
    device: &Device,
    described: &Path,
) -> Result<(M, usize)> {
    let path = saved.returned_model_file();
    let model =
        rensa_train::load_model(model, &path.with_extension(""), device).with_context(|| {
            format!(
                "cannot load {} (saved with other settings than {}?)",
                path.display(),
                described.display()
            )
        })?;
    Ok((model, saved.returned_epoch()?))
}
