//! word2vec: training on a corpus with known structure, reproducibility, and the file formats
//! against files gensim wrote (assets/golden/word2vec, with their script) and against corrupt
//! and truncated input.

use std::path::{Path, PathBuf};

use rensa_data::rng::SplitMix64;
use rensa_data::text::corpus::Corpus;
use rensa_models::word2vec::format::{Format, read_from};
use rensa_models::word2vec::{Architecture, Embeddings, Loss, Word2Vec, Word2VecConfig};

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../assets/golden/word2vec")
        .join(name)
}

/// A corpus of 4 topics of 8 words each: every sentence draws its words from one topic, with
/// the function words "the" and "of" between them.
fn topic_corpus(dir: &Path) -> PathBuf {
    let mut rng = SplitMix64::new(5);
    let mut text = String::new();
    for _ in 0..1500 {
        let topic = rng.below(4);
        for k in 0..16 {
            if k % 4 == 3 {
                text.push_str(if rng.below(2) == 0 { "the " } else { "of " });
            } else {
                text.push_str(&format!("t{topic}w{} ", rng.below(8)));
            }
        }
        text.push('\n');
    }
    let path = dir.join("topics.txt");
    std::fs::write(&path, text).unwrap();
    path
}

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rensa-w2v-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Mean cosine of word pairs within a topic minus across topics.
fn topic_margin(e: &Embeddings) -> f32 {
    let (mut within, mut across, mut nw, mut na) = (0.0, 0.0, 0, 0);
    for t1 in 0..4 {
        for t2 in 0..4 {
            for a in 0..8 {
                for b in 0..8 {
                    if t1 == t2 && a == b {
                        continue;
                    }
                    let s = e
                        .similarity(&format!("t{t1}w{a}"), &format!("t{t2}w{b}"))
                        .unwrap();
                    if t1 == t2 {
                        within += s;
                        nw += 1;
                    } else {
                        across += s;
                        na += 1;
                    }
                }
            }
        }
    }
    within / nw as f32 - across / na as f32
}

fn small(architecture: Architecture, loss: Loss) -> Word2VecConfig {
    Word2VecConfig {
        architecture,
        loss,
        dims: 16,
        min_count: 1,
        sample: 0.0,
        epochs: 4,
        alpha: 0.05,
        seed: 3,
        compute_loss: true,
        ..Word2VecConfig::default()
    }
}

