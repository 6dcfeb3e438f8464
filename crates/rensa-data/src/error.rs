//! The errors of reading and writing data files.

use std::path::{Path, PathBuf};

/// What went wrong with a data file.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The contents are not what the reader expects.
    #[error("{origin}: {what}")]
    Format {
        /// The file (or other source) read.
        origin: String,
        /// What is wrong, with the values found.
        what: String,
    },
}

impl DataError {
    /// An I/O error on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The result of rensa-data's file operations.
pub type Result<T> = std::result::Result<T, DataError>;

/// Writes `bytes` to a temporary file beside `path`, syncs it and renames it over `path`: a
/// crash leaves the old file or the new one, never a part.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::File::open(&tmp)?.sync_all())
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| DataError::io(path, e))
}
