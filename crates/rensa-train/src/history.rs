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
    pub loss: f64,
    /// Validation loss at the end of the epoch, if there is a validation split.
    pub val_loss: Option<f64>,
    /// Wall time of the epoch in seconds (training and validation).
    pub seconds: f64,
    /// Training items the epoch went through.
    #[serde(default)]
    pub items: usize,
    /// The learning rate of the epoch's last step (it changes within an epoch under a
    /// schedule).
    #[serde(default)]
    pub lr: f64,
    /// The named parts of the loss and the metrics of the model's steps
    /// ([`Output`](crate::Output)), item-weighted means over the epoch: the training batches'
    /// under their own name, the validation batches' under `val_` and the name (Keras's
    /// convention).
    #[serde(default)]
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
    pub step_losses: Vec<f64>,
}

impl History {
    /// The last epoch's record.
    pub fn last(&self) -> Option<&EpochRecord> {
        self.epochs.last()
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

    /// Writes `history.csv` and `history.json` into `dir` (each atomically: a temporary file
    /// renamed into place).
    pub fn save(&self, dir: &Path) -> Result<()> {
        write_atomic(&dir.join("history.csv"), self.to_csv().as_bytes())?;
        let json = serde_json::to_vec_pretty(self).expect("a history serialises");
        write_atomic(&dir.join("history.json"), &json)
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

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so that a
/// reader (or a crash) never sees a half-written file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!(
        "{}.tmp",
        path.extension().and_then(|e| e.to_str()).unwrap_or("")
    ));
    std::fs::write(&tmp, bytes).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
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
}
