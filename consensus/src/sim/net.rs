//! The simulated network as one driver sees it: what the driver sends lands in its outbox, and
//! the simulator delivers it later through the faulty network (or not at all).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use pyralog_crypto::PublicKey;

use crate::core::Millis;
use crate::driver::{Clock, ConsensusNet, FetchedBlocks, NetError};
use crate::vote::Evidence;

/// Something a driver asked the network to do.
#[derive(Debug)]
pub(super) enum Outgoing {
    Broadcast(Vec<u8>),
    SendTo(PublicKey, Vec<u8>),
    Gossip(Vec<u8>),
    Evidence(Box<Evidence>),
    Report(PublicKey, String),
}

/// One driver's network: an outbox the simulator empties after every step.
#[derive(Debug, Clone, Default)]
pub(super) struct SimNet {
    outbox: Arc<Mutex<Vec<Outgoing>>>,
}

impl SimNet {
    pub(super) fn take(&self) -> Vec<Outgoing> {
        std::mem::take(&mut *self.outbox.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn push(&self, outgoing: Outgoing) {
        self.outbox.lock().unwrap_or_else(|p| p.into_inner()).push(outgoing);
    }
}

impl ConsensusNet for SimNet {
    fn broadcast(&self, bytes: Vec<u8>) {
        self.push(Outgoing::Broadcast(bytes));
    }

    fn send_to(&self, to: PublicKey, bytes: Vec<u8>) {
        self.push(Outgoing::SendTo(to, bytes));
    }

    /// Not used: the simulator answers [`Driver::sync_request`](crate::driver::Driver::sync_request)
    /// itself, by handing a peer's driver the request on the virtual network.
    fn fetch_blocks(
        &self,
        _from_height: u64,
        _max: u32,
    ) -> impl Future<Output = Result<FetchedBlocks, NetError>> + Send + 'static {
        std::future::ready(Err(NetError("the simulator routes block requests itself".into())))
    }

    fn gossip_tx(&self, tx: Vec<u8>) {
        self.push(Outgoing::Gossip(tx));
    }

    fn gossip_evidence(&self, evidence: &Evidence) {
        self.push(Outgoing::Evidence(Box::new(evidence.clone())));
    }

    fn report(&self, peer: PublicKey, reason: String) {
        self.push(Outgoing::Report(peer, reason));
    }

    fn set_validators(&self, _keys: Vec<PublicKey>) {}
}

/// Virtual time, shared by every simulated driver.
#[derive(Debug, Clone, Default)]
pub(super) struct SimClock(Arc<AtomicU64>);

impl SimClock {
    pub(super) fn set(&self, now: Millis) {
        self.0.store(now, Ordering::Relaxed);
    }
}

/// Where virtual time starts on the wall clock (2026-01-01T00:00:00Z): block times are this
/// plus virtual milliseconds, the same for every simulated validator.
pub(super) const SIM_EPOCH_MS: u64 = 1_767_225_600_000;

impl Clock for SimClock {
    fn now(&self) -> Millis {
        self.0.load(Ordering::Relaxed)
    }

    fn unix_ms(&self) -> u64 {
        SIM_EPOCH_MS + self.now()
    }
}
