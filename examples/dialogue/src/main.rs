//! `cargo run --release -p dialogue [--features wgpu] -- --model hred|vhred|seq2seq
//! --data generated|chitchat|PATH ...`
//!
//! A dialogue model ([`rensa_models::hred`], [`rensa_models::vhred`]) trained with rensa-train's
//! `Fit` on dialogues ([`rensa_data::dialogue`]): generated ones whose last turn recalls the
//! first (with the best achievable perplexity known exactly), the chitchat dataset (fetched once
//! from PyPI), or a file of one dialogue per line. `--model seq2seq` is the baseline that sees
//! only the turn before. This file is the command line, the results table, the pictures (loss,
//! perplexity and KL curves) and `--chat`, which talks with a saved model and keeps the context
//! across turns.

mod corpus;
mod eval;

use anyhow::{Context, Result, bail};
use burn::module::{AutodiffModule, Module, ModuleDisplay};
use clap::{Parser, ValueEnum};
use corpus::{Corpus, Source};
use rensa_data::SplitMix64;
use rensa_data::dialogue::files::DEFAULT_MARKER;
use rensa_data::dialogue::generated::floor_perplexity;
use rensa_data::dialogue::{DialogueBatch, tokenize};
use rensa_data::tokens::PairBatch;
use rensa_data::vocab::Vocabulary;
use rensa_launch::images::Resume;
use rensa_launch::{Cell, Common, Device, Inner, Train, trained};
use rensa_models::hred::{Hred, HredConfig};
use rensa_models::seq2seq::token::{Attend, TokenSeq2Seq, TokenSeq2SeqConfig};
use rensa_models::vhred::{AnnealCurve, LatentConfig};
use rensa_nn::recurrent::{GruConfig, LstmConfig, RecurrentCell, RecurrentConfig, RnnConfig};
use rensa_train::plot::{Series, line_chart};
use rensa_train::{Checkpoints, Fit, FitConfig, History, Items};
use std::io::BufRead;
use std::path::{Path, PathBuf};

/// The model to train.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Hierarchical encoder-decoder: utterance encoder, context encoder, decoder.
    Hred,
    /// HRED with a latent variable per response (a VAE over responses).
    Vhred,
    /// The baseline: an encoder-decoder that sees only the turn before the response.
    Seq2seq,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Hred => "hred",
            Kind::Vhred => "vhred",
            Kind::Seq2seq => "seq2seq",
        }
    }
}

