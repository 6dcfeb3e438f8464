//! The dialogues a run trains and tests on: generated, chitchat, or a file.

use anyhow::{Context, Result, bail};
use rensa_data::dialogue::files::{read_chitchat, read_lines};
use rensa_data::dialogue::generated::{self, Generated};
use rensa_data::dialogue::{Dialogue, split, vocabulary};
use rensa_data::vocab::Vocabulary;
use std::path::{Path, PathBuf};

/// Where the dialogues come from (`--data`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// rensa's generator: the last turn recalls the first, with a known best perplexity.
    Generated,
    /// The chitchat dataset, fetched once from PyPI.
    Chitchat,
    /// A file: chitchat's JSON when it ends in `.json`, else one dialogue per line.
    File(PathBuf),
}

impl Source {
    /// `generated`, `chitchat` or a path.
    pub fn parse(s: &str) -> Result<Self, String> {
        Ok(match s {
            "generated" => Source::Generated,
            "chitchat" => Source::Chitchat,
            "" => return Err("an empty --data: generated, chitchat or a file".into()),
            path => Source::File(PathBuf::from(path)),
        })
    }

    /// A short name for folders and titles.
    pub fn name(&self) -> String {
        match self {
            Source::Generated => "generated".into(),
            Source::Chitchat => "chitchat".into(),
            Source::File(p) => p
                .file_stem()
                .map_or("file".into(), |s| s.to_string_lossy().into_owned()),
        }
    }
}

/// How to read and cut the dialogues.
pub struct Settings<'a> {
    pub source: &'a Source,
    pub turn_marker: &'a str,
    pub dialogues: usize,
    pub test: usize,
    pub filler_turns: usize,
    pub test_share: f64,
    pub max_turns: usize,
    pub max_tokens: usize,
    pub min_count: usize,
    pub vocab_size: usize,
    pub seed: u64,
}

/// The share of the training dialogues (generated data) or conversations (real data) held out
/// for validation: the loss that early stopping and the plots watch.
pub const VALID_SHARE: f64 = 0.05;

/// Encoded training, validation and test dialogues and their vocabulary.
pub struct Corpus {
    pub vocab: Vocabulary,
    pub train: Vec<Vec<Vec<usize>>>,
    /// Never trained on; on real data whole conversations, as the test's.
    pub valid: Vec<Vec<Vec<usize>>>,
    pub test: Vec<Vec<Vec<usize>>>,
    /// For generated data: the test dialogues as generated (their valid answers, entropies).
    pub generated_test: Option<Vec<Generated>>,
    /// One line on what was read.
    pub description: String,
}

fn encode(dialogues: &[Dialogue], vocab: &Vocabulary) -> Vec<Vec<Vec<usize>>> {
    dialogues.iter().map(|d| d.encode(vocab)).collect()
}

/// Loads the corpus the settings name.
pub fn load(s: &Settings<'_>) -> Result<Corpus> {
    let path = match s.source {
        Source::Generated => return Ok(generated_corpus(s)),
        Source::Chitchat => rensa_data::fetch::chitchat()?,
        Source::File(p) => p.clone(),
    };
    let loaded = if path.extension().is_some_and(|e| e == "json") {
        read_chitchat(&path)?
    } else {
        read_lines(&path, s.turn_marker)?
    };
    if loaded.skipped > 0 {
        eprintln!("{}: {}", path.display(), loaded.summary());
    }
    let conversations = loaded.dialogues.len();
    if conversations < 2 {
        bail!(
            "{}: {conversations} dialogue, at least 2 are needed (training and test)",
            path.display()
        );
    }
    // split by conversation first, so no conversation is in both
    let parts = split(loaded.dialogues, 0.0, s.test_share, s.seed);
    if parts.test.is_empty() {
        bail!(
            "--test-share {} of {conversations} dialogues leaves no test dialogue",
            s.test_share
        );
    }
    // then the validation conversations from the rest, whole too: the windows of one
    // conversation overlap, so a window-level split would validate on turns trained on
    let held = split(
        parts.train,
        VALID_SHARE,
        0.0,
        s.seed ^ 0x7a11_d7a1_1d7a_11d7,
    );
    let truncate = |ds: Vec<Dialogue>| -> Vec<Dialogue> {
        ds.iter().map(|d| d.truncated(s.max_tokens)).collect()
    };
    let (train, valid, test) = (
        truncate(held.train),
        truncate(held.valid),
        truncate(parts.test),
    );
    // from the training conversations only, counted over the conversations, not the windows:
    // consecutive windows share a turn, whose words would count twice
    let vocab = vocabulary(&train, s.min_count, Some(s.vocab_size));
    let cut = |ds: Vec<Dialogue>| -> Vec<Dialogue> {
        ds.iter().flat_map(|d| d.windows(s.max_turns)).collect()
    };
    let (train, valid, test) = (cut(train), cut(valid), cut(test));
    // over the windows, as the test is scored
    let unk_share = unknown_share(&test, &vocab);
    Ok(Corpus {
        description: format!(
            "{}: {conversations} conversations ({} skipped) cut into {} training, {} validation \
             and {} test windows of at most {} turns and {} tokens a turn; vocabulary {} (min \
             count {}), {:.1}% of test tokens unknown",
            path.display(),
            loaded.skipped,
            train.len(),
            valid.len(),
            test.len(),
            s.max_turns,
            s.max_tokens,
            vocab.len(),
            s.min_count,
            100.0 * unk_share
        ),
        train: encode(&train, &vocab),
        valid: encode(&valid, &vocab),
        test: encode(&test, &vocab),
        generated_test: None,
        vocab,
    })
}

