//! The sequence layer over any cell: stacked, bidirectional, masked.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig};
use burn::tensor::{Tensor, TensorData, backend::Backend};

use super::cell::GateInit;
use super::{
    CellState, Differentiation, GateWeights, GruCell, LstmCell, RecurrentBackend, RecurrentCell,
    RnnCell,
};
use crate::Error;
use crate::activation::Activation;
use crate::init::Init;

/// How the two directions of a bidirectional layer are combined (Keras's `merge_mode`).
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum MergeMode {
    /// Concatenate along features: output size `2H` (PyTorch's behaviour, Keras's default).
    Concat,
    /// Elementwise sum: output size `H`.
    Sum,
    /// Elementwise mean: output size `H`.
    Mean,
    /// Elementwise product: output size `H`.
    Mul,
}

impl MergeMode {
    /// Output features of a merged pair of `hidden`-sized outputs.
    pub fn output_size(&self, hidden: usize) -> usize {
        match self {
            MergeMode::Concat => 2 * hidden,
            _ => hidden,
        }
    }

    /// Merges the forward and backward outputs `[batch, time, H]`.
    pub fn merge<B: Backend>(&self, forward: Tensor<B, 3>, backward: Tensor<B, 3>) -> Tensor<B, 3> {
        match self {
            MergeMode::Concat => Tensor::cat(vec![forward, backward], 2),
            MergeMode::Sum => forward + backward,
            MergeMode::Mean => (forward + backward) * 0.5,
            MergeMode::Mul => forward * backward,
        }
    }
}

/// The final (or initial) state of every layer and direction, in PyTorch's layout: index
/// `layer · directions + direction`, where direction 1 is the backward one.
#[derive(Clone, Debug)]
pub struct RecurrentState<B: Backend> {
    /// Hidden states `[layers · directions, batch, hidden]`.
    pub hidden: Tensor<B, 3>,
    /// LSTM cell states `[layers · directions, batch, hidden]`; `None` for RNN and GRU.
    pub cell: Option<Tensor<B, 3>>,
}

impl<B: Backend> RecurrentState<B> {
    fn from_cells(states: Vec<CellState<B>>) -> Self {
        let has_cell = states[0].cell.is_some();
        let (hidden, cell): (Vec<_>, Vec<_>) =
            states.into_iter().map(|s| (s.hidden, s.cell)).unzip();
        Self {
            hidden: Tensor::stack(hidden, 0),
            cell: has_cell.then(|| Tensor::stack(cell.into_iter().flatten().collect(), 0)),
        }
    }

    /// The state of one layer and direction.
    pub fn get(&self, index: usize) -> CellState<B> {
        let pick = |t: &Tensor<B, 3>| {
            let [_, b, h] = t.dims();
            t.clone().narrow(0, index, 1).reshape([b, h])
        };
        CellState {
            hidden: pick(&self.hidden),
            cell: self.cell.as_ref().map(pick),
        }
    }
}

/// The input of [`Recurrent::forward`]: a batch of sequences, optionally with their lengths and
/// an initial state.
#[derive(Clone, Debug)]
pub struct SequenceInput<B: Backend> {
    /// Batch-first input `[batch, time, features]`.
    pub input: Tensor<B, 3>,
    /// Length of each sequence (right-padded): `1 ≤ len ≤ time`; `None` means all are `time`.
    pub lengths: Option<Vec<usize>>,
    /// Initial state; zeros when `None`.
    pub state: Option<RecurrentState<B>>,
}

impl<B: Backend> SequenceInput<B> {
    /// Full-length sequences from a zero state.
    pub fn new(input: Tensor<B, 3>) -> Self {
        Self {
            input,
            lengths: None,
            state: None,
        }
    }

    /// Sets per-sequence lengths (right padding after each sequence's end is ignored).
    pub fn with_lengths(mut self, lengths: &[usize]) -> Self {
        self.lengths = Some(lengths.to_vec());
        self
    }

