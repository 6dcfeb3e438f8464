//! The word2vec example end to end on a generated corpus (never the real one): it trains with
//! both trainers, writes vectors gensim's formats hold, answers queries, evaluates on small
//! evaluation files, draws a projection, and refuses bad input with clear errors.

use std::path::{Path, PathBuf};

fn run(args: &[&str]) -> (bool, String, String) {
    rensa_launch::run_program(env!("CARGO_BIN_EXE_word2vec"), args)
}

/// A folder with a corpus of four topics (a sentence draws its words from one topic) and
/// evaluation files in the standard formats.
fn fixture(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("rensa-word2vec-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("eval")).unwrap();
    let mut rng = rensa_data::rng::SplitMix64::new(11);
    let topics = [
        ["king", "queen", "prince", "crown", "throne"],
        ["man", "woman", "boy", "girl", "child"],
        ["red", "green", "blue", "yellow", "colour"],
        ["dog", "cat", "horse", "cow", "animal"],
    ];
    let mut text = String::new();
    for _ in 0..1200 {
        let t = rng.below(4);
        for _ in 0..12 {
            text.push_str(topics[t][rng.below(5)]);
            text.push(' ');
        }
        text.push('\n');
    }
    std::fs::write(dir.join("corpus.txt"), text).unwrap();
    std::fs::write(
        dir.join("eval/questions-words.txt"),
        ": family\nman woman boy girl\nking queen man woman\nking queen unknown words\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("eval/wordsim353.tsv"),
        "# w1\tw2\tscore\nking\tqueen\t9\ndog\tcat\t8\nking\tred\t1\ncow\tblue\t0.5\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("eval/simlex999.txt"),
        "# w1\tw2\tscore\nred\tblue\t7\nman\tdog\t1\nboy\tgirl\t6\n",
    )
    .unwrap();
    dir
}

fn train<'a>(dir: &'a Path, out: &'a str, extra: &[&'a str]) -> (bool, String, String) {
    let corpus = dir.join("corpus.txt");
    let out = dir.join(out);
    let eval = dir.join("eval");
    let mut args = vec![
        "train".to_string(),
        corpus.display().to_string(),
        "--out".into(),
        out.display().to_string(),
        "--dims".into(),
        "16".into(),
        "--min-count".into(),
        "1".into(),
        "--sample".into(),
        "0".into(),
        "--epochs".into(),
        "3".into(),
        "--evaluate".into(),
        "--eval-data".into(),
        eval.display().to_string(),
        "--quiet".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    run(&refs)
}

#[test]
fn trains_queries_evaluates_and_draws() {
    let dir = fixture("ok");
    for (out, extra) in [
        ("cbow", vec![]),
        (
            "sg-hs",
            vec!["--model", "skipgram", "--loss", "hs", "--workers", "2"],
        ),
        (
            "tensor",
            vec![
                "--model",
                "skipgram",
                "--trainer",
                "tensor",
                "--batch",
                "32",
            ],
        ),
    ] {
        let (ok, stdout, stderr) = train(&dir, out, &extra);
        assert!(ok, "{out}: {stderr}");
        assert!(stdout.contains("vocabulary: 20 words"), "{stdout}");
        assert!(stdout.contains("words/s"), "{stdout}");
        assert!(stdout.contains("analogies (3 questions"), "{stdout}");
        assert!(stdout.contains("wordsim353: Spearman"), "{stdout}");
        for file in [
            "vectors.txt",
            "vectors.bin",
            "results.json",
            "loss.png",
            "projection.png",
        ] {
            assert!(dir.join(out).join(file).is_file(), "{out}/{file}");
        }
        let results: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(out).join("results.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(results["vocabulary"], 20);
        assert!(results["evaluation"]["analogy_coverage"].as_f64().unwrap() > 0.6);
    }
    let vectors = dir.join("cbow/vectors.bin");
    let v = vectors.to_str().unwrap();
    // a topic's words are each other's neighbours
    let (ok, stdout, stderr) = run(&["similar", "king", "-n", "4", "--vectors", v]);
    assert!(ok, "{stderr}");
    let royal = ["queen", "prince", "crown", "throne"];
    let hits = stdout
        .lines()
        .filter(|l| royal.iter().any(|w| l.ends_with(w)))
        .count();
    assert!(hits >= 3, "{stdout}");
    let (ok, stdout, _) = run(&[
        "analogy",
        "man",
        "woman",
        "boy",
        "--vectors",
        v,
        "--method",
        "mul",
    ]);
    assert!(ok && stdout.contains("man : woman :: boy : ?"), "{stdout}");
    let text = dir.join("cbow/vectors.txt");
    let json = dir.join("eval.json");
    let (ok, stdout, stderr) = run(&[
        "eval",
        "--vectors",
        text.to_str().unwrap(),
        "--eval-data",
        dir.join("eval").to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("simlex999"), "{stdout}");
    assert!(json.is_file());
    // a pairs file none of whose pairs the vectors know is an error naming it, not a NaN
    let other = dir.join("eval-other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::copy(
        dir.join("eval/questions-words.txt"),
        other.join("questions-words.txt"),
    )
    .unwrap();
    std::fs::write(
        other.join("wordsim353.tsv"),
        "tiger\tcat\t7\nbook\tpaper\t7\n",
    )
    .unwrap();
    std::fs::copy(dir.join("eval/simlex999.txt"), other.join("simlex999.txt")).unwrap();
    let (ok, _, stderr) = run(&[
        "eval",
        "--vectors",
        text.to_str().unwrap(),
        "--eval-data",
        other.to_str().unwrap(),
    ]);
    assert!(
        !ok && stderr.contains("wordsim353.tsv") && stderr.contains("none of its 2 pairs"),
        "{stderr}"
    );
    let png = dir.join("p.png");
    let (ok, stdout, _) = run(&[
        "project",
        "king",
        "queen",
        "dog",
        "cat",
        "cat",
        "nosuchword",
        "--vectors",
        v,
        "--out",
        png.to_str().unwrap(),
    ]);
    assert!(ok && stdout.contains("4 words drawn"), "{stdout}");
    assert_eq!(&std::fs::read(&png).unwrap()[1..4], b"PNG");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_input_is_refused_with_the_reason() {
    let dir = fixture("bad");
    let (ok, _, stderr) = train(&dir, "run", &[]);
    assert!(ok, "{stderr}");
    let (ok, _, stderr) = train(&dir, "run", &[]);
    assert!(!ok && stderr.contains("--overwrite"), "{stderr}");
    let (ok, _, stderr) = run(&[
        "train",
        dir.join("absent.txt").to_str().unwrap(),
        "--out",
        dir.join("x").to_str().unwrap(),
    ]);
    assert!(!ok && stderr.contains("absent.txt"), "{stderr}");
    let (ok, _, stderr) = train(
        &dir,
        "hs-tensor",
        &["--loss", "hs", "--trainer", "tensor", "--overwrite"],
    );
    assert!(
        !ok && stderr.contains("hierarchical softmax trains on the CPU"),
        "{stderr}"
    );
    let (ok, _, stderr) = train(&dir, "cpu-threads", &["--threads", "2"]);
    assert!(!ok && stderr.contains("threads are --workers"), "{stderr}");
    // a run that replaces another and draws no loss curve leaves none of the old run's
    let (ok, _, stderr) = train(&dir, "run", &["--overwrite", "--no-loss"]);
    assert!(ok, "{stderr}");
    assert!(!dir.join("run/loss.png").exists());
    // a setup refused by its settings leaves the run it was to replace as it was
    let (ok, _, stderr) = train(
        &dir,
        "run",
        &["--loss", "hs", "--trainer", "tensor", "--overwrite"],
    );
    assert!(
        !ok && stderr.contains("hierarchical softmax trains on the CPU"),
        "{stderr}"
    );
    assert!(dir.join("run/results.json").exists());
    let (ok, _, stderr) = train(&dir, "run", &["--window", "10001", "--overwrite"]);
    assert!(!ok && stderr.contains("`window`"), "{stderr}");
    assert!(dir.join("run/results.json").exists());
    let corpus = dir.join("corpus.txt");
    let (ok, _, stderr) = run(&[
        "train",
        corpus.to_str().unwrap(),
        "--min-count",
        "100000",
        "--out",
        dir.join("r2").to_str().unwrap(),
    ]);
    assert!(!ok && stderr.contains("no word occurs"), "{stderr}");
    let v = dir.join("run/vectors.bin");
    let (ok, _, stderr) = run(&["similar", "nosuchword", "--vectors", v.to_str().unwrap()]);
    assert!(
        !ok && stderr.contains("\"nosuchword\" is not in the vocabulary"),
        "{stderr}"
    );
    let bytes = std::fs::read(&v).unwrap();
    let cut = dir.join("cut.bin");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let (ok, _, stderr) = run(&["similar", "king", "--vectors", cut.to_str().unwrap()]);
    assert!(!ok && stderr.contains("truncated"), "{stderr}");
    let (ok, _, stderr) = run(&["project", "king", "--vectors", v.to_str().unwrap()]);
    assert!(!ok && stderr.contains("fewer than 3"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}
