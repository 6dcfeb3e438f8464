//! `cargo xtask bench hred`: the `dialogue` example on generated dialogues (the last turn recalls
//! a fact of the first; four equally valid answers for half of the facts): HRED against the
//! generator's exact perplexity floor, a seq2seq that sees only the turn before, VHRED with KL
//! annealing and word drop (coverage of the valid answers, KL, active units) and VHRED without
//! them (posterior collapse). `cargo xtask bench hred-chitchat`: HRED and VHRED on the chitchat
//! dataset (perplexity, distinct-n, tokens/s).

use anyhow::{Context, Result};
use std::fmt::Write as _;

use super::{
    BenchArgs, cpu_description, example_binary, jobs_note, record_run, run_binary, run_jobs,
};
use crate::peers::workspace_root;

/// One run of the example: a label, the model and extra flags.
struct Case {
    label: &'static str,
    model: &'static str,
    extra: &'static [&'static str],
}

const GENERATED: [Case; 4] = [
    Case {
        label: "HRED",
        model: "hred",
        extra: &[],
    },
    Case {
        label: "seq2seq over the last turn",
        model: "seq2seq",
        extra: &[],
    },
    Case {
        label: "VHRED (KL annealing over 3,000 steps, word drop 0.25)",
        model: "vhred",
        extra: &[],
    },
    Case {
        label: "VHRED without annealing or word drop",
        model: "vhred",
        extra: &["--anneal", "none", "--word-drop", "0"],
    },
];

/// On chitchat VHRED gets the bag-of-words loss too: without it, its beam answers were less
/// varied than HRED's (BENCHMARKS.md, 2026-12-04: distinct-2 0.084 against 0.147), the latent
/// carrying under 2 nats a response; with weight 1 it carried 11.4 nats and answered with twice
/// HRED's distinct-2, its bound 21.6% above HRED's perplexity and its importance-sampled
/// perplexity 9.1% above (2026-12-07; 6.9% on 2026-12-06), within the 10%.
const CHITCHAT: [Case; 2] = [
    Case {
        label: "HRED",
        model: "hred",
        extra: &[],
    },
    Case {
        label: "VHRED (KL annealing over 3,000 steps, word drop 0.25, bag-of-words loss weight 1)",
        model: "vhred",
        extra: &["--bow-weight", "1"],
    },
];

/// Runs `case` on `data` (`--data`), on `threads` threads (default: all); its results in
/// `target/bench-dialogue/NAME-MODEL...`.
fn run_case(
    binary: &std::path::Path,
    (name, data): (&str, &str),
    case: &Case,
    threads: Option<usize>,
    epochs: Option<usize>,
) -> Result<serde_json::Value> {
    let out = workspace_root().join(format!(
        "target/bench-dialogue/{name}-{}{}",
        case.model,
        case.extra.join("")
    ));
    eprintln!("hred bench: {name} {}...", case.label);
    let mut args = vec![
        "--quiet",
        "--overwrite",
        "--data",
        data,
        "--model",
        case.model,
        "--out",
        out.to_str().context("a UTF-8 path")?,
    ];
    args.extend(case.extra);
    let threads = threads.map(|t| t.to_string());
    if let Some(t) = &threads {
        args.extend(["--threads", t.as_str()]);
    }
    // A short speed run also evaluates on less: one posterior draw, two responses per context,
    // 200 generated test dialogues.
    let epochs = epochs.map(|e| e.to_string());
    if let Some(e) = &epochs {
        args.extend([
            "--epochs",
            e.as_str(),
            "--importance-samples",
            "1",
            "--samples",
            "2",
        ]);
        if name == "generated" {
            args.extend(["--test", "200"]);
        }
    }
    run_binary(binary, &args)?;
    Ok(serde_json::from_str(
        &std::fs::read_to_string(out.join("results.json")).context("the example's results.json")?,
    )?)
}

fn opt(v: &serde_json::Value, digits: usize) -> String {
    v.as_f64().map_or("–".into(), |x| format!("{x:.digits$}"))
}

fn percent(v: &serde_json::Value) -> String {
    v.as_f64()
        .map_or("–".into(), |x| format!("{:.1}%", 100.0 * x))
}

/// distinct-1 / -2 of the beam answers and of the sampled ones, from an example's results.json.
fn distinct(r: &serde_json::Value) -> String {
    let pair = |one: &str, two: &str| {
        if r[one].is_null() {
            "–".to_string()
        } else {
            format!("{} / {}", opt(&r[one], 3), opt(&r[two], 3))
        }
    };
    format!(
        "{}; {}",
        pair("distinct_1", "distinct_2"),
        pair("sampled_distinct_1", "sampled_distinct_2")
    )
}

/// For the record of a run shortened by `--epochs`: that, and the smaller evaluation
/// [`run_case`] then asks for.
fn short_evaluation(args: &BenchArgs) -> String {
    if args.epochs.is_none() {
        return String::new();
    }
    format!(
        "{} The evaluation is cut likewise: 200 generated test dialogues (so 200 contexts at \
         most), 2 responses per context for the coverage, one posterior draw for the \
         importance-sampled perplexity (a one-draw estimate, not a tighter bound).",
        args.shortened_note()
    )
}

