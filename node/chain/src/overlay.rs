//! A block's view of the state: reads go through the block's pending writes to the committed
//! version, writes stay pending until the app prepares the block's version.

use std::collections::BTreeMap;

use pyralog_crypto::PublicKey;
use serde::{Deserialize, Serialize};

use crate::state::{StateError, StateStore};
use crate::values::{Account, account_key};

/// A key's pending write before a change: what `writes` held for it (none: nothing pending).
type Undo = (Vec<u8>, Option<Option<Vec<u8>>>);

/// Reads through the block's pending writes to the committed state.
pub(crate) struct Overlay<'a> {
    pub(crate) state: &'a StateStore,
    pub(crate) version: Option<u64>,
    pub(crate) writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// What each write replaced, newest last (see [`Overlay::rollback`]).
    journal: Vec<Undo>,
}

/// A point in an overlay's writes that [`Overlay::rollback`] returns to.
pub(crate) struct Savepoint(usize);

impl<'a> Overlay<'a> {
    /// A view of `state` at `version` (none: the empty state) with no writes yet.
    pub(crate) fn new(state: &'a StateStore, version: Option<u64>) -> Self {
        Overlay { state, version, writes: BTreeMap::new(), journal: Vec::new() }
    }

    /// The value of `key`, decoded (state values are postcard).
    pub(crate) fn get<T: for<'de> Deserialize<'de>>(&self, key: &[u8]) -> Result<Option<T>, StateError> {
        let bytes = match self.writes.get(key) {
            Some(value) => value.clone(),
            None => match self.version {
                Some(version) => self.state.get(key, version)?,
                None => None,
            },
        };
        bytes
            .map(|b| postcard::from_bytes(&b))
            .transpose()
            .map_err(|e| StateError::Corrupt { what: "chain state value", reason: e.to_string() })
    }

    /// The value of `key` at an earlier committed `version` (not through this block's writes).
    pub(crate) fn get_at<T: for<'de> Deserialize<'de>>(
        &self,
        key: &[u8],
        version: u64,
    ) -> Result<Option<T>, StateError> {
        Overlay::new(self.state, Some(version)).get(key)
    }

    /// Writes `value` at `key`.
    pub(crate) fn put<T: Serialize>(&mut self, key: Vec<u8>, value: &T) {
        self.write(key, Some(postcard::to_allocvec(value).expect("state values serialize")));
    }

    /// Removes `key`.
    pub(crate) fn delete(&mut self, key: Vec<u8>) {
        self.write(key, None);
    }

    fn write(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        let previous = self.writes.insert(key.clone(), value);
        self.journal.push((key, previous));
    }

    /// The point to return to if what follows is refused.
    pub(crate) fn savepoint(&self) -> Savepoint {
        Savepoint(self.journal.len())
    }

    /// Undoes every write since `savepoint` (a refused action changes nothing but its fee).
    pub(crate) fn rollback(&mut self, savepoint: Savepoint) {
        while self.journal.len() > savepoint.0 {
            let Some((key, previous)) = self.journal.pop() else { break };
            match previous {
                Some(value) => self.writes.insert(key, value),
                None => self.writes.remove(&key),
            };
        }
    }

    /// The account of `key` (a fresh one when absent).
    pub(crate) fn account(&self, key: &PublicKey) -> Result<Account, StateError> {
        Ok(self.get(&account_key(key))?.unwrap_or_default())
    }

    /// Takes `amount` from the balance of `key`, or says why not (a transfer, a bond).
    pub(crate) fn debit(&mut self, key: &PublicKey, amount: u64) -> Result<Result<(), String>, StateError> {
        let mut account = self.account(key)?;
        if amount > account.balance {
            return Ok(Err(format!("balance {} under the amount {amount}", account.balance)));
        }
        account.balance -= amount;
        self.put(account_key(key), &account);
        Ok(Ok(()))
    }

    /// Adds `amount` to the balance of `key`, or says why not (it would overflow): a transfer's
    /// receiver, a contract's payee or refund.
    pub(crate) fn credit(&mut self, key: &PublicKey, amount: u64) -> Result<Result<(), String>, StateError> {
        let mut account = self.account(key)?;
        let Some(balance) = account.balance.checked_add(amount) else {
            return Ok(Err(format!("the balance of {key} would overflow")));
        };
        account.balance = balance;
        self.put(account_key(key), &account);
        Ok(Ok(()))
    }
}
