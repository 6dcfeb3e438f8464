//! Seeded synthetic translation tasks, made to show what attention buys: a decoder that must
//! reproduce a long input through one fixed-size state loses it; one that can look back reads
//! it off.
//!
//! - [`Task::Copy`]: a string of digits to itself;
//! - [`Task::Reverse`]: a string of digits to its reverse (the first output digit needs the
//!   last input digit: the hardest case for a single encoder state);
//! - [`Task::Sort`]: a string of digits to its digits in ascending order;
//! - [`Task::Date`]: a date written by a person (`3 May 1979`, `thursday, may 3, 1979`,
//!   `03/05/79`, `3.5.1979`, ... ten formats, months and weekdays in words, day before month
//!   in the numeric forms) to ISO 8601 (`1979-05-03`). Dates run from 1950 to 2049, so a
//!   two-digit year is never ambiguous.
//!
//! [`split`] draws a test set and a training set that share no item: for copy and reverse no
//! source string, for sort no target (no multiset of digits, in any order), for dates no date
//! (in any format). A task with many sources per target is held out by target, so that no test
//! output was ever a training output.
//!
//! ```
//! use rensa_data::tasks::{Task, split};
//!
//! let (train, test) = split(Task::Date, 100, 1..=1, 20, 1..=1, 7);
//! assert_eq!((train.len(), test.len()), (100, 20));
//! assert!(test.iter().all(|e| e.target.len() == 10 && &e.target[4..5] == "-"));
//! assert!(train.iter().all(|e| !test.iter().any(|t| t.target == e.target)));
//! ```

use crate::rng::SplitMix64;
use std::collections::HashSet;
use std::ops::RangeInclusive;

/// A synthetic translation task (see the [module docs](self)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Task {
    /// Digits to themselves.
    Copy,
    /// Digits to their reverse.
    Reverse,
    /// Digits to their ascending order.
    Sort,
    /// Human-readable dates to ISO 8601.
    Date,
}

impl Task {
    /// Every task, in the order of the variants.
    pub const ALL: [Task; 4] = [Task::Copy, Task::Reverse, Task::Sort, Task::Date];

    /// The task's name on a command line.
    pub fn name(self) -> &'static str {
        match self {
            Task::Copy => "copy",
            Task::Reverse => "reverse",
            Task::Sort => "sort",
            Task::Date => "date",
        }
    }

    /// The key two examples are the same item by: the source for copy and reverse (one source
    /// per target), the target for sort and dates (many sources per target).
    fn key(self, e: &Example) -> &str {
        match self {
            Task::Date | Task::Sort => &e.target,
            Task::Copy | Task::Reverse => &e.source,
        }
    }

    /// How many distinct items [`examples`] can draw (saturating): for each length `n` in
    /// `lengths`, `10^n` digit strings for copy and reverse and `C(n + 9, 9)` multisets of
    /// digits for sort; every day of the dates' range (1950-2049) for dates.
    pub fn distinct(self, lengths: &RangeInclusive<usize>) -> u128 {
        let per_length = |n: usize| -> u128 {
            match self {
                Task::Sort => {
                    // C(n + 9, 9) = prod over k of (n + k) / k, exact after every step
                    (1..=9u128).try_fold(1u128, |c, k| c.checked_mul(n as u128 + k).map(|p| p / k))
                }
                _ => 10u128.checked_pow(u32::try_from(n).unwrap_or(u32::MAX)),
            }
            .unwrap_or(u128::MAX)
        };
        if self == Task::Date {
            return (LAST_DAY - FIRST_DAY + 1) as u128;
        }
        lengths
            .clone()
            .map(per_length)
            .fold(0u128, u128::saturating_add)
    }

    /// One example; `lengths` is the range of digit-string lengths (unused for dates).
    pub fn example(self, rng: &mut SplitMix64, lengths: &RangeInclusive<usize>) -> Example {
        if self == Task::Date {
            return date_example(rng);
        }
        let (lo, hi) = (*lengths.start(), *lengths.end());
        assert!(
            lo >= 1 && lo <= hi,
            "digit-string lengths: expected a range 1 <= lo <= hi, got {lo}..={hi}"
        );
        let n = lo + rng.below(hi - lo + 1);
        let source: String = (0..n)
            .map(|_| char::from(b'0' + rng.below(10) as u8))
            .collect();
        let target = match self {
            Task::Reverse => source.chars().rev().collect(),
            Task::Sort => {
                let mut digits: Vec<char> = source.chars().collect();
                digits.sort_unstable();
                digits.into_iter().collect()
            }
            _ => source.clone(),
        };
        Example { source, target }
    }
}

impl std::str::FromStr for Task {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Task::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| format!("unknown task {s:?}: copy, reverse, sort or date"))
    }
}

