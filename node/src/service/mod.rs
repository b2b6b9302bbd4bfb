//! What a running node is made of, below its RPC: the cluster engine behind its links
//! ([`links`]: TCP or the WireGuard tunnel), the chain ([`chain`]: overlay, consensus driver,
//! chain app; or the app served to CometBFT, [`cometbft`]), anchoring checkpoints on the chain ([`anchor`]), serving other clusters' proof
//! queries ([`xcluster`]) and Prometheus metrics ([`metrics`]).

pub(crate) mod anchor;
pub(crate) mod chain;
pub(crate) mod cometbft;
pub(crate) mod links;
pub(crate) mod metrics;
pub(crate) mod xcluster;