    /// Sets the initial state.
    pub fn with_state(mut self, state: RecurrentState<B>) -> Self {
        self.state = Some(state);
        self
    }
}

/// What [`Recurrent::forward`] returns.
#[derive(Clone, Debug)]
pub struct SequenceOutput<B: Backend> {
    /// The last layer's outputs `[batch, time, output_size]`, zero past each sequence's end.
    pub output: Tensor<B, 3>,
    /// Final state of every layer and direction, taken at each sequence's own last step.
    pub state: RecurrentState<B>,
}

/// A recurrent sequence layer: `num_layers` stacked layers of a cell, each unidirectional or
/// bidirectional, with dropout between layers. Use the aliases [`Rnn`], [`Lstm`] and [`Gru`].
///
/// Between stacked layers the two directions are merged with the layer's [`MergeMode`], as
/// stacking Keras `Bidirectional` layers does (with `Concat`, also what PyTorch does).
#[derive(Module, Debug)]
pub struct Recurrent<B: Backend, C: Module<B>> {
    /// Cells, `cells[layer · directions + direction]`.
    pub cells: Vec<C>,
    /// Dropout applied to every layer's output except the last (active in training only).
    pub dropout: Dropout,
    /// Stacked layers.
    pub num_layers: usize,
    /// Whether each layer also runs backwards over time.
    pub bidirectional: bool,
    /// How the two directions are merged.
    #[module(skip)]
    pub merge_mode: MergeMode,
    /// How autodiff differentiates the layer's recurrences.
    #[module(skip)]
    pub differentiation: Differentiation,
    _backend: core::marker::PhantomData<B>,
}

/// Stacked, optionally bidirectional simple RNN.
pub type Rnn<B> = Recurrent<B, RnnCell<B>>;
/// Stacked, optionally bidirectional LSTM.
pub type Lstm<B> = Recurrent<B, LstmCell<B>>;
/// Stacked, optionally bidirectional GRU.
pub type Gru<B> = Recurrent<B, GruCell<B>>;

impl<B: RecurrentBackend, C: RecurrentCell<B>> Recurrent<B, C> {
    /// Assembles a layer from cells (`cells[layer · directions + direction]`), checking that
    /// their sizes chain.
    pub fn from_cells(
        cells: Vec<C>,
        bidirectional: bool,
        merge_mode: MergeMode,
        dropout: f64,
    ) -> crate::Result<Self> {
        let dirs = if bidirectional { 2 } else { 1 };
        if cells.is_empty() || cells.len() % dirs != 0 {
            return Err(Error::config(
                "cells",
                "a non-empty list with one cell per layer and direction",
                format!("{} cells with {dirs} direction(s)", cells.len()),
            ));
        }
        check_dropout(dropout)?;
        let hidden = cells[0].hidden_size();
        let mut expected_input = cells[0].input_size();
        for (k, cell) in cells.iter().enumerate() {
            if cell.hidden_size() != hidden || cell.input_size() != expected_input {
                return Err(Error::config(
                    "cells",
                    "cells whose sizes chain (same hidden size; each layer's input is the previous layer's merged output)",
                    format!(
                        "cell {k} has input {} and hidden {} (expected {expected_input} and {hidden})",
                        cell.input_size(),
                        cell.hidden_size()
                    ),
                ));
            }
            if k % dirs == dirs - 1 {
                expected_input = if bidirectional {
                    merge_mode.output_size(hidden)
                } else {
                    hidden
                };
            }
        }
        Ok(Self {
            num_layers: cells.len() / dirs,
            cells,
            dropout: DropoutConfig::new(dropout).init(),
            bidirectional,
            merge_mode,
            differentiation: Differentiation::Fused,
            _backend: core::marker::PhantomData,
        })
    }

