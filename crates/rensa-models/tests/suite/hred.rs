//! HRED and VHRED: the step-by-step decoder agrees with the teacher-forced pass, padding and
//! batching do not change a dialogue's score, HRED learns to recall a fact two turns back,
//! VHRED's losses are what its definition says, its importance-sampled likelihood is tighter
//! than its bound, and bad contexts and settings are refused.

use burn::backend::{Autodiff, NdArray};
use burn::module::Param;
use burn::optim::AdamConfig;
use burn::tensor::Tensor;
use rensa_data::SplitMix64;
use rensa_data::dialogue::generated::{self, floor_perplexity};
use rensa_data::dialogue::{Dialogue, DialogueBatch};
use rensa_data::vocab::EOS;
use rensa_models::hred::{ContextError, Hred, HredConfig};
use rensa_models::vhred::{AnnealCurve, LatentConfig};
use rensa_nn::latent::active_units;
use rensa_nn::recurrent::{GruCell, GruConfig, LstmConfig};
use rensa_train::{FitConfig, Objective, StepInfo};

type B = NdArray;

fn small(vocab: usize) -> HredConfig {
    HredConfig::new(vocab)
        .with_embedding_size(12)
        .with_utterance_hidden(10)
        .with_context_hidden(14)
        .with_decoder_hidden(16)
}

fn encoded(dialogues: &[Dialogue]) -> Vec<Vec<Vec<usize>>> {
    let vocab = generated::vocabulary();
    dialogues.iter().map(|d| d.encode(&vocab)).collect()
}

/// `count` generated dialogues (`fillers` filler turns each, from `seed`), encoded, and their batch.
fn generated_batch(
    count: usize,
    fillers: std::ops::RangeInclusive<usize>,
    seed: u64,
) -> (Vec<Vec<Vec<usize>>>, DialogueBatch) {
    let dialogues = encoded(
        &generated::generate(count, fillers, seed)
            .into_iter()
            .map(|g| g.dialogue)
            .collect::<Vec<_>>(),
    );
    let refs: Vec<&Vec<Vec<usize>>> = dialogues.iter().collect();
    let batch = DialogueBatch::of(&refs);
    (dialogues, batch)
}

/// Every response score of dialogue `a` alone, and in a batch beside a longer dialogue `b`.
fn scores_alone_and_together(
    model: &Hred<B, GruCell<B>>,
    a: &[Vec<usize>],
    b: &[Vec<usize>],
) -> Vec<(f64, f64)> {
    let alone = model.score(&DialogueBatch::new(&[a]));
    let together = model.score(&DialogueBatch::new(&[b, a]));
    let of = |s: &[rensa_models::hred::ResponseScore], d, turn| {
        s.iter()
            .find(|x| x.dialogue == d && x.turn == turn)
            .unwrap()
            .nll
    };
    (1..a.len())
        .map(|turn| (of(&alone, 0, turn), of(&together, 1, turn)))
        .collect()
}

#[test]
fn padding_and_batching_do_not_change_a_score() {
    let _rng = rensa_testkit::rng_lock();
    let device = Default::default();
    // three turns beside five: the short dialogue's last two turns are absent in the batch, and
    // its utterances are padded to the longer one's words
    let dialogue = |fillers, seed| generated::generate(1, fillers, seed).remove(0).dialogue;
    let ids = encoded(&[dialogue(1..=1, 4), dialogue(3..=3, 5)]);
    let (short, long) = (&ids[0], &ids[1]);
    assert_eq!((short.len(), long.len()), (3, 5));
    let vocab = generated::vocabulary().len();
    for (attention, bidirectional) in [(false, false), (true, true)] {
        <B as burn::tensor::backend::Backend>::seed(&device, 2);
        let model = small(vocab)
            .with_attention(attention)
            .with_bidirectional(bidirectional)
            .init::<B, GruConfig>(&device)
            .unwrap();
        for (turn, (alone, together)) in scores_alone_and_together(&model, short, long)
            .into_iter()
            .enumerate()
        {
            assert!(alone > 0.0);
            assert!(
                (alone - together).abs() < 1e-4 * alone.max(1.0),
                "attention {attention}, response {}: {alone} alone, {together} in a batch",
                turn + 1
            );
        }
    }
}

