//! Learning-rate schedules over a whole run.
//!
//! burn's `CosineAnnealingLrScheduler` restarts after its period (SGDR); a run that anneals
//! once, from the initial rate to a final one over all its steps, wants the rate to stay at the
//! final value if it takes a step more than planned (the last batch of an epoch, a resume).
//! [`Anneal`] does that, for a cosine or a linear curve, and [`Anneal::constant`] keeps the rate
//! fixed, so a program can choose the schedule at run time and still hand [`Fit`](crate::Fit)
//! one type.

use burn::lr_scheduler::LrScheduler;
use burn::tensor::backend::Backend;

use crate::Error;

/// The shape of an [`Anneal`] schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Curve {
    /// The initial rate at every step.
    Constant,
    /// `final + (initial - final) (1 + cos(pi t / T)) / 2` at step `t` of `T` (Loshchilov and
    /// Hutter's cosine annealing, without restarts).
    Cosine,
    /// `initial + (final - initial) t / T`.
    Linear,
}

impl Curve {
    /// The curve's name, as [`Curve::parse`] reads it.
    pub fn name(self) -> &'static str {
        match self {
            Curve::Constant => "constant",
            Curve::Cosine => "cosine",
            Curve::Linear => "linear",
        }
    }

    /// `constant`, `cosine` or `linear`.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "constant" => Ok(Curve::Constant),
            "cosine" => Ok(Curve::Cosine),
            "linear" => Ok(Curve::Linear),
            other => Err(format!(
                "unknown learning-rate schedule {other:?} (expected constant, cosine or linear)"
            )),
        }
    }
}

impl std::fmt::Display for Curve {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A learning rate that goes from `initial` to `last` along a [`Curve`] over `steps` optimiser
/// steps, then stays at `last`. Its state (the number of steps taken) is saved in checkpoints.
///
/// ```
/// use burn::lr_scheduler::LrScheduler;
/// use rensa_train::schedule::{Anneal, Curve};
///
/// let mut lr = Anneal::new(Curve::Cosine, 0.002, 0.0, 4).unwrap();
/// let rates: Vec<f64> = (0..6).map(|_| lr.step()).collect();
/// assert_eq!(rates[0], 0.002);
/// assert!((rates[2] - 0.001).abs() < 1e-12);
/// assert_eq!(&rates[4..], &[0.0, 0.0]);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Anneal {
    curve: Curve,
    initial: f64,
    last: f64,
    steps: usize,
    /// Steps taken so far.
    taken: usize,
}

impl Anneal {
    /// A schedule from `initial` to `last` over `steps` steps. Errors unless both rates are
    /// finite, `initial > 0`, `0 <= last <= initial` and `steps >= 1`.
    pub fn new(curve: Curve, initial: f64, last: f64, steps: usize) -> crate::Result<Self> {
        if !(initial.is_finite() && initial > 0.0) {
            return Err(Error::config(
                "learning_rate",
                "a finite number > 0",
                initial,
            ));
        }
        if !(last.is_finite() && (0.0..=initial).contains(&last)) {
            return Err(Error::config(
                "final learning rate",
                format!("a number in [0, {initial}] (the initial rate)"),
                last,
            ));
        }
        if steps == 0 {
            return Err(Error::config("schedule steps", "at least 1", 0));
        }
        Ok(Self {
            curve,
            initial,
            last,
            steps,
            taken: 0,
        })
    }

    /// The same rate at every step.
    pub fn constant(rate: f64) -> crate::Result<Self> {
        Self::new(Curve::Constant, rate, rate, 1)
    }

    /// The rate of step `t` (counted from 0).
    pub fn rate_at(&self, t: usize) -> f64 {
        let x = t.min(self.steps) as f64 / self.steps as f64;
        match self.curve {
            Curve::Constant => self.initial,
            Curve::Cosine => {
                self.last
                    + 0.5 * (self.initial - self.last) * (1.0 + (std::f64::consts::PI * x).cos())
            }
            Curve::Linear => self.initial + (self.last - self.initial) * x,
        }
    }

    /// What the schedule is, for a run's settings: `cosine from 0.002 to 0 over 7440 steps`.
    pub fn describe(&self) -> String {
        match self.curve {
            Curve::Constant => format!("constant {}", self.initial),
            c => format!(
                "{c} from {} to {} over {} steps",
                self.initial, self.last, self.steps
            ),
        }
    }
}

impl LrScheduler for Anneal {
    type Record<B: Backend> = usize;

    fn step(&mut self) -> f64 {
        let rate = self.rate_at(self.taken);
        self.taken = self.taken.saturating_add(1);
        rate
    }

    fn to_record<B: Backend>(&self) -> usize {
        self.taken
    }

    fn load_record<B: Backend>(mut self, taken: usize) -> Self {
        self.taken = taken;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type B = burn::backend::NdArray<f32>;

    #[test]
    fn cosine_and_linear_reach_the_final_rate_and_stay() {
        for (curve, mid) in [(Curve::Cosine, 0.55), (Curve::Linear, 0.55)] {
            let mut s = Anneal::new(curve, 1.0, 0.1, 10).unwrap();
            let rates: Vec<f64> = (0..13).map(|_| s.step()).collect();
            assert_eq!(rates[0], 1.0);
            assert!((rates[5] - mid).abs() < 1e-12, "{curve}: {rates:?}");
            assert!(
                rates.windows(2).all(|w| w[1] <= w[0]),
                "{curve}: not decreasing"
            );
            assert!(rates[10..].iter().all(|&r| (r - 0.1).abs() < 1e-12));
        }
        let mut c = Anneal::constant(0.01).unwrap();
        assert!((0..5).all(|_| c.step() == 0.01));
    }

    #[test]
    fn a_run_has_the_steps_items_makes() {
        // 950 training items (5% validate) in batches of 64: 15 steps per epoch
        let config = crate::FitConfig::for_epochs(3, 64).with_validation_split(0.05);
        assert_eq!(config.steps(1000).unwrap(), 45);
        assert!(config.steps(10).is_err());
    }

    #[test]
    fn the_record_resumes_where_it_stopped() {
        let mut a = Anneal::new(Curve::Cosine, 0.5, 0.0, 7).unwrap();
        for _ in 0..3 {
            a.step();
        }
        let record = a.to_record::<B>();
        let mut b = Anneal::new(Curve::Cosine, 0.5, 0.0, 7)
            .unwrap()
            .load_record::<B>(record);
        assert!((0..9).all(|_| a.step() == b.step()));
    }

    #[test]
    fn bad_settings_are_errors_naming_them() {
        let e = Anneal::new(Curve::Cosine, 0.0, 0.0, 5).unwrap_err();
        assert!(e.to_string().contains("learning_rate"), "{e}");
        let e = Anneal::new(Curve::Cosine, 0.1, 0.2, 5).unwrap_err();
        assert!(e.to_string().contains("final learning rate"), "{e}");
        let e = Anneal::new(Curve::Linear, 0.1, f64::NAN, 5).unwrap_err();
        assert!(e.to_string().contains("final learning rate"), "{e}");
        let e = Anneal::new(Curve::Linear, 0.1, 0.0, 0).unwrap_err();
        assert!(e.to_string().contains("schedule steps"), "{e}");
        assert!(Curve::parse("step").unwrap_err().contains("cosine"));
        for c in [Curve::Constant, Curve::Cosine, Curve::Linear] {
            assert_eq!(Curve::parse(c.name()), Ok(c));
        }
    }
}
