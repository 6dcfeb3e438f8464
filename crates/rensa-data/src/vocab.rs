//! A vocabulary: the map between tokens and the integer ids a model embeds, with the four
//! special tokens every sequence model needs.
//!
//! Ids `0..4` are always [`PAD`] (padding of a batch), [`BOS`] (the decoder's first input),
//! [`EOS`] (the end of an output) and [`UNK`] (any token the vocabulary does not hold); the
//! tokens follow in the order they were added. Encoding never fails: an unknown token becomes
//! [`UNK`] and is reported in [`Encoded::unknown`]. Decoding stops at the first [`EOS`] and
//! skips padding and [`BOS`].
//!
//! Saved as JSON (`{"format": "rensa-vocabulary", "version": 1, "specials": [...], "tokens":
//! [...]}`); loading checks every part and names what is wrong.
//!
//! ```
//! use rensa_data::vocab::{EOS, Vocabulary};
//!
//! let vocab = Vocabulary::from_chars(["0123456789-"]);
//! let encoded = vocab.encode_chars("1979-05-03?");
//! assert_eq!(encoded.unknown, vec![(10, "?".to_string())]); // `?` became UNK
//! let mut ids = vocab.encode_chars("1979").ids;
//! ids.push(EOS);
//! assert_eq!(vocab.decode_chars(&ids), "1979");
//! ```

use crate::error::{DataError, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// Padding: fills a batch's shorter sequences.
pub const PAD: usize = 0;
/// Begin of sequence: the decoder's input at its first step.
pub const BOS: usize = 1;
/// End of sequence: the last token of every target.
pub const EOS: usize = 2;
/// Unknown: stands for any token the vocabulary does not hold.
pub const UNK: usize = 3;
/// The special tokens' texts, by id.
pub const SPECIALS: [&str; 4] = ["<pad>", "<bos>", "<eos>", "<unk>"];

const FORMAT: &str = "rensa-vocabulary";
/// The largest vocabulary file [`Vocabulary::load`] reads (256 MiB: some ten million tokens).
pub const MAX_FILE_BYTES: u64 = 1 << 28;
const VERSION: u32 = 1;

/// Tokens and their ids; see the [module docs](self).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vocabulary {
    tokens: Vec<String>,
    ids: HashMap<String, usize>,
}

/// The ids of an encoded sequence and the tokens that were not in the vocabulary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encoded {
    /// One id per token ([`UNK`] for the unknown ones).
    pub ids: Vec<usize>,
    /// `(position, token)` of every token that became [`UNK`].
    pub unknown: Vec<(usize, String)>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Saved {
    format: String,
    version: u32,
    specials: Vec<String>,
    tokens: Vec<String>,
}

impl Default for Vocabulary {
    fn default() -> Self {
        Self::new()
    }
}

impl Vocabulary {
    /// The special tokens only.
    pub fn new() -> Self {
        let tokens: Vec<String> = SPECIALS.iter().map(|s| s.to_string()).collect();
        let ids = tokens.iter().cloned().zip(0..).collect();
        Self { tokens, ids }
    }

    /// The specials and the distinct `tokens`, in the order they first appear.
    pub fn from_tokens<S: AsRef<str>>(tokens: impl IntoIterator<Item = S>) -> Self {
        let mut vocab = Self::new();
        for t in tokens {
            vocab.insert(t.as_ref());
        }
        vocab
    }

    /// A character vocabulary: the specials and every distinct character of `texts`, sorted
    /// (so that the ids do not depend on the order of the texts).
    pub fn from_chars<S: AsRef<str>>(texts: impl IntoIterator<Item = S>) -> Self {
        let mut chars: Vec<char> = texts
            .into_iter()
            .flat_map(|t| t.as_ref().chars().collect::<Vec<_>>())
            .collect();
        chars.sort_unstable();
        chars.dedup();
        Self::from_tokens(chars.iter().map(|c| c.to_string()))
    }

    /// Adds `token` unless it is there; its id either way.
    pub fn insert(&mut self, token: &str) -> usize {
        if let Some(&id) = self.ids.get(token) {
            return id;
        }
        let id = self.tokens.len();
        self.tokens.push(token.to_string());
        self.ids.insert(token.to_string(), id);
        id
    }

