//! What a model must say to be trained.

use burn::tensor::{Tensor, backend::Backend};

/// A model's training objective on a batch of items.
///
/// Implement it for every backend (`impl<B: Backend> Objective<B> for MyModel<B>`) so that the
/// same code gives the training loss (on the autodiff backend) and the validation loss (on the
/// inner backend, through `model.valid()`).
pub trait Objective<B: Backend> {
    /// One training example, kept on the host (e.g. a window of a series, an index).
    type Item: Clone + Send + Sync;

    /// The mean loss over `items`, a one-element tensor.
    fn loss(&self, items: &[Self::Item], device: &B::Device) -> Tensor<B, 1>;
}
