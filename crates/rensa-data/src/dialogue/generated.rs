//! Seeded synthetic dialogues that need their context, with a known best perplexity.
//!
//! Every dialogue has three or more turns:
//!
//! 1. a fact: `my favourite colour is red .` (one of six slots, twelve values each, two
//!    phrasings);
//! 2. one or more filler turns that say nothing about it (`i see .`, `how was work today ?`, ...);
//! 3. an answer that recalls the fact: `your favourite colour is red .` For three of the slots
//!    (colour, city, food) there are four equally likely forms of the answer (`red , you said .`,
//!    `it was red , right ?`, `you like red .`), for the other three only the first.
//!
//! The turn before the answer is filler, so a model that sees only it cannot know the fact
//! (a seq2seq over the last turn); a model of the whole context can (HRED). What no model of the
//! next turn given the context can know is which form the answer takes, and, when the number of
//! filler turns varies, whether the answer comes now or after another filler (a model told that
//! the turn is the last would not pay that second doubt). With `k` filler turns drawn uniformly from
//! `lo..=hi`, a context of the fact and `k` fillers is followed by the answer with probability
//! `P(K = k | K ≥ k) = 1 / (hi − k + 1)`; the first words of the answers (`your`, the value,
//! `it`, `you`) are never the first word of a filler, so this doubt costs exactly
//! `ln(hi − k + 1)` nats, on the answer's first word, and the answer's conditional entropy given
//! its context is
//!
//! ```text
//! H(answer_d | context_d) = ln(forms_d) + ln(hi − k_d + 1)
//! ```
//!
//! (`forms_d` 4 for a four-form slot, 1 for the others; the second term 0 when the range holds
//! one count, or after the most fillers the range allows). Over a test set the best achievable
//! perplexity of the answers is therefore
//!
//! ```text
//! floor = exp( Σ_d H(answer_d | context_d) / Σ_d (|answer_d| + 1) )
//! ```
//!
//! (the `+ 1` is the end-of-sequence token a model also predicts); [`floor_perplexity`]
//! computes it. Each [`Generated`] item lists every valid form of its answer, to measure how many
//! of them sampled responses cover.
//!
//! ```
//! use rensa_data::dialogue::generated::{floor_perplexity, generate};
//!
//! let items = generate(200, 1..=2, 7);
//! assert!(items.iter().all(|g| g.answers.contains(&g.dialogue.last().to_vec())));
//! let floor = floor_perplexity(&items);
//! assert!(floor > 1.0 && floor < 1.2, "{floor}");
//! ```

use super::Dialogue;
use crate::rng::SplitMix64;
use crate::vocab::Vocabulary;
use std::ops::RangeInclusive;

