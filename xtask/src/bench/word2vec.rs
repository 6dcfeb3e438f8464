//! `cargo xtask bench word2vec [--peers]`: the `word2vec` example on the English corpus
//! ([`rensa_data::fetch::english_corpus`]) with gensim's hyperparameters (100 dimensions, window
//! 5, 5 negatives, sample 1e-3, min count 5, 5 epochs, learning rate 0.025 → 0.0001), CBOW and
//! skip-gram over three seeds: corpus words per second with one worker thread, analogy accuracy
//! (top 30,000 words, 3CosAdd), Spearman's ρ on WordSim-353 and SimLex-999.
//! `cargo xtask bench word2vec-tensor`: the batched tensor trainer on the chosen backend (seed 1),
//! the same figures. `cargo xtask bench word2vec-threads` (on an otherwise idle machine): one
//! worker thread against two, each model, median of three runs. With `--peers`, gensim
//! 4.4.0 (`xtask/peers/gensim_word2vec.py`, `corpus_file` mode, one worker) on the same corpus
//! and seeds, evaluated by gensim; and gensim's evaluation of rensa's vectors of seed 1, a check
//! that both evaluations agree.

use anyhow::{Context, Result};
use std::fmt::Write as _;

use super::{BenchArgs, cpu_description, example_binary, median, record_run, run_binary};
use crate::peers::{last_json, run_script, workspace_root};

const SEEDS: [u64; 3] = [1, 2, 3];
const MODELS: [&str; 2] = ["cbow", "skipgram"];
/// Predictions per batch of the tensor trainer.
const TENSOR_BATCH: &str = "4096";

/// What one training run measured.
#[derive(Clone, Copy, Default)]
struct Outcome {
    words_per_second: f64,
    analogy: f64,
    wordsim: f64,
    simlex: f64,
}

fn rensa_run(
    binary: &std::path::Path,
    corpus: &str,
    eval: &str,
    model: &str,
    seed: u64,
    extra: &[&str],
) -> Result<Outcome> {
    let tag = extra.join("").replace("--", "-");
    let out = workspace_root().join(format!("target/bench-word2vec/{model}-{seed}{tag}"));
    eprintln!(
        "word2vec bench: rensa {model}, seed {seed} {}...",
        extra.join(" ")
    );
    let seed_s = seed.to_string();
    let mut args = vec![
        "train",
        corpus,
        "--model",
        model,
        "--seed",
        &seed_s,
        "--no-loss",
        "--evaluate",
        "--eval-data",
        eval,
        "--overwrite",
        "--quiet",
        "--out",
        out.to_str().context("a UTF-8 path")?,
    ];
    args.extend_from_slice(extra);
    run_binary(binary, &args)?;
    let r: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("results.json")).context("results.json")?,
    )?;
    let e = &r["evaluation"];
    Ok(Outcome {
        words_per_second: r["words_per_second"].as_f64().context("words_per_second")?,
        analogy: e["analogy_accuracy"].as_f64().context("analogy_accuracy")?,
        wordsim: e["pairs"]["wordsim353"]["spearman"]
            .as_f64()
            .context("wordsim353")?,
        simlex: e["pairs"]["simlex999"]["spearman"]
            .as_f64()
            .context("simlex999")?,
    })
}

fn gensim_outcome(r: &serde_json::Value) -> Result<Outcome> {
    let e = &r["evaluation"];
    Ok(Outcome {
        words_per_second: r["words_per_second"].as_f64().unwrap_or(f64::NAN),
        analogy: e["analogy_accuracy"].as_f64().context("gensim: analogy")?,
        wordsim: e["wordsim353"]["spearman"]
            .as_f64()
            .context("gensim: wordsim353")?,
        simlex: e["simlex999"]["spearman"]
            .as_f64()
            .context("gensim: simlex999")?,
    })
}

/// gensim's run of `model` (seed, workers) on the corpus, evaluated by gensim.
fn gensim_run(corpus: &str, eval: &str, model: &str, seed: u64, workers: usize) -> Result<Outcome> {
    let args = [
        "--corpus",
        corpus,
        "--eval-dir",
        eval,
        "--model",
        model,
        "--seed",
        &seed.to_string(),
        "--workers",
        &workers.to_string(),
    ]
    .map(String::from);
    let out = run_script("gensim_word2vec.py", &args)?;
    gensim_outcome(&last_json(&out, "gensim_word2vec.py")?)
}

fn medians(runs: &[Outcome]) -> Outcome {
    let m = |f: fn(&Outcome) -> f64| median(runs.iter().map(f).collect());
    Outcome {
        words_per_second: m(|o| o.words_per_second),
        analogy: m(|o| o.analogy),
        wordsim: m(|o| o.wordsim),
        simlex: m(|o| o.simlex),
    }
}

fn mean(runs: &[Outcome], f: fn(&Outcome) -> f64) -> f64 {
    runs.iter().map(f).sum::<f64>() / runs.len() as f64
}

