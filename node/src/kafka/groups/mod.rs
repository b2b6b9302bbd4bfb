//! Kafka consumer groups. The coordinator of every group is the node that leads the cluster's
//! global Raft group (FindCoordinator names it): it runs the rebalance protocol in memory
//! ([`group::Group`]) and stores what must survive it through the global group, as Kafka stores
//! it in `__consumer_offsets`: each completed generation (members, assignments) and every offset
//! commit. When leadership moves, the next leader loads the stored groups (members keep their
//! generation, with fresh session timers) and the clients, told NOT_COORDINATOR, find it.

mod group;
mod offsets;
mod requests;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use group::{Group, Store};

use pyralog_cluster::engine::ClusterError;

use super::codes::{COORDINATOR_LOAD_IN_PROGRESS, INVALID_REQUEST, NOT_COORDINATOR};
use crate::service::links::ClusterNode;

/// How often the coordinator runs its groups' timers.
const TICK: Duration = Duration::from_millis(100);

/// The session timeouts a member may ask for (Kafka's `group.min/max.session.timeout.ms`).
const SESSION_TIMEOUTS: std::ops::RangeInclusive<Duration> =
    Duration::from_secs(6)..=Duration::from_secs(30 * 60);

/// Who sent a request: its client id and address.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    pub(crate) id: String,
    pub(crate) host: String,
}

/// The groups this node coordinates, valid for one term of its global leadership.
#[derive(Default)]
struct Loaded {
    term: Option<u64>,
    groups: HashMap<String, Group>,
}

/// The group coordinator of this node (active while it leads the global group).
pub(crate) struct Coordinator {
    node: Arc<ClusterNode>,
    loaded: Mutex<Loaded>,
    /// One load at a time after a leadership change.
    loading: tokio::sync::Mutex<()>,
}

impl Coordinator {
    /// The coordinator, with its timers running.
    pub(crate) fn start(node: Arc<ClusterNode>) -> Arc<Self> {
        let coordinator =
            Arc::new(Coordinator { node, loaded: Mutex::default(), loading: tokio::sync::Mutex::new(()) });
        let weak = Arc::downgrade(&coordinator);
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(TICK);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                let Some(coordinator) = weak.upgrade() else { return };
                coordinator.tick();
            }
        });
        coordinator
    }

    fn lock(&self) -> MutexGuard<'_, Loaded> {
        self.loaded.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The groups, current for this term of leadership (`Err`: Kafka's code telling the client
    /// to look for the coordinator again).
    async fn groups(&self) -> Result<MutexGuard<'_, Loaded>, i16> {
        let term = self.node.global_leader_term().ok_or(NOT_COORDINATOR)?;
        {
            // One lock for the check and the answer; released before awaiting.
            let loaded = self.lock();
            if loaded.term == Some(term) {
                return Ok(loaded);
            }
        }
        let _one_load = self.loading.lock().await;
        if self.lock().term != Some(term) {
            self.node.sync_global().await.map_err(|err| {
                tracing::info!(%err, "kafka group coordinator: cannot load the groups");
                COORDINATOR_LOAD_IN_PROGRESS
            })?;
            let now = Instant::now();
            let groups = self
                .node
                .consumer_groups()
                .into_iter()
                .map(|(name, stored)| {
                    (name, stored.map_or_else(Group::empty, |g| Group::from_stored(g, now)))
                })
                .collect();
            // Dropping the previous term's groups drops their waiters: those clients hear
            // NOT_COORDINATOR.
            *self.lock() = Loaded { term: Some(term), groups };
            tracing::info!(term, "kafka group coordinator: groups loaded");
        }
        let loaded = self.lock();
        if loaded.term != Some(term) {
            return Err(NOT_COORDINATOR);
        }
        Ok(loaded)
    }

    /// Runs every group's timers, and forgets the groups when this node stops leading.
    fn tick(self: &Arc<Self>) {
        let term = self.node.global_leader_term();
        let now = Instant::now();
        let mut loaded = self.lock();
        if loaded.term.is_some() && loaded.term != term {
            *loaded = Loaded::default();
            return;
        }
        // Groups nobody joined (expired member ids, admin commits, which the global group keeps)
        // leave memory.
        loaded.groups.retain(|_, group| !group.is_idle());
        let stores: Vec<(String, Store)> = loaded
            .groups
            .iter_mut()
            .filter_map(|(name, group)| Some((name.clone(), group.tick(now)?)))
            .collect();
        drop(loaded);
        for (name, store) in stores {
            self.store(name, store);
        }
    }

    /// Stores a generation through the global group, then tells the group how it went.
    fn store(self: &Arc<Self>, name: String, store: Store) {
        let coordinator = self.clone();
        // The outcome belongs to this term's groups: after a reload, a group of the same name and
        // generation is another rebalance.
        let term = self.lock().term;
        tokio::spawn(async move {
            let outcome =
                coordinator.node.store_consumer_group(name.clone(), store.group).await.map_err(|err| {
                    tracing::warn!(group = %name, %err, "kafka group: storing a generation failed");
                    match err {
                        // Out of the stored bounds: retrying cannot help.
                        ClusterError::Rejected(_) => INVALID_REQUEST,
                        _ => NOT_COORDINATOR,
                    }
                });
            let mut loaded = coordinator.lock();
            if loaded.term == term
                && let Some(group) = loaded.groups.get_mut(&name)
            {
                group.stored(store.generation, outcome, Instant::now());
            }
        });
    }
}
