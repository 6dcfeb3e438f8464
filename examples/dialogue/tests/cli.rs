//! The dialogue example end to end on tiny runs: HRED and VHRED train on generated dialogues and
//! report, `--chat` keeps a conversation with the saved model, a dialogue file with bad lines is
//! read with the lines skipped and counted, and unusable files, a vocabulary that does not match
//! the saved model and bad settings are refused with clear errors.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_dialogue");

fn run(args: &[&str]) -> (bool, String, String) {
    rensa_launch::run_program(BIN, args)
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rensa-dialogue-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const TINY: [&str; 14] = [
    "--dialogues",
    "120",
    "--test",
    "20",
    "--hidden",
    "8",
    "--embedding",
    "4",
    "--latent",
    "3",
    "--epochs",
    "1",
    "--samples",
    "3",
];

fn chat(out: &Path, input: &str) -> (bool, String, String) {
    let mut child = Command::new(BIN)
        .args(["--chat", "--out", out.to_str().unwrap()])
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let done = child.wait_with_output().unwrap();
    (
        done.status.success(),
        String::from_utf8_lossy(&done.stdout).into_owned(),
        String::from_utf8_lossy(&done.stderr).into_owned(),
    )
}

#[test]
fn hred_and_vhred_train_report_and_chat() {
    let dir = temp("models");
    for model in ["hred", "vhred", "seq2seq"] {
        let out = dir.join(model);
        let mut args = vec!["--model", model, "--quiet", "--out", out.to_str().unwrap()];
        args.extend(TINY);
        let (ok, stdout, stderr) = run(&args);
        assert!(ok, "{model}: {stderr}");
        assert!(
            stdout.contains("| test perplexity, last turn |"),
            "{stdout}"
        );
        let results: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap())
                .unwrap();
        assert!(results["test_perplexity_last"].as_f64().unwrap() > 1.0);
        assert!(results["floor_perplexity"].as_f64().unwrap() > 1.0);
        let mut pictures = vec!["loss.png", "perplexity.png"];
        if model == "vhred" {
            pictures.push("kl.png");
            assert!(results["kl_per_response"].as_f64().is_some());
            assert!(results["coverage"]["contexts"].as_u64().unwrap() > 0);
        }
        for file in pictures {
            assert!(out.join(file).is_file(), "{model}: {file}");
        }
        // a conversation of two turns, a reset, an empty line
        let (ok, stdout, stderr) = chat(
            &out,
            "my favourite colour is red .\ni see .\n/reset\n\nhello zzzz\n",
        );
        assert!(ok, "{model} chat: {stderr}");
        let replies = stdout.lines().filter(|l| !l.starts_with('(')).count();
        assert_eq!(replies, 3, "{stdout}");
        assert!(
            stdout.contains("(new dialogue)") && stdout.contains("(an empty turn"),
            "{stdout}"
        );
        assert!(stderr.contains("read as <unk>: hello zzzz"), "{stderr}");
    }
    // the vocabulary of another run is refused: of the same size (another corpus under the
    // same cap), then of another size
    let path = dir.join("vhred/vocab.json");
    let saved = rensa_data::vocab::Vocabulary::load(&path).unwrap();
    let mut tokens = saved.tokens()[4..].to_vec();
    tokens.swap(0, 1);
    rensa_data::vocab::Vocabulary::from_tokens(tokens)
        .save(&path)
        .unwrap();
    let (ok, _, stderr) = chat(&dir.join("vhred"), "hi\n");
    assert!(
        !ok && stderr.contains("is not the vocabulary the model"),
        "{stderr}"
    );
    let other = rensa_data::vocab::Vocabulary::from_tokens(["a", "b"]);
    other.save(&dir.join("vhred/vocab.json")).unwrap();
    let (ok, _, stderr) = chat(&dir.join("vhred"), "hi\n");
    assert!(
        !ok && stderr.contains("were not saved together"),
        "{stderr}"
    );
    // no model at all
    let (ok, _, stderr) = chat(&dir.join("none"), "hi\n");
    assert!(!ok && stderr.contains("train first"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_dialogue_file_is_read_with_its_bad_lines_counted() {
    let dir = temp("file");
    let file = dir.join("dialogues.txt");
    let mut text = String::new();
    for k in 0..30 {
        text += &format!("hello {k} __eou__ hi there __eou__ how are you {k} ?\n");
    }
    text += "one turn only\n";
    std::fs::write(&file, text.as_bytes()).unwrap();
    let mut bytes = std::fs::read(&file).unwrap();
    bytes.extend_from_slice(b"\xff\xfe __eou__ broken\n");
    std::fs::write(&file, &bytes).unwrap();
    let out = dir.join("run");
    let mut args = vec![
        "--data",
        file.to_str().unwrap(),
        "--min-count",
        "1",
        "--test-share",
        "0.2",
        "--batch-size",
        "8",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ];
    // three epochs, early stopping on (real data): the test scores the best epoch's model
    args.extend(&TINY[4..10]);
    args.extend(["--epochs", "3"]);
    args.extend(&TINY[12..]);
    let (ok, stdout, stderr) = run(&args);
    assert!(ok, "{stderr}");
    let json = |name: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(out.join(name)).unwrap()).unwrap()
    };
    let val: Vec<f64> = json("history.json")["epochs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["val_loss"].as_f64().unwrap())
        .collect();
    let best = 1 + (0..val.len()).fold(0, |b, i| if val[i] < val[b] { i } else { b });
    assert_eq!(json("results.json")["tested_epoch"], best, "{val:?}");
    // --chat talks with the model the test scored
    let (ok, said, complaint) = chat(&out, "hello\n");
    assert!(
        ok && said.contains(&format!("(the model of epoch {best} in")),
        "{said} {complaint}"
    );
    assert!(stderr.contains("30 dialogues, 2 skipped"), "{stderr}");
    assert!(
        stderr.contains("line 31") && stderr.contains("line 32 is not UTF-8"),
        "{stderr}"
    );
    assert!(
        stdout.contains("23 training, 1 validation and 6 test windows"),
        "{stdout}"
    );
    // the same file resumes; one edited since (same counts, other words) is refused
    let resume = [&args[..], &["--resume"]].concat();
    let (ok, _, stderr) = run(&resume);
    assert!(ok, "{stderr}");
    let mut edited = text.replace("hello", "howdy").into_bytes();
    edited.extend_from_slice(&bytes[text.len()..]);
    std::fs::write(&file, &edited).unwrap();
    let (ok, _, stderr) = run(&resume);
    assert!(!ok && stderr.contains("data: saved"), "{stderr}");
    assert!(stderr.contains("30 dialogues, 2 skipped"), "{stderr}");

    // files with nothing usable, and missing ones
    let empty = dir.join("empty.txt");
    std::fs::write(&empty, "just one turn\n\n").unwrap();
    let (ok, _, stderr) = run(&[
        "--data",
        empty.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        !ok && stderr.contains("no line with at least two non-empty turns"),
        "{stderr}"
    );
    let truncated = dir.join("chat.json");
    std::fs::write(&truncated, r#"{"a": {"messages": [[{"text": "hi"}], [{"te"#).unwrap();
    let (ok, _, stderr) = run(&[
        "--data",
        truncated.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        !ok && stderr.contains("not a chitchat dataset (JSON)"),
        "{stderr}"
    );
    let (ok, _, stderr) = run(&[
        "--data",
        "/nonexistent/d.txt",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!ok && stderr.contains("/nonexistent/d.txt"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_settings_are_refused_before_any_work() {
    for (args, expected) in [
        (&["--word-drop", "1"][..], "--word-drop"),
        (&["--lr", "0"][..], "--lr"),
        (&["--max-turns", "1"][..], "--max-turns"),
        (&["--test-share", "1.5"][..], "--test-share"),
        (&["--anneal", "cosine"][..], "unknown KL annealing"),
        (&["--model", "gpt"][..], "invalid value 'gpt'"),
        (&["--hidden", "0"][..], "at least 1"),
    ] {
        let (ok, _, stderr) = run(args);
        assert!(!ok && stderr.contains(expected), "{args:?}: {stderr}");
    }
    let (ok, stdout, _) = run(&["--help"]);
    assert!(ok && stdout.contains("--chat") && stdout.contains("--model"));
}
