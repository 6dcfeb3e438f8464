//! `cargo xtask bench attention`: what attention buys, measured with the release `attention`
//! example — exact sequence match on held-out reversals of 30 digits (no attention, Bahdanau,
//! Luong-general, same cell and sizes) and on held-out dates (Bahdanau, none) — and, with
//! `--peers`, the training speed of the date model against Keras/TensorFlow-CPU on the same
//! examples (`xtask/peers/keras_attention.py`).

use anyhow::{Context, Result};
use rensa_data::tasks::{Task, split};
use rensa_data::vocab::Vocabulary;
use std::fmt::Write as _;

use super::{
    BenchArgs, cpu_description, example_binary, jobs_note, median, record_run, run_binary, run_jobs,
};
use crate::peers::{run_script, workspace_root};

const HIDDEN: usize = 128;
const EMBEDDING: usize = 32;
const BATCH: usize = 64;
const TRAIN: usize = 20_000;
const SEED: u64 = 0;
/// Epochs of the accuracy runs.
const REVERSE_EPOCHS: usize = 32;
/// The reversal runs: a bidirectional encoder and the learning rate annealed to 0 (a constant
/// rate left Luong-general swinging between 90% and 99% exact on validation strings).
const REVERSE_FLAGS: &[&str] = &["--bidirectional", "--lr-schedule", "cosine"];
const DATE_EPOCHS: usize = 6;
/// Epochs of the speed comparison (the last one is timed).
const SPEED_EPOCHS: usize = 2;
/// Held-out dates of the speed runs: the example draws them first, so the Keras peer must hold
/// out the same number to train on the very same pairs.
const SPEED_TEST: usize = 100;

/// One example run: its task, attention and extra flags.
struct Case {
    task: Task,
    attention: &'static str,
    extra: &'static [&'static str],
    epochs: usize,
    test: usize,
}

/// What a run reports (`results.json` of the example).
struct Outcome {
    exact: f64,
    token_accuracy: f64,
    train_seconds: f64,
    examples_per_s: f64,
    tokens_per_s: f64,
}

fn run_case(binary: &std::path::Path, case: &Case, threads: Option<usize>) -> Result<Outcome> {
    let out = workspace_root().join(format!(
        "target/bench-attention/{}-{}{}",
        case.task,
        case.attention,
        case.extra.join("")
    ));
    let threads = threads.map(|t| t.to_string());
    let (epochs, train, test) = (
        case.epochs.to_string(),
        TRAIN.to_string(),
        case.test.to_string(),
    );
    let (hidden, embedding, batch) = (HIDDEN.to_string(), EMBEDDING.to_string(), BATCH.to_string());
    let mut args = vec![
        "--quiet",
        "--overwrite",
        "--task",
        case.task.name(),
        "--attention",
        case.attention,
        "--cell",
        "gru",
        "--hidden",
        &hidden,
        "--embedding",
        &embedding,
        "--batch-size",
        &batch,
        "--epochs",
        &epochs,
        "--train",
        &train,
        "--test",
        &test,
        "--checkpoint-every",
        &epochs,
        "--out",
        out.to_str().context("a UTF-8 path")?,
    ];
    args.extend(case.extra);
    if let Some(t) = &threads {
        args.extend(["--threads", t.as_str()]);
    }
    eprintln!(
        "attention bench: {} {} {:?}...",
        case.task, case.attention, case.extra
    );
    run_binary(binary, &args)?;
    let results: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("results.json")).context("the example's results.json")?,
    )?;
    let num = |k: &str| {
        results[k]
            .as_f64()
            .with_context(|| format!("results.json: {k}"))
    };
    Ok(Outcome {
        exact: num("exact")?,
        token_accuracy: num("token_accuracy")?,
        train_seconds: num("train_seconds")?,
        examples_per_s: num("train_examples_per_s")?,
        tokens_per_s: num("train_tokens_per_s")?,
    })
}