/// Dialogue models: HRED reads a conversation turn by turn (an encoder over each utterance's
/// words, another over the utterances) and writes the next turn; VHRED adds a latent variable per
/// response, so that one context can be answered in several ways.
#[derive(Parser, Debug, Clone)]
#[command(version, about, long_about = None)]
struct Args {
    /// The model.
    #[arg(long, value_enum, default_value_t = Kind::Hred)]
    model: Kind,
    /// The dialogues: `generated` (the last turn recalls a fact of the first; the best
    /// perplexity is known), `chitchat` (4,017 real conversations of two or more turns, fetched once from PyPI), or a
    /// file: chitchat's `.json`, else one dialogue per line, turns separated by --turn-marker.
    #[arg(long, default_value = "generated", value_parser = Source::parse)]
    data: Source,
    /// What separates the turns of a line in a dialogue file.
    #[arg(long, default_value = DEFAULT_MARKER)]
    turn_marker: String,
    /// Generated data: training dialogues.
    #[arg(long, default_value_t = 20_000, value_parser = rensa_launch::at_least_one)]
    dialogues: usize,
    /// Generated data: test dialogues.
    #[arg(long, default_value_t = 1_000, value_parser = rensa_launch::at_least_one)]
    test: usize,
    /// Generated data: the most filler turns between the fact and the answer (at least 1).
    #[arg(long, default_value_t = 2, value_parser = rensa_launch::at_least_one)]
    filler_turns: usize,
    /// Real data: the share of conversations held out for the test.
    #[arg(long, default_value_t = 0.05)]
    test_share: f64,
    /// Real data: long conversations are cut into windows of at most this many turns.
    #[arg(long, default_value_t = 6)]
    max_turns: usize,
    /// Real data: turns are cut to this many tokens.
    #[arg(long, default_value_t = 30, value_parser = rensa_launch::at_least_one)]
    max_tokens: usize,
    /// Real data: words seen fewer times in training are unknown.
    #[arg(long, default_value_t = 3, value_parser = rensa_launch::at_least_one)]
    min_count: usize,
    /// Real data: the largest vocabulary, special tokens included (the softmax over it is most
    /// of a training step's work).
    #[arg(long, default_value_t = 5_000)]
    vocab_size: usize,
    /// Recurrent cell of every encoder and decoder.
    #[arg(long, value_enum, default_value_t = Cell::Gru)]
    cell: Cell,
    /// Word embedding width.
    #[arg(long, default_value_t = 64, value_parser = rensa_launch::at_least_one)]
    embedding: usize,
    /// Hidden units of the utterance encoder, the context encoder and the decoder.
    #[arg(long, default_value_t = 128, value_parser = rensa_launch::at_least_one)]
    hidden: usize,
    /// A bidirectional utterance encoder.
    #[arg(long)]
    bidirectional: bool,
    /// The decoder attends over the words of the last context turn.
    #[arg(long)]
    attention: bool,
    /// VHRED: dimensions of the latent variable.
    #[arg(long, default_value_t = 32, value_parser = rensa_launch::at_least_one)]
    latent: usize,
    /// VHRED: how the KL weight rises from 0 to 1: linear, sigmoid or none.
    #[arg(long, default_value = "linear")]
    anneal: AnnealCurve,
    /// VHRED: optimiser steps of the KL annealing.
    #[arg(long, default_value_t = 3_000, value_parser = rensa_launch::at_least_one)]
    anneal_steps: usize,
    /// Share of the decoder's input words replaced by the unknown-word token in training
    /// (default: 0.25 for VHRED, 0 otherwise).
    #[arg(long)]
    word_drop: Option<f64>,
    /// VHRED: weight of the bag-of-words loss (0: off).
    #[arg(long, default_value_t = 0.0)]
    bow_weight: f64,
    /// Passes over the training dialogues.
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    /// Stop when the validation loss has not improved for this many epochs (default: 2 on real
    /// data, which a model starts to memorise; never on generated data, which does not repeat).
    /// With early stopping the test scores the model of the epoch with the lowest validation
    /// loss, not the last one.
    #[arg(long, value_parser = rensa_launch::at_least_one)]
    patience: Option<usize>,
    /// Dialogues per optimiser step.
    #[arg(long, default_value_t = 32, value_parser = rensa_launch::at_least_one)]
    batch_size: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 0.002)]
    lr: f64,
    /// Clip the gradient to this L2 norm before each step (0: off).
    #[arg(long, default_value_t = 1.0)]
    clip_norm: f32,
    /// Responses per test context for the coverage of valid answers (generated data).
    #[arg(long, default_value_t = 20, value_parser = rensa_launch::at_least_one)]
    samples: usize,
    /// VHRED: posterior draws per test response for the importance-sampled perplexity (a
    /// tighter bound than the ELBO's).
    #[arg(long, default_value_t = 50, value_parser = rensa_launch::at_least_one)]
    importance_samples: usize,
    /// Beam width of generated responses.
    #[arg(long, default_value_t = 5, value_parser = rensa_launch::at_least_one)]
    beam: usize,
    /// Seed of the data, the weights, the shuffling and the samples.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Folder for the results: results.json, samples.md, history, loss.png, perplexity.png,
    /// kl.png, vocab.json, model.json and checkpoints/ (default: runs/dialogue/DATA-MODEL).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Do not train: talk with the model saved in --out (one turn a line; `/reset` starts a new
    /// dialogue; end with Ctrl-D). Replies with beam search (width --beam); a VHRED draws its
    /// latent anew for each reply.
    #[arg(long, conflicts_with_all = ["resume", "overwrite"])]
    chat: bool,
    #[command(flatten)]
    resume: Resume,
    #[command(flatten)]
    common: Common,
}

/// What `--chat` needs to rebuild the model: saved beside the checkpoints.
#[derive(serde::Serialize, serde::Deserialize)]
struct Saved {
    /// `hred`, `vhred` or `seq2seq`.
    kind: String,
    /// `Rnn`, `Lstm` or `Gru`.
    cell: String,
    /// Tokens a turn is cut to.
    max_tokens: usize,
    /// The most turns of a training dialogue (a window of a long conversation): `--chat` keeps
    /// the context one turn shorter, so that the model never reads a longer context than it was
    /// trained on. Absent in a description of an older version: the context is then not cut.
    #[serde(default)]
    max_turns: Option<usize>,
    model: serde_json::Value,
}

fn main() -> Result<()> {
    let mut args = Args::parse();
    args.out.get_or_insert_with(|| {
        PathBuf::from(format!(
            "runs/dialogue/{}-{}",
            args.data.name(),
            args.model.name()
        ))
    });
    check(&args)?;
    rensa_launch::launch(&args.common, !args.chat, |device| {
        if args.chat {
            return chat(&args, device);
        }
        match args.cell {
            Cell::Rnn => run::<RnnConfig>(&args, device),
            Cell::Lstm => run::<LstmConfig>(&args, device),
            Cell::Gru => run::<GruConfig>(&args, device),
        }
    })
}

