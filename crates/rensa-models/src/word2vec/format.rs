//! The word2vec file formats, as word2vec.c writes them and gensim's
//! `KeyedVectors.load_word2vec_format` / `save_word2vec_format` read and write them.
//!
//! Both start with a header line `"<words> <dims>\n"`. The text form then has one line per word:
//! the word and its values separated by single spaces. The binary form has, per word, the word's
//! UTF-8 bytes, a space and `dims` little-endian `f32`s, followed by a newline in word2vec.c's
//! files and in rensa's (gensim writes none; readers skip it either way).
//!
//! Reading checks everything: a malformed header, a text row without its newline (a cut inside
//! a number would read as another number), a header announcing more data than the file
//! holds or more than [`MAX_DIMS`] dimensions (refused before anything is allocated), short and
//! long rows, a text row longer than a word and its values can be written, values that do not parse
//! or are not finite, words that are not UTF-8, repeat or are empty, and truncation anywhere.
//! Each error names the file and the line or record.
//!
//! This is stricter than gensim's reader, which warns about a repeated word and keeps its first
//! vector, loads NaN and infinite values, reads words holding tabs or no-break spaces, and stops
//! after the rows its header announces, ignoring what follows: a file rensa refuses for one of
//! these reasons is one whose vectors would mislead a query (a NaN ranks nothing) or whose
//! header does not describe it. What gensim's `save_word2vec_format` writes of finite vectors
//! and whitespace-free words is read.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::Path;

use super::vectors::Embeddings;
use super::{Error, Result};

/// A word longer than this (in bytes) is a corrupt file, not a word: the corpus reader's cap,
/// so every word rensa trains on can be read back.
const MAX_WORD_BYTES: usize = rensa_data::text::corpus::MAX_TOKEN_BYTES;

/// The longest a text row's value may be written, in bytes: `%lf` of the largest `f32`
/// (word2vec.c's form) takes 47 with its sign, `repr` (gensim's) far fewer. With
/// [`MAX_WORD_BYTES`] it bounds a text row, so a file without newlines is refused at its first
/// row instead of read into memory whole.
const MAX_VALUE_BYTES: usize = 64;

/// More dimensions than this is a corrupt header, not a model (published vectors have at most a
/// few thousand); it bounds the one row buffer the reader allocates before the rows arrive.
pub const MAX_DIMS: u64 = 1 << 20;

/// Which of the two forms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// One line of text per word.
    Text,
    /// Raw little-endian `f32`s.
    Binary,
}

impl Format {
    /// Binary for a `.bin` file, text otherwise (the convention of word2vec.c and gensim).
    pub fn from_path(path: &Path) -> Self {
        if path.extension().is_some_and(|e| e == "bin") {
            Format::Binary
        } else {
            Format::Text
        }
    }
}

fn err(origin: &str, what: String) -> Error {
    Error::Data(rensa_data::DataError::Format {
        origin: origin.to_string(),
        what,
    })
}

impl Embeddings {
    /// Reads a word2vec file in `format`, all of it or its first `limit` words.
    ///
    /// # Errors
    /// The file cannot be read or is malformed (see the [module docs](self)).
    pub fn read(path: &Path, format: Format, limit: Option<usize>) -> Result<Self> {
        let file = File::open(path).map_err(|e| rensa_data::DataError::io(path, e))?;
        // a pipe or a device has no length to check the header against (its metadata says 0)
        let len = file
            .metadata()
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len());
        read_from(
            BufReader::with_capacity(1 << 16, file),
            format,
            limit,
            (&path.display().to_string(), len),
        )
    }

    /// Writes the vectors to `path` in `format`, atomically (a temporary file, synced, then
    /// renamed over `path`).
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn write(&self, path: &Path, format: Format) -> Result<()> {
        let io = |e: std::io::Error| Error::Data(rensa_data::DataError::io(path, e));
        // the whole name and a suffix, so that vectors.txt and vectors.bin never share one
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = std::path::PathBuf::from(tmp);
        let file = File::create(&tmp).map_err(io)?;
        let mut out = BufWriter::with_capacity(1 << 16, file);
        self.write_to(&mut out, format).map_err(io)?;
        let file = out.into_inner().map_err(|e| io(e.into_error()))?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// Writes the vectors to `out` in `format`.
    ///
    /// # Errors
    /// A write fails.
    pub fn write_to(&self, out: &mut impl Write, format: Format) -> std::io::Result<()> {
        writeln!(out, "{} {}", self.len(), self.dims())?;
        for (word, row) in self
            .words()
            .iter()
            .zip(self.vectors().chunks_exact(self.dims()))
        {
            out.write_all(word.as_bytes())?;
            match format {
                Format::Text => {
                    for v in row {
                        write!(out, " {v}")?;
                    }
                }
                Format::Binary => {
                    out.write_all(b" ")?;
                    for v in row {
                        out.write_all(&v.to_le_bytes())?;
                    }
                }
            }
            out.write_all(b"\n")?;
        }
        Ok(())
    }
}