impl std::fmt::Display for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A source text and the target text it translates to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Example {
    /// The input.
    pub source: String,
    /// The expected output.
    pub target: String,
}

/// `n` distinct examples of `task` (lengths in `lengths` for the digit tasks), none of whose
/// keys (the source for copy and reverse, the target for sort and dates) is in `exclude`,
/// drawn with `seed`.
///
/// # Panics
/// When there are fewer than `n` such examples (e.g. 500 distinct strings of length 2).
pub fn examples(
    task: Task,
    n: usize,
    lengths: RangeInclusive<usize>,
    seed: u64,
    exclude: &HashSet<String>,
) -> Vec<Example> {
    let mut rng = SplitMix64::new(seed);
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(n);
    let mut tries = 0usize;
    while out.len() < n {
        tries += 1;
        assert!(
            tries <= 100 * n + 1000,
            "{task}: only {} distinct examples of lengths {lengths:?} found after {tries} draws, \
             {n} asked",
            out.len()
        );
        let e = task.example(&mut rng, &lengths);
        let key = task.key(&e).to_string();
        if !exclude.contains(&key) && seen.insert(key) {
            out.push(e);
        }
    }
    out
}

/// A training set and a held-out test set that share no item: `test_n` test examples of
/// `test_lengths` first, then `train_n` training examples of `train_lengths` that avoid them.
pub fn split(
    task: Task,
    train_n: usize,
    train_lengths: RangeInclusive<usize>,
    test_n: usize,
    test_lengths: RangeInclusive<usize>,
    seed: u64,
) -> (Vec<Example>, Vec<Example>) {
    let none = HashSet::new();
    let test = examples(task, test_n, test_lengths, seed ^ 0x7e57, &none);
    let held: HashSet<String> = test.iter().map(|e| task.key(e).to_string()).collect();
    let train = examples(task, train_n, train_lengths, seed, &held);
    (train, test)
}

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];
const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];
/// Days from 1970-01-01 to 1950-01-01 and to 2049-12-31.
const FIRST_DAY: i64 = -7305;
const LAST_DAY: i64 = 29219;

/// The civil date `(year, month 1..=12, day 1..=31)` of day `z` since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn capitalised(word: &str) -> String {
    let mut c = word.chars();
    c.next()
        .map(|first| first.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

fn ordinal(d: u32) -> &'static str {
    match (d % 10, d % 100) {
        (1, n) if n != 11 => "st",
        (2, n) if n != 12 => "nd",
        (3, n) if n != 13 => "rd",
        _ => "th",
    }
}

/// A uniformly drawn date of 1950-2049 in one of ten human formats, and its ISO form.
fn date_example(rng: &mut SplitMix64) -> Example {
    let z = FIRST_DAY + rng.below((LAST_DAY - FIRST_DAY + 1) as usize) as i64;
    date_in_format(z, rng.below(10))
}