fn out(args: &Args) -> &Path {
    args.out.as_deref().expect("set in main")
}

fn word_drop(args: &Args) -> f64 {
    args.word_drop
        .unwrap_or(if args.model == Kind::Vhred { 0.25 } else { 0.0 })
}

fn check(args: &Args) -> Result<()> {
    let finite = |v: f64, lo: f64| v.is_finite() && v >= lo;
    if !(args.lr.is_finite() && args.lr > 0.0) {
        bail!("--lr must be a finite number > 0, got {}", args.lr);
    }
    if !finite(f64::from(args.clip_norm), 0.0) {
        bail!(
            "--clip-norm must be a finite number >= 0, got {}",
            args.clip_norm
        );
    }
    if !(0.0..1.0).contains(&word_drop(args)) {
        bail!(
            "--word-drop must be a share in [0, 1), got {}",
            word_drop(args)
        );
    }
    if !finite(args.bow_weight, 0.0) {
        bail!(
            "--bow-weight must be a finite number >= 0, got {}",
            args.bow_weight
        );
    }
    if !(args.test_share > 0.0 && args.test_share < 1.0) {
        bail!(
            "--test-share must lie strictly between 0 and 1, got {}",
            args.test_share
        );
    }
    if args.max_turns < 2 {
        bail!(
            "--max-turns must be at least 2 (a context and a response), got {}",
            args.max_turns
        );
    }
    if args.vocab_size <= 4 {
        bail!(
            "--vocab-size must leave room beyond the 4 special tokens, got {}",
            args.vocab_size
        );
    }
    if !args.chat && args.epochs == 0 {
        bail!("--epochs must be at least 1");
    }
    Ok(())
}

fn load_corpus(args: &Args) -> Result<Corpus> {
    corpus::load(&corpus::Settings {
        source: &args.data,
        turn_marker: &args.turn_marker,
        dialogues: args.dialogues,
        test: args.test,
        filler_turns: args.filler_turns,
        test_share: args.test_share,
        max_turns: args.max_turns,
        max_tokens: args.max_tokens,
        min_count: args.min_count,
        vocab_size: args.vocab_size,
        seed: args.seed,
    })
}

fn hred_config(args: &Args, vocab: usize) -> HredConfig {
    let latent = (args.model == Kind::Vhred).then(|| {
        LatentConfig::new()
            .with_size(args.latent)
            .with_hidden(2 * args.hidden)
            .with_anneal(args.anneal)
            .with_anneal_steps(args.anneal_steps)
            .with_bow_weight(args.bow_weight)
    });
    HredConfig::new(vocab)
        .with_embedding_size(args.embedding)
        .with_utterance_hidden(args.hidden)
        .with_context_hidden(args.hidden)
        .with_decoder_hidden(args.hidden)
        .with_bidirectional(args.bidirectional)
        .with_attention(args.attention)
        .with_word_drop(word_drop(args))
        .with_latent(latent)
}

fn seq2seq_config(args: &Args, vocab: usize) -> TokenSeq2SeqConfig {
    TokenSeq2SeqConfig::new(vocab, vocab)
        .with_embedding_size(args.embedding)
        .with_hidden_size(args.hidden)
        .with_bidirectional(args.bidirectional)
        .with_attention(if args.attention {
            Attend::LuongGeneral
        } else {
            Attend::None
        })
}