/// Reads word vectors in `format` from `reader`; `origin` names it in errors and `len`, when
/// known, is its size in bytes (a header announcing more is refused before allocating).
///
/// # Errors
/// As [`Embeddings::read`].
pub fn read_from(
    mut reader: impl BufRead,
    format: Format,
    limit: Option<usize>,
    (origin, len): (&str, Option<u64>),
) -> Result<Embeddings> {
    let io = |e: std::io::Error| err(origin, format!("read failed: {e}"));
    let mut header = Vec::new();
    (&mut reader)
        .take(256)
        .read_until(b'\n', &mut header)
        .map_err(io)?;
    let header_text =
        std::str::from_utf8(&header).map_err(|_| err(origin, "the header is not text".into()))?;
    let fields: Vec<&str> = header_text.split_whitespace().collect();
    let parsed: Vec<Option<u64>> = fields.iter().map(|f| f.parse().ok()).collect();
    let (words, dims) = match parsed[..] {
        [Some(_), Some(d)] if d > MAX_DIMS => {
            return Err(err(
                origin,
                format!(
                    "the header announces {d} dimensions, more than the {MAX_DIMS} a reader accepts"
                ),
            ));
        }
        [Some(w), Some(d)] if d > 0 && header.ends_with(b"\n") => (w, d),
        _ => {
            return Err(err(
                origin,
                format!(
                    "the header must be \"<words> <dims>\" (dims >= 1) on the first line, got {:?}",
                    header_text.trim_end()
                ),
            ));
        }
    };
    let wanted = limit.map_or(words, |l| words.min(l as u64));
    // the least a row can take: binary: a 1-byte word, a space and the floats; text: a 1-byte
    // word and " 0" per value, then the newline
    let per_row = match format {
        Format::Binary => dims.checked_mul(4).and_then(|b| b.checked_add(2)),
        Format::Text => dims.checked_mul(2).and_then(|b| b.checked_add(2)),
    };
    let least = per_row
        .and_then(|r| r.checked_mul(wanted))
        .map(|b| b.saturating_sub(1));
    if let (Some(len), need) = (len, least) {
        let have = len.saturating_sub(header.len() as u64);
        if need.is_none_or(|need| need > have) {
            return Err(err(
                origin,
                format!(
                    "truncated: the header announces {words} words of {dims} dimensions, more than \
                     the {have} bytes after it can hold"
                ),
            ));
        }
    }
    let dims = usize::try_from(dims).map_err(|_| err(origin, "dims too large".into()))?;
    let wanted = usize::try_from(wanted).map_err(|_| err(origin, "too many words".into()))?;
    // reserve what the header announces only where the input's length vouches for it; a stream
    // of unknown length grows as it is read
    let cap = if len.is_some() {
        wanted.min(1 << 20)
    } else {
        wanted.min(1 << 10)
    };
    let mut names = Vec::with_capacity(cap);
    let values_cap = if len.is_some() { 1 << 26 } else { 1 << 20 };
    let mut values = Vec::with_capacity(cap.saturating_mul(dims).min(values_cap));
    match format {
        Format::Text => read_text(
            &mut reader,
            (wanted, dims),
            origin,
            (&mut names, &mut values),
        )?,
        Format::Binary => read_binary(
            &mut reader,
            (wanted, dims),
            origin,
            (&mut names, &mut values),
        )?,
    }
    if limit.is_none() {
        // nothing may follow the announced rows but blank lines
        let mut rest = Vec::new();
        reader.take(1 << 20).read_to_end(&mut rest).map_err(io)?;
        if rest.iter().any(|b| !b.is_ascii_whitespace()) {
            return Err(err(
                origin,
                format!("more data after the {words} words the header announces"),
            ));
        }
    }
    Embeddings::new(names, dims, values).map_err(|e| match e {
        Error::Vectors(what) => err(origin, what),
        other => other,
    })
}