/// The date task's training pairs as the example builds them, for the Keras peer.
fn date_data() -> Result<std::path::PathBuf> {
    let (train, _) = split(Task::Date, TRAIN, 5..=30, SPEED_TEST, 30..=30, SEED);
    let source = Vocabulary::from_chars(train.iter().map(|e| e.source.as_str()));
    let target = Vocabulary::from_chars(train.iter().map(|e| e.target.as_str()));
    let pairs: Vec<(Vec<usize>, Vec<usize>)> = train
        .iter()
        .map(|e| {
            (
                source.encode_chars(&e.source).ids,
                target.encode_chars(&e.target).ids,
            )
        })
        .collect();
    let json = serde_json::json!({
        "source_vocab": source.len(),
        "target_vocab": target.len(),
        "pairs": pairs,
    });
    let path = workspace_root().join("target/bench-attention/date-pairs.json");
    std::fs::create_dir_all(path.parent().expect("a folder"))?;
    std::fs::write(&path, json.to_string())?;
    Ok(path)
}

fn keras(data: &std::path::Path) -> Result<(f64, String)> {
    let out = run_script(
        "keras_attention.py",
        &[
            data.display().to_string(),
            SPEED_EPOCHS.to_string(),
            BATCH.to_string(),
            HIDDEN.to_string(),
            EMBEDDING.to_string(),
            SEED.to_string(),
        ],
    )?;
    let v = crate::peers::last_json(&out, "the Keras peer")?;
    Ok((
        v["examples_per_s"].as_f64().context("examples_per_s")?,
        v["peer"].as_str().unwrap_or("keras").to_string(),
    ))
}

fn setting() -> String {
    format!(
        "GRU encoder and decoder, hidden {HIDDEN}, embedding {EMBEDDING}, batch {BATCH}, Adam lr 0.002, \
         {TRAIN} training examples (seed {SEED})"
    )
}

/// `cargo xtask bench attention`: held-out exact match with and without attention.
pub fn run(args: &BenchArgs) -> Result<()> {
    let backend = args.backend_name();
    let reverse = |attention| Case {
        task: Task::Reverse,
        attention,
        extra: REVERSE_FLAGS,
        epochs: REVERSE_EPOCHS,
        test: 1000,
    };
    let date = |attention, extra| Case {
        task: Task::Date,
        attention,
        extra,
        epochs: DATE_EPOCHS,
        test: 2000,
    };
    let cases = [
        reverse("luong-general"),
        reverse("bahdanau"),
        reverse("none"),
        date("bahdanau", &[][..]),
        date("none", &[]),
    ];
    let outcomes = run_cases(args, &cases)?;
    let mut table = String::from(
        "| task | attention | epochs | held-out exact | token accuracy | train time | examples/s (last epoch) |\n\
         | --- | --- | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for (case, o) in cases.iter().zip(outcomes) {
        writeln!(
            table,
            "| {} | {} | {} | {:.2}% | {:.2}% | {:.0} s | {:.0} |",
            case.task,
            case.attention,
            case.epochs,
            100.0 * o.exact,
            100.0 * o.token_accuracy,
            o.train_seconds,
            o.examples_per_s
        )?;
    }
    println!("\n{table}");
    record_run(
        args,
        ("attention", backend),
        &cpu_description(),
        &format!(
            "The release `attention` example: {}; greedy decoding of held-out examples none of which \
             is in the training set. Reverse: trained on 5-30 digits, tested on 1,000 strings of 30, \
             flags `{}`. Dates: ten human formats to ISO 8601, 2,000 test dates. {}",
            setting(),
            REVERSE_FLAGS.join(" "),
            jobs_note(args.jobs, "the times are not speed figures")
        ),
        &table,
    )?;
    Ok(())
}

/// Runs the cases, `args.jobs` at a time (each on one thread when more than one), in order.
fn run_cases(args: &BenchArgs, cases: &[Case]) -> Result<Vec<Outcome>> {
    let binary = example_binary("attention", args.backend)?;
    run_jobs(args.jobs, cases, |case, threads| {
        run_case(&binary, case, threads)
    })
}

