//! Exact linear assignment: the Hungarian method with dual potentials, `O(n³)`.
//!
//! For two clouds of `n` points each with uniform weights, optimal transport has an
//! optimal plan that is a permutation (Birkhoff–von Neumann), so the assignment optimum
//! is the exact optimal transport cost.

use ndarray::Array2;

/// An optimal assignment.
#[derive(Clone, Debug)]
pub struct Assignment {
    /// `row_to_col[i]` is the column assigned to row `i`.
    pub row_to_col: Vec<usize>,
    /// The total cost `Σ_i cost[i, row_to_col[i]]`.
    pub cost: f64,
    /// Row potentials `u` and column potentials `v`, with `u_i + v_j ≤ cost[i, j]`
    /// and equality on the assignment (so `Σu + Σv` equals the cost).
    pub potentials: (Vec<f64>, Vec<f64>),
}

/// Solves the square assignment problem `min_σ Σ_i cost[i, σ(i)]` exactly.
///
/// Rows are inserted one at a time; each insertion grows a shortest augmenting path
/// (Dijkstra on reduced costs `cost − u − v`, which stay non-negative), then updates the
/// potentials. No iteration cap: it always terminates after `n` augmentations.
///
/// # Panics
/// If `cost` is not square.
pub fn solve(cost: &Array2<f64>) -> Assignment {
    let n = cost.nrows();
    assert_eq!(n, cost.ncols(), "the assignment problem must be square");
    // Index 0 is a virtual column; rows and columns are 1-based below.
    let mut u = vec![0.0; n + 1];
    let mut v = vec![0.0; n + 1];
    let mut col_owner = vec![0usize; n + 1];
    let mut way = vec![0usize; n + 1];
    for row in 1..=n {
        col_owner[0] = row;
        let mut j0 = 0usize;
        let mut min_reduced = vec![f64::INFINITY; n + 1];
        let mut used = vec![false; n + 1];
        loop {
            used[j0] = true;
            let i0 = col_owner[j0];
            let mut delta = f64::INFINITY;
            let mut j1 = 0usize;
            for j in 1..=n {
                if used[j] {
                    continue;
                }
                let reduced = cost[[i0 - 1, j - 1]] - u[i0] - v[j];
                if reduced < min_reduced[j] {
                    min_reduced[j] = reduced;
                    way[j] = j0;
                }
                if min_reduced[j] < delta {
                    delta = min_reduced[j];
                    j1 = j;
                }
            }
            for j in 0..=n {
                if used[j] {
                    u[col_owner[j]] += delta;
                    v[j] -= delta;
                } else {
                    min_reduced[j] -= delta;
                }
            }
            j0 = j1;
            if col_owner[j0] == 0 {
                break;
            }
        }
        // Augment along the path back to the virtual column.
        loop {
            let j1 = way[j0];
            col_owner[j0] = col_owner[j1];
            j0 = j1;
            if j0 == 0 {
                break;
            }
        }
    }
    let mut row_to_col = vec![0usize; n];
    for j in 1..=n {
        row_to_col[col_owner[j] - 1] = j - 1;
    }
    let total = row_to_col
        .iter()
        .enumerate()
        .map(|(i, &j)| cost[[i, j]])
        .sum();
    Assignment {
        row_to_col,
        cost: total,
        potentials: (u[1..].to_vec(), v[1..].to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;
    use proptest::prelude::*;

    fn brute_force(cost: &Array2<f64>) -> f64 {
        fn rec(cost: &Array2<f64>, row: usize, used: &mut Vec<bool>) -> f64 {
            if row == cost.nrows() {
                return 0.0;
            }
            let mut best = f64::INFINITY;
            for j in 0..cost.ncols() {
                if !used[j] {
                    used[j] = true;
                    best = best.min(cost[[row, j]] + rec(cost, row + 1, used));
                    used[j] = false;
                }
            }
            best
        }
        rec(cost, 0, &mut vec![false; cost.ncols()])
    }

    #[test]
    fn small_case_by_hand() {
        let cost = array![[4.0, 1.0, 3.0], [2.0, 0.0, 5.0], [3.0, 2.0, 2.0]];
        let a = solve(&cost);
        assert_eq!(a.row_to_col, vec![1, 0, 2]);
        assert!((a.cost - 5.0).abs() < 1e-12);
    }

    proptest! {
        /// The optimum equals brute force over all permutations, and the potentials
        /// certify it (dual feasibility and a zero duality gap).
        #[test]
        fn matches_brute_force_and_duality(n in 1usize..7, seed in 0u64..10_000) {
            let mut rng = sb_data::SbRng::new(seed);
            let cost = Array2::from_shape_fn((n, n), |_| rng.uniform() * 10.0);
            let a = solve(&cost);
            prop_assert!((a.cost - brute_force(&cost)).abs() < 1e-9);
            let (u, v) = &a.potentials;
            for i in 0..n {
                for j in 0..n {
                    prop_assert!(u[i] + v[j] <= cost[[i, j]] + 1e-9);
                }
            }
            let dual: f64 = u.iter().sum::<f64>() + v.iter().sum::<f64>();
            prop_assert!((dual - a.cost).abs() < 1e-9);
        }
    }
}