    /// The layer differentiated the `differentiation` way (a fused node per recurrence, the
    /// default, or every step's ops).
    pub fn with_differentiation(mut self, differentiation: Differentiation) -> Self {
        self.differentiation = differentiation;
        self
    }

    /// 1 or 2.
    pub fn directions(&self) -> usize {
        if self.bidirectional { 2 } else { 1 }
    }

    /// Features per input step.
    pub fn input_size(&self) -> usize {
        self.cells[0].input_size()
    }

    /// Hidden units per direction.
    pub fn hidden_size(&self) -> usize {
        self.cells[0].hidden_size()
    }

    /// Features per output step.
    pub fn output_size(&self) -> usize {
        if self.bidirectional {
            self.merge_mode.output_size(self.hidden_size())
        } else {
            self.hidden_size()
        }
    }

    /// The cell of one layer and direction (0 forward, 1 backward), e.g. for step-by-step use.
    pub fn cell(&self, layer: usize, direction: usize) -> &C {
        assert!(
            layer < self.num_layers && direction < self.directions(),
            "cell: layer {layer} direction {direction} out of range ({} layers, {} directions)",
            self.num_layers,
            self.directions()
        );
        &self.cells[layer * self.directions() + direction]
    }

    /// The all-zero state for a batch.
    pub fn zero_state(&self, batch_size: usize, device: &B::Device) -> RecurrentState<B> {
        RecurrentState::from_cells(
            self.cells
                .iter()
                .map(|c| c.zero_state(batch_size, device))
                .collect(),
        )
    }

    /// Runs the layer over a batch of sequences.
    ///
    /// # Shapes
    /// - `input.input`: `[batch, time, input_size]`, `time ≥ 1`
    /// - `input.lengths`: `batch` values in `1..=time`
    /// - `input.state`: `[layers · directions, batch, hidden]` (and a cell state for an LSTM)
    /// - output: `[batch, time, output_size]`; state as the initial one.
    ///
    /// # Panics
    /// On a wrong feature size, an empty sequence, lengths out of range or of the wrong count,
    /// or an initial state of the wrong shape; the message names the expected and received value.
    pub fn forward(&self, input: SequenceInput<B>) -> SequenceOutput<B> {
        let SequenceInput {
            input: x,
            lengths,
            state,
        } = input;
        let [batch, time, features] = x.dims();
        let device = x.device();
        assert!(
            time > 0,
            "input [batch, time, features]: expected time >= 1, got an empty sequence"
        );
        assert_eq!(
            features,
            self.input_size(),
            "input [batch, time, features]: expected {} features (input_size), got {features}",
            self.input_size()
        );
        let padded = lengths
            .as_ref()
            .is_some_and(|l| l.iter().any(|&len| len < time));
        let mask = lengths.map(|l| length_mask::<B>(&l, batch, time, &device));
        // Padding is ignored whatever it holds: the recurrences keep a sequence's state across
        // its padding by blending (`old + m·(new − old)`) and zero its outputs by a product, so
        // a NaN or an infinity left there would otherwise reach the states (`0·NaN`) and the
        // gradients. Zeroed, the padded steps compute finite values that the mask discards.
        let x = match &mask {
            Some(m) if padded => {
                let pad = m
                    .clone()
                    .lower_elem(0.5)
                    .unsqueeze_dim::<3>(2)
                    .expand([batch, time, features]);
                x.mask_fill(pad, 0.0)
            }
            _ => x,
        };
        let initial: Vec<CellState<B>> = match state {
            Some(s) => {
                self.check_state(&s, batch);
                (0..self.cells.len()).map(|k| s.get(k)).collect()
            }
            None => self
                .cells
                .iter()
                .map(|c| c.zero_state(batch, &device))
                .collect(),
        };

        let dirs = self.directions();
        let mut finals = Vec::with_capacity(self.cells.len());
        let mut layer_input = x;
        for layer in 0..self.num_layers {
            let mut outputs = Vec::with_capacity(dirs);
            for d in 0..dirs {
                let k = layer * dirs + d;
                let (out, fin) = self.cells[k].sequence(
                    layer_input.clone(),
                    initial[k].clone(),
                    mask.clone(),
                    d == 1,
                    self.differentiation,
                );
                outputs.push(out);
                finals.push(fin);
            }
            let merged = match outputs.len() {
                1 => outputs.pop().unwrap(),
                _ => {
                    let backward = outputs.pop().unwrap();
                    self.merge_mode.merge(outputs.pop().unwrap(), backward)
                }
            };
            layer_input = if layer + 1 < self.num_layers {
                self.dropout.forward(merged)
            } else {
                merged
            };
        }
        SequenceOutput {
            output: layer_input,
            state: RecurrentState::from_cells(finals),
        }
    }

