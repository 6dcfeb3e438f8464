//! Bad command lines fail with a clear message and a non-zero exit, writing nothing.

fn run(args: &[&str]) -> (bool, String) {
    let (ok, _, stderr) = rensa_launch::run_program(env!("CARGO_BIN_EXE_binary-addition"), args);
    (ok, stderr)
}

fn fails_with(args: &[&str], message: &str) {
    // one folder per call: the tests calling this run in parallel
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("rensa-ba-cli-{}-{call}", std::process::id()));
    let dir_arg = dir.to_str().unwrap().to_string();
    let mut all = args.to_vec();
    all.extend(["--out", &dir_arg, "--quiet"]);
    let (ok, stderr) = run(&all);
    assert!(!ok, "{args:?} should fail");
    assert!(
        stderr.contains(message),
        "{args:?}: expected an error mentioning {message:?}, got:\n{stderr}"
    );
    assert!(!dir.join("loss.png").exists(), "{args:?} wrote a result");
    // a run refused midway (an exploding loss) has made its folder
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_settings_are_refused_before_any_work() {
    fails_with(&["--lr", "0"], "--lr must be a finite number > 0, got 0");
    fails_with(&["--lr", "-0.1"], "--lr must be a finite number > 0");
    fails_with(
        &["--lr", "NaN"],
        "--lr must be a finite number > 0, got NaN",
    );
    fails_with(
        &["--iters", "0"],
        "'--iters <ITERS>': must be at least 1, got 0",
    );
    fails_with(
        &["--batch", "0"],
        "'--batch <BATCH>': must be at least 1, got 0",
    );
    fails_with(
        &["--hidden", "0"],
        "'--hidden <HIDDEN>': must be at least 1, got 0",
    );
    fails_with(&["--threads", "0"], "threads");
    fails_with(
        &["--trainer", "autodiff", "--course-derivative"],
        "--course-derivative",
    );
    fails_with(&["--activation", "softplus"], "invalid value 'softplus'");
}

#[test]
fn an_exploding_loss_stops_with_an_error() {
    fails_with(
        &[
            "--activation",
            "relu",
            "--init",
            "normal",
            "--lr",
            "1e30",
            "--iters",
            "300",
        ],
        "the loss became",
    );
}

#[test]
fn an_output_folder_that_cannot_be_created_is_an_error() {
    let file = std::env::temp_dir().join(format!("rensa-ba-file-{}", std::process::id()));
    std::fs::write(&file, b"not a folder").unwrap();
    let out = file.join("run");
    let (ok, stderr) = run(&["--iters", "10", "--quiet", "--out", out.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        stderr.contains("cannot create the output folder"),
        "{stderr}"
    );
    std::fs::remove_file(file).unwrap();
}

#[test]
fn a_short_run_writes_its_loss_curve() {
    let dir = std::env::temp_dir().join(format!("rensa-ba-ok-{}", std::process::id()));
    let (ok, stderr) = run(&[
        "--iters",
        "300",
        "--batch",
        "4",
        "--quiet",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    let csv = std::fs::read_to_string(dir.join("loss.csv")).unwrap();
    assert_eq!(
        csv.lines().count(),
        4,
        "header + 3 points of 100 steps:\n{csv}"
    );
    assert!(dir.join("loss.png").metadata().unwrap().len() > 1000);
    std::fs::remove_dir_all(dir).unwrap();
}