fn run<K: RecurrentConfig>(args: &Args, device: &Device) -> Result<()>
where
    K::Cell<Train>: AutodiffModule<Train, InnerModule = K::Cell<Inner>> + ModuleDisplay,
    K::Cell<Inner>: ModuleDisplay,
{
    let out = out(args);
    std::fs::create_dir_all(out)
        .with_context(|| format!("cannot create the output folder {}", out.display()))?;
    let corpus = load_corpus(args)?;
    println!("{}", corpus.description);
    let model_json = match args.model {
        Kind::Seq2seq => serde_json::to_value(seq2seq_config(args, corpus.vocab.len()))?,
        _ => serde_json::to_value(hred_config(args, corpus.vocab.len()))?,
    };
    let saved = Saved {
        kind: args.model.name().into(),
        cell: format!("{:?}", args.cell),
        max_tokens: args.max_tokens,
        max_turns: corpus.train.iter().map(Vec::len).max(),
        model: model_json,
    };
    <Train as burn::tensor::backend::Backend>::seed(device, args.seed);
    let differentiation = args.common.differentiation();
    let (history, results) = if args.model == Kind::Seq2seq {
        let model = seq2seq_config(args, corpus.vocab.len())
            .init::<Train, K>(device)?
            .with_differentiation(differentiation);
        let pairs_of = |dialogues| -> Vec<(Vec<usize>, Vec<usize>)> {
            eval::last_turn_pairs(dialogues)
                .into_iter()
                .map(|(p, _)| p)
                .collect()
        };
        let (pairs, valid) = (pairs_of(&corpus.train), pairs_of(&corpus.valid));
        let (model, history) = fit(
            args,
            (&corpus, &saved),
            model,
            (&pairs, &valid),
            PairBatch::of,
            device,
        )?;
        let model = model.valid();
        let scores = eval::score_seq2seq(&model, &corpus.test);
        let mut results = results(args, &corpus, &history, scores);
        // the pairs' target tokens (each response and its end token) per second
        let per_pair = pairs.iter().map(|(_, t)| t.len() + 1).sum::<usize>() as f64
            / pairs.len().max(1) as f64;
        results.train_tokens_per_s *= per_pair;
        (history, results)
    } else {
        let model = hred_config(args, corpus.vocab.len())
            .init::<Train, K>(device)?
            .with_differentiation(differentiation);
        let (model, history) = fit(
            args,
            (&corpus, &saved),
            model,
            (&corpus.train, &corpus.valid),
            DialogueBatch::of,
            device,
        )?;
        let model = model.valid();
        // the evaluation's draws (VHRED's posterior samples) from a seed of their own, so a
        // resumed run that had nothing left to train reports what an uninterrupted one did
        <Inner as burn::tensor::backend::Backend>::seed(device, args.seed ^ 0x7e57);
        let scores = eval::score_hred(&model, &corpus.test, args.importance_samples);
        let mut results = results(args, &corpus, &history, scores);
        generation(args, &corpus, &model, &mut results)?;
        (history, results)
    };
    pictures(args, &history)?;
    report(args, &results);
    rensa_train::write_atomic(
        &out.join("results.json"),
        serde_json::to_string_pretty(&results)?.as_bytes(),
    )?;
    Ok(())
}

/// Trains `model` on `train` with Adam, validating on `valid`, checkpoints and resume as the
/// options say, and saves the history; `vocab.json` and `model.json` (`saved`) are written once
/// the run is admitted, so a refused one leaves a saved model's files as they were.
fn fit<M, T, X>(
    args: &Args,
    (corpus, saved): (&Corpus, &Saved),
    model: M,
    (train, valid): (&[T], &[T]),
    batcher: impl Fn(&[&T]) -> X,
    device: &Device,
) -> Result<(M, History)>
where
    M: AutodiffModule<Train> + rensa_train::Objective<Train, Batch = X>,
    M::InnerModule: rensa_train::Objective<Inner, Batch = X>,
{
    let patience = patience(args);
    let config = FitConfig::for_epochs(args.epochs, args.batch_size)
        .with_learning_rate(args.lr)
        .with_seed(args.seed)
        .with_patience(patience)
        .with_restore_best(patience.is_some());
    let checkpoints: Checkpoints = args.resume.checkpoints(out(args));
    let (model, history) = Fit::new(config)
        .settings([
            ("model", args.model.name().to_string()),
            ("data", data_setting(corpus)),
            ("cell", format!("{:?}", args.cell)),
            ("hidden", args.hidden.to_string()),
            ("embedding", args.embedding.to_string()),
            ("bidirectional", args.bidirectional.to_string()),
            ("attention", args.attention.to_string()),
            ("word_drop", word_drop(args).to_string()),
            (
                "latent",
                format!(
                    "{} {} over {} steps, bow {}",
                    args.latent,
                    args.anneal.name(),
                    args.anneal_steps,
                    args.bow_weight
                ),
            ),
            ("clip_norm", args.clip_norm.to_string()),
            trained::vocab_setting("vocabulary", &corpus.vocab),
        ])
        .checkpoints(checkpoints)
        .on_start(|| -> Result<()> {
            corpus.vocab.save(&out(args).join("vocab.json"))?;
            rensa_train::write_atomic(
                &out(args).join("model.json"),
                serde_json::to_string_pretty(saved)?.as_bytes(),
            )?;
            Ok(())
        })
        .progress(!args.common.quiet)
        .run(
            model,
            &mut rensa_launch::adam(args.clip_norm).init(),
            Items::with_validation(train, valid, batcher),
            device,
        )?;
    history.save(out(args))?;
    Ok((model, history))
}

