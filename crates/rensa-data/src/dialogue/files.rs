//! Dialogue files: one dialogue per line, and the chitchat dataset's JSON.
//!
//! **Lines** ([`read_lines`]): each line is a dialogue whose turns are separated by a marker,
//! DailyDialog's `__eou__` by default (`hi __eou__ hello , how are you ? __eou__ fine`); a
//! marker at the end of the line is allowed, blank lines are ignored. The triples of Serban et
//! al. are this format with three turns a line.
//!
//! **chitchat** ([`read_chitchat`]): the `dataset.json` of the `chitchat-dataset` package
//! (BYU PCC lab, MIT licence, 7,168 conversations, 3,150 of them a single one-sided turn): an object of conversations, each with
//! `"messages"`, a list of turns, each turn a list of messages `{"text": ...}` by one sender;
//! a turn's messages are joined. Other fields are ignored.
//!
//! A line or conversation that is not a dialogue (bad UTF-8, fewer than two turns, an empty
//! turn, a malformed record, a line over [`MAX_LINE_BYTES`]) is skipped and counted in [`Loaded::skipped`], with the first few
//! reasons kept; an unreadable file, or one with no dialogue at all, is an error.

use super::{Dialogue, tokenize};
use crate::error::{DataError, Result};
use std::io::{BufRead, Read};
use std::path::Path;

/// DailyDialog's turn marker.
pub const DEFAULT_MARKER: &str = "__eou__";

/// The longest line [`read_lines`] takes for a dialogue, in bytes (Serban et al.'s triples and
/// DailyDialog's lines are a few hundred); a longer one is skipped and counted, and never held in
/// memory whole, so a file without newlines cannot exhaust it.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// How many skip reasons [`Loaded`] keeps.
const REASONS_KEPT: usize = 3;

/// The dialogues read from a file and what was skipped.
#[derive(Clone, Debug, Default)]
pub struct Loaded {
    /// The dialogues, in file order.
    pub dialogues: Vec<Dialogue>,
    /// Lines or conversations skipped.
    pub skipped: usize,
    /// The first few reasons, each naming its line or conversation.
    pub reasons: Vec<String>,
}

impl Loaded {
    fn skip(&mut self, reason: String) {
        self.skipped += 1;
        if self.reasons.len() < REASONS_KEPT {
            self.reasons.push(reason);
        }
    }

    fn finish(self, origin: &str, what: &str) -> Result<Self> {
        if self.dialogues.is_empty() {
            let why = match self.reasons.first() {
                Some(r) => format!("; {} skipped, the first because {r}", self.skipped),
                None => String::new(),
            };
            return Err(DataError::Format {
                origin: origin.to_string(),
                what: format!("no {what} with at least two non-empty turns{why}"),
            });
        }
        Ok(self)
    }

    /// One line for a user: how many dialogues were read and skipped, and why.
    pub fn summary(&self) -> String {
        let mut s = format!("{} dialogues", self.dialogues.len());
        if self.skipped > 0 {
            s += &format!(
                ", {} skipped (first: {})",
                self.skipped,
                self.reasons.join("; ")
            );
        }
        s
    }
}

/// Reads a file of one dialogue per line, turns separated by `marker` (see the
/// [module docs](self)).
///
/// # Errors
/// [`DataError::Io`] if the file cannot be read; [`DataError::Format`] for an empty marker or
/// a file without a single dialogue.
pub fn read_lines(path: &Path, marker: &str) -> Result<Loaded> {
    let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    parse_lines(
        std::io::BufReader::new(file),
        marker,
        &path.display().to_string(),
    )
    .map_err(|e| match e {
        DataError::Io { source, .. } => DataError::io(path, source),
        e => e,
    })
}

/// [`read_lines`] from any reader; `origin` names it in errors.
///
/// # Errors
/// As [`read_lines`].
pub fn parse_lines(mut reader: impl BufRead, marker: &str, origin: &str) -> Result<Loaded> {
    if marker.is_empty() {
        return Err(DataError::Format {
            origin: origin.to_string(),
            what: "the turn marker is empty".into(),
        });
    }
    let mut loaded = Loaded::default();
    let mut bytes = Vec::new();
    let mut line = 0usize;
    loop {
        bytes.clear();
        let io = |e| DataError::io(Path::new(origin), e);
        let n = reader
            .by_ref()
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut bytes)
            .map_err(io)?;
        if n == 0 {
            break;
        }
        line += 1;
        if n > MAX_LINE_BYTES && bytes.last() != Some(&b'\n') {
            skip_line(&mut reader).map_err(io)?;
            loaded.skip(format!("line {line} is longer than {MAX_LINE_BYTES} bytes"));
            continue;
        }
        let Ok(text) = std::str::from_utf8(&bytes) else {
            loaded.skip(format!("line {line} is not UTF-8"));
            continue;
        };
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        let text = text.strip_suffix(marker).unwrap_or(text);
        match Dialogue::from_texts(text.split(marker)) {
            Ok(d) => loaded.dialogues.push(d),
            Err(DataError::Format { what, .. }) => loaded.skip(format!("line {line}: {what}")),
            Err(e) => return Err(e),
        }
    }
    loaded.finish(origin, "line")
}

