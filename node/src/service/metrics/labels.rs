//! What the node's metrics and the chain's share: label sets, and counters that follow running
//! totals kept elsewhere.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;

/// A `kind` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct KindLabels {
    pub(super) kind: &'static str,
}

/// A partition of a log.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct PartitionLabels {
    pub(super) log: String,
    pub(super) partition: u32,
}

/// Raises `counter` to `total`, a running total kept elsewhere and read at scrape time (counters
/// only go up: a total that went down, after a restart of whatever keeps it, is ignored until it
/// passes again).
pub(super) fn catch_up(counter: &Counter, total: u64) {
    let now = counter.get();
    if total > now {
        counter.inc_by(total - now);
    }
}
