//! Padded batches of encoded dialogues.

use crate::error::{DataError, Result};
use crate::vocab::{BOS, EOS, PAD};
use burn::tensor::{Int, Tensor, TensorData, backend::Backend};

fn batch_error(what: String) -> DataError {
    DataError::Format {
        origin: "dialogue batch".into(),
        what,
    }
}

/// A batch of dialogues of token ids, on the host, laid out for a hierarchical model.
///
/// Every utterance of every dialogue is one row of [`utterances`](Self::utterances)
/// (`dialogue · turns + turn`), right-padded to the longest utterance; a dialogue shorter than
/// the batch's longest has absent turns, one [`PAD`] token long. Every turn after the first is a
/// response, one row of the decoder's arrays (`dialogue · (turns − 1) + turn − 1`): input
/// `BOS y₁ … y_n`, target `y₁ … y_n EOS`, padded; an absent turn's response has length 0 and
/// no weight in [`target_mask`](Self::target_mask).
///
/// ```
/// use rensa_data::dialogue::DialogueBatch;
/// use rensa_data::vocab::{BOS, EOS, PAD};
///
/// let a = vec![vec![4, 5], vec![6], vec![7, 8, 9]];
/// let b = vec![vec![10], vec![11, 12]];
/// let batch = DialogueBatch::new(&[&a, &b]);
/// assert_eq!((batch.turns, batch.utterance_steps, batch.responses()), (3, 3, 4));
/// assert_eq!(batch.utterance_lengths, [2, 1, 3, 1, 2, 1]);
/// assert_eq!(&batch.decoder_input[4..8], [BOS, 7, 8, 9]);
/// assert_eq!(&batch.target[8..12], [11, 12, EOS, PAD]);
/// assert_eq!(batch.target_lengths, [2, 4, 3, 0]);
/// assert_eq!(batch.response_turn(3), (1, 2));
/// assert!(batch.is_last(1) && batch.is_last(2) && !batch.is_last(0));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DialogueBatch {
    /// Dialogues in the batch.
    pub dialogues: usize,
    /// The most turns of a dialogue in the batch.
    pub turns: usize,
    /// Each dialogue's turns (at least 2).
    pub turn_counts: Vec<usize>,
    /// The longest utterance, in tokens.
    pub utterance_steps: usize,
    /// Ids `[dialogues · turns, utterance_steps]`, right-padded with [`PAD`].
    pub utterances: Vec<usize>,
    /// Each utterance's length; 1 for an absent turn (one [`PAD`] token, whose results no loss
    /// reads).
    pub utterance_lengths: Vec<usize>,
    /// `utterance_steps + 1` (for `BOS` / `EOS`).
    pub response_steps: usize,
    /// Decoder inputs `[responses, response_steps]`: `BOS y₁ … y_n`, padded.
    pub decoder_input: Vec<usize>,
    /// Expected outputs `[responses, response_steps]`: `y₁ … y_n EOS`, padded.
    pub target: Vec<usize>,
    /// Each response's length plus one (its `EOS`); 0 for an absent turn.
    pub target_lengths: Vec<usize>,
}