#[test]
fn the_step_decoder_agrees_with_the_teacher_forced_pass() {
    let _rng = rensa_testkit::rng_lock();
    let device = Default::default();
    let vocab = generated::vocabulary();
    let items = generated::generate(3, 1..=2, 9);
    for attention in [false, true] {
        <B as burn::tensor::backend::Backend>::seed(&device, 3);
        let mut model = small(vocab.len())
            .with_attention(attention)
            .with_num_layers(2)
            .init::<B, GruConfig>(&device)
            .unwrap();
        // an untrained model almost never ends a response: raise EOS's bias so that sampled
        // responses end within a few words and can be scored whole
        let bias = model.output.bias.take().expect("a bias").val();
        let mut boost = vec![0.0f32; vocab.len()];
        boost[EOS] = 3.0;
        model.output.bias = Some(Param::from_tensor(
            bias + Tensor::<B, 1>::from_floats(boost.as_slice(), &device),
        ));
        let mut rng = SplitMix64::new(0);
        let mut compared = 0;
        for g in &items {
            let mut context = g.dialogue.encode(&vocab);
            context.pop();
            let decoded = model
                .greedy(std::slice::from_ref(&context), 6, &mut rng)
                .unwrap()
                .remove(0);
            let beam = model.beam(&context, 1, 6, 0.0, &mut rng).unwrap().remove(0);
            assert_eq!(beam.tokens, decoded.tokens, "a beam of one is greedy");
            let sampled = model
                .sample(&vec![context.clone(); 4], 30, 1.0, &mut rng)
                .unwrap();
            for d in sampled.into_iter().chain([decoded]) {
                assert_eq!(d.alignment.is_empty(), !attention);
                if !d.finished || d.tokens.is_empty() {
                    continue;
                }
                // the decoded response, scored by the whole-sequence pass: its EOS included,
                // both are the log-probability of the same tokens
                let mut dialogue = context.clone();
                dialogue.push(d.tokens.clone());
                let score = model.score(&DialogueBatch::new(&[&dialogue]));
                let last = score.iter().find(|s| s.last).unwrap();
                assert!(
                    (last.nll + d.log_prob).abs() < 1e-3,
                    "attention {attention}: teacher-forced nll {} vs decoder log p {}",
                    last.nll,
                    d.log_prob
                );
                compared += 1;
            }
        }
        assert!(
            compared >= 6,
            "attention {attention}: {compared} responses compared"
        );
    }
}

