//! The attention example end to end on a tiny run: it trains and translates; a saved model whose
//! settings or vocabulary files no longer match is refused with a clear error; bad settings are
//! refused before any work.

use std::path::Path;

fn run(args: &[&str]) -> (bool, String, String) {
    rensa_launch::run_program(env!("CARGO_BIN_EXE_attention"), args)
}

fn translate(dir: &Path, text: &str) -> (bool, String, String) {
    run(&["--out", dir.to_str().unwrap(), "--translate", text])
}

#[test]
fn a_tiny_run_trains_translates_and_refuses_mismatched_files() {
    let dir = std::env::temp_dir().join(format!("rensa-attention-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let d = dir.to_str().unwrap();
    let tiny = [
        "--task",
        "reverse",
        "--attention",
        "luong-general",
        "--hidden",
        "8",
        "--embedding",
        "4",
        "--train",
        "64",
        "--test",
        "8",
        "--min-len",
        "2",
        "--max-len",
        "4",
        "--epochs",
        "1",
        "--batch-size",
        "16",
        "--lr-schedule",
        "cosine",
        "--quiet",
        "--out",
        d,
    ];
    let (ok, stdout, stderr) = run(&tiny);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("| test examples | exact |"), "{stdout}");
    for file in [
        "results.json",
        "loss.png",
        "alignment-1.png",
        "model.json",
        "source-vocab.json",
    ] {
        assert!(dir.join(file).exists(), "{file} missing");
    }
    // a second fresh run into the same folder needs --overwrite or --resume
    let (ok, _, stderr) = run(&tiny);
    assert!(!ok && stderr.contains("--overwrite"), "{stderr}");
    // a refused run, fresh or resumed, leaves the saved model's files as they were
    let files = ["model.json", "source-vocab.json", "target-vocab.json"];
    let read = || files.map(|f| std::fs::read(dir.join(f)).unwrap());
    let before = read();
    let mut wider = tiny.to_vec();
    let at = wider.iter().position(|&a| a == "--hidden").unwrap();
    wider[at + 1] = "9";
    let mut other_task = tiny.to_vec();
    other_task[1] = "date";
    for (args, message) in [
        (wider.clone(), "--overwrite"),
        (
            [&wider[..], &["--resume"]].concat(),
            "hidden: saved 8, now 9",
        ),
        (
            [&other_task[..], &["--resume"]].concat(),
            "task: saved reverse, now date",
        ),
    ] {
        let (ok, _, stderr) = run(&args);
        assert!(!ok && stderr.contains(message), "{message}: {stderr}");
        assert!(read() == before, "a refused run changed the saved files");
    }
    // going on to more epochs changes the cosine schedule's length: refused, then forced
    let more: Vec<&str> = [&tiny[..], &["--resume"]]
        .concat()
        .into_iter()
        .map(|a| if a == "1" { "2" } else { a })
        .collect();
    let (ok, _, stderr) = run(&more);
    assert!(!ok && stderr.contains("--force"), "{stderr}");
    let (ok, _, stderr) = run(&[&more[..], &["--force"]].concat());
    assert!(ok, "{stderr}");

    // the saved model on the same test set, with a beam
    let mut evaluate = tiny.to_vec();
    evaluate.extend(["--evaluate", "--beam", "3"]);
    let (ok, stdout, stderr) = run(&evaluate);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("| test examples | exact |"), "{stdout}");
    assert!(dir.join("evaluation-beam-3-alpha-0.6.json").exists());
    // options that make other training data would evaluate on items the model may have been
    // trained on: refused (options that change the test set but not the training data, such as
    // one more test item that no training item equals, hold out as well and are accepted)
    for (flag, value) in [("--seed", "1"), ("--min-len", "3")] {
        let mut other = evaluate.clone();
        match other.iter().position(|&a| a == flag) {
            Some(at) => other[at + 1] = value,
            None => other.extend([flag, value]),
        }
        let (ok, _, stderr) = run(&other);
        assert!(
            !ok && stderr.contains("--evaluate") && stderr.contains("data: trained on"),
            "{flag}: {stderr}"
        );
    }

    let (ok, stdout, stderr) = translate(&dir, "12?");
    assert!(ok, "{stderr}");
    assert!(!stdout.trim().is_empty());
    assert!(stderr.contains("<unk>") && stderr.contains('?'), "{stderr}");

    // settings that no longer match the saved weights
    let model = std::fs::read_to_string(dir.join("model.json")).unwrap();
    let wider = model.replace("\"hidden_size\": 8", "\"hidden_size\": 9");
    assert_ne!(model, wider);
    std::fs::write(dir.join("model.json"), &wider).unwrap();
    let (ok, _, stderr) = translate(&dir, "12");
    assert!(!ok && stderr.contains("cannot load"), "{stderr}");
    std::fs::write(dir.join("model.json"), &model).unwrap();

    // a vocabulary of the same size but other tokens (another run's), then one of another size,
    // then a corrupt one
    let vocab = std::fs::read_to_string(dir.join("source-vocab.json")).unwrap();
    let swapped = vocab.replacen("\"1\"", "\"x\"", 1);
    assert_ne!(swapped, vocab);
    std::fs::write(dir.join("source-vocab.json"), &swapped).unwrap();
    let (ok, _, stderr) = translate(&dir, "12");
    assert!(
        !ok && stderr.contains("is not the vocabulary the model"),
        "{stderr}"
    );
    let (other, _) = vocab.split_once("\"tokens\"").unwrap();
    std::fs::write(
        dir.join("source-vocab.json"),
        format!("{other}\"tokens\": [\"x\"]\n}}"),
    )
    .unwrap();
    let (ok, _, stderr) = translate(&dir, "12");
    assert!(!ok && stderr.contains("are not the model's"), "{stderr}");
    std::fs::write(dir.join("source-vocab.json"), &vocab[..vocab.len() / 2]).unwrap();
    let (ok, _, stderr) = translate(&dir, "12");
    assert!(!ok && stderr.contains("source-vocab.json"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_settings_are_refused_before_any_work() {
    for (args, message) in [
        (
            &["--hidden", "0"][..],
            "'--hidden <HIDDEN>': must be at least 1, got 0",
        ),
        (
            &["--beam", "0"],
            "'--beam <BEAM>': must be at least 1, got 0",
        ),
        (
            &["--min-len", "9", "--max-len", "3"],
            "--min-len (9) must not exceed --max-len (3)",
        ),
        (&["--task", "poetry"], "unknown task \"poetry\""),
        (&["--attention", "global"], "unknown attention \"global\""),
        (&["--train", "1"], "--train needs at least 2 examples"),
        (&["--test-len", "0"], "--test-len must be at least 1"),
        (
            &["--min-len", "1", "--max-len", "2"],
            "100 distinct test items of length 2..=2 and 10 training items",
        ),
        (
            &["--task", "date", "--train", "40000"],
            "36525 distinct test items",
        ),
        (
            &["--length-penalty=-1"],
            "--length-penalty must be a finite number >= 0",
        ),
        (
            &["--lr-schedule", "step"],
            "unknown learning-rate schedule \"step\"",
        ),
        (
            &["--lr-schedule", "cosine", "--lr-final", "0.01"],
            "--lr-final (0.01) must lie between 0 and --lr (0.002)",
        ),
    ] {
        let (ok, _, stderr) = run(args);
        assert!(!ok && stderr.contains(message), "{args:?}: {stderr}");
    }
}