    /// One time step through all layers of a unidirectional layer (a decoder's loop).
    ///
    /// # Shapes
    /// - `input`: `[batch, input_size]`; `state` as in [`forward`](Self::forward)
    /// - returns the last layer's output `[batch, hidden]` and the new state.
    ///
    /// # Panics
    /// For a bidirectional layer (its backward direction needs the whole sequence) and on wrong
    /// shapes.
    pub fn step(
        &self,
        input: Tensor<B, 2>,
        state: RecurrentState<B>,
    ) -> (Tensor<B, 2>, RecurrentState<B>) {
        assert!(
            !self.bidirectional,
            "step: a bidirectional layer needs the whole sequence; use forward"
        );
        let batch = input.dims()[0];
        self.check_state(&state, batch);
        let mut x = input;
        let mut next = Vec::with_capacity(self.num_layers);
        for (layer, cell) in self.cells.iter().enumerate() {
            let s = cell.step(x, state.get(layer));
            x = if layer + 1 < self.num_layers {
                self.dropout.forward(s.hidden.clone())
            } else {
                s.hidden.clone()
            };
            next.push(s);
        }
        (x, RecurrentState::from_cells(next))
    }

    fn check_state(&self, state: &RecurrentState<B>, batch: usize) {
        let expected = [self.cells.len(), batch, self.hidden_size()];
        super::cell::check_state_shapes(
            &state.hidden,
            state.cell.as_ref(),
            C::HAS_CELL_STATE,
            expected,
            "initial ",
            "[layers * directions, batch, hidden]",
        );
    }
}

/// `[batch, time]` mask: 1 on steps `t < lengths[b]`, 0 after.
///
/// # Panics
/// Unless there is one length per sequence, each in `1..=time`.
pub fn length_mask<B: Backend>(
    lengths: &[usize],
    batch: usize,
    time: usize,
    device: &B::Device,
) -> Tensor<B, 2> {
    check_lengths(
        "lengths",
        lengths,
        batch,
        1,
        (time, "the input's time steps"),
    );
    let values: Vec<f32> = lengths
        .iter()
        .flat_map(|&len| (0..time).map(move |t| if t < len { 1.0 } else { 0.0 }))
        .collect();
    Tensor::from_data(
        TensorData::new(values, [batch, time]).convert::<B::FloatElem>(),
        device,
    )
}

/// Checks per-sequence lengths (`what` in the message): one per sequence of the batch, each in
/// `min..=max.0`, where `max.1` says what the largest is.
///
/// # Panics
/// On the first length that breaks the rule.
pub(crate) fn check_lengths(
    what: &str,
    lengths: &[usize],
    batch: usize,
    min: usize,
    (max, of): (usize, &str),
) {
    assert_eq!(
        lengths.len(),
        batch,
        "{what}: expected one length per sequence ({batch}), got {}",
        lengths.len()
    );
    for (b, &len) in lengths.iter().enumerate() {
        assert!(
            (min..=max).contains(&len),
            "{what}[{b}]: expected a length in {min}..={max} ({of}), got {len}"
        );
    }
}

