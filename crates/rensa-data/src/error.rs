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

/// Writes `bytes` to a temporary file beside `path` (`<name>.tmp`), syncs it and renames it
/// over `path`, then syncs the folder: a crash leaves the old file or the new one, never a part.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    let tmp = path.with_file_name(name);
    let written = std::fs::File::create(&tmp).and_then(|mut f| {
        f.write_all(bytes)?;
        // through the writing handle: Windows refuses to flush a read-only one
        f.sync_all()
    });
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(DataError::io(path, e));
    }
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    // a folder cannot be opened for syncing on Windows, where the rename is durable by itself
    match std::fs::File::open(folder) {
        Ok(dir) => dir.sync_all().map_err(|e| DataError::io(folder, e)),
        Err(_) if cfg!(windows) => Ok(()),
        Err(e) => Err(DataError::io(folder, e)),
    }
}