/// Consumes the rest of the line the reader is in, its newline included, holding none of it.
fn skip_line(reader: &mut impl BufRead) -> std::io::Result<()> {
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        match buf.iter().position(|&b| b == b'\n') {
            Some(i) => {
                reader.consume(i + 1);
                return Ok(());
            }
            None => {
                let n = buf.len();
                reader.consume(n);
            }
        }
    }
}

/// Reads the chitchat dataset's `dataset.json` (see the [module docs](self)); conversations in
/// the order of their keys.
///
/// # Errors
/// [`DataError::Io`] if the file cannot be read; [`DataError::Format`] if it is not a JSON object
/// (truncated, say) or holds no usable conversation.
pub fn read_chitchat(path: &Path) -> Result<Loaded> {
    let text = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    parse_chitchat(&text, &path.display().to_string())
}

/// [`read_chitchat`] from bytes; `origin` names them in errors.
///
/// # Errors
/// As [`read_chitchat`].
pub fn parse_chitchat(bytes: &[u8], origin: &str) -> Result<Loaded> {
    let bad = |what: String| DataError::Format {
        origin: origin.to_string(),
        what,
    };
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| bad(format!("not a chitchat dataset (JSON): {e}")))?;
    let serde_json::Value::Object(conversations) = value else {
        return Err(bad(
            "not a chitchat dataset: the top level is not an object of conversations".into(),
        ));
    };
    let mut keys: Vec<&String> = conversations.keys().collect();
    keys.sort();
    let mut loaded = Loaded::default();
    for key in keys {
        match conversation(&conversations[key]) {
            Ok(d) => loaded.dialogues.push(d),
            Err(what) => loaded.skip(format!("conversation {key}: {what}")),
        }
    }
    loaded.finish(origin, "conversation")
}

