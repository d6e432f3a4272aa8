//! Effective (transitive) membership: which users are in a group directly or through
//! nested groups. Real directories contain cycles (A in B in C in A), so strongly
//! connected components are collapsed first (iterative Tarjan: no recursion, nesting can be
//! deep), then users are closed over the resulting DAG, children before parents.

/// A membership graph over dense indices: `child_groups[g]` are the groups nested in
/// group `g`, `direct_users[g]` the users directly in it.
pub struct Graph<'a> {
    pub child_groups: &'a [Vec<u32>],
    pub direct_users: &'a [Vec<u32>],
}

/// Returns, for every group, the sorted, de-duplicated users that are effectively in it.
/// Groups in one cycle all have the same effective members.
pub fn effective_users(graph: &Graph<'_>) -> Vec<Vec<u32>> {
    let n = graph.child_groups.len();
    let components = strongly_connected_components(graph.child_groups);
    let mut component_of = vec![0u32; n];
    for (c, members) in components.iter().enumerate() {
        for &g in members {
            component_of[g as usize] = c as u32;
        }
    }
    // Tarjan emits a component only after every component reachable from it, so the
    // children of a component are always done before it.
    let mut component_users: Vec<Vec<u32>> = Vec::with_capacity(components.len());
    for (c, members) in components.iter().enumerate() {
        let mut users = Vec::new();
        for &g in members {
            users.extend_from_slice(&graph.direct_users[g as usize]);
            for &child in &graph.child_groups[g as usize] {
                let child_component = component_of[child as usize] as usize;
                if child_component != c {
                    users.extend_from_slice(&component_users[child_component]);
                }
            }
        }
        users.sort_unstable();
        users.dedup();
        component_users.push(users);
    }
    (0..n)
        .map(|g| component_users[component_of[g] as usize].clone())
        .collect()
}

/// Iterative Tarjan. Components come out in reverse topological order (sinks first).
pub fn strongly_connected_components(edges: &[Vec<u32>]) -> Vec<Vec<u32>> {
    const UNVISITED: u32 = u32::MAX;
    let n = edges.len();
    let mut index = vec![UNVISITED; n];
    let mut lowlink = vec![0u32; n];
    let mut on_stack = vec![false; n];
    let mut stack: Vec<u32> = Vec::new();
    let mut components = Vec::new();
    let mut next_index = 0u32;
    // (node, position of the next edge to look at)
    let mut call_stack: Vec<(u32, usize)> = Vec::new();

    for root in 0..n as u32 {
        if index[root as usize] != UNVISITED {
            continue;
        }
        call_stack.push((root, 0));
        index[root as usize] = next_index;
        lowlink[root as usize] = next_index;
        next_index += 1;
        stack.push(root);
        on_stack[root as usize] = true;

        while let Some(&mut (node, ref mut edge)) = call_stack.last_mut() {
            let v = node as usize;
            if let Some(&w) = edges[v].get(*edge) {
                *edge += 1;
                let wi = w as usize;
                if index[wi] == UNVISITED {
                    index[wi] = next_index;
                    lowlink[wi] = next_index;
                    next_index += 1;
                    stack.push(w);
                    on_stack[wi] = true;
                    call_stack.push((w, 0));
                } else if on_stack[wi] {
                    lowlink[v] = lowlink[v].min(index[wi]);
                }
                continue;
            }
            call_stack.pop();
            if let Some(&(parent, _)) = call_stack.last() {
                let p = parent as usize;
                lowlink[p] = lowlink[p].min(lowlink[v]);
            }
            if lowlink[v] == index[v] {
                let mut component = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w as usize] = false;
                    component.push(w);
                    if w == node {
                        break;
                    }
                }
                components.push(component);
            }
        }
    }
    components
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(child_groups: Vec<Vec<u32>>, direct_users: Vec<Vec<u32>>) -> Vec<Vec<u32>> {
        effective_users(&Graph {
            child_groups: &child_groups,
            direct_users: &direct_users,
        })
    }

    // 0 -> 1 -> 2, users: 0:{10} 1:{11} 2:{12}
    #[test]
    fn chain() {
        let eff = run(
            vec![vec![1], vec![2], vec![]],
            vec![vec![10], vec![11], vec![12]],
        );
        assert_eq!(eff, vec![vec![10, 11, 12], vec![11, 12], vec![12]]);
    }

    // 0 -> 1 -> 2 -> 0 (cycle), 2 -> 3
    #[test]
    fn cycle_members_share_everything() {
        let eff = run(
            vec![vec![1], vec![2], vec![0, 3], vec![]],
            vec![vec![1], vec![2], vec![3], vec![4]],
        );
        assert_eq!(eff[0], vec![1, 2, 3, 4]);
        assert_eq!(eff[1], eff[0]);
        assert_eq!(eff[2], eff[0]);
        assert_eq!(eff[3], vec![4]);
    }

    //    0
    //   / \
    //  1   2     diamond: user 7 reaches 0 twice, counted once
    //   \ /
    //    3
    #[test]
    fn diamond() {
        let eff = run(
            vec![vec![1, 2], vec![3], vec![3], vec![]],
            vec![vec![], vec![], vec![], vec![7]],
        );
        assert_eq!(eff[0], vec![7]);
    }

    #[test]
    fn self_loop() {
        let eff = run(vec![vec![0]], vec![vec![5]]);
        assert_eq!(eff, vec![vec![5]]);
    }

    #[test]
    fn deep_chain_does_not_recurse() {
        let n = 100_000u32;
        let child_groups: Vec<Vec<u32>> = (0..n)
            .map(|g| if g + 1 < n { vec![g + 1] } else { vec![] })
            .collect();
        let mut direct_users = vec![vec![]; n as usize];
        direct_users[(n - 1) as usize] = vec![1];
        let eff = run(child_groups, direct_users);
        assert_eq!(eff[0], vec![1]);
        let components = strongly_connected_components(&[vec![1], vec![0]]);
        assert_eq!(components.len(), 1);
    }
}