fn read_text(
    reader: &mut impl BufRead,
    (words, dims): (usize, usize),
    origin: &str,
    (names, values): (&mut Vec<String>, &mut Vec<f32>),
) -> Result<()> {
    let mut line = Vec::new();
    // the word, `dims` values, a space before each, and the newline (a `\r` before it too)
    let longest = MAX_WORD_BYTES + dims * (MAX_VALUE_BYTES + 1) + 2;
    for row in 0..words {
        let line_no = row + 2;
        line.clear();
        reader
            .by_ref()
            .take(longest as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(|e| err(origin, format!("line {line_no}: read failed: {e}")))?;
        if line.len() > longest {
            return Err(err(
                origin,
                format!(
                    "line {line_no} is longer than the {longest} bytes a word and {dims} values \
                     can take"
                ),
            ));
        }
        if line.is_empty() {
            return Err(err(
                origin,
                format!("truncated: {row} of the {words} rows the header announces"),
            ));
        }
        if !line.ends_with(b"\n") {
            // a cut inside the last number would otherwise read as another number
            return Err(err(
                origin,
                format!("line {line_no} has no newline at its end: truncated"),
            ));
        }
        let text = std::str::from_utf8(&line)
            .map_err(|e| err(origin, format!("line {line_no}: not UTF-8 ({e})")))?;
        let mut fields = text.trim_end_matches(['\n', '\r', ' ', '\t']).split(' ');
        let word = fields.next().unwrap_or_default();
        let before = values.len();
        for field in fields {
            let v: f32 = field.parse().map_err(|_| {
                err(
                    origin,
                    format!("line {line_no} ({word:?}): {field:?} is not a number"),
                )
            })?;
            values.push(v);
        }
        let got = values.len() - before;
        if got != dims {
            return Err(err(
                origin,
                format!("line {line_no} ({word:?}): {got} values, the header says {dims}"),
            ));
        }
        names.push(word.to_string());
    }
    Ok(())
}

fn read_binary(
    reader: &mut impl BufRead,
    (words, dims): (usize, usize),
    origin: &str,
    (names, values): (&mut Vec<String>, &mut Vec<f32>),
) -> Result<()> {
    let mut word = Vec::new();
    // `dims` is at most MAX_DIMS, so this is at most 4 MiB
    let mut floats = if words == 0 {
        Vec::new()
    } else {
        vec![0u8; dims * 4]
    };
    let truncated = |row: usize| {
        err(
            origin,
            format!(
                "truncated in record {} of the {words} the header announces",
                row + 1
            ),
        )
    };
    for row in 0..words {
        word.clear();
        // the word: bytes up to a space, a newline before it skipped
        loop {
            let buf = reader.fill_buf().map_err(|_| truncated(row))?;
            if buf.is_empty() {
                return Err(truncated(row));
            }
            let byte = buf[0];
            reader.consume(1);
            match byte {
                b' ' => break,
                b'\n' if word.is_empty() => {}
                _ => word.push(byte),
            }
            if word.len() > MAX_WORD_BYTES {
                return Err(err(
                    origin,
                    format!("record {}: no space within {MAX_WORD_BYTES} bytes", row + 1),
                ));
            }
        }
        let text = String::from_utf8(std::mem::take(&mut word)).map_err(|e| {
            err(
                origin,
                format!(
                    "record {}: the word is not UTF-8 ({})",
                    row + 1,
                    e.utf8_error()
                ),
            )
        })?;
        reader.read_exact(&mut floats).map_err(|_| truncated(row))?;
        values.extend(
            floats
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        );
        names.push(text);
    }
    Ok(())
}