#[test]
fn hred_recalls_a_fact_two_turns_back() {
    let _rng = rensa_testkit::rng_lock();
    let device = Default::default();
    let vocab = generated::vocabulary();
    let train: Vec<Vec<Vec<usize>>> = generated::generate(3000, 1..=1, 1)
        .iter()
        .map(|g| g.dialogue.encode(&vocab))
        .collect();
    let test = generated::generate(200, 1..=1, 2);
    <Autodiff<B> as burn::tensor::backend::Backend>::seed(&device, 1);
    let model = HredConfig::new(vocab.len())
        .with_embedding_size(24)
        .with_utterance_hidden(48)
        .with_context_hidden(48)
        .with_decoder_hidden(48)
        .init::<Autodiff<B>, GruConfig>(&device)
        .unwrap();
    let config = FitConfig::for_epochs(14, 32)
        .with_validation_split(0.05)
        .with_learning_rate(0.01);
    let (model, _) = crate::train(model, config, AdamConfig::new(), &train, DialogueBatch::of);
    let model = burn::module::AutodiffModule::valid(&model);
    let test_ids: Vec<Vec<Vec<usize>>> = test.iter().map(|g| g.dialogue.encode(&vocab)).collect();
    let refs: Vec<&Vec<Vec<usize>>> = test_ids.iter().collect();
    let scores = model.score(&DialogueBatch::of(&refs));
    let last: Vec<_> = scores.iter().filter(|s| s.last).collect();
    let nats: f64 = last.iter().map(|s| s.nll).sum();
    let tokens: usize = last.iter().map(|s| s.tokens).sum();
    let perplexity = (nats / tokens as f64).exp();
    let floor = floor_perplexity(&test);
    eprintln!("HRED on the recall task: perplexity {perplexity:.3}, floor {floor:.3}");
    // Without the fact (a model of the last turn only) the best is about 1.75 here. This small
    // model learns the recall after a plateau whose length depends on the draws: with the
    // backend seeded by `backend_seed(0, epoch)`, the validation loss stays near 0.45 until
    // epoch 8 (perplexity 1.536 there, 7 of 40 answers right) and falls to 0.244 by epoch 14
    // (perplexity 1.130, 40 of 40) on a 2-core AMD EPYC; with the earlier `seed + epoch`, eight
    // epochs had reached 1.330 on a 2-core Xeon. The run is bit-reproducible on one machine
    // (burn-ndarray is patched for it: patches/README.md), but another CPU may round
    // differently and take another trajectory, so the bars below sit well clear of 1.13.
    assert!(perplexity < 1.4, "{perplexity} vs floor {floor}");
    // its greedy answers are valid answers
    let mut rng = SplitMix64::new(0);
    let contexts: Vec<Vec<Vec<usize>>> = test_ids[..40]
        .iter()
        .map(|d| d[..d.len() - 1].to_vec())
        .collect();
    let answers = model.greedy(&contexts, 12, &mut rng).unwrap();
    let valid = answers
        .iter()
        .zip(&test)
        .filter(|(a, g)| {
            let words: Vec<&str> = vocab.decode(&a.tokens);
            g.answers
                .iter()
                .any(|form| form.iter().map(String::as_str).eq(words.iter().copied()))
        })
        .count();
    // A model that cannot see the fact is right about once in 72 (slots x values): 20 or more
    // of 40 by chance has a probability far below 1e-20. The run above gives 40.
    eprintln!("{valid} of 40 greedy answers are valid");
    assert!(valid >= 20, "{valid} of 40 greedy answers are valid");
}