fn row(table: &mut String, label: &str, o: &Outcome) -> Result<()> {
    writeln!(
        table,
        "| {label} | {:.0} | {:.2}% | {:.3} | {:.3} |",
        o.words_per_second,
        100.0 * o.analogy,
        o.wordsim,
        o.simlex
    )?;
    Ok(())
}

/// The head of the tables of `run` and `tensor`.
const TABLE_HEAD: &str = "| run | corpus words/s | analogy accuracy | WordSim-353 ρ | SimLex-999 ρ |\n| --- | ---: | ---: | ---: | ---: |\n";

/// What `run` and `tensor` start from: the corpus and evaluation files (fetched once), the
/// example's binary and the backend's name.
struct Setup {
    corpus_path: std::path::PathBuf,
    corpus: String,
    eval: String,
    binary: std::path::PathBuf,
    backend: &'static str,
}

fn setup(args: &BenchArgs) -> Result<Setup> {
    let corpus_path = rensa_data::fetch::english_corpus()?;
    let eval_path = rensa_data::fetch::word2vec_evaluation()?;
    Ok(Setup {
        corpus: corpus_path
            .to_str()
            .context("a UTF-8 corpus path")?
            .to_string(),
        eval: eval_path.to_str().context("a UTF-8 path")?.to_string(),
        binary: example_binary("word2vec", args.backend)?,
        backend: args.backend_name(),
        corpus_path,
    })
}

pub fn run(args: &BenchArgs) -> Result<()> {
    let Setup {
        corpus_path,
        corpus,
        eval,
        binary,
        backend,
    } = setup(args)?;
    let mut table = String::from(TABLE_HEAD);
    let mut bars = String::new();
    for model in MODELS {
        let mut rensa = Vec::new();
        let mut gensim = Vec::new();
        for seed in SEEDS {
            let o = rensa_run(&binary, &corpus, &eval, model, seed, &[])?;
            row(
                &mut table,
                &format!("rensa {model}, CPU, 1 thread, seed {seed}"),
                &o,
            )?;
            rensa.push(o);
            if args.peers {
                eprintln!("word2vec bench: gensim {model}, seed {seed}...");
                let g = gensim_run(&corpus, &eval, model, seed, 1)?;
                row(
                    &mut table,
                    &format!("gensim {model}, 1 worker, seed {seed}"),
                    &g,
                )?;
                gensim.push(g);
            }
        }
        let r = medians(&rensa);
        writeln!(
            bars,
            "- {model}: rensa median {:.0} words/s with one thread.",
            r.words_per_second
        )?;
        if args.peers {
            let g = medians(&gensim);
            writeln!(
                bars,
                "- {model} against gensim (medians of 3 seeds): {:.2}x gensim's words/s; analogy {:.2}% vs {:.2}% (mean difference {:+.2} points); WordSim-353 ρ {:.3} vs {:.3} (mean difference {:+.3}); SimLex-999 ρ {:.3} vs {:.3}.",
                r.words_per_second / g.words_per_second,
                100.0 * r.analogy,
                100.0 * g.analogy,
                100.0 * (mean(&rensa, |o| o.analogy) - mean(&gensim, |o| o.analogy)),
                r.wordsim,
                g.wordsim,
                mean(&rensa, |o| o.wordsim) - mean(&gensim, |o| o.wordsim),
                r.simlex,
                g.simlex
            )?;
            let vectors = workspace_root().join(format!(
                "target/bench-word2vec/{model}-{}/vectors.bin",
                SEEDS[0]
            ));
            let out = run_script(
                "gensim_word2vec.py",
                &[
                    "--eval-dir".to_string(),
                    eval.clone(),
                    "--evaluate-only".into(),
                    vectors.display().to_string(),
                ],
            )?;
            let cross = gensim_outcome(&last_json(&out, "gensim_word2vec.py")?)?;
            writeln!(
                bars,
                "- {model}, seed {}: gensim's evaluation of rensa's vectors: analogy {:.2}% (rensa's own: {:.2}%), WordSim-353 ρ {:.4} ({:.4}), SimLex-999 ρ {:.4} ({:.4}).",
                SEEDS[0],
                100.0 * cross.analogy,
                100.0 * rensa[0].analogy,
                cross.wordsim,
                rensa[0].wordsim,
                cross.simlex,
                rensa[0].simlex
            )?;
        }
    }
    println!("\n{table}\n{bars}");
    let sources =
        std::fs::read_to_string(corpus_path.with_file_name("SOURCES.txt")).unwrap_or_default();
    record_run(
        args,
        ("word2vec on the English corpus", backend),
        &cpu_description(),
        &format!(
            "The release `word2vec` example (`train --no-loss --evaluate`), gensim's defaults: 100 \
             dimensions, window 5, 5 negatives, sample 1e-3, min count 5, 5 epochs, learning rate \
             0.025 to 0.0001; seeds {SEEDS:?}. Corpus: {} Words/s: corpus words (rare words \
             included, gensim's \"raw words\") × epochs / training seconds (the vocabulary scan \
             excluded, for both). Analogy accuracy: questions-words.txt among the 30,000 most \
             frequent words, 3CosAdd, case-insensitive; ρ: Spearman on WordSim-353 and SimLex-999 \
             (gensim's files). gensim 4.4.0: `corpus_file` mode, 1 worker, evaluated by its own \
             `evaluate_word_analogies` / `evaluate_word_pairs`.",
            sources
                .lines()
                .next()
                .unwrap_or("the cache's english/corpus.txt.")
        ),
        &format!("{table}\n{bars}"),
    )
}