fn check_dropout(dropout: f64) -> crate::Result<()> {
    if (0.0..1.0).contains(&dropout) {
        Ok(())
    } else {
        Err(Error::config("dropout", "a probability in [0, 1)", dropout))
    }
}

/// The settings every recurrent layer shares, checked before any weight is made.
struct Common {
    input_size: usize,
    hidden_size: usize,
    num_layers: usize,
    bidirectional: bool,
    merge_mode: MergeMode,
    dropout: f64,
    bias: bool,
    input_init: Init,
    recurrent_init: Init,
    bias_init: Init,
    differentiation: Differentiation,
}

impl Common {
    fn validate(&self) -> crate::Result<()> {
        if self.input_size == 0 {
            return Err(Error::config("input_size", "at least 1", 0));
        }
        if self.hidden_size == 0 {
            return Err(Error::config("hidden_size", "at least 1", 0));
        }
        if self.num_layers == 0 {
            return Err(Error::config("num_layers", "at least 1", 0));
        }
        check_dropout(self.dropout)?;
        self.input_init.validate("input_init")?;
        self.recurrent_init.validate("recurrent_init")?;
        self.bias_init.validate("bias_init")?;
        if !self.bias_init.supports_vectors() {
            return Err(Error::config(
                "bias_init",
                "Zeros, Constant, Uniform or Normal (the others need a matrix)",
                format!("{:?}", self.bias_init),
            ));
        }
        Ok(())
    }

    /// The input size of each layer.
    fn layer_input(&self, layer: usize) -> usize {
        match layer {
            0 => self.input_size,
            _ if self.bidirectional => self.merge_mode.output_size(self.hidden_size),
            _ => self.hidden_size,
        }
    }

    fn gate_init(
        &self,
        gates: usize,
        input_size: usize,
        recurrent_bias: bool,
        unit_bias_gate: Option<usize>,
    ) -> GateInit {
        GateInit {
            gates,
            input_size,
            hidden_size: self.hidden_size,
            bias: self.bias,
            recurrent_bias,
            input_init: self.input_init,
            recurrent_init: self.recurrent_init,
            bias_init: self.bias_init,
            unit_bias_gate,
        }
    }

    /// Draws every cell's gate weights (`gates` gates, the recurrent bias when
    /// `recurrent_bias`, gate `unit_bias_gate`'s bias set to one), builds each cell with
    /// `make(weights)` and assembles the layer.
    fn build<B: RecurrentBackend, C: RecurrentCell<B>>(
        &self,
        device: &B::Device,
        (gates, recurrent_bias, unit_bias_gate): (usize, bool, Option<usize>),
        make: impl Fn(GateWeights<B>) -> C,
    ) -> crate::Result<Recurrent<B, C>> {
        self.validate()?;
        let dirs = if self.bidirectional { 2 } else { 1 };
        let cells = (0..self.num_layers * dirs)
            .map(|k| {
                let input = self.layer_input(k / dirs);
                let init = self.gate_init(gates, input, recurrent_bias, unit_bias_gate);
                make(GateWeights::init(init, device))
            })
            .collect();
        Ok(
            Recurrent::from_cells(cells, self.bidirectional, self.merge_mode, self.dropout)?
                .with_differentiation(self.differentiation),
        )
    }
}