#[test]
fn vhred_losses_follow_the_definition() {
    let _rng = rensa_testkit::rng_lock();
    let device = Default::default();
    let vocab = generated::vocabulary();
    let (dialogues, batch) = generated_batch(6, 1..=2, 3);
    <B as burn::tensor::backend::Backend>::seed(&device, 5);
    let latent = LatentConfig::new()
        .with_size(6)
        .with_hidden(8)
        .with_anneal(AnnealCurve::Linear)
        .with_anneal_steps(100)
        .with_bow_weight(0.5);
    let model = small(vocab.len())
        .with_latent(Some(latent))
        .with_word_drop(0.3)
        .init::<B, LstmConfig>(&device)
        .unwrap();
    assert!(model.is_variational());
    let losses = model.forward(&batch, None);
    let kl: Vec<f32> = losses.kl.clone().unwrap().into_data().to_vec().unwrap();
    // the posterior's means do not depend on the draw: the step's count is theirs
    let active = active_units(losses.posterior_means.clone().unwrap(), 0.01) as f64;
    for (r, &k) in kl.iter().enumerate() {
        if batch.target_lengths[r] == 0 {
            assert_eq!(k, 0.0, "an absent turn has no KL");
        } else {
            assert!(
                k > 0.0,
                "KL between two different Gaussians is positive: {k}"
            );
        }
    }
    let at = |step, training| StepInfo {
        epoch: 1,
        step,
        batch: 1,
        lr: 1e-3,
        training,
    };
    let out = model.step(&batch, &at(25, true));
    let part = |name: &str| {
        let p = &out.parts.iter().find(|(n, _)| n == name).unwrap().1;
        p.clone().into_scalar() as f64
    };
    let tokens = batch.response_tokens() as f64;
    let real = batch.target_lengths.iter().filter(|&&l| l > 0).count() as f64;
    let loss = out.loss.clone().into_scalar() as f64;
    // loss per token = nll + 0.25 · KL + 0.5 · bow, all per token
    let expected = part("nll") + 0.25 * part("kl") * real / tokens + 0.5 * part("bow");
    assert!(
        (loss - expected).abs() < 1e-4 * loss.abs(),
        "{loss} vs {expected}"
    );
    assert!((part("bound") - (part("nll") + part("kl") * real / tokens)).abs() < 1e-4);
    let metric = |name: &str| out.metrics.iter().find(|(n, _)| n == name).unwrap().1;
    assert_eq!(metric("kl_weight"), 0.25);
    assert_eq!(metric("active_units"), active);
    // validation weighs the KL fully, drops no word and leaves the bag-of-words loss out: its
    // loss is the bound
    let valid = model.step(&batch, &at(25, false));
    assert_eq!(
        valid
            .metrics
            .iter()
            .find(|(n, _)| n == "kl_weight")
            .unwrap()
            .1,
        1.0
    );
    let valid_bound = valid.parts.iter().find(|(n, _)| n == "bound").unwrap();
    let (valid_loss, valid_bound) = (
        valid.loss.clone().into_scalar() as f64,
        valid_bound.1.clone().into_scalar() as f64,
    );
    assert!(
        (valid_loss - valid_bound).abs() < 1e-5 * valid_loss.abs(),
        "{valid_loss} vs {valid_bound}"
    );
    // and drops no word: the same model without word drop, the same latent draw, the same loss
    let mut keeps_words = model.clone();
    keeps_words.word_drop = 0.0;
    let valid_loss_of = |m: &Hred<B, rensa_nn::recurrent::LstmCell<B>>| {
        <B as burn::tensor::backend::Backend>::seed(&device, 8);
        m.step(&batch, &at(25, false)).loss.into_scalar()
    };
    assert_eq!(valid_loss_of(&model), valid_loss_of(&keeps_words));
    // while training, it drops words: the losses differ
    let train_loss_of = |m: &Hred<B, rensa_nn::recurrent::LstmCell<B>>| {
        <B as burn::tensor::backend::Backend>::seed(&device, 8);
        m.step(&batch, &at(25, true)).loss.into_scalar()
    };
    assert_ne!(train_loss_of(&model), train_loss_of(&keeps_words));
    assert!(valid.parts.iter().any(|(n, _)| n == "bow"));
    // generation draws z from the prior with the given generator: same seed, same answer
    let context = vec![dialogues[0][0].clone()];
    let a = model
        .sample(
            std::slice::from_ref(&context),
            8,
            1.0,
            &mut SplitMix64::new(4),
        )
        .unwrap();
    let b = model
        .sample(&[context], 8, 1.0, &mut SplitMix64::new(4))
        .unwrap();
    assert_eq!(a, b);
}

/// Mean and standard error of `x`.
fn mean_and_error(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, (var / n).sqrt())
}

