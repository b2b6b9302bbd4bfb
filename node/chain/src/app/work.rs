//! The chain app under Proof-of-Work: blocks are built and checked on blocks not yet final,
//! while the app's state is the last final block's. So a header commits to the state `k` blocks
//! below its parent (final on every node by the time it checks the block), its parent is the
//! block it is placed on, it carries no last commit or evidence (there are no validators to
//! sign or accuse), anyone may have mined it, and its time is only held to the clock (the seal's
//! time rules are the engine's). A miner screens its transactions after applying the blocks
//! between the last final one and its parent, so it neither repeats theirs nor breaks a
//! sender's nonce sequence.

use pyralog_consensus_types::pow::MAX_FUTURE_MS;
use pyralog_crypto::Digest;

use super::{AppError, ChainApp};
use crate::block::{ConsensusInfo, Header};
use crate::overlay::Overlay;
use crate::staking::ledger::BlockAt;
use crate::state::StateError;
use crate::tx::SignedTx;

impl ChainApp {
    /// Why `payload` cannot be the block at `height` placed on `parent`, checked at `now_ms`.
    pub(super) fn check_placed(
        &self,
        height: u64,
        payload: &[Vec<u8>],
        now_ms: u64,
        parent: Digest,
    ) -> Result<Result<(), String>, AppError> {
        let Some((first, rest)) = payload.split_first() else { return Ok(Err("no header".into())) };
        let header = match Header::decode(first) {
            Ok(header) => header,
            Err(why) => return Ok(Err(why)),
        };
        let info = match rest.first().map(|info| ConsensusInfo::decode(info)) {
            Some(Ok(info)) => info,
            Some(Err(why)) => return Ok(Err(why)),
            None => return Ok(Err("no consensus info".into())),
        };
        if info.last_commit.is_some() || !info.evidence.is_empty() {
            return Ok(Err("a Proof-of-Work block carries no last commit or evidence".into()));
        }
        if header.time_ms > now_ms.saturating_add(MAX_FUTURE_MS) {
            return Ok(Err(format!("block time {} is ahead of this clock ({now_ms})", header.time_ms)));
        }
        let mut expected = self.build_header(height, rest, header.time_ms)?;
        expected.proposer = header.proposer;
        expected.parent = parent;
        if header != expected {
            return Ok(Err(format!("header {header:?} differs from the expected {expected:?}")));
        }
        if let Some(bad) =
            rest[1..].iter().find_map(|tx| SignedTx::decode_and_verify(tx, &self.chain_id).err())
        {
            return Ok(Err(format!("invalid transaction: {bad}")));
        }
        Ok(Ok(()))
    }

    /// Applies the transactions of `payloads` (blocks not yet final, oldest first) to `view`,
    /// as `finalize` will once they are final.
    pub(super) fn apply_unfinalised(
        &self,
        view: &mut Overlay<'_>,
        payloads: &[Vec<Vec<u8>>],
    ) -> Result<(), StateError> {
        for payload in payloads {
            let Some(Ok(header)) = payload.first().map(|first| Header::decode(first)) else { continue };
            let at = BlockAt { height: header.height, time_ms: header.time_ms };
            for tx in payload.iter().skip(2) {
                self.deliver(view, tx, at)?;
            }
        }
        Ok(())
    }
}
