//! Bad input never gives a silent wrong result: configuration and weight errors are `Err`s that
//! name the field and the value; misuse inside `forward`/`step` panics with the expected and the
//! received value.

use burn::tensor::Tensor;
use rensa_nn::Error;
use rensa_nn::activation::Activation;
use rensa_nn::init::Init;
use rensa_nn::recurrent::{
    GruConfig, Lstm, LstmCell, LstmConfig, RecurrentCell, RecurrentConfig, RecurrentState, RnnCell,
    RnnConfig, SequenceInput,
};
use rensa_testkit::TestBackend as B;

fn dev() -> burn::backend::ndarray::NdArrayDevice {
    Default::default()
}

fn config_error(result: Result<impl std::fmt::Debug, Error>, field: &str, got: &str) {
    let err = result
        .expect_err("a bad configuration must be rejected")
        .to_string();
    assert!(
        err.contains(field) && err.contains(got),
        "error {err:?} should name `{field}` and `{got}`"
    );
}

#[test]
fn bad_configurations_are_errors_naming_the_field() {
    let _rng = rensa_testkit::rng_lock(); // valid configurations draw their weights
    let lstm = |c: LstmConfig| c.init::<B>(&dev()).map(drop);
    let gru = |c: GruConfig| c.init::<B>(&dev()).map(drop);
    let rnn = |c: RnnConfig| c.init::<B>(&dev()).map(drop);
    config_error(lstm(LstmConfig::new(4, 0)), "hidden_size", "0");
    config_error(gru(GruConfig::new(0, 4)), "input_size", "0");
    config_error(
        rnn(RnnConfig::new(4, 4).with_num_layers(0)),
        "num_layers",
        "0",
    );
    for (p, shown) in [(1.0, "1"), (-0.1, "-0.1"), (f64::NAN, "NaN")] {
        config_error(
            lstm(LstmConfig::new(4, 4).with_dropout(p)),
            "dropout",
            shown,
        );
    }
    let orthogonal_bias = GruConfig::new(4, 4).with_bias_init(Init::ORTHOGONAL);
    config_error(gru(orthogonal_bias), "bias_init", "Orthogonal");
    let negative_std = Init::Normal {
        mean: 0.0,
        std: -1.0,
    };
    let rnn_config = RnnConfig::new(4, 4).with_recurrent_init(negative_std);
    config_error(rnn(rnn_config), "recurrent_init", "-1");
    let leaky = RnnConfig::new(4, 4).with_activation(Activation::LeakyRelu { alpha: 2.0 });
    config_error(leaky.init_cell::<B>(&dev()), "alpha", "2");
    // Dropout just below 1 and the other edges are fine.
    assert!(
        LstmConfig::new(1, 1)
            .with_dropout(0.999)
            .with_num_layers(2)
            .init::<B>(&dev())
            .is_ok()
    );
}

#[test]
fn mismatched_weights_are_errors_naming_the_weight() {
    let w = |r, c| Tensor::<B, 2>::zeros([r, c], &dev());
    let b = |n| Some(Tensor::<B, 1>::zeros([n], &dev()));
    let lstm = |ih, hh, bias_ih, bias_hh| LstmCell::from_weights(ih, hh, bias_ih, bias_hh);
    let rnn = |ih, hh, bias_ih, bias_hh| {
        RnnCell::from_weights(ih, hh, bias_ih, bias_hh, Activation::Tanh)
    };
    names_all(
        lstm(w(3, 16), w(4, 12), None, None),
        &["weight_hh", "[4, 16]", "[4, 12]"],
    );
    names_all(
        lstm(w(3, 12), w(4, 16), None, None),
        &["weight_ih", "[3, 16]", "[3, 12]"],
    );
    names_all(
        lstm(w(3, 16), w(4, 16), b(15), None),
        &["bias_ih", "[16]", "[15]"],
    );
    names_all(rnn(w(3, 4), w(4, 4), None, b(5)), &["bias_hh"]);
    names_all(rnn(w(3, 0), w(0, 0), None, None), &["weight_hh"]);
}

/// The error of `result` names every one of `parts`.
fn names_all(result: Result<impl std::fmt::Debug, Error>, parts: &[&str]) {
    let err = result.expect_err("bad weights must be refused").to_string();
    assert!(
        parts.iter().all(|p| err.contains(p)),
        "error {err:?} should name {parts:?}"
    );
}