/// Day `z` since 1970-01-01 in human format `format` (0-9), and its ISO form.
fn date_in_format(z: i64, format: usize) -> Example {
    let (y, m, d) = civil_from_days(z);
    // 1970-01-01 was a Thursday (index 3).
    let weekday = WEEKDAYS[(z + 3).rem_euclid(7) as usize];
    let month = MONTHS[m as usize - 1];
    let yy = y % 100;
    let source = match format {
        0 => format!("{d} {} {y}", capitalised(month)),
        1 => format!("{weekday}, {month} {d}, {y}"),
        2 => format!("{d:02}/{m:02}/{yy:02}"),
        3 => format!("{d}.{m}.{y}"),
        4 => format!("{} {d}, {y}", capitalised(month)),
        5 => format!("{d:02} {} {yy:02}", &month[..3]),
        6 => format!(
            "{} {d} {} {y}",
            capitalised(&weekday[..3]),
            capitalised(month)
        ),
        7 => format!("{d}{} of {month} {y}", ordinal(d)),
        8 => format!("{} {d} {y}", month.to_uppercase()),
        _ => format!("{d:02}-{m:02}-{y}"),
    };
    Example {
        source,
        target: format!("{y}-{m:02}-{d:02}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digit_tasks_do_what_they_say() {
        let mut rng = SplitMix64::new(3);
        for _ in 0..100 {
            let e = Task::Reverse.example(&mut rng, &(5..=30));
            assert!((5..=30).contains(&e.source.len()));
            assert_eq!(e.target, e.source.chars().rev().collect::<String>());
            let s = Task::Sort.example(&mut rng, &(1..=9));
            assert!(s.target.as_bytes().windows(2).all(|w| w[0] <= w[1]));
            let mut a: Vec<u8> = s.source.into_bytes();
            a.sort_unstable();
            assert_eq!(a, s.target.into_bytes());
        }
    }

    #[test]
    fn dates_are_real_and_their_weekdays_right() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(FIRST_DAY), (1950, 1, 1));
        assert_eq!(civil_from_days(LAST_DAY), (2049, 12, 31));
        assert_eq!(civil_from_days(3409), (1979, 5, 3));
        // 3 May 1979 was a Thursday; 29 Feb 2000 existed
        assert_eq!(WEEKDAYS[(3409i64 + 3).rem_euclid(7) as usize], "thursday");
        assert_eq!(civil_from_days(11016), (2000, 2, 29));
        let mut rng = SplitMix64::new(1);
        let mut formats = HashSet::new();
        for _ in 0..2000 {
            let e = date_example(&mut rng);
            let y: i64 = e.target[..4].parse().unwrap();
            assert!((1950..=2049).contains(&y), "{e:?}");
            let digits: String = e.source.chars().filter(char::is_ascii_digit).collect();
            let day = e.target[8..].trim_start_matches('0');
            assert!(digits.contains(day), "{e:?}");
            // the format's shape: digits 9, lower case a, upper case A, runs collapsed
            let mut shape: Vec<char> = e
                .source
                .chars()
                .map(|c| match c {
                    '0'..='9' => '9',
                    'a'..='z' => 'a',
                    'A'..='Z' => 'A',
                    c => c,
                })
                .collect();
            shape.dedup();
            formats.insert(shape.into_iter().collect::<String>());
        }
        assert_eq!(formats.len(), 10, "{formats:?}");
    }

    #[test]
    fn the_split_holds_out_whole_items_and_is_seeded() {
        let (train, test) = split(Task::Reverse, 300, 1..=3, 100, 2..=2, 5);
        let held: HashSet<&str> = test.iter().map(|e| e.source.as_str()).collect();
        assert_eq!(held.len(), 100);
        assert!(train.iter().all(|e| !held.contains(e.source.as_str())));
        assert_eq!(split(Task::Reverse, 300, 1..=3, 100, 2..=2, 5).0, train);
        assert_ne!(split(Task::Reverse, 300, 1..=3, 100, 2..=2, 6).0, train);
        assert_eq!("sort".parse::<Task>().unwrap(), Task::Sort);
        assert!(
            "sorting"
                .parse::<Task>()
                .unwrap_err()
                .contains("copy, reverse")
        );
    }

    #[test]
    fn distinct_counts_what_can_be_drawn() {
        assert_eq!(Task::Reverse.distinct(&(1..=2)), 110);
        // multisets: C(12, 9) of length 3; C(10, 9) + C(11, 9) of lengths 1 and 2
        assert_eq!(Task::Sort.distinct(&(3..=3)), 220);
        assert_eq!(Task::Sort.distinct(&(1..=2)), 65);
        assert_eq!(Task::Sort.distinct(&(usize::MAX..=usize::MAX)), u128::MAX);
        // every multiset of length 2 is drawn, and no more can be
        assert_eq!(
            examples(Task::Sort, 55, 2..=2, 1, &HashSet::new()).len(),
            55
        );
        assert_eq!(Task::Copy.distinct(&(30..=60)), u128::MAX);
        let dates = Task::Date.distinct(&(1..=1));
        assert_eq!(dates, 36_525);
        assert_eq!(civil_from_days(FIRST_DAY), (1950, 1, 1));
        assert_eq!(civil_from_days(LAST_DAY), (2049, 12, 31));
    }

    #[test]
    fn sort_holds_out_targets_not_sources() {
        // many sources sort to the same digits: a held-out source is not a held-out output
        let (train, test) = split(Task::Sort, 2000, 3..=6, 200, 6..=6, 0);
        let held: HashSet<&str> = test.iter().map(|e| e.target.as_str()).collect();
        assert_eq!(held.len(), 200);
        assert!(train.iter().all(|e| !held.contains(e.target.as_str())));
    }

    #[test]
    fn the_documented_dates_are_what_the_generator_writes() {
        // 3 May 1979 (day 3409) in every format: the module docs' examples are among them
        let written: HashSet<String> = (0..10)
            .map(|k| date_in_format(3409, k))
            .inspect(|e| assert_eq!(e.target, "1979-05-03"))
            .map(|e| e.source)
            .collect();
        assert_eq!(written.len(), 10);
        for doc in [
            "3 May 1979",
            "thursday, may 3, 1979",
            "03/05/79",
            "3.5.1979",
        ] {
            assert!(written.contains(doc), "{doc:?} not among {written:?}");
        }
    }

    #[test]
    #[should_panic(expected = "distinct examples")]
    fn too_few_distinct_items_is_a_clear_panic() {
        examples(Task::Copy, 11, 1..=1, 0, &HashSet::new());
    }
}