    /// The number of ids, specials included.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether it holds the specials only.
    pub fn is_empty(&self) -> bool {
        self.tokens.len() == SPECIALS.len()
    }

    /// The id of `token`, if it is in the vocabulary.
    pub fn id(&self, token: &str) -> Option<usize> {
        self.ids.get(token).copied()
    }

    /// The token of `id`, if there is one.
    pub fn token(&self, id: usize) -> Option<&str> {
        self.tokens.get(id).map(String::as_str)
    }

    /// The tokens in id order, specials first.
    pub fn tokens(&self) -> &[String] {
        &self.tokens
    }

    /// The ids of `tokens`, [`UNK`] for the unknown ones (reported with their position).
    pub fn encode<S: AsRef<str>>(&self, tokens: impl IntoIterator<Item = S>) -> Encoded {
        let mut unknown = Vec::new();
        let ids = tokens
            .into_iter()
            .enumerate()
            .map(|(k, t)| {
                let t = t.as_ref();
                self.id(t).unwrap_or_else(|| {
                    unknown.push((k, t.to_string()));
                    UNK
                })
            })
            .collect();
        Encoded { ids, unknown }
    }

    /// The ids of the characters of `text` (for a vocabulary of characters).
    pub fn encode_chars(&self, text: &str) -> Encoded {
        let mut buf = [0u8; 4];
        self.encode(text.chars().map(|c| c.encode_utf8(&mut buf).to_string()))
    }

    /// The tokens of `ids` up to the first [`EOS`], without [`PAD`] and [`BOS`]; an id past the
    /// vocabulary reads as [`UNK`]'s text.
    pub fn decode(&self, ids: &[usize]) -> Vec<&str> {
        ids.iter()
            .take_while(|&&id| id != EOS)
            .filter(|&&id| id != PAD && id != BOS)
            .map(|&id| self.token(id).unwrap_or(SPECIALS[UNK]))
            .collect()
    }

    /// [`decode`](Self::decode) joined without separators (for a vocabulary of characters).
    pub fn decode_chars(&self, ids: &[usize]) -> String {
        self.decode(ids).concat()
    }

    /// The vocabulary as JSON.
    pub fn to_json(&self) -> String {
        let saved = Saved {
            format: FORMAT.into(),
            version: VERSION,
            specials: self.tokens[..SPECIALS.len()].to_vec(),
            tokens: self.tokens[SPECIALS.len()..].to_vec(),
        };
        serde_json::to_string_pretty(&saved).expect("a vocabulary serialises")
    }

    /// Reads a vocabulary written by [`to_json`](Self::to_json); `source` names it in errors.
    ///
    /// # Errors
    /// [`DataError::Format`] on malformed or truncated JSON, another format or version, other
    /// special tokens, a repeated token.
    pub fn from_json(text: &str, source: &str) -> Result<Self> {
        let bad = |what: String| DataError::Format {
            origin: source.to_string(),
            what,
        };
        let saved: Saved =
            serde_json::from_str(text).map_err(|e| bad(format!("not a vocabulary file: {e}")))?;
        if saved.format != FORMAT {
            return Err(bad(format!(
                "format {:?}, expected {FORMAT:?}",
                saved.format
            )));
        }
        if saved.version != VERSION {
            return Err(bad(format!(
                "version {}, this build reads {VERSION}",
                saved.version
            )));
        }
        if saved.specials != SPECIALS {
            return Err(bad(format!(
                "special tokens {:?}, expected {SPECIALS:?}",
                saved.specials
            )));
        }
        let mut vocab = Self::new();
        for (k, t) in saved.tokens.iter().enumerate() {
            // an empty token is one `insert` accepts, so one `save` writes: read it back
            if vocab.id(t).is_some() {
                return Err(bad(format!("token {k} ({t:?}) appears twice")));
            }
            vocab.insert(t);
        }
        Ok(vocab)
    }