/// `--patience`, or its default: 2 epochs on real data, none on generated data.
fn patience(args: &Args) -> Option<usize> {
    args.patience
        .or((args.data != Source::Generated).then_some(2))
}

/// What a resume compares of the data: the description (source, counts, cuts) and a fingerprint
/// of the vocabulary and the encoded training and validation dialogues, so that a file edited since (the same
/// counts, other words) is not taken for the one the checkpoint learned from.
fn data_setting(corpus: &Corpus) -> String {
    let mut bytes = Vec::new();
    for token in corpus.vocab.tokens() {
        bytes.extend_from_slice(token.as_bytes());
        bytes.push(0);
    }
    for dialogue in corpus.train.iter().chain(&corpus.valid) {
        bytes.extend_from_slice(&(dialogue.len() as u32).to_le_bytes());
        for turn in dialogue {
            bytes.extend_from_slice(&(turn.len() as u32).to_le_bytes());
            bytes.extend(turn.iter().flat_map(|&id| (id as u32).to_le_bytes()));
        }
    }
    format!(
        "{}; fingerprint {}",
        corpus.description,
        rensa_train::fingerprint(&bytes)
    )
}

/// What a run writes to `results.json`.
#[derive(serde::Serialize)]
struct Results {
    model: String,
    data: String,
    cell: String,
    hidden: usize,
    epochs: usize,
    /// The epoch whose model was tested: the last, or with early stopping the one with the
    /// lowest validation loss.
    tested_epoch: Option<usize>,
    train_dialogues: usize,
    valid_dialogues: usize,
    test_dialogues: usize,
    vocabulary: usize,
    /// Perplexity of the test dialogues' last turns (for a VHRED its upper bound from the ELBO);
    /// on real data, whose conversations are cut into windows of at most `--max-turns` turns,
    /// the last turn of every window.
    test_perplexity_last: f64,
    /// Perplexity of every test response.
    test_perplexity_all: f64,
    /// VHRED: perplexity of the last turns from the importance-sampled `−log p`
    /// (`importance_samples` posterior draws per response), a tighter bound than the ELBO's.
    test_perplexity_last_importance: Option<f64>,
    /// VHRED: the same for every test response.
    test_perplexity_all_importance: Option<f64>,
    /// VHRED: posterior draws per response of the importance-sampled perplexities.
    importance_samples: Option<usize>,
    /// Generated data: the lowest perplexity any model can reach on the last turns.
    floor_perplexity: Option<f64>,
    /// `test_perplexity_last / floor_perplexity`.
    ratio_to_floor: Option<f64>,
    /// VHRED: KL per test response, in nats.
    kl_per_response: Option<f64>,
    /// VHRED: active latent units over the test responses.
    active_units: Option<usize>,
    /// Generated data, HRED and VHRED: coverage of the valid answers.
    coverage: Option<eval::Coverage>,
    /// distinct-1 / distinct-2 of beam responses to the test contexts.
    distinct_1: Option<f64>,
    distinct_2: Option<f64>,
    /// distinct-1 / distinct-2 of responses sampled at temperature 1 for the same contexts.
    sampled_distinct_1: Option<f64>,
    sampled_distinct_2: Option<f64>,
    train_seconds: f64,
    /// Target tokens per second in the last epoch.
    train_tokens_per_s: f64,
}

fn results(args: &Args, corpus: &Corpus, history: &History, s: eval::Scores) -> Results {
    let floor = corpus.generated_test.as_deref().map(floor_perplexity);
    let last = s.last.perplexity();
    let variational = args.model == Kind::Vhred;
    Results {
        model: args.model.name().into(),
        data: args.data.name(),
        cell: format!("{:?}", args.cell),
        hidden: args.hidden,
        epochs: history.epochs.len(),
        tested_epoch: if patience(args).is_some() {
            history.best_epoch()
        } else {
            history.last().map(|e| e.epoch)
        },
        train_dialogues: corpus.train.len(),
        valid_dialogues: corpus.valid.len(),
        test_dialogues: corpus.test.len(),
        vocabulary: corpus.vocab.len(),
        test_perplexity_last: last,
        test_perplexity_all: s.all.perplexity(),
        test_perplexity_last_importance: variational.then(|| s.last.importance_perplexity()),
        test_perplexity_all_importance: variational.then(|| s.all.importance_perplexity()),
        importance_samples: variational.then_some(args.importance_samples),
        floor_perplexity: floor,
        ratio_to_floor: floor.map(|f| last / f),
        kl_per_response: variational.then(|| s.all.kl_per_response()),
        active_units: s.active_units,
        coverage: None,
        distinct_1: None,
        distinct_2: None,
        sampled_distinct_1: None,
        sampled_distinct_2: None,
        train_seconds: history.seconds(),
        train_tokens_per_s: history.last().map_or(0.0, |e| e.items_per_second()),
    }
}

