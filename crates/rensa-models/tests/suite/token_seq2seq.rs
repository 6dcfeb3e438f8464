//! The token seq2seq model: every attention variant learns a small reversal task, padding does
//! not change a sequence's result, a beam of width 1 is greedy decoding, and settings that
//! cannot work are refused.

use burn::backend::{Autodiff, NdArray};
use burn::module::AutodiffModule;
use burn::optim::AdamConfig;
use rensa_data::tasks::{Task, split};
use rensa_data::tokens::PairBatch;
use rensa_data::vocab::Vocabulary;
use rensa_models::seq2seq::token::{Attend, TokenSeq2SeqConfig};
use rensa_nn::recurrent::{GruConfig, LstmConfig};
use rensa_train::FitConfig;

type B = Autodiff<NdArray>;

/// Source and target token ids.
type Pairs = Vec<(Vec<usize>, Vec<usize>)>;

/// Reversal of 2-5 digits as id pairs, and the vocabulary (digits only).
fn reverse_task(n: usize) -> (Vocabulary, Pairs) {
    let (train, _) = split(Task::Reverse, n, 2..=5, 0, 1..=1, 3);
    let vocab = Vocabulary::from_chars(["0123456789"]);
    let pairs = train
        .iter()
        .map(|e| {
            let ids = |s: &str| vocab.encode_chars(s).ids;
            (ids(&e.source), ids(&e.target))
        })
        .collect();
    (vocab, pairs)
}

#[test]
fn every_attention_learns_to_reverse_short_strings() {
    let _rng = rensa_testkit::rng_lock();
    let device = Default::default();
    let (vocab, pairs) = reverse_task(1200);
    for attend in Attend::ALL {
        <B as burn::tensor::backend::Backend>::seed(&device, 1);
        let model = TokenSeq2SeqConfig::new(vocab.len(), vocab.len())
            .with_embedding_size(16)
            .with_hidden_size(48)
            .with_attention(attend)
            .init::<B, GruConfig>(&device)
            .unwrap();
        let config = FitConfig::for_epochs(8, 32)
            .with_validation_split(0.1)
            .with_learning_rate(0.01);
        let (model, history) =
            crate::train(model, config, AdamConfig::new(), &pairs, PairBatch::of);
        let first = &history.epochs[0];
        let last = history.last().unwrap();
        let val_acc = last.metrics["val_token_accuracy"];
        eprintln!(
            "{}: loss {:.3} -> {:.3}, val token accuracy {val_acc:.3}",
            attend.name(),
            first.loss,
            last.loss
        );
        assert!(
            last.loss < first.loss / 2.0,
            "{}: {history:?}",
            attend.name()
        );
        let bar = if attend == Attend::None { 0.5 } else { 0.9 };
        assert!(
            val_acc > bar,
            "{}: val token accuracy {val_acc}",
            attend.name()
        );
        if attend != Attend::None {
            // greedy decoding of held-in examples
            let model = model.valid();
            let sources: Vec<Vec<usize>> = pairs[..20].iter().map(|p| p.0.clone()).collect();
            let decoded = model.greedy(&sources, 8);
            let right = decoded
                .iter()
                .zip(&pairs[..20])
                .filter(|(d, p)| d.tokens == p.1)
                .count();
            assert!(right >= 14, "{}: {right}/20 exact", attend.name());
            // a beam finds outputs at least as probable as greedy decoding's on these: it must
            // not stop on improbable early ends while the likely output is still growing
            let mut as_good = 0;
            for (source, g) in sources.iter().zip(&decoded) {
                let best = &model.beam(source, 4, 8, 0.0)[0];
                as_good += usize::from(best.log_prob >= g.log_prob - 1e-4);
            }
            assert!(
                as_good >= 19,
                "{}: beam >= greedy on {as_good}/20",
                attend.name()
            );
            assert!(decoded[0].alignment.len() > pairs[0].1.len());
        }
    }
}