/// Rounds of `bench attention-speed`: Keras and each rensa model once per round, alternating,
/// so that a change in the machine's speed reaches both; medians over the rounds.
const SPEED_ROUNDS: usize = 3;

/// `cargo xtask bench attention-speed`: the date model's training speed, against Keras/TF with
/// `--peers` on the same pairs, in alternating rounds.
pub fn speed(args: &BenchArgs) -> Result<()> {
    let backend = args.backend_name();
    let data = if args.peers { Some(date_data()?) } else { None };
    let binary = example_binary("attention", args.backend)?;
    let models: [(&str, &str, &[&str]); 3] = [
        (
            "rensa, Luong concat, no input feeding",
            "luong-concat",
            &["--no-input-feeding", "--clip-norm", "0"][..],
        ),
        (
            "rensa, Luong general, input feeding",
            "luong-general",
            &["--clip-norm", "0"][..],
        ),
        (
            "rensa, Bahdanau (attention inside the step loop)",
            "bahdanau",
            &["--clip-norm", "0"][..],
        ),
    ];
    let (mut keras_rates, mut peer) = (Vec::new(), String::new());
    let mut rensa: Vec<Vec<Outcome>> = models.iter().map(|_| Vec::new()).collect();
    for round in 1..=SPEED_ROUNDS {
        eprintln!("attention speed: round {round} of {SPEED_ROUNDS}");
        if let Some(data) = &data {
            let (rate, name) = keras(data)?;
            keras_rates.push(rate);
            peer = name;
        }
        for ((_, attention, extra), outcomes) in models.iter().zip(&mut rensa) {
            outcomes.push(run_case(
                &binary,
                &Case {
                    task: Task::Date,
                    attention,
                    extra,
                    epochs: SPEED_EPOCHS,
                    test: SPEED_TEST,
                },
                None,
            )?);
        }
    }
    let keras_median = (!keras_rates.is_empty()).then(|| median(keras_rates.clone()));
    let mut table = format!(
        "| date model, training ({SPEED_EPOCHS} epochs, the last timed; median of {SPEED_ROUNDS} alternating rounds) | examples/s | target tokens/s | / Keras (medians) | / Keras per round |\n| --- | ---: | ---: | ---: | --- |\n"
    );
    for ((name, _, _), outcomes) in models.iter().zip(&rensa) {
        let rate = median(outcomes.iter().map(|o| o.examples_per_s).collect());
        let tokens = median(outcomes.iter().map(|o| o.tokens_per_s).collect());
        let (ratio, per_round) = match keras_median {
            Some(k) => (
                format!("{:.2}x", rate / k),
                outcomes
                    .iter()
                    .zip(&keras_rates)
                    .map(|(o, k)| format!("{:.2}x", o.examples_per_s / k))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            None => ("–".to_string(), "–".to_string()),
        };
        writeln!(
            table,
            "| {name} ({backend}) | {rate:.0} | {tokens:.0} | {ratio} | {per_round} |"
        )?;
    }
    if let Some(k) = keras_median {
        let each = keras_rates
            .iter()
            .map(|r| format!("{r:.0}"))
            .collect::<Vec<_>>()
            .join(", ");
        writeln!(
            table,
            "| {peer} (GRU + AdditiveAttention) | {k:.0} | – | 1.00x | rounds: {each} examples/s |"
        )?;
    }
    println!("\n{table}");
    record_run(
        args,
        ("attention speed", backend),
        &cpu_description(),
        &format!(
            "The release `attention` example on the date task: {}; examples per second of the last of \
             {SPEED_EPOCHS} epochs, medians of {SPEED_ROUNDS} rounds (Keras, then each rensa model, per round), without gradient clipping (`--clip-norm 0`, as Keras trains). Keras \
             (`xtask/peers/keras_attention.py`) runs the TensorFlow NMT tutorial's \
             form (attention after the decoder GRU, no input feeding, `AdditiveAttention` without projections) \
             on the same pairs padded to the longest; rensa pads per batch.",
            setting()
        ),
        &table,
    )?;
    Ok(())
}
