//! A corpus file as a stream of sentences.
//!
//! One line is one sentence; tokens are separated by what Python's `str.split` splits at
//! (spaces, tabs, carriage returns, the ASCII separators 0x1c-0x1f, and Unicode whitespace such
//! as the no-break space). A line longer than `max_sentence_length` tokens is cut into several sentences, as
//! gensim's `LineSentence` cuts them (a corpus like text8, one line of 17 million words, is
//! still read in 64 KiB pieces, never as a whole). Tokens must be UTF-8: a token that is not is
//! an error naming the file and the line. More than [`MAX_TOKEN_BYTES`] (64 KiB) without an ASCII
//! space, tab or line break is an error too, naming the line: such a run is not a word (a
//! binary or compressed file given as the corpus, most likely), memory stays bounded however
//! the file is made, and every word of a vocabulary fits the word2vec formats' readers, which
//! refuse longer words. gensim reads such a token as a word.

use std::cell::Cell;
use std::io::{BufRead, BufReader};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use crate::{DataError, Result};

/// gensim's cut for long lines (`MAX_WORDS_IN_BATCH`).
pub const MAX_SENTENCE_LENGTH: usize = 10_000;

/// The longest token a corpus may hold, in bytes (see the [module docs](self)).
pub const MAX_TOKEN_BYTES: usize = 1 << 16;

/// The tokens of one sentence, borrowed from the reader's buffer.
#[derive(Debug, Default)]
pub struct Sentence {
    text: String,
    ends: Vec<usize>,
}

impl Sentence {
    /// The number of tokens.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether the sentence has no token.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The tokens in order.
    pub fn tokens(&self) -> impl Iterator<Item = &str> + '_ {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts.zip(&self.ends).map(|(s, &e)| &self.text[s..e])
    }

    fn clear(&mut self) {
        self.text.clear();
        self.ends.clear();
    }

    fn push(&mut self, token: &str) {
        self.text.push_str(token);
        self.ends.push(self.text.len());
    }
}

/// A corpus file read sentence by sentence (see the [module docs](self)).
#[derive(Clone, Debug)]
pub struct Corpus {
    path: PathBuf,
    max_sentence_length: usize,
}

impl Corpus {
    /// The corpus in `path`, with gensim's sentence cut of [`MAX_SENTENCE_LENGTH`] tokens.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            max_sentence_length: MAX_SENTENCE_LENGTH,
        }
    }

    /// The same corpus with sentences cut at `n` tokens (at least 1).
    pub fn with_max_sentence_length(mut self, n: usize) -> Self {
        self.max_sentence_length = n.max(1);
        self
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Calls `f` on every non-empty sentence, in file order, and returns the number of tokens.
    ///
    /// # Errors
    /// The file cannot be opened or read, or a token is not UTF-8 (the error names the line).
    pub fn for_each_sentence(&self, mut f: impl FnMut(&Sentence)) -> Result<u64> {
        self.try_for_each_sentence(|s| {
            f(s);
            ControlFlow::Continue(())
        })
    }

    /// [`for_each_sentence`](Self::for_each_sentence) until `f` returns
    /// [`ControlFlow::Break`]: `f` is not called again and the file is read no further than
    /// the block (64 KiB) in which it broke; returns the tokens read.
    ///
    /// # Errors
    /// As [`for_each_sentence`](Self::for_each_sentence), for the part read.
    pub fn try_for_each_sentence(
        &self,
        f: impl FnMut(&Sentence) -> ControlFlow<()>,
    ) -> Result<u64> {
        let file = std::fs::File::open(&self.path).map_err(|e| DataError::io(&self.path, e))?;
        try_for_each_sentence(
            BufReader::with_capacity(1 << 16, file),
            &self.path.display().to_string(),
            self.max_sentence_length,
            f,
        )
    }
}

/// Reads sentences from `reader` (`origin` names it in errors) as [`Corpus::for_each_sentence`]
/// does from a file.
///
/// # Errors
/// A read fails, or a token is not UTF-8 or longer than [`MAX_TOKEN_BYTES`].
pub fn for_each_sentence(
    reader: impl BufRead,
    origin: &str,
    max_sentence_length: usize,
    f: impl FnMut(&Sentence),
) -> Result<u64> {
    read_sentences(reader, origin, max_sentence_length, f, &Cell::new(false))
}

