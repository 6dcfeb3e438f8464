//! rensa-nn's f64 tests, in a binary of their own: the ndarray device's float dtype is fixed per
//! process (see `rensa_testkit::f64_device`). Finite-difference gradient checks, and the course's
//! numpy LSTM reproduced to f64 precision.

mod attention;
mod conv;
mod course_lstm;
mod gradcheck;
mod latent;
mod loss;
mod optim;
