//! Runs one recurrent layer's forward + backward pass repeatedly on the ndarray backend, for
//! profiling (`perf record`) a single cell and shape; `cargo xtask bench recurrent` is the
//! benchmark.
//!
//! ```text
//! cargo run --release -p rensa-nn --example recurrent_step -- lstm 64 64 128 256 20 [plain]
//! ```
//! Arguments: cell (rnn, lstm, gru), batch, time, input, hidden, repetitions, and `plain` for
//! the plain-ops autodiff path.

use burn::backend::{Autodiff, NdArray};
use burn::tensor::{Distribution, Tensor};
use rensa_nn::recurrent::{
    Differentiation, GruConfig, LstmConfig, RecurrentConfig, RnnConfig, SequenceInput,
    SequenceOutput,
};
use std::time::Instant;

type B = Autodiff<NdArray>;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The forward pass of a layer of cell config `C`.
fn layer<C: RecurrentConfig>(
    i: usize,
    h: usize,
    how: Differentiation,
    device: &burn::backend::ndarray::NdArrayDevice,
) -> Box<dyn Fn(Tensor<B, 3>) -> SequenceOutput<B>> {
    let m = C::sized(i, h)
        .differentiated(how)
        .init_layer::<B>(device)
        .unwrap();
    Box::new(move |x| m.forward(SequenceInput::new(x)))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 6 {
        eprintln!("usage: recurrent_step CELL BATCH TIME INPUT HIDDEN REPS [plain]");
        std::process::exit(2);
    }
    let n = |k: usize| -> usize { args[k].parse().expect("a whole number") };
    let (b, t, i, h, reps) = (n(1), n(2), n(3), n(4), n(5));
    let how = if args.get(6).map(String::as_str) == Some("plain") {
        Differentiation::Plain
    } else {
        Differentiation::Fused
    };
    let device = Default::default();
    let x = Tensor::<B, 3>::random([b, t, i], Distribution::Normal(0.0, 1.0), &device);
    let forward = match args[0].as_str() {
        "rnn" => layer::<RnnConfig>(i, h, how, &device),
        "lstm" => layer::<LstmConfig>(i, h, how, &device),
        "gru" => layer::<GruConfig>(i, h, how, &device),
        other => panic!("unknown cell {other}: rnn, lstm or gru"),
    };
    let mut times = Vec::with_capacity(reps);
    for _ in 0..reps {
        let start = Instant::now();
        let grads = forward(x.clone()).output.sum().backward();
        drop(grads);
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    println!("median {:.2} ms over {reps} runs", times[reps / 2]);
}