/// Test contexts answered by the model: diversity, coverage of valid answers (generated data),
/// and `samples.md` with a few dialogues.
fn generation<C: RecurrentCell<Inner>>(
    args: &Args,
    corpus: &Corpus,
    model: &Hred<Inner, C>,
    results: &mut Results,
) -> Result<()> {
    let mut rng = SplitMix64::new(args.seed ^ 0x5a3_91e5);
    let contexts: Vec<Vec<Vec<usize>>> = corpus
        .test
        .iter()
        .take(500)
        .map(|d| d[..d.len() - 1].to_vec())
        .collect();
    let max_len = args.max_tokens + 2;
    let responses: Vec<Vec<usize>> = contexts
        .iter()
        .map(|c| {
            model
                .beam(c, args.beam, max_len, 0.0, &mut rng)
                .map(|mut b| b.swap_remove(0).tokens)
        })
        .collect::<Result<_, _>>()?;
    let (d1, d2) = eval::distinct(&responses);
    results.distinct_1 = Some(d1);
    results.distinct_2 = Some(d2);
    // the same contexts answered by sampling, a batch of them at a time
    let mut sampled = Vec::with_capacity(contexts.len());
    for chunk in contexts.chunks(64) {
        sampled.extend(
            model
                .sample(chunk, max_len, 1.0, &mut rng)?
                .into_iter()
                .map(|s| s.tokens),
        );
    }
    let (d1, d2) = eval::distinct(&sampled);
    results.sampled_distinct_1 = Some(d1);
    results.sampled_distinct_2 = Some(d2);
    if let Some(generated) = &corpus.generated_test {
        results.coverage = Some(eval::coverage(
            model,
            &corpus.test,
            generated,
            &corpus.vocab,
            50,
            args.samples,
            args.beam,
            args.seed,
        ));
    }
    let text = |ids: &[usize]| corpus.vocab.decode(ids).join(" ");
    let mut md = format!(
        "# {} on {}: test contexts, the reference answer and the model's\n\n",
        args.model.name(),
        args.data.name()
    );
    for (k, context) in contexts.iter().take(6).enumerate() {
        for (t, turn) in context.iter().enumerate() {
            md += &format!("- {}: {}\n", if t % 2 == 0 { "A" } else { "B" }, text(turn));
        }
        md += &format!(
            "- reference: {}\n- beam: {}\n",
            text(corpus.test[k].last().expect("a response")),
            text(&responses[k])
        );
        let copies = vec![context.clone(); 3];
        for s in model.sample(&copies, max_len, 1.0, &mut rng)? {
            md += &format!("- sampled: {}\n", text(&s.tokens));
        }
        md += "\n";
    }
    rensa_train::write_atomic(&out(args).join("samples.md"), md.as_bytes())?;
    Ok(())
}

/// `loss.png` (loss and its parts), `perplexity.png` and, for a VHRED, `kl.png`.
fn pictures(args: &Args, history: &History) -> Result<()> {
    let out = out(args);
    let title = format!("{} on {}", args.model.name(), args.data.name());
    rensa_train::plot::history(&out.join("loss.png"), &title, history)?;
    let series = |name: &str, f: fn(f64) -> f64| {
        Series::new(
            name,
            history
                .epochs
                .iter()
                .filter_map(|e| e.metrics.get(name).map(|&v| (e.epoch as f64, f(v))))
                .collect(),
        )
    };
    let mut ppl: Vec<Series> = ["nll", "val_nll", "bound", "val_bound"]
        .iter()
        .map(|n| series(n, f64::exp))
        .filter(|s| !s.points.is_empty())
        .map(|s| Series::new(format!("exp({})", s.name), s.points))
        .collect();
    if ppl.is_empty() {
        // the seq2seq's loss is its cross-entropy per token
        let exp = |f: fn(&rensa_train::EpochRecord) -> Option<f64>| -> Vec<(f64, f64)> {
            history
                .epochs
                .iter()
                .filter_map(|e| f(e).map(|v| (e.epoch as f64, v.exp())))
                .collect()
        };
        ppl.push(Series::new("exp(loss)", exp(|e| Some(e.loss))));
        ppl.push(Series::new("exp(val_loss)", exp(|e| e.val_loss)));
    }
    line_chart(
        &out.join("perplexity.png"),
        &format!("{title}: perplexity per epoch"),
        "epoch",
        "perplexity",
        &ppl,
        false,
    )?;
    if args.model == Kind::Vhred {
        let kl: Vec<Series> = ["kl", "val_kl", "active_units", "kl_weight"]
            .iter()
            .map(|n| series(n, |v| v))
            .collect();
        line_chart(
            &out.join("kl.png"),
            &format!("{title}: KL per response, active units, KL weight"),
            "epoch",
            "value",
            &kl,
            false,
        )?;
    }
    Ok(())
}