/// A slot of the fact turn: its name, its values and how many answer forms it allows.
struct Slot {
    name: &'static str,
    values: [&'static str; 12],
    forms: usize,
}

const SLOTS: [Slot; 6] = [
    Slot {
        name: "colour",
        values: [
            "red", "blue", "green", "yellow", "black", "white", "purple", "orange", "pink", "grey",
            "brown", "gold",
        ],
        forms: 4,
    },
    Slot {
        name: "pet",
        values: [
            "dog", "cat", "parrot", "rabbit", "hamster", "turtle", "horse", "goldfish", "snake",
            "ferret", "mouse", "lizard",
        ],
        forms: 1,
    },
    Slot {
        name: "city",
        values: [
            "paris", "london", "tokyo", "lima", "cairo", "oslo", "rome", "delhi", "sydney",
            "boston", "vienna", "dakar",
        ],
        forms: 4,
    },
    Slot {
        name: "number",
        values: [
            "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
            "eleven", "twelve",
        ],
        forms: 1,
    },
    Slot {
        name: "food",
        values: [
            "pasta",
            "rice",
            "soup",
            "pizza",
            "curry",
            "salad",
            "bread",
            "cheese",
            "fish",
            "noodles",
            "tacos",
            "dumplings",
        ],
        forms: 4,
    },
    Slot {
        name: "sport",
        values: [
            "tennis", "golf", "chess", "rugby", "hockey", "boxing", "skiing", "rowing", "cricket",
            "judo", "surfing", "fencing",
        ],
        forms: 1,
    },
];

/// The fact turn's phrasings (`{s}` the slot, `{v}` the value).
const FACTS: [&str; 2] = [
    "my favourite {s} is {v} .",
    "i love {v} . it is my favourite {s} .",
];

/// Turns that say nothing about the fact.
const FILLERS: [&str; 8] = [
    "i see .",
    "that is nice .",
    "tell me more about your day .",
    "how was work today ?",
    "the weather is cold here .",
    "ok , sounds good .",
    "really ?",
    "i had a long week .",
];

/// The answer's forms; a one-form slot uses the first.
const ANSWERS: [&str; 4] = [
    "your favourite {s} is {v} .",
    "{v} , you said .",
    "it was {v} , right ?",
    "you like {v} .",
];

fn fill(template: &str, slot: &str, value: &str) -> Vec<String> {
    template
        .split(' ')
        .map(|w| match w {
            "{s}" => slot.to_string(),
            "{v}" => value.to_string(),
            w => w.to_string(),
        })
        .collect()
}

/// One generated dialogue; see the [module docs](self).
#[derive(Clone, Debug, PartialEq)]
pub struct Generated {
    /// The fact, the filler turns and the answer (the last turn).
    pub dialogue: Dialogue,
    /// Every valid form of the answer, the one drawn among them; each equally likely.
    pub answers: Vec<Vec<String>>,
    /// `H(answer | context)` in nats: `ln(answers.len())`, plus `ln(hi − k + 1)` for the doubt
    /// whether the answer comes after this dialogue's `k` filler turns or after more (see the
    /// [module docs](self)).
    pub entropy: f64,
}

/// `count` dialogues with `filler_turns` filler turns each (drawn uniformly from the range),
/// seeded with `seed`.
///
/// # Panics
/// On a range that is empty or starts at 0 (every dialogue has a filler turn).
pub fn generate(count: usize, filler_turns: RangeInclusive<usize>, seed: u64) -> Vec<Generated> {
    let (lo, hi) = (*filler_turns.start(), *filler_turns.end());
    assert!(
        lo >= 1 && lo <= hi,
        "filler turns: expected a range 1 <= lo <= hi, got {lo}..={hi}"
    );
    let mut rng = SplitMix64::new(seed ^ 0xd1a1_09e5);
    (0..count)
        .map(|_| {
            let slot = &SLOTS[rng.below(SLOTS.len())];
            let value = slot.values[rng.below(slot.values.len())];
            let mut turns = vec![fill(FACTS[rng.below(FACTS.len())], slot.name, value)];
            let fillers = lo + rng.below(hi - lo + 1);
            for _ in 0..fillers {
                turns.push(fill(FILLERS[rng.below(FILLERS.len())], "", ""));
            }
            let answers: Vec<Vec<String>> = ANSWERS[..slot.forms]
                .iter()
                .map(|a| fill(a, slot.name, value))
                .collect();
            turns.push(answers[rng.below(answers.len())].clone());
            Generated {
                dialogue: Dialogue::new(turns).expect("generated turns are non-empty"),
                entropy: (answers.len() as f64).ln() + ((hi - fillers + 1) as f64).ln(),
                answers,
            }
        })
        .collect()
}

/// The lowest perplexity any model can reach on the answers of `items` (see the
/// [module docs](self)); 1 for no items.
pub fn floor_perplexity(items: &[Generated]) -> f64 {
    let nats: f64 = items.iter().map(|g| g.entropy).sum();
    let tokens: usize = items.iter().map(|g| g.dialogue.last().len() + 1).sum();
    if tokens == 0 {
        return 1.0;
    }
    (nats / tokens as f64).exp()
}

/// Every token the generator writes (after the specials, in a fixed order), so that training
/// and test sets of any size share one vocabulary.
pub fn vocabulary() -> Vocabulary {
    let mut v = Vocabulary::new();
    let templates = FACTS.iter().chain(&FILLERS).chain(&ANSWERS);
    for slot in &SLOTS {
        for value in slot.values {
            for t in templates.clone() {
                for w in fill(t, slot.name, value) {
                    v.insert(&w);
                }
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::UNK;
    use std::collections::HashSet;

    #[test]
    fn dialogues_are_seeded_and_have_the_promised_shape() {
        let a = generate(300, 1..=2, 5);
        assert_eq!(a, generate(300, 1..=2, 5));
        assert_ne!(a, generate(300, 1..=2, 6));
        for g in &a {
            let turns = g.dialogue.turns();
            assert!((3..=4).contains(&turns.len()));
            // the fact's value is in the answer and in no filler turn
            let value = turns[0]
                .iter()
                .find(|w| SLOTS.iter().any(|s| s.values.contains(&w.as_str())))
                .expect("a value in the fact");
            assert!(g.dialogue.last().contains(value));
            assert!(turns[1..turns.len() - 1].iter().all(|t| !t.contains(value)));
            assert!([1, 4].contains(&g.answers.len()));
            // after one filler of at most two the answer comes with probability 1/2
            let doubt = if turns.len() == 3 { 2f64.ln() } else { 0.0 };
            let expected = (g.answers.len() as f64).ln() + doubt;
            assert!(
                (g.entropy - expected).abs() < 1e-15,
                "{} vs {expected}",
                g.entropy
            );
        }
        // every form of a four-form slot appears
        let forms: std::collections::HashSet<&str> = a
            .iter()
            .filter(|g| g.answers.len() == 4)
            .map(|g| g.dialogue.last()[1].as_str())
            .collect();
        assert!(forms.len() >= 4, "{forms:?}");
    }

    #[test]
    fn the_floor_is_the_mean_entropy_per_answer_token() {
        let items = generate(50, 1..=1, 1);
        let nats: f64 = items.iter().map(|g| g.entropy).sum();
        let tokens: usize = items.iter().map(|g| g.dialogue.last().len() + 1).sum();
        assert!((floor_perplexity(&items) - (nats / tokens as f64).exp()).abs() < 1e-12);
        assert_eq!(floor_perplexity(&[]), 1.0);
        // one-form answers only: nothing to guess
        let certain: Vec<Generated> = items.into_iter().filter(|g| g.answers.len() == 1).collect();
        assert_eq!(floor_perplexity(&certain), 1.0);
    }

    #[test]
    fn the_entropy_is_what_the_generated_turns_show() {
        let items = generate(30_000, 1..=3, 3);
        let first = |t: &[String]| t[0].clone();
        // no answer starts as a filler does: the doubt whether the answer comes now is paid once
        let filler_starts: HashSet<String> = items
            .iter()
            .flat_map(|g| {
                let turns = g.dialogue.turns();
                turns[1..turns.len() - 1].iter().map(|t| first(t))
            })
            .collect();
        assert!(
            items
                .iter()
                .flat_map(|g| &g.answers)
                .all(|a| !filler_starts.contains(&first(a)))
        );
        // the forms are told apart by their first word
        for g in &items {
            let starts: HashSet<String> = g.answers.iter().map(|a| first(a)).collect();
            assert_eq!(starts.len(), g.answers.len());
        }
        // after k fillers the answer comes with probability 1 / (3 - k + 1), as the entropy says
        for k in 1..=3usize {
            let reached = items
                .iter()
                .filter(|g| g.dialogue.turns().len() > k + 1)
                .count();
            let answered: Vec<&Generated> = items
                .iter()
                .filter(|g| g.dialogue.turns().len() == k + 2)
                .collect();
            let share = answered.len() as f64 / reached as f64;
            let p = 1.0 / (3 - k + 1) as f64;
            assert!((share - p).abs() < 0.02, "k = {k}: {share} vs {p}");
            for g in answered {
                let expected = (g.answers.len() as f64).ln() - p.ln();
                assert!((g.entropy - expected).abs() < 1e-12);
            }
        }
        // a form's share among four-form answers is 1/4
        let four: Vec<&Generated> = items.iter().filter(|g| g.answers.len() == 4).collect();
        let firsts = four
            .iter()
            .filter(|g| g.dialogue.last() == g.answers[0].as_slice())
            .count();
        assert!((firsts as f64 / four.len() as f64 - 0.25).abs() < 0.02);
        // a range of one count leaves only the forms' doubt
        assert!(
            generate(200, 2..=2, 4)
                .iter()
                .all(|g| (g.entropy - (g.answers.len() as f64).ln()).abs() < 1e-15)
        );
    }

    #[test]
    fn the_vocabulary_covers_everything_generated() {
        let v = vocabulary();
        for g in generate(500, 1..=3, 2) {
            assert!(g.dialogue.encode(&v).iter().flatten().all(|&id| id != UNK));
        }
        assert!(v.len() < 150, "{}", v.len());
    }
}