/// `cargo xtask bench word2vec-threads [--peers]`: corpus words per second of the CPU trainer
/// with one and two worker threads (seed 1, no evaluation), three runs each, alternating; with
/// `--peers`, gensim's with one and two workers in the same rounds, the scaling this machine
/// allows a peer.
pub fn threads(args: &BenchArgs) -> Result<()> {
    let Setup {
        corpus,
        eval,
        binary,
        ..
    } = setup(args)?;
    let mut table = String::from(if args.peers {
        "| model | rensa, 1 thread, words/s | rensa, 2 threads, words/s | rensa speed-up | gensim, 1 worker, words/s | gensim, 2 workers, words/s | gensim speed-up |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n"
    } else {
        "| model | 1 thread, words/s | 2 threads, words/s | speed-up |\n| --- | ---: | ---: | ---: |\n"
    });
    for model in MODELS {
        let mut rensa = [Vec::new(), Vec::new()];
        let mut gensim = [Vec::new(), Vec::new()];
        for _ in 0..3 {
            for (workers, into) in ["1", "2"].into_iter().zip(&mut rensa) {
                eprintln!("word2vec bench: rensa {model}, {workers} worker(s)...");
                let out = workspace_root()
                    .join(format!("target/bench-word2vec/threads-{model}-{workers}"));
                run_binary(
                    &binary,
                    &[
                        "train",
                        &corpus,
                        "--model",
                        model,
                        "--workers",
                        workers,
                        "--no-loss",
                        "--overwrite",
                        "--quiet",
                        "--out",
                        out.to_str().context("a UTF-8 path")?,
                    ],
                )?;
                let r: serde_json::Value = serde_json::from_str(
                    &std::fs::read_to_string(out.join("results.json")).context("results.json")?,
                )?;
                into.push(r["words_per_second"].as_f64().context("words_per_second")?);
            }
            if !args.peers {
                continue;
            }
            for (workers, into) in [1, 2].into_iter().zip(&mut gensim) {
                eprintln!("word2vec bench: gensim {model}, {workers} worker(s)...");
                let g = gensim_run(&corpus, &eval, model, 1, workers)?;
                into.push(g.words_per_second);
            }
        }
        let [a, b] = rensa.map(median);
        write!(table, "| {model} | {a:.0} | {b:.0} | {:.2}x |", b / a)?;
        if args.peers {
            let [c, d] = gensim.map(median);
            write!(table, " {c:.0} | {d:.0} | {:.2}x |", d / c)?;
        }
        table.push('\n');
    }
    println!("\n{table}");
    record_run(
        args,
        ("word2vec worker threads", "CPU"),
        &cpu_description(),
        &format!(
            "The release `word2vec` example (`train --no-loss`, gensim's defaults, seed 1) on the \
             English corpus with `--workers 1` and `--workers 2`, three runs each, alternating; \
             medians.{}",
            if args.peers {
                " gensim 4.4.0 (`xtask/peers/gensim_word2vec.py`, `corpus_file` mode, the same \
                 hyperparameters, seed 1) with 1 and 2 workers in the same rounds."
            } else {
                ""
            }
        ),
        &table,
    )
}

/// `cargo xtask bench word2vec-tensor`: the tensor trainer of each model on `--backend`, seed 1,
/// with the evaluation.
pub fn tensor(args: &BenchArgs) -> Result<()> {
    let Setup {
        corpus_path: _,
        corpus,
        eval,
        binary,
        backend,
    } = setup(args)?;
    let mut table = String::from(TABLE_HEAD);
    let epochs = args.epochs.map(|e| e.to_string());
    let mut extra = vec![
        "--trainer",
        "tensor",
        "--batch",
        TENSOR_BATCH,
        "--threads",
        "1",
    ];
    if let Some(e) = &epochs {
        extra.extend(["--epochs", e.as_str()]);
    }
    for model in MODELS {
        let o = rensa_run(&binary, &corpus, &eval, model, SEEDS[0], &extra)?;
        row(
            &mut table,
            &format!(
                "rensa {model}, tensor trainer (batch {TENSOR_BATCH}), seed {}",
                SEEDS[0]
            ),
            &o,
        )?;
    }
    println!("\n{table}");
    record_run(
        args,
        ("word2vec's tensor trainer on the English corpus", backend),
        &cpu_description(),
        &format!(
            "The release `word2vec` example, `train --trainer tensor --batch {TENSOR_BATCH} \
             --threads 1 --no-loss --evaluate`, gensim's defaults otherwise (as `cargo xtask bench \
             word2vec`, whose CPU trainer and gensim figures these compare with), seed {}.{}",
            SEEDS[0],
            args.shortened_note()
        ),
        &table,
    )
}