    /// Writes the vocabulary to `path` (through a temporary file and a rename, so that a crash
    /// leaves the old file or the new one).
    ///
    /// # Errors
    /// [`DataError::Io`] naming the path.
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::error::write_atomic(path, self.to_json().as_bytes())
    }

    /// Reads a vocabulary saved by [`save`](Self::save).
    ///
    /// # Errors
    /// [`DataError::Io`] when the file cannot be read, [`DataError::Format`] as
    /// [`from_json`](Self::from_json) or for a file over [`MAX_FILE_BYTES`] (refused before it
    /// is read).
    pub fn load(path: &Path) -> Result<Self> {
        Self::from_json(
            &read_capped(path, MAX_FILE_BYTES)?,
            &path.display().to_string(),
        )
    }
}

/// The text of the file at `path`, refused when it holds more than `cap` bytes (only `cap + 1`
/// are read).
fn read_capped(path: &Path, cap: u64) -> Result<String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut text = String::new();
    file.take(cap + 1)
        .read_to_string(&mut text)
        .map_err(|e| DataError::io(path, e))?;
    if text.len() as u64 > cap {
        return Err(DataError::Format {
            origin: path.display().to_string(),
            what: format!("more than {cap} bytes: not a vocabulary file"),
        });
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specials_come_first_and_encoding_reports_unknown_tokens() {
        let v = Vocabulary::from_tokens(["the", "cat", "the", "sat"]);
        assert_eq!(v.len(), 7);
        assert_eq!(v.id("<unk>"), Some(UNK));
        assert_eq!(v.id("cat"), Some(5));
        let e = v.encode(["the", "dog", "sat"]);
        assert_eq!(e.ids, vec![4, UNK, 6]);
        assert_eq!(e.unknown, vec![(1, "dog".to_string())]);
        assert_eq!(v.decode(&[BOS, 4, 5, EOS, 6, PAD]), vec!["the", "cat"]);
        assert_eq!(v.decode(&[4, 99]), vec!["the", "<unk>"]);
    }

    #[test]
    fn a_character_vocabulary_is_sorted_and_round_trips() {
        let v = Vocabulary::from_chars(["may 3", "1979"]);
        assert_eq!(&v.tokens()[4..], [" ", "1", "3", "7", "9", "a", "m", "y"]);
        assert_eq!(v.decode_chars(&v.encode_chars("may 1979").ids), "may 1979");
    }

    #[test]
    fn json_round_trips_and_bad_files_are_named() {
        let v = Vocabulary::from_tokens(["a", "b", "ü"]);
        assert_eq!(Vocabulary::from_json(&v.to_json(), "v").unwrap(), v);
        let json = v.to_json();
        let cases = [
            (json[..json.len() / 2].to_string(), "not a vocabulary file"),
            (String::new(), "not a vocabulary file"),
            (json.replace("rensa-vocabulary", "other"), "format"),
            (
                json.replace("\"version\": 1", "\"version\": 7"),
                "version 7",
            ),
            (json.replace("<unk>", "<oov>"), "special tokens"),
            (json.replace("\"b\"", "\"a\""), "appears twice"),
            (
                json.replace("\"tokens\"", "\"tokenz\""),
                "not a vocabulary file",
            ),
        ];
        for (text, expected) in cases {
            let err = Vocabulary::from_json(&text, "vocab.json")
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("vocab.json") && err.contains(expected),
                "{err} (expected {expected:?})"
            );
        }
    }

    #[test]
    fn save_and_load_through_a_file() {
        let dir = std::env::temp_dir().join(format!("rensa-vocab-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("vocab.json");
        let v = Vocabulary::from_chars(["hello"]);
        v.save(&path).unwrap();
        assert_eq!(Vocabulary::load(&path).unwrap(), v);
        let missing = Vocabulary::load(&dir.join("none.json")).unwrap_err();
        assert!(missing.to_string().contains("none.json"), "{missing}");
        std::fs::write(&path, [0xff, 0xfe, b'{']).unwrap();
        assert!(Vocabulary::load(&path).is_err());
        // whatever `insert` accepts, `save` writes and `load` reads back
        let odd = Vocabulary::from_tokens(["", " ", "\u{0}"]);
        odd.save(&path).unwrap();
        assert_eq!(Vocabulary::load(&path).unwrap(), odd);
        // a file over the cap is refused, naming it
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(read_capped(&path, text.len() as u64).unwrap(), text);
        let big = read_capped(&path, text.len() as u64 - 1).unwrap_err();
        assert!(big.to_string().contains("vocab.json"), "{big}");
        // the temporary file is gone
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(left.len(), 1, "{left:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