fn report(args: &Args, r: &Results) {
    let tested = match r.tested_epoch {
        Some(e) if e != r.epochs => format!("; tested: epoch {e}, the lowest validation loss"),
        _ => String::new(),
    };
    println!(
        "{} on {}: cell {}, hidden {}, {} epochs in {:.1} s ({:.0} target tokens/s){tested}",
        r.model, r.data, r.cell, r.hidden, r.epochs, r.train_seconds, r.train_tokens_per_s
    );
    println!(
        "| test perplexity, last turn | all turns | importance-sampled: last / all | floor | / floor | KL per response | active units | distinct-1 / -2, beam | sampled |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let opt = |v: Option<f64>, digits: usize| v.map_or("-".into(), |v| format!("{v:.digits$}"));
    let pair = |a: Option<f64>, b: Option<f64>| format!("{} / {}", opt(a, 3), opt(b, 3));
    println!(
        "| {:.3} | {:.3} | {} | {} | {} | {} | {} | {} | {} |",
        r.test_perplexity_last,
        r.test_perplexity_all,
        pair(
            r.test_perplexity_last_importance,
            r.test_perplexity_all_importance
        ),
        opt(r.floor_perplexity, 3),
        opt(r.ratio_to_floor, 3),
        opt(r.kl_per_response, 3),
        r.active_units.map_or("-".into(), |u| u.to_string()),
        pair(r.distinct_1, r.distinct_2),
        pair(r.sampled_distinct_1, r.sampled_distinct_2),
    );
    if let Some(c) = &r.coverage {
        println!(
            "valid answers covered over {} responses to each of {} contexts with {} valid answers: \
             greedy {:.1}%, beam {:.1}%, sampled {:.1}% ({:.1}% of all responses valid)",
            c.samples,
            c.contexts,
            c.forms,
            100.0 * c.latent_greedy,
            100.0 * c.latent_beam,
            100.0 * c.sampled,
            100.0 * c.valid
        );
    }
    let out = out(args);
    println!(
        "results: {}; pictures: loss.png, perplexity.png{} in {}",
        out.join("results.json").display(),
        if args.model == Kind::Vhred {
            ", kl.png"
        } else {
            ""
        },
        out.display()
    );
}

/// `--chat`: a conversation with the model saved in `--out`.
fn chat(args: &Args, device: &Device) -> Result<()> {
    let out = out(args);
    let path = out.join("model.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {} (train first, same --out)", path.display()))?;
    let saved: Saved = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a model description", path.display()))?;
    let vocab = corpus::load_vocab(out)?;
    let cell = <Cell as ValueEnum>::from_str(&saved.cell, true)
        .map_err(|e| anyhow::anyhow!("{}: cell {:?}: {e}", path.display(), saved.cell))?;
    match cell {
        Cell::Rnn => chat_with::<RnnConfig>(args, &saved, &vocab, device),
        Cell::Lstm => chat_with::<LstmConfig>(args, &saved, &vocab, device),
        Cell::Gru => chat_with::<GruConfig>(args, &saved, &vocab, device),
    }
}

/// The model the newest checkpoint's run handed back (the best epoch's where it kept one, as
/// the test scored it) loaded into `model`, once the vocabulary in `out` is checked to be the
/// one it was trained with; says which epoch's model it is.
fn load_saved<M: Module<Inner>>(
    out: &Path,
    vocab: &Vocabulary,
    model: M,
    device: &Device,
) -> Result<M> {
    let saved = trained::latest(out)?;
    trained::check_vocab(&saved, "vocabulary", vocab, &out.join("vocab.json"))?;
    let (model, epoch) = trained::load_model(&saved, model, device, &out.join("model.json"))?;
    println!("(the model of epoch {epoch} in {})", saved.path.display());
    Ok(model)
}

