//! The metric history of a run, saved as CSV and JSON.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

use crate::{Error, Result};

/// One finished epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Epoch number, from 1.
    pub epoch: usize,
    /// Mean training loss over the epoch's batches (weighted by batch size).
    #[serde(with = "floats")]
    pub loss: f64,
    /// Validation loss at the end of the epoch, if there is a validation split.
    #[serde(with = "floats::option", default)]
    pub val_loss: Option<f64>,
    /// Wall time of the epoch in seconds (training and validation).
    #[serde(with = "floats")]
    pub seconds: f64,
    /// Training items the epoch went through.
    #[serde(default)]
    pub items: usize,
    /// The learning rate of the epoch's last step (it changes within an epoch under a
    /// schedule).
    #[serde(with = "floats", default)]
    pub lr: f64,
    /// The named parts of the loss and the metrics of the model's steps
    /// ([`Output`](crate::Output)), item-weighted means over the epoch: the training batches'
    /// under their own name, the validation batches' under `val_` and the name (Keras's
    /// convention).
    #[serde(with = "floats::map", default)]
    pub metrics: BTreeMap<String, f64>,
}

impl EpochRecord {
    /// Training items per second over the epoch.
    pub fn items_per_second(&self) -> f64 {
        self.items as f64 / self.seconds
    }

    /// One line for a progress bar or a log: the losses, the parts and metrics, and the
    /// throughput, e.g. `loss 0.01234 val_loss 0.01301 kl 0.50000 (5120 items/s)`.
    pub fn summary(&self) -> String {
        let mut out = format!("loss {:.5}", self.loss);
        if let Some(v) = self.val_loss {
            out.push_str(&format!(" val_loss {v:.5}"));
        }
        for (name, value) in &self.metrics {
            out.push_str(&format!(" {name} {value:.5}"));
        }
        out.push_str(&format!(" ({:.0} items/s)", self.items_per_second()));
        out
    }
}

/// Losses per epoch and per step.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// One record per finished epoch.
    pub epochs: Vec<EpochRecord>,
    /// The loss of every optimiser step, in order.
    #[serde(with = "floats::vec")]
    pub step_losses: Vec<f64>,
    /// What happened to the run besides its epochs: a resume with other settings (forced), newer
    /// checkpoints passed over because they were incomplete.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl History {
    /// The last epoch's record.
    pub fn last(&self) -> Option<&EpochRecord> {
        self.epochs.last()
    }

    /// The epoch (from 1) whose monitored loss was lowest: the validation loss where the epoch
    /// has one, else the training loss; the first such epoch on a tie. `None` before any epoch.
    /// What early stopping (`patience`) and [`restore_best`](crate::FitConfig::restore_best)
    /// go by.
    pub fn best_epoch(&self) -> Option<usize> {
        best_index(&self.epochs).map(|i| self.epochs[i].epoch)
    }

    /// Total training time in seconds.
    pub fn seconds(&self) -> f64 {
        self.epochs.iter().map(|e| e.seconds).sum()
    }

    /// The epoch records as CSV: `epoch,loss,val_loss,seconds,items,lr` and then one column per
    /// metric, in name order (an empty cell where a value is missing, e.g. `val_loss` without a
    /// validation split).
    pub fn to_csv(&self) -> String {
        let names: std::collections::BTreeSet<&str> = self
            .epochs
            .iter()
            .flat_map(|e| e.metrics.keys().map(String::as_str))
            .collect();
        let mut out = String::from("epoch,loss,val_loss,seconds,items,lr");
        for name in &names {
            out.push(',');
            out.push_str(name);
        }
        out.push('\n');
        for e in &self.epochs {
            let val = e.val_loss.map(|v| v.to_string()).unwrap_or_default();
            out.push_str(&format!(
                "{},{},{},{},{},{}",
                e.epoch, e.loss, val, e.seconds, e.items, e.lr
            ));
            for name in &names {
                out.push(',');
                if let Some(v) = e.metrics.get(*name) {
                    out.push_str(&v.to_string());
                }
            }
            out.push('\n');
        }
        out
    }

    /// The history as JSON, non-finite values as the strings `"NaN"`, `"inf"` and `"-inf"`
    /// (JSON has no numbers for them), which [`load`](Self::load) reads back.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("a history serialises")
    }

    /// Writes `history.csv` and `history.json` into `dir` (each atomically and durably, see
    /// [`write_atomic`]).
    pub fn save(&self, dir: &Path) -> Result<()> {
        write_atomic(&dir.join("history.csv"), self.to_csv().as_bytes())?;
        write_atomic(&dir.join("history.json"), &self.to_json())
    }

    /// Reads a history written by [`save`](Self::save).
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join("history.json");
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Format {
            path: path.display().to_string(),
            message: format!("not a training history: {e}"),
        })
    }
}

/// Writes `bytes` to `path` through a temporary file in the same folder, fsynced before it is
/// renamed into place, and fsyncs the folder after: a reader, a crash or a power loss never
/// leaves a half-written or empty file, only the old one or the new one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!(
        "{}.tmp",
        path.extension().and_then(|e| e.to_str()).unwrap_or("")
    ));
    crate::checkpoint::write_synced(&tmp, bytes)?;
    rename_synced(&tmp, path)
}

/// Publishes a file written at `tmp`: fsyncs it, renames it over `path`, fsyncs the folder.
pub(crate) fn publish(tmp: &Path, path: &Path) -> Result<()> {
    crate::checkpoint::sync_file(tmp).map_err(|e| Error::io(tmp, e))?;
    rename_synced(tmp, path)
}