/// [`for_each_sentence`] until `f` returns [`ControlFlow::Break`] (see
/// [`Corpus::try_for_each_sentence`]).
///
/// # Errors
/// As [`for_each_sentence`], for the part read.
pub fn try_for_each_sentence(
    reader: impl BufRead,
    origin: &str,
    max_sentence_length: usize,
    mut f: impl FnMut(&Sentence) -> ControlFlow<()>,
) -> Result<u64> {
    let stop = Cell::new(false);
    read_sentences(
        reader,
        origin,
        max_sentence_length,
        |s| {
            if !stop.get() && f(s).is_break() {
                stop.set(true);
            }
        },
        &stop,
    )
}

/// The reader of [`for_each_sentence`], which stops after the block in which `stop` was set.
fn read_sentences(
    mut reader: impl BufRead,
    origin: &str,
    max_sentence_length: usize,
    mut f: impl FnMut(&Sentence),
    stop: &Cell<bool>,
) -> Result<u64> {
    let max = max_sentence_length.max(1);
    let mut sentence = Sentence::default();
    let mut token: Vec<u8> = Vec::new();
    let mut line = 1u64;
    let mut total = 0u64;
    let io = |e: std::io::Error| DataError::Format {
        origin: origin.to_string(),
        what: format!("read failed: {e}"),
    };
    // Ends the token being read; a sentence that reaches `max` tokens goes to `f` at once. A
    // token of non-ASCII text is split at Unicode whitespace (a no-break space, U+2003, ...) as
    // Python's `str.split` does in gensim's `LineSentence`: no word holds whitespace.
    let finish_token = |token: &mut Vec<u8>,
                        sentence: &mut Sentence,
                        line: u64,
                        f: &mut dyn FnMut(&Sentence),
                        total: &mut u64|
     -> Result<()> {
        if token.is_empty() {
            return Ok(());
        }
        let text = std::str::from_utf8(token).map_err(|e| DataError::Format {
            origin: origin.to_string(),
            what: format!("line {line}: a token is not UTF-8 ({e})"),
        })?;
        let mut push = |word: &str| {
            sentence.push(word);
            if sentence.len() == max {
                *total += sentence.len() as u64;
                f(sentence);
                sentence.clear();
            }
        };
        if text.is_ascii() {
            push(text);
        } else {
            text.split(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
                .filter(|w| !w.is_empty())
                .for_each(push);
        }
        token.clear();
        Ok(())
    };
    loop {
        let buf = reader.fill_buf().map_err(io)?;
        if buf.is_empty() {
            break;
        }
        let n = buf.len();
        for &byte in buf {
            match byte {
                b'\n' => {
                    finish_token(&mut token, &mut sentence, line, &mut f, &mut total)?;
                    if !sentence.is_empty() {
                        total += sentence.len() as u64;
                        f(&sentence);
                        sentence.clear();
                    }
                    line += 1;
                }
                // Python's `str.split` also splits at the ASCII separators 0x1c-0x1f
                b' ' | b'\t' | b'\r' | 0x0b | 0x0c | 0x1c..=0x1f => {
                    finish_token(&mut token, &mut sentence, line, &mut f, &mut total)?;
                }
                _ if token.len() == MAX_TOKEN_BYTES => {
                    return Err(DataError::Format {
                        origin: origin.to_string(),
                        what: format!(
                            "line {line}: more than {MAX_TOKEN_BYTES} bytes without a space, tab or \
                             line break (is this a text file?)"
                        ),
                    });
                }
                _ => token.push(byte),
            }
        }
        reader.consume(n);
        if stop.get() {
            return Ok(total);
        }
    }
    finish_token(&mut token, &mut sentence, line, &mut f, &mut total)?;
    if !sentence.is_empty() {
        total += sentence.len() as u64;
        f(&sentence);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sentences(text: &[u8], max: usize) -> Result<Vec<Vec<String>>> {
        let mut out = Vec::new();
        for_each_sentence(text, "test", max, |s| {
            out.push(s.tokens().map(str::to_string).collect())
        })?;
        Ok(out)
    }

    #[test]
    fn lines_are_sentences_and_long_lines_are_cut() {
        let got = sentences(b"a b  c\n\n\td e\r\nf g h i j", 3).unwrap();
        assert_eq!(
            got,
            [
                vec!["a", "b", "c"],
                vec!["d", "e"],
                vec!["f", "g", "h"],
                vec!["i", "j"]
            ]
        );
        assert_eq!(sentences(b"", 3).unwrap(), Vec::<Vec<String>>::new());
        assert_eq!(
            sentences("caf\u{e9} x".as_bytes(), 9).unwrap()[0][0],
            "caf\u{e9}"
        );
    }

    #[test]
    fn unicode_whitespace_separates_words_as_in_python() {
        // a no-break space, an em space, a next-line and an ideographic space
        let text = "10\u{a0}km caf\u{e9}\u{2003}au\u{85}lait \u{3000}x\u{1f}y\n\u{a0}\n";
        assert_eq!(
            sentences(text.as_bytes(), 9).unwrap(),
            [vec!["10", "km", "caf\u{e9}", "au", "lait", "x", "y"]]
        );
        // the pieces count towards the sentence cut
        assert_eq!(
            sentences("a\u{a0}b\u{a0}c d".as_bytes(), 2).unwrap(),
            [vec!["a", "b"], vec!["c", "d"]]
        );
    }

    #[test]
    fn a_token_split_across_buffer_refills_is_one_token() {
        let text = "alpha beta gamma\ndelta";
        let reader = BufReader::with_capacity(3, text.as_bytes());
        let mut got = Vec::new();
        let n = for_each_sentence(reader, "t", 10, |s| {
            got.push(s.tokens().collect::<Vec<_>>().join("|"))
        })
        .unwrap();
        assert_eq!(got, ["alpha|beta|gamma", "delta"]);
        assert_eq!(n, 4);
    }

    #[test]
    fn bad_utf8_names_the_line() {
        let err = sentences(b"ok\nalso ok\nbad \xff\xfe token\n", 10).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("line 3") && text.contains("UTF-8"), "{text}");
    }

    #[test]
    fn a_token_longer_than_the_cap_is_an_error_naming_the_line() {
        // the longest token allowed, then one byte more, read in small pieces
        let mut text = b"a b\n".to_vec();
        text.extend(std::iter::repeat_n(b'x', MAX_TOKEN_BYTES));
        text.extend(b" c\n");
        let ok = for_each_sentence(BufReader::with_capacity(7, &text[..]), "t", 10, |_| {});
        assert_eq!(ok.unwrap(), 4);
        text.truncate(text.len() - 3);
        text.extend(b"y");
        let err = for_each_sentence(BufReader::with_capacity(7, &text[..]), "t", 10, |_| {})
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 2") && err.contains(&MAX_TOKEN_BYTES.to_string()),
            "{err}"
        );
        // a file with no whitespace at all is refused within the cap, whatever its size
        let blob = vec![b'z'; 4 * MAX_TOKEN_BYTES];
        let mut read = 0;
        let err = for_each_sentence(&blob[..], "blob", 10, |_| read += 1).unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
        assert_eq!(read, 0);
    }

    #[test]
    fn a_missing_file_is_an_error_naming_it() {
        let err = Corpus::new("/nonexistent/corpus.txt")
            .for_each_sentence(|_| {})
            .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/corpus.txt"));
    }

    #[test]
    fn a_break_stops_the_reading() {
        // a token that is not UTF-8 two blocks after the break is never reached
        let mut text = b"one two\nthree\n".to_vec();
        text.extend(b"filler words here\n".repeat(4));
        text.extend(b"bad \xff\n");
        let mut seen = Vec::new();
        let n = try_for_each_sentence(BufReader::with_capacity(8, &text[..]), "t", 10, |s| {
            seen.push(s.tokens().collect::<Vec<_>>().join(" "));
            ControlFlow::Break(())
        })
        .unwrap();
        assert_eq!(seen, ["one two"]);
        assert!(n >= 2, "{n}");
        // without a break the same text is an error
        assert!(
            for_each_sentence(BufReader::with_capacity(8, &text[..]), "t", 10, |_| {}).is_err()
        );
    }
}
