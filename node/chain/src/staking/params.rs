//! The staking and slashing parameters a PoS genesis sets (`"staking": {...}`), with Cosmos
//! SDK's defaults as the reference and smaller values for local testnets.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A fraction in parts per million, written as a decimal string in JSON (`"0.05"`, at most six
/// decimals) and as its integer in postcard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Fraction(u32);

/// The denominator of a [`Fraction`].
pub const PER_MILLION: u32 = 1_000_000;

impl Fraction {
    /// `ppm` parts per million (at most one whole).
    pub const fn per_million(ppm: u32) -> Fraction {
        assert!(ppm <= PER_MILLION);
        Fraction(ppm)
    }

    /// Its parts per million.
    pub fn ppm(self) -> u32 {
        self.0
    }

    /// `amount` times the fraction, rounded down.
    pub fn of(self, amount: u128) -> u128 {
        // amount * ppm cannot overflow for any u64-sized amount; larger ones divide first.
        match amount.checked_mul(u128::from(self.0)) {
            Some(product) => product / u128::from(PER_MILLION),
            None => amount / u128::from(PER_MILLION) * u128::from(self.0),
        }
    }

    fn parse(text: &str) -> Result<Fraction, String> {
        let bad = || format!("{text:?} is not a fraction between 0 and 1 with at most six decimals");
        let (whole, decimals) = text.split_once('.').unwrap_or((text, ""));
        if decimals.len() > 6
            || whole.is_empty()
            || !(whole.bytes().chain(decimals.bytes())).all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        let whole: u32 = whole.parse().map_err(|_| bad())?;
        let decimals: u32 =
            if decimals.is_empty() { 0 } else { format!("{decimals:0<6}").parse().map_err(|_| bad())? };
        let ppm = whole.checked_mul(PER_MILLION).and_then(|w| w.checked_add(decimals)).ok_or_else(bad)?;
        if ppm > PER_MILLION {
            return Err(bad());
        }
        Ok(Fraction(ppm))
    }
}

impl std::fmt::Display for Fraction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = format!("{}.{:06}", self.0 / PER_MILLION, self.0 % PER_MILLION);
        f.write_str(text.trim_end_matches('0').trim_end_matches('.'))
    }
}

