//! [`Manager`]: the r2d2 connection manager of litepool's pools and of its diesel pools. It
//! opens connections through `crate::open` (the driver, the profile, the guard, timing) and
//! checks them in through `crate::checkin` (rollback of a transaction left open, closing a
//! connection that created temporary objects).

use crate::checkin::check_in;
use crate::connection::PragmaConnection;
use crate::driver::{Driver, Rusqlite};
use crate::error::Error;
use crate::open::Opener;

/// The connection manager of litepool's r2d2 pools, for a pool kind's `Driver`
/// (`Rusqlite` by default; diesel's with the `diesel` feature).
#[derive(Debug)]
pub struct Manager<D: Driver = Rusqlite> {
    opener: Opener<D>,
    /// Sample page-cache counters at check-in (pools whose connection wrapper does not).
    sample: bool,
}

impl<D: Driver> Manager<D> {
    pub(crate) fn new(opener: Opener<D>, sample: bool) -> Self {
        Manager { opener, sample }
    }
}

impl<D: Driver + std::fmt::Debug> r2d2::ManageConnection for Manager<D> {
    type Connection = D::Connection;
    type Error = Error;

    fn connect(&self) -> Result<D::Connection, Error> {
        self.opener.connect()
    }

    fn is_valid(&self, conn: &mut D::Connection) -> Result<(), Error> {
        conn.execute_fixed("").map_err(|source| Error::Pragma {
            database: self.opener.shared().name.clone(),
            pragma: "(connection test)",
            source,
        })
    }

    #[inline]
    fn has_broken(&self, conn: &mut D::Connection) -> bool {
        let shared = self.opener.shared();
        if shared.closing.load(std::sync::atomic::Ordering::Relaxed)
            || shared.retired.load(std::sync::atomic::Ordering::Relaxed)
        {
            return true;
        }
        check_in::<D>(conn, shared, self.sample).discard()
    }
}