#[test]
fn every_architecture_and_loss_learns_the_topics() {
    let dir = tempdir("topics");
    let corpus = Corpus::new(topic_corpus(&dir));
    for architecture in [Architecture::Cbow, Architecture::SkipGram] {
        for loss in [Loss::NegativeSampling, Loss::HierarchicalSoftmax] {
            let config = small(architecture, loss);
            let mut reports = 0;
            let (model, report) = Word2Vec::train(&config, &corpus, &mut |p| {
                assert!(p.alpha <= config.alpha && p.alpha >= config.min_alpha);
                reports += 1;
            })
            .unwrap();
            assert_eq!(model.vocab().len(), 34);
            assert_eq!(report.words, 4 * 24_000);
            assert!(
                reports >= 4 * 2,
                "a report per job of 10,000 words: {reports}"
            );
            let margin = topic_margin(&model.embeddings().unwrap());
            assert!(margin > 0.1, "{architecture:?} {loss:?}: margin {margin}");
            // the loss falls from ln 2 per prediction (zero output weights) at the start
            let l = &report.losses;
            let tenth = (l.len() / 10).max(1);
            let last = l[l.len() - tenth..].iter().map(|x| x.1).sum::<f64>() / tenth as f64;
            assert!(
                last < 0.9 * std::f64::consts::LN_2,
                "{architecture:?} {loss:?}: loss {last}"
            );
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn one_thread_is_reproducible_and_two_threads_train_too() {
    let dir = tempdir("repro");
    let corpus = Corpus::new(topic_corpus(&dir));
    let config = Word2VecConfig {
        sample: 1e-3,
        ..small(Architecture::SkipGram, Loss::NegativeSampling)
    };
    let run = |c: &Word2VecConfig| Word2Vec::train(c, &corpus, &mut |_| {}).unwrap();
    let (a, ra) = run(&config);
    let (b, _) = run(&config);
    assert_eq!(
        a.input(),
        b.input(),
        "same seed, one thread: the same vectors"
    );
    assert!(
        ra.effective_words < ra.words,
        "subsampling drops frequent words"
    );
    let (c, _) = run(&Word2VecConfig {
        seed: 4,
        ..config.clone()
    });
    assert_ne!(a.input(), c.input());
    let (d, rd) = run(&Word2VecConfig {
        threads: 2,
        ..config.clone()
    });
    assert_eq!(rd.words, ra.words);
    // two workers: the result depends on the scheduling (the order of the merges), so the bar
    // is the other tests' one; the rows they share without own copies are tested below
    assert!(topic_margin(&d.embeddings().unwrap()) > 0.1);
    // every row of so small a vocabulary is in each worker's own copy (the first rows; the last
    // ones of the output matrix with hierarchical softmax), usually merged only at the end
    // (96,000 words over three workers): three workers, each of the models, learn the topics as
    // one does
    for (architecture, loss) in [
        (Architecture::Cbow, Loss::NegativeSampling),
        (Architecture::SkipGram, Loss::HierarchicalSoftmax),
    ] {
        let (e, re) = run(&Word2VecConfig {
            threads: 3,
            ..small(architecture, loss)
        });
        assert_eq!(re.words, 4 * 24_000);
        let margin = topic_margin(&e.embeddings().unwrap());
        assert!(
            margin > 0.1,
            "{architecture:?} {loss:?}, 3 workers: {margin}"
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// Several workers through the shared rows, with no own copies at all, with a few own rows
/// merged often, and with own rows of which only some are hot (the others merged a slice at a
/// time), learn what one worker learns (all 34 words of the topic corpus fit in the default own
/// copies, so the test above never races on a shared row). Skip-gram with negative sampling,
/// and CBOW with hierarchical softmax (whose own rows are the output matrix's last).
#[test]
fn workers_sharing_the_rows_learn_the_topics() {
    let dir = tempdir("shared");
    let corpus = Corpus::new(topic_corpus(&dir));
    for (architecture, loss) in [
        (Architecture::SkipGram, Loss::NegativeSampling),
        (Architecture::Cbow, Loss::HierarchicalSoftmax),
    ] {
        let row = 16 * 4;
        for (threads, own_rows_bytes, hot_rows_bytes, merge_words, own_merge_words) in [
            (2, 0, 0, 40_000, 1_000_000),
            (3, 4 * row, 4 * row, 1_000, 1_000_000),
            (2, 20 * row, 3 * row, 1_000, 5_000),
        ] {
            let config = Word2VecConfig {
                threads,
                own_rows_bytes,
                hot_rows_bytes,
                merge_words,
                own_merge_words,
                ..small(architecture, loss)
            };
            let (e, report) = Word2Vec::train(&config, &corpus, &mut |_| {}).unwrap();
            assert_eq!(report.words, 4 * 24_000);
            let margin = topic_margin(&e.embeddings().unwrap());
            assert!(
                margin > 0.1,
                "{architecture:?} {loss:?}, {threads} workers, own {own_rows_bytes} bytes (hot \
                 {hot_rows_bytes}), merged every {merge_words} (others {own_merge_words}) words: \
                 margin {margin}"
            );
        }
    }
    for (config, field) in [
        (
            Word2VecConfig {
                merge_words: 0,
                ..Default::default()
            },
            "`merge_words`",
        ),
        (
            Word2VecConfig {
                own_merge_words: 0,
                ..Default::default()
            },
            "`own_merge_words`",
        ),
    ] {
        let err = Word2Vec::train(&config, &corpus, &mut |_| {})
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(err.contains(field), "{err}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// A panic while training (here in the progress callback, which runs on the calling thread)
/// reaches the caller: the corpus reader and the workers stop instead of waiting for one another
/// for ever.
#[test]
fn a_panic_while_training_stops_every_thread() {
    let dir = tempdir("panic");
    let path = topic_corpus(&dir);
    for threads in [1, 2, 3] {
        let config = Word2VecConfig {
            threads,
            ..small(Architecture::Cbow, Loss::NegativeSampling)
        };
        let path = path.clone();
        let (alive, ended) = std::sync::mpsc::channel::<()>();
        let run = std::thread::spawn(move || {
            let _alive = alive;
            let corpus = Corpus::new(path);
            let _ = Word2Vec::train(&config, &corpus, &mut |_| panic!("a failing callback"));
        });
        assert_eq!(
            ended.recv_timeout(std::time::Duration::from_secs(120)),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected),
            "{threads} worker(s): the run ended"
        );
        assert!(
            run.join().is_err(),
            "{threads} worker(s): the panic came through"
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bad_configurations_and_corpora_are_errors() {
    let dir = tempdir("bad");
    let corpus = Corpus::new(topic_corpus(&dir));
    let train = |c: Word2VecConfig| {
        Word2Vec::train(&c, &corpus, &mut |_| {})
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };
    assert!(
        train(Word2VecConfig {
            dims: 0,
            ..Default::default()
        })
        .contains("`dims`")
    );
    assert!(
        train(Word2VecConfig {
            dims: (1 << 20) + 1,
            ..Default::default()
        })
        .contains("at most 2^20")
    );
    assert!(
        train(Word2VecConfig {
            negative: 0,
            ..Default::default()
        })
        .contains("`negative`")
    );
    assert!(
        train(Word2VecConfig {
            min_alpha: 1.0,
            ..Default::default()
        })
        .contains("`min_alpha`")
    );
    // sizes whose index arithmetic or buffers would overflow are refused up front
    for (config, field) in [
        (
            Word2VecConfig {
                window: usize::MAX,
                ..Default::default()
            },
            "`window`",
        ),
        (
            Word2VecConfig {
                negative: 1_001,
                ..Default::default()
            },
            "`negative`",
        ),
        (
            Word2VecConfig {
                threads: usize::MAX,
                ..Default::default()
            },
            "`threads`",
        ),
    ] {
        assert!(train(config).contains(field), "{field}");
    }
    assert!(
        train(Word2VecConfig {
            min_count: 1_000_000,
            ..Default::default()
        })
        .contains("no word occurs")
    );
    let missing = Corpus::new(dir.join("absent.txt"));
    let e = Word2Vec::train(&Word2VecConfig::default(), &missing, &mut |_| {})
        .map(|_| ())
        .unwrap_err();
    assert!(e.to_string().contains("absent.txt"), "{e}");
    std::fs::remove_dir_all(dir).unwrap();
}

/// The vectors gensim wrote, as gensim reads them back (gensim.json).
fn gensim_vectors() -> (Vec<String>, Vec<f32>) {
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(golden("gensim.json")).unwrap()).unwrap();
    let words = json["words"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap().to_string())
        .collect();
    let values = json["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
        })
        .collect();
    (words, values)
}

#[test]
fn files_gensim_wrote_read_exactly() {
    let (words, values) = gensim_vectors();
    for (file, format) in [("gensim.txt", Format::Text), ("gensim.bin", Format::Binary)] {
        let e = Embeddings::read(&golden(file), format, None).unwrap();
        assert_eq!(e.words(), words.as_slice(), "{file}");
        assert_eq!(e.vectors(), values.as_slice(), "{file}");
        let first = Embeddings::read(&golden(file), format, Some(2)).unwrap();
        assert_eq!(first.words(), &words[..2]);
    }
}

#[test]
fn rensa_writes_the_files_gensim_was_checked_to_read() {
    // assets/golden/word2vec/gensim_fixture.py loaded rensa.txt and rensa.bin with gensim; what
    // rensa writes today must still be those bytes. RENSA_WRITE_FIXTURE=1 rewrites them instead
    // (then run the script again to check them with gensim).
    let (words, values) = gensim_vectors();
    let e = Embeddings::new(words, 5, values).unwrap();
    let rewrite = std::env::var_os("RENSA_WRITE_FIXTURE").is_some();
    for (file, format) in [("rensa.txt", Format::Text), ("rensa.bin", Format::Binary)] {
        if rewrite {
            e.write(&golden(file), format).unwrap();
        }
        let mut bytes = Vec::new();
        e.write_to(&mut bytes, format).unwrap();
        assert_eq!(bytes, std::fs::read(golden(file)).unwrap(), "{file}");
        let back = read_from(
            bytes.as_slice(),
            format,
            None,
            ("memory", Some(bytes.len() as u64)),
        )
        .unwrap();
        assert_eq!(back.vectors(), e.vectors());
    }
}

fn read_bytes(bytes: &[u8], format: Format) -> Result<Embeddings, String> {
    read_from(bytes, format, None, ("crafted", Some(bytes.len() as u64))).map_err(|e| e.to_string())
}

#[test]
fn every_truncation_is_an_error_never_a_panic() {
    for (file, format) in [("gensim.txt", Format::Text), ("gensim.bin", Format::Binary)] {
        let bytes = std::fs::read(golden(file)).unwrap();
        assert!(read_bytes(&bytes, format).is_ok());
        for cut in 0..bytes.len() {
            let part = &bytes[..cut];
            // a binary file without its final newline is still whole (gensim writes none); a text
            // row must end in one
            let whole = format == Format::Binary && cut == bytes.len() - 1 && bytes[cut] == b'\n';
            match read_bytes(part, format) {
                Ok(_) => assert!(whole, "{file} cut at {cut} of {} read", bytes.len()),
                Err(e) => assert!(!whole, "{file} cut at {cut}: {e}"),
            }
            // the same without the length known up front (a stream)
            let streamed = read_from(part, format, None, ("stream", None));
            assert_eq!(streamed.is_ok(), whole, "{file} streamed, cut at {cut}");
        }
    }
}

#[test]
fn crafted_files_are_refused_with_the_reason() {
    let text = std::fs::read_to_string(golden("gensim.txt")).unwrap();
    let body = text.split_once('\n').unwrap().1;
    let cases: Vec<(String, &str)> = vec![
        (format!("7 x\n{body}"), "header"),
        (format!("7\n{body}"), "header"),
        (format!("7 0\n{body}"), "header"),
        (format!("9 5\n{body}"), "truncated"),
        (format!("7 6\n{body}"), "values, the header says 6"),
        (format!("7 4\n{body}"), "values, the header says 4"),
        (format!("6 5\n{body}"), "more data"),
        (format!("99999999999999 5\n{body}"), "truncated"),
        (
            format!("7 18446744073709551615\n{body}"),
            "dimensions, more than",
        ),
        (
            text.replacen("2.475414", "2.47x", 1),
            "\"2.47x\" is not a number",
        ),
        (text.replacen("2.475414", "NaN", 1), "non-finite"),
        (text.replacen("queen", "king", 1), "occurs twice"),
    ];
    for (crafted, reason) in cases {
        let e = read_bytes(crafted.as_bytes(), Format::Text).unwrap_err();
        assert!(e.contains(reason), "{reason:?} not in {e:?}");
    }
    let mut bad_utf8 = text.clone().into_bytes();
    let at = text.find("king").unwrap();
    bad_utf8[at] = 0xff;
    assert!(
        read_bytes(&bad_utf8, Format::Text)
            .unwrap_err()
            .contains("line 3: not UTF-8")
    );
    let mut bin = std::fs::read(golden("gensim.bin")).unwrap();
    let at = bin.windows(4).position(|w| w == b"king").unwrap();
    bin[at] = 0xff;
    let e = read_bytes(&bin, Format::Binary).unwrap_err();
    assert!(e.contains("record 2: the word is not UTF-8"), "{e}");
    // a header whose rows would fit the bytes (none, or read as a stream) but whose dimension is
    // absurd: refused before the one row buffer is allocated
    for header in [
        "0 1099511627776\n",
        "1 1099511627776\n",
        "0 4611686018427387904\n",
    ] {
        for format in [Format::Text, Format::Binary] {
            let whole = read_bytes(header.as_bytes(), format).unwrap_err();
            let streamed = read_from(header.as_bytes(), format, None, ("stream", None))
                .unwrap_err()
                .to_string();
            for e in [whole, streamed] {
                assert!(e.contains("dimensions, more than"), "{header:?}: {e}");
            }
        }
    }
    // a text row that goes on without a newline is refused at its length, not read whole
    let endless = format!("1 5\nw {}", "1".repeat(70_000 + 5 * 65));
    for e in [
        read_bytes(endless.as_bytes(), Format::Text).unwrap_err(),
        read_from(endless.as_bytes(), Format::Text, None, ("stream", None))
            .unwrap_err()
            .to_string(),
    ] {
        assert!(e.contains("line 2 is longer than"), "{e}");
    }
    let no_space = format!("1 5\n{}", "a".repeat(70_000));
    assert!(
        read_bytes(no_space.as_bytes(), Format::Binary)
            .unwrap_err()
            .contains("no space")
    );
}

#[test]
fn writing_is_atomic_and_round_trips() {
    let dir = tempdir("write");
    let (words, values) = gensim_vectors();
    let e = Embeddings::new(words, 5, values).unwrap();
    for (name, format) in [("v.txt", Format::Text), ("v.bin", Format::Binary)] {
        let path = dir.join(name);
        std::fs::write(&path, b"old").unwrap();
        e.write(&path, format).unwrap();
        assert_eq!(Format::from_path(&path), format);
        let back = Embeddings::read(&path, format, None).unwrap();
        assert_eq!(back.vectors(), e.vectors());
        // nothing is left beside the file
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert!(
            names.iter().all(|n| !n.to_string_lossy().ends_with(".tmp")),
            "{names:?}"
        );
    }
    let e = e
        .write(&dir.join("no/such/dir/v.txt"), Format::Text)
        .unwrap_err();
    assert!(e.to_string().contains("no/such/dir"), "{e}");
    std::fs::remove_dir_all(dir).unwrap();
}

/// A pipe has no length to check the header against: it is read to its end like a stream
/// (`<(zcat vectors.txt.gz)`), and a short one is still refused.
#[cfg(unix)]
#[test]
fn vectors_are_read_from_a_pipe() {
    let dir = tempdir("pipe");
    let (words, values) = gensim_vectors();
    let e = Embeddings::new(words, 5, values).unwrap();
    for (name, format) in [("v.txt", Format::Text), ("v.bin", Format::Binary)] {
        let path = dir.join(name);
        e.write(&path, format).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        // short: without its last row (text), or cut inside a record (binary)
        let short = bytes[..bytes.len() - 1]
            .iter()
            .rposition(|&b| b == b'\n')
            .unwrap()
            + 1;
        for (cut, whole) in [(bytes.len(), true), (short, false)] {
            let fifo = dir.join(format!("fifo-{name}-{cut}"));
            let made = std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .expect("mkfifo");
            assert!(made.success());
            let writer = {
                let (fifo, bytes) = (fifo.clone(), bytes[..cut].to_vec());
                std::thread::spawn(move || {
                    use std::io::Write;
                    // the reader may stop early on an error: a broken pipe is fine
                    let _ = std::fs::OpenOptions::new()
                        .write(true)
                        .open(&fifo)
                        .and_then(|mut f| f.write_all(&bytes));
                })
            };
            let read = Embeddings::read(&fifo, format, None);
            writer.join().unwrap();
            if whole {
                assert_eq!(read.unwrap().vectors(), e.vectors(), "{name}");
            } else {
                assert!(read.is_err(), "{name} cut at {cut}");
            }
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// The batched trainer learns the topics with both architectures on `device`.
fn tensor_trainer_learns_the_topics<B: burn::tensor::backend::Backend>(
    device: &B::Device,
    name: &str,
) {
    let dir = tempdir(name);
    let corpus = Corpus::new(topic_corpus(&dir));
    for architecture in [Architecture::Cbow, Architecture::SkipGram] {
        let config = small(architecture, Loss::NegativeSampling);
        let counts = rensa_data::text::words::WordCounts::scan(&corpus).unwrap();
        let vocab = rensa_data::text::words::WordVocab::build(&counts, 1, None).unwrap();
        let mut model = Word2Vec::new(config, vocab).unwrap();
        // small batches: with 34 words, a word occurs in most predictions of a large one and the
        // summed updates overshoot
        let report = model
            .fit_tensor::<B>(&corpus, device, 16, &mut |_| {})
            .unwrap();
        assert_eq!(report.words, 4 * 24_000);
        let margin = topic_margin(&model.embeddings().unwrap());
        assert!(margin > 0.1, "{name} {architecture:?}: margin {margin}");
        let last = report.losses.last().unwrap().1;
        assert!(
            last < 0.9 * std::f64::consts::LN_2,
            "{name} {architecture:?}: loss {last}"
        );
    }
    let hs = small(Architecture::SkipGram, Loss::HierarchicalSoftmax);
    let counts = rensa_data::text::words::WordCounts::scan(&corpus).unwrap();
    let vocab = rensa_data::text::words::WordVocab::build(&counts, 1, None).unwrap();
    let e = Word2Vec::new(hs, vocab)
        .unwrap()
        .fit_tensor::<B>(&corpus, device, 256, &mut |_| {});
    assert!(
        e.unwrap_err()
            .to_string()
            .contains("hierarchical softmax trains on the CPU")
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_tensor_trainer_learns_the_topics_on_ndarray() {
    tensor_trainer_learns_the_topics::<rensa_testkit::TestBackend>(
        &Default::default(),
        "tensor-ndarray",
    );
}

#[test]
fn the_tensor_trainer_on_wgpu_equals_it_on_ndarray() {
    let Some(device) = rensa_testkit::wgpu_device_or_skip() else {
        return;
    };
    let dir = tempdir("tensor-parity");
    let full = std::fs::read_to_string(topic_corpus(&dir)).unwrap();
    let path = dir.join("short.txt");
    std::fs::write(&path, full.lines().take(200).collect::<Vec<_>>().join("\n")).unwrap();
    let corpus = Corpus::new(path);
    for architecture in [Architecture::Cbow, Architecture::SkipGram] {
        let config = Word2VecConfig {
            epochs: 1,
            ..small(architecture, Loss::NegativeSampling)
        };
        let counts = rensa_data::text::words::WordCounts::scan(&corpus).unwrap();
        let vocab = rensa_data::text::words::WordVocab::build(&counts, 1, None).unwrap();
        let model = Word2Vec::new(config, vocab).unwrap();
        let (mut a, mut b) = (model.clone(), model);
        a.fit_tensor::<rensa_testkit::TestBackend>(&corpus, &Default::default(), 64, &mut |_| {})
            .unwrap();
        b.fit_tensor::<rensa_testkit::WgpuBackend>(&corpus, &device, 64, &mut |_| {})
            .unwrap();
        assert_ne!(
            a.input(),
            Word2Vec::new(a.config().clone(), a.vocab().clone())
                .unwrap()
                .input()
        );
        for (x, y) in a
            .input()
            .iter()
            .zip(b.input())
            .chain(a.output().iter().zip(b.output()))
        {
            assert!((x - y).abs() < 1e-5, "{architecture:?}: {x} vs {y}");
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}