/// Declares a layer configuration with the fields every recurrent layer shares, plus the cell's
/// own fields.
macro_rules! recurrent_config {
    (
        $(#[$meta:meta])*
        $name:ident { $($(#[$fmeta:meta])* $field:ident: $ty:ty,)* }
    ) => {
        $(#[$meta])*
        #[derive(Config, Debug)]
        pub struct $name {
            /// Features per input step.
            pub input_size: usize,
            /// Hidden units (per direction).
            pub hidden_size: usize,
            $($(#[$fmeta])* pub $field: $ty,)*
            /// Stacked layers.
            #[config(default = 1)]
            pub num_layers: usize,
            /// Also run each layer backwards over time.
            #[config(default = false)]
            pub bidirectional: bool,
            /// How a bidirectional layer merges its two directions.
            #[config(default = "MergeMode::Concat")]
            pub merge_mode: MergeMode,
            /// Dropout probability on each layer's output except the last, in `[0, 1)`.
            #[config(default = 0.0)]
            pub dropout: f64,
            /// Whether the cells have biases.
            #[config(default = true)]
            pub bias: bool,
            /// Initialiser of the input weights (Keras's default: Glorot uniform).
            #[config(default = "Init::XAVIER_UNIFORM")]
            pub input_init: Init,
            /// Initialiser of the recurrent weights (Keras's default: orthogonal).
            #[config(default = "Init::ORTHOGONAL")]
            pub recurrent_init: Init,
            /// Initialiser of the biases.
            #[config(default = "Init::Zeros")]
            pub bias_init: Init,
            /// How autodiff differentiates the layer's recurrences.
            #[config(default = "Differentiation::Fused")]
            pub differentiation: Differentiation,
        }

        impl $name {
            fn common(&self) -> Common {
                Common {
                    input_size: self.input_size,
                    hidden_size: self.hidden_size,
                    num_layers: self.num_layers,
                    bidirectional: self.bidirectional,
                    merge_mode: self.merge_mode,
                    dropout: self.dropout,
                    bias: self.bias,
                    input_init: self.input_init,
                    recurrent_init: self.recurrent_init,
                    bias_init: self.bias_init,
                    differentiation: self.differentiation,
                }
            }
        }
    };
}

recurrent_config! {
    /// Configuration of a simple RNN layer ([`Rnn`]) or cell ([`RnnCell`]).
    RnnConfig {
        /// The output activation (tanh, as in Keras and PyTorch; ReLU and sigmoid also appear in
        /// the exercises, e.g. the binary-addition RNN's sigmoid).
        #[config(default = "Activation::Tanh")]
        activation: Activation,
        /// Also a recurrent bias `bₕₕ` (PyTorch has one; Keras does not). Redundant with `bᵢₕ`.
        #[config(default = false)]
        recurrent_bias: bool,
    }
}

recurrent_config! {
    /// Configuration of an LSTM layer ([`Lstm`]) or cell ([`LstmCell`]).
    LstmConfig {
        /// Initialise the forget gate's input bias to 1 (Keras's `unit_forget_bias`).
        #[config(default = true)]
        unit_forget_bias: bool,
        /// Also a recurrent bias `bₕₕ` (PyTorch has one; Keras does not). Redundant with `bᵢₕ`.
        #[config(default = false)]
        recurrent_bias: bool,
    }
}

recurrent_config! {
    /// Configuration of a GRU layer ([`Gru`]) or cell ([`GruCell`]).
    GruConfig {
        /// The cuDNN/PyTorch/Keras-default form (reset gate applied after the recurrent matmul);
        /// `false` gives the original form `n = tanh(xWᵢₙ + (r ⊙ h)Wₕₙ)` (Cho et al. 2014).
        #[config(default = true)]
        reset_after: bool,
        /// Also a recurrent bias `bₕₕ` (PyTorch has one, and so does Keras's reset-after GRU;
        /// in the reset-after form its candidate part is not redundant).
        #[config(default = true)]
        recurrent_bias: bool,
    }
}

/// A recurrent layer's configuration, whichever its cell: what models generic over the cell
/// (an encoder-decoder of RNN, LSTM or GRU layers) build their layers with.
///
/// ```
/// use burn::backend::NdArray;
/// use rensa_nn::recurrent::{LstmConfig, RecurrentConfig};
///
/// fn encoder<C: RecurrentConfig>(features: usize) -> rensa_nn::Result<()> {
///     let layer = C::sized(features, 32).init_layer::<NdArray>(&Default::default())?;
///     assert_eq!(layer.hidden_size(), 32);
///     Ok(())
/// }
/// encoder::<LstmConfig>(8).unwrap();
/// ```
pub trait RecurrentConfig: Clone + Send + Sync + core::fmt::Debug + 'static {
    /// The cell the layer is made of, on backend `B`.
    type Cell<B: RecurrentBackend>: RecurrentCell<B>;

    /// The configuration of `input_size` inputs and `hidden_size` units, every other setting at
    /// its default.
    fn sized(input_size: usize, hidden_size: usize) -> Self;

    /// The same settings for one unidirectional layer (what [`init_cell`](Self::init_cell)
    /// builds).
    fn single(&self) -> Self;

    /// The same settings, differentiated by `how` (the fused backward pass or plain autodiff).
    fn differentiated(self, how: Differentiation) -> Self;

    /// The same settings with `num_layers` stacked layers, each bidirectional or not.
    fn stacked(self, num_layers: usize, bidirectional: bool) -> Self;

    /// Builds the layer.
    ///
    /// # Errors
    /// When a setting is out of range.
    fn init_layer<B: RecurrentBackend>(
        &self,
        device: &B::Device,
    ) -> crate::Result<Recurrent<B, Self::Cell<B>>>;

    /// Builds a single cell of `input_size` inputs (for step-by-step use); the layer-only
    /// settings (layers, direction, dropout) are ignored.
    ///
    /// # Errors
    /// When a setting is out of range.
    fn init_cell<B: RecurrentBackend>(&self, device: &B::Device) -> crate::Result<Self::Cell<B>> {
        Ok(self.single().init_layer(device)?.cells.remove(0))
    }
}

macro_rules! recurrent_config_impl {
    ($config:ident => $cell:ident) => {
        impl RecurrentConfig for $config {
            type Cell<B: RecurrentBackend> = $cell<B>;

            fn sized(input_size: usize, hidden_size: usize) -> Self {
                Self::new(input_size, hidden_size)
            }

            fn single(&self) -> Self {
                self.clone().stacked(1, false)
            }

            fn differentiated(self, how: Differentiation) -> Self {
                self.with_differentiation(how)
            }

            fn stacked(self, num_layers: usize, bidirectional: bool) -> Self {
                self.with_num_layers(num_layers)
                    .with_bidirectional(bidirectional)
            }

            fn init_layer<B: RecurrentBackend>(
                &self,
                device: &B::Device,
            ) -> crate::Result<Recurrent<B, $cell<B>>> {
                self.init(device)
            }
        }
    };
}

recurrent_config_impl!(RnnConfig => RnnCell);
recurrent_config_impl!(LstmConfig => LstmCell);
recurrent_config_impl!(GruConfig => GruCell);

impl RnnConfig {
    /// Builds the layer.
    pub fn init<B: RecurrentBackend>(&self, device: &B::Device) -> crate::Result<Rnn<B>> {
        self.activation.validate()?;
        let gates = (1, self.recurrent_bias, None);
        self.common().build(device, gates, |weights| RnnCell {
            weights,
            activation: self.activation,
        })
    }
}

impl LstmConfig {
    /// Builds the layer.
    pub fn init<B: RecurrentBackend>(&self, device: &B::Device) -> crate::Result<Lstm<B>> {
        let forget = self.unit_forget_bias.then_some(1); // gate order i, f, g, o
        let gates = (4, self.recurrent_bias, forget);
        self.common()
            .build(device, gates, |weights| LstmCell { weights })
    }
}

impl GruConfig {
    /// Builds the layer.
    pub fn init<B: RecurrentBackend>(&self, device: &B::Device) -> crate::Result<Gru<B>> {
        let gates = (3, self.recurrent_bias, None);
        self.common().build(device, gates, |weights| GruCell {
            weights,
            reset_after: self.reset_after,
        })
    }
}
