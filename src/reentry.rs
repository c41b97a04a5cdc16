//! Which write closures run on this thread: `write`, `writer()` or a checkout of the writer
//! from inside a closure would wait for itself, so they ask here first and refuse at once
//! ([`crate::Error::Reentrant`]); the pragma guard refuses transaction control inside one.
//!
//! A closure runs synchronously on the thread that leads its batch, so a thread-local stack of
//! the pools whose closure is running is exact. Written by hand: a `RefCell<Vec<usize>>`, no
//! crate does less.

use std::cell::RefCell;

/// The savepoint each write closure after the first of a transaction runs in. The pragma guard
/// refuses statements naming it inside a closure.
pub(crate) const SAVEPOINT: &str = "litepool_write";

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

/// True while any write closure runs on this thread.
pub(crate) fn inside_any() -> bool {
    RUNNING.with(|r| !r.borrow().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_nest_and_end() {
        assert!(!inside_any());
        let a = Scope::enter(1);
        {
            let _b = Scope::enter(2);
            assert!(inside(1) && inside(2));
        }
        assert!(inside(1) && !inside(2));
        drop(a);
        assert!(!inside_any());
    }
}