fn unknown_share(dialogues: &[Dialogue], vocab: &Vocabulary) -> f64 {
    let (mut unknown, mut all) = (0usize, 0usize);
    for d in dialogues {
        for t in d.turns() {
            all += t.len();
            unknown += vocab.encode(t).unknown.len();
        }
    }
    unknown as f64 / all.max(1) as f64
}

fn generated_corpus(s: &Settings<'_>) -> Corpus {
    let fillers = 1..=s.filler_turns.max(1);
    let train = generated::generate(s.dialogues, fillers.clone(), s.seed);
    let test = generated::generate(s.test, fillers, s.seed ^ 0x7e57_7e57_7e57_7e57);
    let vocab = generated::vocabulary();
    let mut train_dialogues: Vec<Dialogue> = train.into_iter().map(|g| g.dialogue).collect();
    // the last ones validate (each dialogue is one item, so no dialogue is on both sides)
    let n_train = ((s.dialogues as f64) * (1.0 - VALID_SHARE)).floor() as usize;
    let valid_dialogues = train_dialogues.split_off(n_train.min(train_dialogues.len()));
    let test_dialogues: Vec<Dialogue> = test.iter().map(|g| g.dialogue.clone()).collect();
    Corpus {
        description: format!(
            "generated: {} training ({} of them validating) and {} test dialogues (a fact, 1 to \
             {} filler turns, an answer that recalls the fact), vocabulary {}",
            s.dialogues,
            valid_dialogues.len(),
            s.test,
            s.filler_turns.max(1),
            vocab.len()
        ),
        train: encode(&train_dialogues, &vocab),
        valid: encode(&valid_dialogues, &vocab),
        test: encode(&test_dialogues, &vocab),
        generated_test: Some(test),
        vocab,
    }
}

/// The vocabulary saved beside a model.
pub fn load_vocab(out: &Path) -> Result<Vocabulary> {
    let path = out.join("vocab.json");
    Vocabulary::load(&path).with_context(|| {
        format!(
            "cannot read the vocabulary {} (train first, same --out)",
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rensa_data::vocab::UNK;

    #[test]
    fn training_validation_and_test_hold_whole_conversations() {
        // 40 conversations of 8 turns, each turn "wJ cK": the word cK is conversation K's alone
        let dir = std::env::temp_dir().join(format!("rensa-dialogue-split-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("d.txt");
        let lines: Vec<String> = (0..40)
            .map(|k| {
                let turns: Vec<String> = (0..8).map(|j| format!("w{j} c{k}")).collect();
                turns.join(" __eou__ ")
            })
            .collect();
        std::fs::write(&file, lines.join("\n")).unwrap();
        let source = Source::File(file);
        let corpus = load(&Settings {
            source: &source,
            turn_marker: "__eou__",
            dialogues: 0,
            test: 0,
            filler_turns: 0,
            test_share: 0.2,
            max_turns: 3,
            max_tokens: 30,
            min_count: 1,
            vocab_size: 1000,
            seed: 5,
        })
        .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        // 32 conversations left after the test's 8: 1 validates (5%, rounded down), 31 train;
        // 8 turns in windows of 3 that share their end turns are 4 windows a conversation
        assert_eq!(
            (corpus.train.len(), corpus.valid.len(), corpus.test.len()),
            (31 * 4, 4, 8 * 4)
        );
        // the vocabulary is the training conversations': every training word is known, and
        // every validation and test turn's conversation word is not
        let turns =
            |ds: &[Vec<Vec<usize>>]| -> Vec<Vec<usize>> { ds.iter().flatten().cloned().collect() };
        assert!(turns(&corpus.train).iter().flatten().all(|&id| id != UNK));
        for turn in turns(&corpus.valid).iter().chain(&turns(&corpus.test)) {
            assert_eq!(turn[1], UNK, "{turn:?}");
        }
    }
}
