//! Which write closures run on this thread: `write`, `writer()` or a checkout of the writer
//! from inside a closure would wait for itself, so they ask here first and refuse at once
//! ([`crate::Error::Reentrant`]). Which connections run a write closure, on any thread: the
//! pragma guard refuses transaction control on them and their commit hook refuses commits.
//!
//! A closure runs synchronously on the thread that leads its batch, so a thread-local stack of
//! the pools whose closure is running is exact. Written by hand: a `RefCell<Vec<usize>>`, no
//! crate does less.

use std::cell::RefCell;

/// The savepoint each write closure after the first of a transaction runs in:
/// `litepool_write_` and a random number drawn once per process. Application code cannot name
/// it, so it cannot create, release or roll back a savepoint of that name to confuse the batch
/// (not even with a statement it prepared before the closure ran, which the guard never sees
/// again); the guard refuses it as well.
pub(crate) static SAVEPOINT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    use std::hash::BuildHasher;
    let random = std::collections::hash_map::RandomState::new().hash_one(std::process::id());
    format!("litepool_write_{random:016x}")
});

/// Connections (by handle address) on which a write closure is running, on any thread: the
/// guard refuses transaction control on them and their commit hook refuses every commit, even
/// from a thread the closure started. `WRITING_COUNT` spares the lock when none is.
static WRITING: std::sync::Mutex<Vec<usize>> = std::sync::Mutex::new(Vec::new());
static WRITING_COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Marks a write closure as running on connection `addr` until dropped.
pub(crate) struct Writing(usize);

impl Writing {
    pub(crate) fn enter(addr: usize) -> Writing {
        let mut w = WRITING
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        w.push(addr);
        WRITING_COUNT.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Writing(addr)
    }
}

impl Drop for Writing {
    fn drop(&mut self) {
        let mut w = WRITING
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(i) = w.iter().rposition(|&x| x == self.0) {
            w.swap_remove(i);
            WRITING_COUNT.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
        }
    }
}

/// True while a write closure runs on connection `addr`, on any thread.
pub(crate) fn writing(addr: usize) -> bool {
    WRITING_COUNT.load(std::sync::atomic::Ordering::Acquire) != 0
        && WRITING
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(&addr)
}

thread_local! {
    static RUNNING: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

/// Marks a write closure of pool `id` as running on this thread until dropped.
pub(crate) struct Scope(usize);

impl Scope {
    pub(crate) fn enter(id: usize) -> Scope {
        RUNNING.with(|r| r.borrow_mut().push(id));
        Scope(id)
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        RUNNING.with(|r| {
            let mut r = r.borrow_mut();
            if let Some(i) = r.iter().rposition(|&x| x == self.0) {
                r.remove(i);
            }
        });
    }
}

/// True while a write closure of pool `id` runs on this thread.
pub(crate) fn inside(id: usize) -> bool {
    RUNNING.with(|r| r.borrow().contains(&id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_nest_and_end() {
        assert!(!inside(1));
        let a = Scope::enter(1);
        {
            let _b = Scope::enter(2);
            assert!(inside(1) && inside(2));
        }
        assert!(inside(1) && !inside(2));
        drop(a);
        assert!(!inside(1) && !inside(2));
    }
}