/// Training through a cross-entropy loss is bit-reproducible on ndarray (burn-ndarray's `recip`,
/// on which log-softmax's gradient rests, is patched to be exact: patches/README.md), so a run
/// stopped after two epochs and resumed from its checkpoint ends with the same weights, bit for
/// bit, as one that ran its four epochs straight through.
#[test]
fn a_resumed_cross_entropy_run_ends_with_the_same_weights() {
    use rensa_train::{Checkpoints, Fit, Items};
    let _rng = rensa_testkit::rng_lock();
    let device = Default::default();
    let (vocab, pairs) = reverse_task(240);
    let config = FitConfig::for_epochs(4, 32)
        .with_validation_split(0.1)
        .with_learning_rate(0.01)
        .with_seed(5);
    let run = |config: FitConfig, dir: &std::path::Path, resume: bool| {
        <B as burn::tensor::backend::Backend>::seed(&device, 4);
        let model = TokenSeq2SeqConfig::new(vocab.len(), vocab.len())
            .with_embedding_size(8)
            .with_hidden_size(16)
            .with_attention(Attend::Bahdanau)
            .init::<B, GruConfig>(&device)
            .unwrap();
        let (model, history) = Fit::new(config)
            .checkpoints(Checkpoints::new(dir, 1).resuming(resume))
            .run(
                model,
                &mut AdamConfig::new().init(),
                Items::new(&pairs, PairBatch::of),
                &device,
            )
            .unwrap();
        (rensa_testkit::parameters(&model), history)
    };
    let dir = |name: &str| {
        let dir =
            std::env::temp_dir().join(format!("rensa-token-resume-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    };
    let (straight_dir, resumed_dir) = (dir("straight"), dir("resumed"));
    let (straight, straight_history) = run(config.clone(), &straight_dir, false);
    run(config.clone().with_epochs(2), &resumed_dir, false);
    let (resumed, resumed_history) = run(config, &resumed_dir, true);
    assert_eq!(resumed_history.epochs.len(), 4);
    assert_eq!(resumed_history.step_losses, straight_history.step_losses);
    assert!(!straight.is_empty());
    let bits = |w: &[f64]| w.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert!(
        bits(&resumed) == bits(&straight),
        "the resumed run's weights differ"
    );
    let _ = std::fs::remove_dir_all(&straight_dir);
    let _ = std::fs::remove_dir_all(&resumed_dir);
}

#[test]
fn padding_beam_width_one_and_bad_settings() {
    let _rng = rensa_testkit::rng_lock();
    let device = Default::default();
    <NdArray as burn::tensor::backend::Backend>::seed(&device, 2);
    let model = TokenSeq2SeqConfig::new(12, 12)
        .with_attention(Attend::LuongGeneral)
        .with_bidirectional(true)
        .with_num_layers(2)
        .init::<NdArray, LstmConfig>(&device)
        .unwrap();
    let (short, long) = (vec![4, 5], vec![6, 7, 8, 9, 10]);
    let together = model.greedy(&[short.clone(), long.clone()], 6);
    let alone = model.greedy(std::slice::from_ref(&short), 6);
    assert_eq!(together[0].tokens, alone[0].tokens);
    assert!((together[0].log_prob - alone[0].log_prob).abs() < 1e-4);
    // the short source's alignment puts no weight on padding
    assert!(
        together[0]
            .alignment
            .iter()
            .all(|w| w[2..].iter().all(|&x| x == 0.0))
    );
    let beam = model.beam(&long, 1, 6, 0.0);
    let greedy = model.greedy(std::slice::from_ref(&long), 6);
    assert_eq!(beam[0].tokens, greedy[0].tokens);
    let wide = model.beam(&long, 4, 6, 0.6);
    assert!(!wide.is_empty() && wide.len() <= 4);

    let err = TokenSeq2SeqConfig::new(12, 12)
        .with_attention(Attend::LuongDot)
        .with_bidirectional(true)
        .init::<NdArray, GruConfig>(&device)
        .unwrap_err()
        .to_string();
    assert!(err.contains("key_size"), "{err}");
    let err = TokenSeq2SeqConfig::new(3, 12)
        .init::<NdArray, GruConfig>(&device)
        .unwrap_err()
        .to_string();
    assert!(err.contains("source_vocab"), "{err}");
}

/// Without input feeding, teacher-forced training runs the decoder over the whole target in one
/// call and attends with every step at once: the same logits as stepping the decoder.
#[test]
fn the_parallel_luong_path_equals_stepping() {
    let _rng = rensa_testkit::rng_lock(); // `init` draws the weights
    let device = Default::default();
    let model = TokenSeq2SeqConfig::new(12, 12)
        .with_attention(Attend::LuongConcat)
        .with_input_feeding(false)
        .init::<NdArray, GruConfig>(&device)
        .unwrap();
    let batch = PairBatch::new(&[(&[4, 5, 6][..], &[7, 8][..]), (&[9][..], &[10, 11, 4][..])]);
    let parallel = model.forward(&batch, None);
    let (source, decoder_input, _) = batch.tensors::<NdArray>(&device);
    let encoded = model.encode(source, &batch.source_lengths);
    let inputs = model.target_embedding.forward(decoder_input);
    let [b, t, e] = inputs.dims();
    let mut state = encoded.state;
    let mut steps = Vec::new();
    for k in 0..t {
        let x = inputs.clone().narrow(1, k, 1).reshape([b, e]);
        let (logits, next, _) = model.decode_step(x, state, encoded.memory.as_ref());
        state = next;
        steps.push(logits);
    }
    let stepped = burn::tensor::Tensor::stack(steps, 1);
    rensa_testkit::assert_close(parallel, stepped, rensa_testkit::Tolerance::F32, "logits");
}