fn rename_synced(tmp: &Path, path: &Path) -> Result<()> {
    std::fs::rename(tmp, path).map_err(|e| Error::io(path, e))?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    // A folder cannot be opened for syncing on Windows, where the rename is durable by itself.
    match std::fs::File::open(parent) {
        Ok(dir) => dir.sync_all().map_err(|e| Error::io(parent, e)),
        Err(_) if cfg!(windows) => Ok(()),
        Err(e) => Err(Error::io(parent, e)),
    }
}

/// Serde adapters that write non-finite floats as the strings `"NaN"`, `"inf"` and `"-inf"`
/// (serde_json would write `null`, which does not read back into a float) and read them back.
mod floats {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BTreeMap;

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Number(f64),
        Text(String),
    }

    fn repr(v: f64) -> Repr {
        if v.is_finite() {
            Repr::Number(v)
        } else if v.is_nan() {
            Repr::Text("NaN".into())
        } else if v > 0.0 {
            Repr::Text("inf".into())
        } else {
            Repr::Text("-inf".into())
        }
    }

    fn value<E: serde::de::Error>(r: Repr) -> Result<f64, E> {
        match r {
            Repr::Number(v) => Ok(v),
            Repr::Text(t) => match t.as_str() {
                "NaN" => Ok(f64::NAN),
                "inf" => Ok(f64::INFINITY),
                "-inf" => Ok(f64::NEG_INFINITY),
                other => Err(E::custom(format!(
                    "expected a number, \"NaN\", \"inf\" or \"-inf\", got {other:?}"
                ))),
            },
        }
    }

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        repr(*v).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        value(Repr::deserialize(d)?)
    }

    pub mod option {
        use super::*;

        pub fn serialize<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
            v.map(repr).serialize(s)
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
            Option::<Repr>::deserialize(d)?.map(value).transpose()
        }
    }

    pub mod vec {
        use super::*;

        pub fn serialize<S: Serializer>(v: &[f64], s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(v.iter().map(|&x| repr(x)))
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
            Vec::<Repr>::deserialize(d)?
                .into_iter()
                .map(value)
                .collect()
        }
    }

    pub mod map {
        use super::*;

        pub fn serialize<S: Serializer>(
            v: &BTreeMap<String, f64>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            s.collect_map(v.iter().map(|(k, &x)| (k, repr(x))))
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<BTreeMap<String, f64>, D::Error> {
            BTreeMap::<String, Repr>::deserialize(d)?
                .into_iter()
                .map(|(k, r)| value(r).map(|v| (k, v)))
                .collect()
        }
    }
}

/// The index of the epoch whose monitored loss (validation loss if there is one, else training
/// loss) is lowest, the first on a tie; `None` for no epoch.
pub(crate) fn best_index(epochs: &[EpochRecord]) -> Option<usize> {
    let monitored = |e: &EpochRecord| e.val_loss.unwrap_or(e.loss);
    let mut best = None;
    for (i, e) in epochs.iter().enumerate() {
        if best.is_none_or(|b: usize| monitored(e) < monitored(&epochs[b])) {
            best = Some(i);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_and_json_round_trip() {
        let h = History {
            epochs: vec![
                EpochRecord {
                    epoch: 1,
                    loss: 0.5,
                    val_loss: Some(0.6),
                    seconds: 0.1,
                    items: 8,
                    lr: 0.01,
                    metrics: [("mae".to_string(), 0.4)].into(),
                },
                EpochRecord {
                    epoch: 2,
                    loss: 0.25,
                    val_loss: None,
                    seconds: 0.2,
                    items: 8,
                    lr: 0.005,
                    metrics: BTreeMap::new(),
                },
            ],
            step_losses: vec![0.7, 0.3],
            notes: Vec::new(),
        };
        assert_eq!(
            h.to_csv(),
            "epoch,loss,val_loss,seconds,items,lr,mae\n1,0.5,0.6,0.1,8,0.01,0.4\n2,0.25,,0.2,8,0.005,\n"
        );
        let dir = std::env::temp_dir().join(format!("rensa-history-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        h.save(&dir).unwrap();
        assert_eq!(History::load(&dir).unwrap(), h);
        assert!(!dir.join("history.json.tmp").exists());
        std::fs::write(dir.join("history.json"), b"{ not json").unwrap();
        let err = History::load(&dir).unwrap_err().to_string();
        assert!(
            err.contains("history.json") && err.contains("not a training history"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
        assert!((h.seconds() - 0.3).abs() < 1e-12);
    }

    #[test]
    fn non_finite_values_are_written_as_text_and_read_back() {
        let mut h = History::default();
        h.epochs.push(EpochRecord {
            epoch: 1,
            loss: f64::INFINITY,
            val_loss: Some(f64::NAN),
            seconds: 0.5,
            items: 4,
            lr: f64::NEG_INFINITY,
            metrics: [("kl".to_string(), f64::NAN)].into(),
        });
        h.step_losses = vec![1.0, f64::NAN];
        let json = String::from_utf8(h.to_json()).unwrap();
        assert!(json.contains("\"inf\"") && json.contains("\"NaN\"") && json.contains("\"-inf\""));
        assert!(!json.contains("null"), "{json}");
        let back: History = serde_json::from_str(&json).unwrap();
        let e = &back.epochs[0];
        assert_eq!(e.loss, f64::INFINITY);
        assert!(e.val_loss.unwrap().is_nan() && e.metrics["kl"].is_nan());
        assert_eq!(e.lr, f64::NEG_INFINITY);
        assert!(back.step_losses[1].is_nan());
        let bad = json.replace("\"NaN\"", "\"nan-ish\"");
        let err = serde_json::from_str::<History>(&bad)
            .unwrap_err()
            .to_string();
        assert!(err.contains("nan-ish"), "{err}");
    }
}
