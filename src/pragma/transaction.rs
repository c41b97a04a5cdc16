//! `transaction_behavior`: the default of rusqlite's `Connection::transaction()`.
//!
//! See <https://sqlite.org/lang_transaction.html#deferred_immediate_and_exclusive_transactions>.

crate::pragma::pragma_enum! {
    /// How `Connection::transaction()` begins. rusqlite's default is `deferred`. `immediate` takes
    /// the write lock at `BEGIN`, where `busy_timeout` applies, instead of failing with
    /// SQLITE_BUSY when a read upgrades to a write.
    TransactionMode, what = "transaction_behavior", {
        /// `BEGIN DEFERRED` (rusqlite's default).
        Deferred = ("deferred", 0),
        /// `BEGIN IMMEDIATE`.
        Immediate = ("immediate", 1),
        /// `BEGIN EXCLUSIVE`.
        Exclusive = ("exclusive", 2),
    }
}

#[cfg(feature = "sqlite")]
impl From<TransactionMode> for rusqlite::TransactionBehavior {
    fn from(m: TransactionMode) -> Self {
        match m {
            TransactionMode::Deferred => rusqlite::TransactionBehavior::Deferred,
            TransactionMode::Immediate => rusqlite::TransactionBehavior::Immediate,
            TransactionMode::Exclusive => rusqlite::TransactionBehavior::Exclusive,
        }
    }
}