pub fn run(args: &BenchArgs) -> Result<()> {
    let binary = example_binary("dialogue", args.backend)?;
    let mut table = String::from(
        "| model | test perplexity, last turn | importance-sampled | floor | / floor | KL per response | active units | valid answers covered in 20: greedy / beam / sampled | distinct-1 / -2: beam; sampled | train s | target tokens/s |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for case in &GENERATED {
        let r = run_case(&binary, ("generated", "generated"), case, None, args.epochs)?;
        let c = &r["coverage"];
        writeln!(
            table,
            "| {} | {:.3} | {} | {} | {} | {} | {} | {} | {} | {:.0} | {:.0} |",
            case.label,
            r["test_perplexity_last"]
                .as_f64()
                .context("results.json: perplexity")?,
            opt(&r["test_perplexity_last_importance"], 3),
            opt(&r["floor_perplexity"], 3),
            opt(&r["ratio_to_floor"], 3),
            opt(&r["kl_per_response"], 3),
            r["active_units"]
                .as_u64()
                .map_or("–".into(), |u| u.to_string()),
            if c.is_null() {
                "–".to_string()
            } else {
                format!(
                    "{} / {} / {}",
                    percent(&c["latent_greedy"]),
                    percent(&c["latent_beam"]),
                    percent(&c["sampled"])
                )
            },
            distinct(&r),
            r["train_seconds"].as_f64().unwrap_or(f64::NAN),
            r["train_tokens_per_s"].as_f64().unwrap_or(f64::NAN),
        )?;
    }
    println!("\n{table}");
    record_run(
        args,
        (
            "dialogue models on generated dialogues",
            args.backend_name(),
        ),
        &cpu_description(),
        &format!(
            "The release `dialogue` example, `--data generated`, seed 0, defaults otherwise: 20,000 \
         training and 1,000 test dialogues (a fact, one or two filler turns, an answer recalling \
         the fact; for three of the six slots four equally likely answer forms), GRU cells, \
         embedding 64, hidden 128, Adam lr 0.002, batch 32 dialogues, 10 epochs, gradient norm \
         clipped to 1. Perplexity of the test dialogues' last turns (a VHRED's from its bound, \
         nll + KL, and importance-sampled over 50 posterior draws per response, a tighter \
         bound); the floor is the generator's exact conditional entropy of those answers. \
         Coverage: 20 responses to each of 50 test contexts with four valid answers, the share \
         of the four among them (greedy and beam: a VHRED's latent drawn from its prior for each \
         response, the only source of variety; sampled: words drawn at temperature 1). distinct-n \
         of beam-5 answers to 500 test contexts, and of answers sampled at temperature 1 to the \
         same contexts.{}",
            short_evaluation(args)
        ),
        &table,
    )?;
    Ok(())
}

pub fn chitchat(args: &BenchArgs) -> Result<()> {
    let path = rensa_data::fetch::chitchat()?;
    let data = path.to_str().context("a UTF-8 data path")?.to_string();
    let binary = example_binary("dialogue", args.backend)?;
    let mut table = String::from(
        "| model | test perplexity, last turn | all turns | importance-sampled: last / all | KL per response | active units | distinct-1 / -2: beam; sampled | epochs | train s | target tokens/s |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    let results = run_jobs(args.jobs, &CHITCHAT, |case, threads| {
        run_case(&binary, ("chitchat", &data), case, threads, args.epochs)
    })?;
    for (case, r) in CHITCHAT.iter().zip(results) {
        writeln!(
            table,
            "| {} | {:.2} | {:.2} | {} | {} | {} | {} | {} | {:.0} | {:.0} |",
            case.label,
            r["test_perplexity_last"]
                .as_f64()
                .context("results.json: perplexity")?,
            r["test_perplexity_all"].as_f64().unwrap_or(f64::NAN),
            if r["test_perplexity_last_importance"].is_null() {
                "–".to_string()
            } else {
                format!(
                    "{} / {}",
                    opt(&r["test_perplexity_last_importance"], 2),
                    opt(&r["test_perplexity_all_importance"], 2)
                )
            },
            opt(&r["kl_per_response"], 3),
            r["active_units"]
                .as_u64()
                .map_or("–".into(), |u| u.to_string()),
            distinct(&r),
            r["epochs"],
            r["train_seconds"].as_f64().unwrap_or(f64::NAN),
            r["train_tokens_per_s"].as_f64().unwrap_or(f64::NAN),
        )?;
    }
    println!("\n{table}");
    record_run(
        args,
        ("dialogue models on chitchat", args.backend_name()),
        &cpu_description(),
        &format!(
            "The release `dialogue` example, `--data` the chitchat dataset's dataset.json \
         (chitchat-dataset 0.9.0 from PyPI: 7,168 conversations, of which the 4,017 with two or more turns are read), seed 0, defaults otherwise: 5% \
         of the conversations held out for the test, conversations cut into windows of at most 6 \
         turns and turns into at most 30 tokens, vocabulary of the words seen 3 times or more \
         (at most 5,000), GRU cells, embedding 64, hidden 128, Adam lr 0.002, batch 32, gradient \
         norm clipped to 1, up to 10 epochs, stopped when the validation loss has not improved for 2. Perplexity of the test windows' last turns and of all their turns (a \
         VHRED's from its bound, nll + KL, and from the importance-sampled likelihood over 50 \
         posterior draws per response, a tighter bound); distinct-n of beam-5 answers to 500 test contexts (a VHRED \
         decodes each with its latent drawn from the prior), and of answers sampled at temperature 1 \
         to the same contexts. {}{}",
            jobs_note(
                args.jobs,
                "train seconds and tokens/s are one-thread figures under that load"
            ),
            short_evaluation(args)
        ),
        &table,
    )?;
    Ok(())
}