#[test]
fn importance_sampling_tightens_vhreds_bound() {
    let _rng = rensa_testkit::rng_lock();
    let device = Default::default();
    let vocab = generated::vocabulary();
    let (_, batch) = generated_batch(4, 1..=1, 11);
    <B as burn::tensor::backend::Backend>::seed(&device, 3);
    // HRED has no latent: the estimate is its exact negative log-likelihood
    let hred = small(vocab.len()).init::<B, GruConfig>(&device).unwrap();
    let exact: Vec<f64> = hred.score(&batch).iter().map(|s| s.nll).collect();
    assert_eq!(hred.importance_nll(&batch, 7), exact);

    let latent = LatentConfig::new().with_size(4).with_hidden(8);
    let vhred = small(vocab.len())
        .with_latent(Some(latent))
        .init::<B, GruConfig>(&device)
        .unwrap();
    let draws = 200;
    let responses = exact.len();
    // per response: the bound nll + kl, and the log ratio log p(z|c) − log q(z|c,u), per draw
    let (mut bound, mut ratio) = (vec![vec![]; responses], vec![vec![]; responses]);
    let mut kl = vec![0.0; responses];
    for _ in 0..draws {
        let losses = vhred.forward(&batch, None);
        let r: Vec<f32> = losses
            .log_ratio
            .clone()
            .unwrap()
            .into_data()
            .to_vec()
            .unwrap();
        let real = (0..batch.responses()).filter(|&r| batch.target_lengths[r] > 0);
        for (i, row) in real.enumerate() {
            ratio[i].push(f64::from(r[row]));
        }
        for (i, s) in Hred::<B, GruCell<B>>::scores_of(&batch, losses)
            .iter()
            .enumerate()
        {
            bound[i].push(s.nll + s.kl);
            kl[i] = s.kl;
        }
    }
    // the log ratio's mean over posterior draws is −KL(q ‖ p)
    for i in 0..responses {
        let (mean, error) = mean_and_error(&ratio[i]);
        assert!(
            kl[i] > 0.05,
            "the posterior differs from the prior: {}",
            kl[i]
        );
        assert!(
            (mean + kl[i]).abs() < 4.0 * error + 1e-3,
            "response {i}: mean log ratio {mean} ± {error}, KL {}",
            kl[i]
        );
    }
    // many importance-weighted draws: below the bound, by more than its noise
    let estimate = vhred.importance_nll(&batch, 128);
    assert_eq!(estimate.len(), responses);
    let (mut below, mut total_bound, mut total_estimate) = (0, 0.0, 0.0);
    for i in 0..responses {
        let (mean, _) = mean_and_error(&bound[i]);
        assert!(estimate[i].is_finite() && estimate[i] > 0.0);
        below += usize::from(estimate[i] < mean);
        total_bound += mean;
        total_estimate += estimate[i];
    }
    assert_eq!(below, responses, "{estimate:?}");
    assert!(
        total_estimate < total_bound,
        "{total_estimate} vs {total_bound}"
    );
}

#[test]
fn bad_contexts_and_settings_are_refused() {
    // building a model draws its weights from burn's shared generator
    let _rng = rensa_testkit::rng_lock();
    let device = Default::default();
    let model = small(20).init::<B, GruConfig>(&device).unwrap();
    let mut rng = SplitMix64::new(0);
    assert_eq!(
        model.greedy(&[vec![]], 5, &mut rng).unwrap_err(),
        ContextError::Empty
    );
    assert!(model.greedy(&[], 5, &mut rng).unwrap().is_empty());
    assert!(model.sample(&[], 5, 1.0, &mut rng).unwrap().is_empty());
    assert_eq!(
        model
            .greedy(&[vec![vec![5], vec![]]], 5, &mut rng)
            .unwrap_err(),
        ContextError::EmptyTurn(2)
    );
    let unknown = model.beam(&[vec![5, 20]], 2, 5, 0.0, &mut rng).unwrap_err();
    assert_eq!(
        unknown,
        ContextError::UnknownId {
            turn: 1,
            id: 20,
            vocab: 20
        }
    );
    assert!(
        unknown
            .to_string()
            .contains("outside the model's vocabulary of 20")
    );
    let err = |c: HredConfig| c.init::<B, GruConfig>(&device).unwrap_err().to_string();
    assert!(err(small(4)).contains("vocab"));
    assert!(err(small(20).with_word_drop(1.0)).contains("word_drop"));
    assert!(err(small(20).with_context_hidden(0)).contains("context_hidden"));
    assert!(
        err(small(20).with_latent(Some(LatentConfig::new().with_size(0)))).contains("latent.size")
    );
    assert!(
        err(small(20).with_latent(Some(LatentConfig::new().with_bow_weight(f64::NAN))))
            .contains("bow_weight")
    );
}