impl Serialize for Fraction {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&self.to_string())
        } else {
            serializer.serialize_u32(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Fraction {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Fraction, D::Error> {
        if deserializer.is_human_readable() {
            let text = String::deserialize(deserializer)?;
            Fraction::parse(&text).map_err(serde::de::Error::custom)
        } else {
            let ppm = u32::deserialize(deserializer)?;
            if ppm > PER_MILLION {
                return Err(serde::de::Error::custom(format!("fraction of {ppm} parts per million")));
            }
            Ok(Fraction(ppm))
        }
    }
}

/// Staking and slashing parameters (fixed at genesis).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StakingParams {
    /// How long unbonded tokens stay locked (and slashable), in milliseconds.
    pub unbonding_time_ms: u64,
    /// How many blocks they stay locked: an unbonding entry matures when both have passed, and
    /// evidence expires when both have passed since the misbehaviour. At most the driver's
    /// evidence window (100,000 heights), which it enforces in heights alone.
    pub unbonding_blocks: u64,
    /// The size of the active set: the top validators by power.
    pub max_validators: u32,
    /// Unbonding entries one delegator may have with one validator at a time.
    pub max_entries: u32,
    /// Tokens per unit of voting power.
    pub power_reduction: u64,
    /// The blocks over which a validator's signatures are counted.
    pub signed_blocks_window: u64,
    /// The share of the window a validator must sign, or be jailed.
    pub min_signed_per_window: Fraction,
    /// How long a validator jailed for downtime stays jailed, in milliseconds.
    pub downtime_jail_ms: u64,
    /// The share of its stake a double-signing validator loses.
    pub slash_fraction_double_sign: Fraction,
    /// The share of its stake a validator jailed for downtime loses.
    pub slash_fraction_downtime: Fraction,
}

/// Most validator candidates the chain keeps (bonded or not): the end of a block looks at each.
pub const MAX_CANDIDATES: usize = 1_000;

/// The longest signed-blocks window (its bitmap is stored per validator).
pub const MAX_SIGNED_BLOCKS_WINDOW: u64 = 100_000;

/// The most unbonding entries per delegator and validator a genesis may allow.
pub const MAX_MAX_ENTRIES: u32 = 100;

impl Default for StakingParams {
    /// Cosmos SDK's defaults (x/staking, x/slashing); 21 days of 6-second blocks.
    fn default() -> Self {
        StakingParams {
            unbonding_time_ms: 21 * 24 * 3600 * 1000,
            // CometBFT's evidence window in blocks (`max_age_num_blocks`); the time dominates.
            unbonding_blocks: pyralog_consensus_types::evidence::MAX_EVIDENCE_AGE,
            max_validators: 100,
            max_entries: 7,
            power_reduction: 1_000_000,
            signed_blocks_window: 100,
            min_signed_per_window: Fraction::per_million(500_000),
            downtime_jail_ms: 600_000,
            slash_fraction_double_sign: Fraction::per_million(50_000),
            slash_fraction_downtime: Fraction::per_million(10_000),
        }
    }
}

impl StakingParams {
    /// Small values for a local testnet: an hour of unbonding (so a light client's trusting
    /// period outlasts the run), a window of 20 blocks of which 2 must be signed (commit
    /// certificates hold the first quorum of precommits, so an honest validator on a busy
    /// machine misses some), 10 s of jail.
    pub fn testnet() -> Self {
        StakingParams {
            unbonding_time_ms: 3_600_000,
            unbonding_blocks: 200,
            max_validators: 100,
            max_entries: 7,
            power_reduction: 1_000,
            signed_blocks_window: 20,
            min_signed_per_window: Fraction::per_million(100_000),
            downtime_jail_ms: 10_000,
            slash_fraction_double_sign: Fraction::per_million(50_000),
            slash_fraction_downtime: Fraction::per_million(10_000),
        }
    }

    /// Why the parameters cannot run a chain.
    pub fn check(&self) -> Result<(), String> {
        let bounds = [
            ("unbondingTimeMs", self.unbonding_time_ms >= 1),
            // Evidence older than the driver's window never reaches the app: unbonded stake must
            // not outlive it.
            (
                "unbondingBlocks",
                (1..=pyralog_consensus_types::evidence::MAX_EVIDENCE_AGE).contains(&self.unbonding_blocks),
            ),
            ("maxValidators", (1..=MAX_CANDIDATES as u32).contains(&self.max_validators)),
            ("maxEntries", (1..=MAX_MAX_ENTRIES).contains(&self.max_entries)),
            ("powerReduction", self.power_reduction >= 1),
            ("signedBlocksWindow", (1..=MAX_SIGNED_BLOCKS_WINDOW).contains(&self.signed_blocks_window)),
        ];
        match bounds.iter().find(|(_, ok)| !ok) {
            Some((name, _)) => Err(format!("staking.{name} is out of range")),
            None => Ok(()),
        }
    }

    /// The most missed blocks in a window before a validator is jailed.
    pub fn max_missed(&self) -> u64 {
        let window = u128::from(self.signed_blocks_window);
        (window - self.min_signed_per_window.of(window)) as u64
    }

    /// The tokens a genesis validator of `power` is bonded with, if `power` can be bonded (the
    /// product fits, and is under the per-validator power cap).
    pub fn tokens_for_power(&self, power: u64) -> Option<u64> {
        power.checked_mul(self.power_reduction).filter(|tokens| self.power(*tokens) == power)
    }

    /// The voting power of `tokens`, capped so that a full set's total power stays within
    /// [`pyralog_consensus_types::validators::MAX_TOTAL_POWER`].
    pub fn power(&self, tokens: u64) -> u64 {
        let cap =
            pyralog_consensus_types::validators::MAX_TOTAL_POWER / u64::from(self.max_validators.max(1));
        (tokens / self.power_reduction.max(1)).min(cap)
    }
}