impl DialogueBatch {
    /// Pads `dialogues` (each a list of turns of ids) into one batch.
    ///
    /// # Panics
    /// Where [`try_new`](Self::try_new) returns an error: the batches a data source builds from
    /// [`Dialogue`](super::Dialogue)s, which made those checks, cannot fail.
    pub fn new(dialogues: &[&[Vec<usize>]]) -> Self {
        Self::try_new(dialogues).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Pads `dialogues` (each a list of turns of ids) into one batch.
    ///
    /// # Errors
    /// An empty batch, a dialogue of fewer than two turns or an empty turn (the checks of
    /// [`Dialogue::new`](super::Dialogue::new); dialogues and turns numbered from 1).
    pub fn try_new(dialogues: &[&[Vec<usize>]]) -> Result<Self> {
        if dialogues.is_empty() {
            return Err(batch_error(
                "a batch of dialogues needs at least one dialogue".into(),
            ));
        }
        for (k, d) in dialogues.iter().enumerate() {
            if d.len() < 2 {
                return Err(batch_error(format!(
                    "dialogue {} of {}: a dialogue needs at least 2 turns (a context and a \
                     response), got {}",
                    k + 1,
                    dialogues.len(),
                    d.len()
                )));
            }
            if let Some(t) = d.iter().position(Vec::is_empty) {
                return Err(batch_error(format!(
                    "dialogue {} of {}: turn {} of {} is empty",
                    k + 1,
                    dialogues.len(),
                    t + 1,
                    d.len()
                )));
            }
        }
        let n = dialogues.len();
        let turns = dialogues.iter().map(|d| d.len()).max().unwrap_or(0);
        let steps = dialogues
            .iter()
            .flat_map(|d| d.iter().map(Vec::len))
            .max()
            .unwrap_or(0);
        let responses = n * (turns - 1);
        let mut out = Self {
            dialogues: n,
            turns,
            turn_counts: dialogues.iter().map(|d| d.len()).collect(),
            utterance_steps: steps,
            utterances: vec![PAD; n * turns * steps],
            utterance_lengths: vec![1; n * turns],
            response_steps: steps + 1,
            decoder_input: vec![PAD; responses * (steps + 1)],
            target: vec![PAD; responses * (steps + 1)],
            target_lengths: vec![0; responses],
        };
        for (d, dialogue) in dialogues.iter().enumerate() {
            for (k, u) in dialogue.iter().enumerate() {
                let row = d * turns + k;
                out.utterances[row * steps..][..u.len()].copy_from_slice(u);
                out.utterance_lengths[row] = u.len();
                if k == 0 {
                    continue;
                }
                let r = d * (turns - 1) + k - 1;
                let at = r * (steps + 1);
                out.decoder_input[at] = BOS;
                out.decoder_input[at + 1..][..u.len()].copy_from_slice(u);
                out.target[at..][..u.len()].copy_from_slice(u);
                out.target[at + u.len()] = EOS;
                out.target_lengths[r] = u.len() + 1;
            }
        }
        Ok(out)
    }

    /// A batch of owned dialogues, as a training loop's data source hands them
    /// (`rensa_train::Items::new(&dialogues, DialogueBatch::of)`).
    pub fn of(dialogues: &[&Vec<Vec<usize>>]) -> Self {
        let borrowed: Vec<&[Vec<usize>]> = dialogues.iter().map(|d| &d[..]).collect();
        Self::new(&borrowed)
    }

    /// Response rows: `dialogues · (turns − 1)`.
    pub fn responses(&self) -> usize {
        self.dialogues * (self.turns - 1)
    }

    /// Tokens the decoder predicts (every response's `EOS` included).
    pub fn response_tokens(&self) -> usize {
        self.target_lengths.iter().sum()
    }

    /// `(dialogue, turn)` of response row `row` (turn from 1).
    pub fn response_turn(&self, row: usize) -> (usize, usize) {
        (row / (self.turns - 1), row % (self.turns - 1) + 1)
    }

    /// Whether response row `row` is its dialogue's last turn.
    pub fn is_last(&self, row: usize) -> bool {
        let (d, turn) = self.response_turn(row);
        turn + 1 == self.turn_counts[d]
    }

    /// Utterance ids `[dialogues · turns, utterance_steps]` on `device`.
    pub fn utterance_tensor<B: Backend>(&self, device: &B::Device) -> Tensor<B, 2, Int> {
        ids(
            &self.utterances,
            [self.dialogues * self.turns, self.utterance_steps],
            device,
        )
    }

    /// `(decoder_input, target)`, each `[responses, response_steps]`, on `device`.
    pub fn response_tensors<B: Backend>(
        &self,
        device: &B::Device,
    ) -> (Tensor<B, 2, Int>, Tensor<B, 2, Int>) {
        let shape = [self.responses(), self.response_steps];
        (
            ids(&self.decoder_input, shape, device),
            ids(&self.target, shape, device),
        )
    }

    /// `[responses, response_steps]`: 1 where a target position is real (its `EOS` included), 0
    /// on padding and on absent turns.
    pub fn target_mask<B: Backend>(&self, device: &B::Device) -> Tensor<B, 2> {
        let steps = self.response_steps;
        let values: Vec<f32> = self
            .target_lengths
            .iter()
            .flat_map(|&len| (0..steps).map(move |t| if t < len { 1.0 } else { 0.0 }))
            .collect();
        Tensor::from_data(TensorData::new(values, [self.responses(), steps]), device)
    }
}

fn ids<B: Backend>(v: &[usize], shape: [usize; 2], device: &B::Device) -> Tensor<B, 2, Int> {
    let data: Vec<i64> = v.iter().map(|&x| x as i64).collect();
    Tensor::from_data(TensorData::new(data, shape), device)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(dialogues: &[&[Vec<usize>]]) -> String {
        DialogueBatch::try_new(dialogues).unwrap_err().to_string()
    }

    #[test]
    fn bad_dialogues_are_refused_by_number() {
        assert_eq!(
            refusal(&[&[vec![4], vec![5]], &[vec![4]]]),
            "dialogue batch: dialogue 2 of 2: a dialogue needs at least 2 turns (a context and \
             a response), got 1"
        );
        assert_eq!(
            refusal(&[&[vec![4], vec![]]]),
            "dialogue batch: dialogue 1 of 1: turn 2 of 2 is empty"
        );
        assert_eq!(
            refusal(&[]),
            "dialogue batch: a batch of dialogues needs at least one dialogue"
        );
    }

    #[test]
    #[should_panic(expected = "dialogue 1 of 1: turn 2 of 2 is empty")]
    fn new_panics_where_try_new_refuses() {
        DialogueBatch::new(&[&[vec![4], vec![]]]);
    }

    #[test]
    fn tensors_have_the_batch_shapes() {
        use burn::backend::NdArray;
        let batch = DialogueBatch::new(&[&[vec![4, 5], vec![6]]]);
        let device = Default::default();
        assert_eq!(batch.utterance_tensor::<NdArray>(&device).dims(), [2, 2]);
        let (input, target) = batch.response_tensors::<NdArray>(&device);
        assert_eq!((input.dims(), target.dims()), ([1, 3], [1, 3]));
        let mask: Vec<f32> = batch
            .target_mask::<NdArray>(&device)
            .into_data()
            .to_vec()
            .unwrap();
        assert_eq!(mask, [1.0, 1.0, 0.0]);
        assert_eq!(batch.response_tokens(), 2);
    }
}
