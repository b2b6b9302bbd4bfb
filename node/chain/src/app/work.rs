//! The chain app under Proof-of-Work: blocks are built and checked on blocks not yet final,
//! while the app's state is the last final block's. So a header commits to the state `k` blocks
//! below its parent (final on every node by the time it checks the block), its parent is the
//! block it is placed on, it carries no last commit or evidence (there are no validators to
//! sign or accuse), anyone may have mined it, and its time is only held to the clock (the seal's
//! time rules are the engine's): `check_payload_on` with the block it is placed on. A miner
//! screens its transactions after applying the blocks between the last final one and its
//! parent, so it neither repeats theirs nor breaks a sender's nonce sequence.

use super::ChainApp;
use crate::block::Header;
use crate::overlay::Overlay;
use crate::staking::ledger::BlockAt;
use crate::state::StateError;

impl ChainApp {
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