/// One chitchat conversation as a dialogue; turns whose messages are all empty are dropped.
fn conversation(value: &serde_json::Value) -> std::result::Result<Dialogue, String> {
    let turns = value
        .get("messages")
        .and_then(|m| m.as_array())
        .ok_or("no \"messages\" list")?;
    let mut out = Vec::with_capacity(turns.len());
    for (k, turn) in turns.iter().enumerate() {
        let messages = turn
            .as_array()
            .ok_or_else(|| format!("turn {} is not a list of messages", k + 1))?;
        let mut tokens = Vec::new();
        for m in messages {
            let text = m
                .get("text")
                .and_then(|t| t.as_str())
                .ok_or_else(|| format!("turn {}: a message without a \"text\" string", k + 1))?;
            tokens.extend(tokenize(text));
        }
        if !tokens.is_empty() {
            out.push(tokens);
        }
    }
    Dialogue::new(out).map_err(|e| match e {
        DataError::Format { what, .. } => what,
        e => e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &[u8]) -> Result<Loaded> {
        parse_lines(text, DEFAULT_MARKER, "dialogues.txt")
    }

    #[test]
    fn lines_become_dialogues_and_bad_lines_are_counted() {
        let text = b"Hi __eou__ Hello, you? __eou__ fine __eou__\n\
            \n\
            only one turn\n\
            a __eou__ __eou__ c\n\
            \xff\xfe __eou__ b\n\
            x __eou__ y";
        let loaded = lines(text).unwrap();
        assert_eq!(loaded.dialogues.len(), 2);
        assert_eq!(loaded.dialogues[0].turns()[1], ["hello", ",", "you", "?"]);
        assert_eq!(loaded.dialogues[1].turns().len(), 2);
        assert_eq!(loaded.skipped, 3);
        assert!(loaded.reasons[0].contains("line 3") && loaded.reasons[0].contains("2 turns"));
        assert!(loaded.reasons[1].contains("line 4: turn 2 of 3 is empty"));
        assert!(loaded.reasons[2].contains("line 5 is not UTF-8"));
        assert!(loaded.summary().contains("2 dialogues, 3 skipped"));
    }

    #[test]
    fn an_overlong_line_is_skipped_without_being_held_whole() {
        // a line of exactly the limit is read; one byte more is skipped, as is a last line
        // without a newline; the lines after a skipped one are read as usual
        let exact = format!("{} __eou__ b\n", "a".repeat(MAX_LINE_BYTES - 10));
        assert_eq!(exact.len(), MAX_LINE_BYTES + 1);
        let over = format!("{} __eou__ b\n", "a".repeat(MAX_LINE_BYTES - 9));
        let text = format!(
            "{exact}{over}x __eou__ y\n{over}{}",
            "z".repeat(3 * MAX_LINE_BYTES)
        );
        // a small buffer, so a skipped line spans many refills
        let reader = std::io::BufReader::with_capacity(4096, text.as_bytes());
        let loaded = parse_lines(reader, DEFAULT_MARKER, "long.txt").unwrap();
        assert_eq!(loaded.dialogues.len(), 2);
        assert_eq!(loaded.dialogues[1].turns(), [["x"], ["y"]]);
        assert_eq!(loaded.skipped, 3);
        assert_eq!(
            loaded.reasons,
            [2, 4, 5].map(|l| format!("line {l} is longer than {MAX_LINE_BYTES} bytes"))
        );
    }

    #[test]
    fn a_file_without_dialogues_or_marker_is_an_error() {
        let err = lines(b"one\ntwo\n").unwrap_err().to_string();
        assert!(
            err.contains("dialogues.txt") && err.contains("no line"),
            "{err}"
        );
        assert!(err.contains("2 skipped"), "{err}");
        assert!(lines(b"").is_err());
        let err = parse_lines(&b"a | b"[..], "", "f").unwrap_err().to_string();
        assert!(err.contains("marker is empty"), "{err}");
        let tabs = parse_lines(&b"a b\tc\td\t\n"[..], "\t", "f").unwrap();
        assert_eq!(tabs.dialogues[0].turns().len(), 3);
        let custom = parse_lines(&b"a </s> b </s> c\n"[..], "</s>", "f").unwrap();
        assert_eq!(custom.dialogues[0].turns().len(), 3);
    }

    #[test]
    fn a_missing_file_is_named() {
        let err = read_lines(Path::new("/nonexistent/dialogues.txt"), DEFAULT_MARKER)
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/dialogues.txt"), "{err}");
    }

    const CHITCHAT: &str = r#"{
      "b": {"messages": [[{"text": "Hello", "sender": "x"}, {"text": "How are you?"}],
                         [{"text": "good", "sender": "y"}], [{"text": "  "}], [{"text": "bye"}]],
            "prompt": "ignored"},
      "a": {"messages": [[{"text": "hi"}], [{"text": "hey"}]]},
      "c": {"messages": [[{"text": "alone"}]]},
      "d": {"messages": [[{"txt": "typo"}], [{"text": "x"}]]},
      "e": {"ratings": {}}
    }"#;

    #[test]
    fn chitchat_conversations_join_their_messages_per_turn() {
        let loaded = parse_chitchat(CHITCHAT.as_bytes(), "dataset.json").unwrap();
        assert_eq!(loaded.dialogues.len(), 2);
        // keys in order: a before b
        assert_eq!(loaded.dialogues[0].turns()[0], ["hi"]);
        let b = &loaded.dialogues[1];
        assert_eq!(b.turns()[0], ["hello", "how", "are", "you", "?"]);
        assert_eq!(b.turns().len(), 3, "the empty turn is dropped");
        assert_eq!(loaded.skipped, 3);
        assert!(loaded.reasons[0].starts_with("conversation c"));
        assert!(loaded.reasons[1].contains("without a \"text\""));
        assert!(loaded.reasons[2].contains("no \"messages\""));
    }

    #[test]
    fn corrupt_or_truncated_chitchat_files_are_errors() {
        let truncated = &CHITCHAT.as_bytes()[..CHITCHAT.len() / 2];
        for (bytes, expected) in [
            (truncated, "not a chitchat dataset (JSON)"),
            (&b"[1, 2]"[..], "top level is not an object"),
            (&b"{}"[..], "no conversation"),
            (&b"\xff\xfe"[..], "not a chitchat dataset (JSON)"),
            (
                &br#"{"c": {"messages": [[{"text": "alone"}]]}}"#[..],
                "1 skipped",
            ),
        ] {
            let err = parse_chitchat(bytes, "dataset.json")
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("dataset.json") && err.contains(expected),
                "{err}"
            );
        }
    }
}