fn lstm(layers: usize, bidirectional: bool) -> Lstm<B> {
    LstmConfig::new(4, 3)
        .with_num_layers(layers)
        .with_bidirectional(bidirectional)
        .init(&dev())
        .unwrap()
}

fn x(b: usize, t: usize, f: usize) -> Tensor<B, 3> {
    Tensor::zeros([b, t, f], &dev())
}

#[test]
#[should_panic(expected = "expected 4 features (input_size), got 5")]
fn wrong_feature_size_panics() {
    lstm(1, false).forward(SequenceInput::new(x(2, 3, 5)));
}

#[test]
#[should_panic(expected = "expected time >= 1")]
fn empty_sequence_panics() {
    lstm(1, false).forward(SequenceInput::new(x(2, 0, 4)));
}

#[test]
#[should_panic(expected = "lengths[1]: expected a length in 1..=3 (the input's time steps), got 0")]
fn zero_length_panics() {
    lstm(1, true).forward(SequenceInput::new(x(2, 3, 4)).with_lengths(&[3, 0]));
}

#[test]
#[should_panic(expected = "lengths[0]: expected a length in 1..=3 (the input's time steps), got 4")]
fn length_above_time_panics() {
    lstm(1, false).forward(SequenceInput::new(x(2, 3, 4)).with_lengths(&[4, 1]));
}

#[test]
#[should_panic(expected = "lengths: expected one length per sequence (2), got 3")]
fn wrong_number_of_lengths_panics() {
    lstm(1, false).forward(SequenceInput::new(x(2, 3, 4)).with_lengths(&[1, 2, 3]));
}

#[test]
#[should_panic(
    expected = "initial hidden state: expected [layers * directions, batch, hidden] = [4, 2, 3], got [2, 2, 3]"
)]
fn wrong_state_shape_panics() {
    let state = RecurrentState {
        hidden: Tensor::zeros([2, 2, 3], &dev()),
        cell: Some(Tensor::zeros([2, 2, 3], &dev())),
    };
    lstm(2, true).forward(SequenceInput::new(x(2, 3, 4)).with_state(state));
}

#[test]
#[should_panic(expected = "an LSTM needs a cell state")]
fn missing_cell_state_panics() {
    let state = RecurrentState {
        hidden: Tensor::zeros([1, 2, 3], &dev()),
        cell: None,
    };
    lstm(1, false).forward(SequenceInput::new(x(2, 3, 4)).with_state(state));
}

#[test]
#[should_panic(expected = "only an LSTM has a cell state")]
fn cell_state_for_a_gru_panics() {
    let _rng = rensa_testkit::rng_lock(); // valid configurations draw their weights
    let gru = GruConfig::new(4, 3).init::<B>(&dev()).unwrap();
    let state = RecurrentState {
        hidden: Tensor::zeros([1, 2, 3], &dev()),
        cell: Some(Tensor::zeros([1, 2, 3], &dev())),
    };
    gru.forward(SequenceInput::new(x(2, 3, 4)).with_state(state));
}

#[test]
#[should_panic(expected = "hidden state: expected shape [batch, hidden] = [2, 3], got [2, 5]")]
fn step_with_wrong_state_panics() {
    let cell = GruConfig::new(4, 3).init_cell::<B>(&dev()).unwrap();
    let mut state = cell.zero_state(2, &dev());
    state.hidden = Tensor::zeros([2, 5], &dev());
    cell.step(Tensor::zeros([2, 4], &dev()), state);
}

#[test]
#[should_panic(
    expected = "input [batch, features]: expected 4 features (the layer's input_size), got 2"
)]
fn step_with_wrong_input_panics() {
    let cell = RnnConfig::new(4, 3).init_cell::<B>(&dev()).unwrap();
    let state = cell.zero_state(2, &dev());
    cell.step(Tensor::zeros([2, 2], &dev()), state);
}

#[test]
#[should_panic(expected = "a bidirectional layer needs the whole sequence")]
fn stepping_a_bidirectional_layer_panics() {
    let layer = lstm(1, true);
    let state = layer.zero_state(2, &dev());
    layer.step(Tensor::zeros([2, 4], &dev()), state);
}