fn chat_with<K: RecurrentConfig>(
    args: &Args,
    saved: &Saved,
    vocab: &Vocabulary,
    device: &Device,
) -> Result<()>
where
    K::Cell<Inner>: ModuleDisplay,
{
    let out = out(args);
    let bad = |e: serde_json::Error| {
        anyhow::anyhow!(
            "{}: bad model settings: {e}",
            out.join("model.json").display()
        )
    };
    let mismatch = |size: usize| {
        anyhow::anyhow!(
            "the vocabulary {} has {} tokens, the model {size}: they were not saved together",
            out.join("vocab.json").display(),
            vocab.len()
        )
    };
    let mut rng = SplitMix64::new(args.seed);
    let max_len = saved.max_tokens + 2;
    // one reply to the context so far
    let reply: Reply<'_> = if saved.kind == "seq2seq" {
        let config: TokenSeq2SeqConfig =
            serde_json::from_value(saved.model.clone()).map_err(bad)?;
        if config.source_vocab != vocab.len() {
            return Err(mismatch(config.source_vocab));
        }
        let model: TokenSeq2Seq<Inner, K::Cell<Inner>> =
            load_saved(out, vocab, config.init::<Inner, K>(device)?, device)?;
        let width = args.beam;
        Box::new(move |context| {
            let last = context.last().expect("a non-empty context");
            Ok(model.beam(last, width, max_len, 0.0).swap_remove(0).tokens)
        })
    } else {
        let config: HredConfig = serde_json::from_value(saved.model.clone()).map_err(bad)?;
        if config.vocab != vocab.len() {
            return Err(mismatch(config.vocab));
        }
        let model: Hred<Inner, K::Cell<Inner>> =
            load_saved(out, vocab, config.init::<Inner, K>(device)?, device)?;
        let width = args.beam;
        Box::new(move |context| {
            Ok(model
                .beam(context, width, max_len, 0.0, &mut rng)?
                .swap_remove(0)
                .tokens)
        })
    };
    let cut = Cut {
        tokens: saved.max_tokens,
        context: saved.max_turns.map(|t| t.saturating_sub(1).max(1)),
    };
    talk(std::io::stdin().lock(), vocab, cut, reply)
}

/// The model's reply (token ids) to a context of turns.
type Reply<'a> = Box<dyn FnMut(&[Vec<usize>]) -> Result<Vec<usize>> + 'a>;

/// What `--chat` cuts to what the model was trained on.
#[derive(Clone, Copy)]
struct Cut {
    /// Tokens of a turn.
    tokens: usize,
    /// Turns of the context a reply answers (the latest ones); `None`: all.
    context: Option<usize>,
}

/// Reads turns from `input`, one a line, and prints the model's reply to each, keeping the
/// context (its latest `cut.context` turns; `/reset` clears it).
fn talk(input: impl BufRead, vocab: &Vocabulary, cut: Cut, mut reply: Reply<'_>) -> Result<()> {
    let max_tokens = cut.tokens;
    println!("(one turn a line; /reset starts a new dialogue; Ctrl-D ends)");
    let mut context: Vec<Vec<usize>> = Vec::new();
    for line in input.lines() {
        let line = line.context("reading standard input")?;
        let line = line.trim();
        if line == "/reset" {
            context.clear();
            println!("(new dialogue)");
            continue;
        }
        let tokens = tokenize(line);
        if tokens.is_empty() {
            println!("(an empty turn: say something)");
            continue;
        }
        let encoded = vocab.encode(&tokens[..tokens.len().min(max_tokens)]);
        if !encoded.unknown.is_empty() {
            let words: Vec<&str> = encoded.unknown.iter().map(|(_, w)| w.as_str()).collect();
            eprintln!(
                "(not in the vocabulary, read as <unk>: {})",
                words.join(" ")
            );
        }
        context.push(encoded.ids);
        if let Some(keep) = cut.context {
            context.drain(..context.len().saturating_sub(keep));
        }
        let answer = reply(&context)?;
        println!("{}", vocab.decode(&answer).join(" "));
        // a reply is a turn of the context from now on: cut as training cut its turns
        context.push(if answer.is_empty() {
            vec![rensa_data::vocab::UNK]
        } else {
            answer[..answer.len().min(max_tokens)].to_vec()
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_answers_the_latest_turns_the_model_was_trained_on() {
        let vocab = Vocabulary::from_tokens(["a", "b"]);
        let mut seen = Vec::new();
        let cut = Cut {
            tokens: 5,
            context: Some(3),
        };
        let reply: Reply<'_> = Box::new(|context| {
            seen.push(context.to_vec());
            Ok(vec![5; 7])
        });
        talk("a\nb\na\nb b\n/reset\nb\n".as_bytes(), &vocab, cut, reply).unwrap();
        let lengths: Vec<usize> = seen.iter().map(Vec::len).collect();
        assert_eq!(lengths, [1, 3, 3, 3, 1]);
        // the latest turns: the user's last one and the reply before it, cut to 5 tokens
        assert_eq!(seen[3][1..], [vec![5; 5], vec![5, 5]]);
    }
}
