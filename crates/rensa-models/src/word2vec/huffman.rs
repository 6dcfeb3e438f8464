//! The Huffman tree of hierarchical softmax: frequent words get short paths.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Each word's path from the root: the inner nodes passed (rows of the output matrix,
/// `0..V-1`) and the branch taken at each (0 or 1).
#[derive(Clone, Debug, PartialEq)]
pub struct Huffman {
    /// Per word, the inner nodes from the root down.
    pub points: Vec<Vec<u32>>,
    /// Per word, the branch at each of its points.
    pub codes: Vec<Vec<u8>>,
}

impl Huffman {
    /// The tree of words with `counts` (at least two words). The two least frequent nodes are
    /// joined first, the lighter one on branch 0, as in word2vec.c.
    pub fn new(counts: &[u64]) -> Self {
        let v = counts.len();
        assert!(v >= 2, "a Huffman tree needs two words or more, got {v}");
        // (weight, node id): ids 0..v are words, v.. inner nodes; ties broken by id
        let mut heap: BinaryHeap<Reverse<(u64, usize)>> = counts
            .iter()
            .enumerate()
            .map(|(i, &c)| Reverse((c, i)))
            .collect();
        let mut parent = vec![0usize; 2 * v - 1];
        let mut branch = vec![0u8; 2 * v - 1];
        let mut next = v;
        while heap.len() > 1 {
            let Reverse((w1, a)) = heap.pop().expect("two nodes");
            let Reverse((w2, b)) = heap.pop().expect("two nodes");
            parent[a] = next;
            parent[b] = next;
            branch[b] = 1;
            heap.push(Reverse((w1 + w2, next)));
            next += 1;
        }
        let root = 2 * v - 2;
        let (mut points, mut codes) = (Vec::with_capacity(v), Vec::with_capacity(v));
        for word in 0..v {
            let (mut p, mut c) = (Vec::new(), Vec::new());
            let mut node = word;
            while node != root {
                c.push(branch[node]);
                node = parent[node];
                p.push((node - v) as u32);
            }
            p.reverse();
            c.reverse();
            points.push(p);
            codes.push(c);
        }
        Self { points, codes }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_a_prefix_free_code_with_huffman_lengths() {
        let counts = [45u64, 13, 12, 16, 9, 5];
        let h = Huffman::new(&counts);
        // the textbook example: code lengths 1, 3, 3, 3, 4, 4
        let lengths: Vec<usize> = h.codes.iter().map(Vec::len).collect();
        assert_eq!(lengths, [1, 3, 3, 3, 4, 4]);
        for (i, a) in h.codes.iter().enumerate() {
            for (j, b) in h.codes.iter().enumerate() {
                assert!(i == j || !b.starts_with(a), "{a:?} prefixes {b:?}");
            }
        }
        // every path starts at the root (the last inner node) and inner nodes are 0..v-1
        assert!(h.points.iter().all(|p| p[0] == 4));
        assert!(h.points.iter().flatten().all(|&p| p < 5));
        // the weighted path length is the optimum, 224 for these counts
        let cost: u64 = counts
            .iter()
            .zip(&lengths)
            .map(|(&c, &l)| c * l as u64)
            .sum();
        assert_eq!(cost, 224);
    }
}
