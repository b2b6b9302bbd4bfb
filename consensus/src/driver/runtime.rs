//! The node's runner: the driver's steps on tokio. Nothing here decides: it waits for the next
//! event (a peer's message, a client's transaction, a wake-up, a sync tick, a fetch answer)
//! and hands it to the driver, which the simulator drives the same way on virtual time.

use std::time::Duration;

use tokio::sync::watch;

use super::{ChainStore, ConsensusNet, Driver, DriverError};
use crate::app::ReplicatedApp;
use crate::core::{ConsensusCore, Millis};

impl<E, A, N, S> Driver<E, A, N, S>
where
    E: ConsensusCore,
    A: ReplicatedApp,
    N: ConsensusNet,
    S: ChainStore,
{
    /// Runs until `stop` changes, the inbound channel closes, or a fatal error.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) -> Result<(), DriverError> {
        self.start()?;
        let mut sync = tokio::time::interval(self.config.sync_interval);
        sync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let wake = self.next_wake();
            let now = self.clock.now();
            // Due already (the next height after a zero block interval): no timer round trip.
            if wake.is_some_and(|at| at <= now) {
                self.wake()?;
                self.flush()?;
                continue;
            }
            tokio::select! {
                _ = stop.changed() => return Ok(()),
                event = self.inbound.recv() => match event {
                    Some(event) => {
                        self.handle_net(event)?;
                        // Whatever else is ready shares the next WAL fsync.
                        for _ in 0..256 {
                            let Ok(event) = self.inbound.try_recv() else { break };
                            self.handle_net(event)?;
                        }
                    }
                    None => return Ok(()),
                },
                _ = sleep_until(now, wake) => self.wake()?,
                Some(tx) = self.tx_rx.recv() => drop(self.submit(tx)?),
                Some((tx, reply)) = self.submissions_rx.recv() => {
                    let admission = self.submit(tx)?;
                    let _ = reply.send(admission);
                }
                _ = sync.tick() => self.start_fetch(),
                Some(fetched) = self.fetched_rx.recv() => self.handle_fetched(fetched)?,
                Some(seal) = self.mined_rx.recv() => self.handle_mined(seal)?,
            }
            self.flush()?;
        }
    }

    /// Asks a peer for blocks after our last one, in a task of its own (the loop keeps deciding
    /// meanwhile).
    fn start_fetch(&mut self) {
        let Some((from_height, max)) = self.sync_request() else { return };
        let fetch = self.net.fetch_blocks(from_height, max);
        let limit = self.config.sync_interval * 5;
        let answer = self.fetched.clone();
        tokio::spawn(async move {
            let fetched = match tokio::time::timeout(limit, fetch).await {
                Ok(Ok(fetched)) => Some(fetched),
                _ => None,
            };
            let _ = answer.send(fetched).await;
        });
    }
}

/// Sleeps until `deadline` on the driver's clock (read as `now` when the wait began), forever
/// without one.
async fn sleep_until(now: Millis, deadline: Option<Millis>) {
    match deadline {
        Some(deadline) => tokio::time::sleep(Duration::from_millis(deadline.saturating_sub(now))).await,
        None => std::future::pending().await,
    }
}
