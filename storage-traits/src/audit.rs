//! The audit trail's records and their hash chain. Each record's hash
//! covers its fields and the previous record's hash, so an edited record,
//! a deleted one or a reordering is detected by [`verify_chain`]. Records
//! carry ids and codes, never PHI.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The hash before the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An audit entry to append; the store assigns `seq` and the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAudit {
    /// When.
    pub at: DateTime<Utc>,
    /// Who (user id).
    pub actor: String,
    /// What (a policy action name, e.g. `phi.read`, `appointment.book`).
    pub action: String,
    /// Which record (appointment id, patient id for break-glass, `slots`).
    pub record: String,
    /// `allow` or `deny`.
    pub decision: String,
    /// The rule's role or the denial reason code.
    pub reason_code: String,
    /// The policy version that decided.
    pub policy_version: String,
    /// Whether break-glass was used (flagged for review).
    pub break_glass: bool,
}

/// An appended audit record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Position in the tenant's chain, from 1, without gaps.
    pub seq: u64,
    /// The entry.
    #[serde(flatten)]
    pub entry: NewAudit,
    /// The previous record's hash ([`GENESIS`] for the first).
    pub prev_hash: String,
    /// This record's hash.
    pub hash: String,
}

/// The hash of a record with sequence `seq` and entry `e` after `prev`.
pub fn chain_hash(prev: &str, seq: u64, e: &NewAudit) -> String {
    let mut h = Sha256::new();
    for part in [
        prev,
        &seq.to_string(),
        &e.at.timestamp_micros().to_string(),
        &e.actor,
        &e.action,
        &e.record,
        &e.decision,
        &e.reason_code,
        &e.policy_version,
        if e.break_glass { "1" } else { "0" },
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

impl AuditRecord {
    /// Seals an entry as record `seq` after `prev`.
    pub fn seal(seq: u64, entry: NewAudit, prev: &str) -> Self {
        let hash = chain_hash(prev, seq, &entry);
        Self {
            seq,
            entry,
            prev_hash: prev.to_owned(),
            hash,
        }
    }
}

/// Where a chain breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBreak {
    /// The first record (by position) that does not verify.
    pub seq: u64,
    /// `gap` (a missing record), `link` (previous hash differs) or `hash`
    /// (the record was edited).
    pub kind: &'static str,
}

/// Verifies records read from the start of a chain, in order.
///
/// # Errors
///
/// The first break found.
pub fn verify_chain(records: &[AuditRecord]) -> Result<(), ChainBreak> {
    let mut prev = GENESIS.to_owned();
    for (i, r) in records.iter().enumerate() {
        let expected_seq = i as u64 + 1;
        if r.seq != expected_seq {
            return Err(ChainBreak {
                seq: expected_seq,
                kind: "gap",
            });
        }
        if r.prev_hash != prev {
            return Err(ChainBreak {
                seq: r.seq,
                kind: "link",
            });
        }
        if chain_hash(&r.prev_hash, r.seq, &r.entry) != r.hash {
            return Err(ChainBreak {
                seq: r.seq,
                kind: "hash",
            });
        }
        prev.clone_from(&r.hash);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(actor: &str) -> NewAudit {
        NewAudit {
            at: DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap(),
            actor: actor.into(),
            action: "phi.read".into(),
            record: "apt-1".into(),
            decision: "allow".into(),
            reason_code: "provider".into(),
            policy_version: "v1".into(),
            break_glass: false,
        }
    }

    fn chain(n: usize) -> Vec<AuditRecord> {
        let mut out: Vec<AuditRecord> = Vec::new();
        for i in 0..n {
            let prev = out.last().map_or(GENESIS.to_owned(), |r| r.hash.clone());
            out.push(AuditRecord::seal(
                i as u64 + 1,
                entry(&format!("u{i}")),
                &prev,
            ));
        }
        out
    }

    #[test]
    fn edits_deletions_and_reorders_are_detected() {
        let c = chain(5);
        assert_eq!(verify_chain(&c), Ok(()));
        let mut edited = c.clone();
        edited[2].entry.decision = "deny".into();
        assert_eq!(
            verify_chain(&edited),
            Err(ChainBreak {
                seq: 3,
                kind: "hash"
            })
        );
        let mut deleted = c.clone();
        deleted.remove(1);
        assert_eq!(
            verify_chain(&deleted),
            Err(ChainBreak {
                seq: 2,
                kind: "gap"
            })
        );
        let mut renumbered = deleted.clone();
        for (i, r) in renumbered.iter_mut().enumerate() {
            r.seq = i as u64 + 1;
        }
        assert_eq!(verify_chain(&renumbered).unwrap_err().seq, 2);
        let mut swapped = c.clone();
        swapped.swap(1, 2);
        assert!(verify_chain(&swapped).is_err());
    }
}
