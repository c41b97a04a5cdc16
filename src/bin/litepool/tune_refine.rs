//! `litepool tune`'s refinement around the best, and what each chosen value contributes: the
//! proposal measured without it (reverted to the configured value).

use anyhow::anyhow;
use litepool::pragma::{ByteSize, CacheSize, MmapSize};

use crate::tune::mmap_of;
use crate::tune_out::{Cand, Dimension};
use crate::tune_search::{Tuner, DEFAULT_CACHE};

/// The dimensions a candidate differs from the configured one in.
pub const KEYS: [&str; 7] = [
    "cache_size",
    "mmap_size",
    "temp_store",
    "journal_size_limit",
    "readers.max_size",
    "writes",
    "checkpoint",
];

/// `leader` with dimension `key` as `base` has it; `None` when they agree on it.
pub fn reverted(key: &str, leader: &Cand, base: &Cand) -> Option<Cand> {
    let mut c = leader.clone();
    match key {
        "cache_size" => c.set.cache_size = base.set.cache_size,
        "mmap_size" => c.set.mmap_size = base.set.mmap_size,
        "temp_store" => c.set.temp_store = base.set.temp_store,
        "journal_size_limit" => c.set.journal_size_limit = base.set.journal_size_limit,
        "readers.max_size" => c.readers = base.readers,
        "writes" => c.group_commit = base.group_commit,
        "checkpoint" => c.background_checkpoints = base.background_checkpoints,
        _ => return None,
    }
    (c != *leader).then_some(c)
}

/// What each value of the leader that differs from the configured one contributes: the run of
/// the leader without it (reverted to the configured value), if one was measured, added to its
/// dimension's reason.
pub fn contributions(t: &Tuner<'_>, dims: &mut [Dimension], leader: usize) {
    let (lead, base) = (t.points[leader].cand(), &t.configured);
    for d in dims.iter_mut() {
        let Some(without) = reverted(&d.name, &lead, base) else {
            continue;
        };
        // Among the runs of that candidate, the fastest: the most the value could be worth.
        let best = (0..t.points.len())
            .filter(|&p| t.points[p].cand() == without)
            .max_by(|&a, &b| t.ops(a).total_cmp(&t.ops(b)));
        if let Some(p) = best {
            d.reason.push_str(&format!(
                "; the proposal without it (as configured) measured {:.0} ops/s, with it {:.0} (single runs)",
                t.ops(p),
                t.ops(leader)
            ));
            d.without = Some(p);
        }
    }
}

/// Says of each dimension whose values were not all compared that the time budget ran out, in
/// place of (or after) the reason a search that did not happen would give.
pub fn unmeasured(t: &Tuner<'_>, dims: &mut [Dimension]) {
    for d in dims.iter_mut() {
        let (wanted, compared) = t.tried.get(&d.name).copied().unwrap_or_default();
        if wanted > 0 && compared == 0 {
            d.reason = "not measured: the time budget ran out before any of its values".into();
        } else if compared < wanted {
            d.reason.push_str(&format!(
                "; {} of its {wanted} values not measured: the time budget ran out",
                wanted - compared
            ));
        }
    }
}

/// Refines around the best, while the planned runs last: first each change from the
/// configured candidate measured without it (reverted to the configured value: what it
/// contributes), then the values next to the ones chosen. A candidate that beats the best by
/// more than the noise becomes the best.
pub fn refine(
    t: &mut Tuner<'_>,
    current: &mut usize,
    (mmap_file, cap, page_size): (MmapSize, Option<u64>, u64),
) -> anyhow::Result<Dimension> {
    let leader = t.points[*current].cand();
    let base = t.configured.clone();
    // (the dimension its chart shows it on, the value, the candidate)
    let mut queue: Vec<(&str, String, Cand)> = Vec::new();
    // Each change, reverted.
    for key in KEYS {
        if let Some(c) = reverted(key, &leader, &base) {
            queue.push(("refine reverted", format!("{key} as configured"), c));
        }
    }
    // The values next to the chosen ones, with everything else as the leader has it.
    let cache = leader
        .set
        .cache_size
        .map_or(DEFAULT_CACHE, |c| c.bytes_per_connection(page_size as u32));
    for f in [0.5, 1.5, 0.75, 2.0, 1.25, 3.0] {
        let kib = ((cache as f64 * f) as u64 / 1024).max(DEFAULT_CACHE / 4096);
        if cap.is_some_and(|c| kib * 1024 > c) {
            continue;
        }
        let mut c = leader.clone();
        c.set.cache_size = Some(CacheSize::Bytes(ByteSize(kib * 1024)));
        queue.push(("refine cache_size", ByteSize(kib * 1024).to_string(), c));
    }
    let file = mmap_file.bytes();
    for m in [file / 2, file / 4, 0, file] {
        let m = if m == 0 {
            "0".parse().map_err(|e| anyhow!("{e}"))?
        } else {
            mmap_of(m)?
        };
        let mut c = leader.clone();
        c.set.mmap_size = Some(m);
        let label = if m.bytes() == 0 {
            "0".to_owned()
        } else {
            m.to_string()
        };
        queue.push(("refine mmap_size", label, c));
    }
    if let Some(r) = leader.readers {
        for n in [r.saturating_sub(1), r + 1] {
            if n >= 1 && n as usize <= t.threads {
                let c = Cand {
                    readers: Some(n),
                    ..leader.clone()
                };
                queue.push(("refine readers.max_size", n.to_string(), c));
            }
        }
    }
    let mut best = None;
    let mut tried = 0;
    for (dimension, value, c) in queue {
        if t.explored >= t.plan {
            break;
        }
        if t.seen(&c).is_some() || c == base || !t.fits(&c) {
            continue;
        }
        match t.try_value(dimension, value, &c, current)? {
            None => break,
            Some(true) => best = Some(*current),
            Some(false) => {}
        }
        tried += 1;
    }
    Ok(Dimension::new(
        "refine",
        format!("{tried} candidate(s) around the best: each change measured reverted to the configured value (what it contributes), then the values next to the chosen ones; a candidate is kept only when it beats the best by more than the noise ({:.1}%)", (t.margin - 1.0) * 100.0),
        best,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use litepool::PragmaSet;

    #[test]
    fn each_dimension_reverts_only_its_own_key() {
        let base = Cand {
            set: PragmaSet::default(),
            readers: Some(4),
            group_commit: false,
            background_checkpoints: false,
        };
        let mut leader = base.clone();
        leader.set.cache_size = Some(CacheSize::Bytes(ByteSize(4 << 20)));
        leader.set.mmap_size = Some(mmap_of(8 << 20).unwrap());
        leader.readers = Some(2);
        leader.group_commit = true;
        leader.background_checkpoints = true;
        for key in KEYS {
            let Some(c) = reverted(key, &leader, &base) else {
                // Only the keys the leader left as configured have nothing to revert.
                assert!(["temp_store", "journal_size_limit"].contains(&key), "{key}");
                continue;
            };
            let differs: Vec<&str> = KEYS
                .into_iter()
                .filter(|k| reverted(k, &c, &leader).is_some())
                .collect();
            assert_eq!(differs, vec![key], "reverting {key} changed {differs:?}");
            assert!(reverted(key, &c, &base).is_none(), "{key} is as configured");
        }
        assert!(reverted("refine", &leader, &base).is_none());
    }
}
