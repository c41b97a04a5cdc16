//! Deterministic test data for the three databases of the shipped configuration, at any scale.
//!
//! At scale 1: `prod_customer_data` has 15,000 customers (about 200 bytes of notes each) in 1,500
//! batches assigned to 50 people; `jobs` has 200 jobs; `audit` has 10,000 audit rows of about
//! 300 bytes. `scale` multiplies every row count. The same seed gives the same rows.

use rusqlite::{params, Connection};
use serde::Serialize;

/// Which dataset a database holds, by the name of the shipped database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dataset {
    /// `customers` and `batches`.
    Customers,
    /// `jobs`.
    Jobs,
    /// `audit_log`.
    Audit,
}

impl Dataset {
    /// The demo dataset of a database of the shipped configuration, by its name.
    pub fn of(database: &str) -> Option<Dataset> {
        match database {
            "prod_customer_data" => Some(Dataset::Customers),
            "jobs" => Some(Dataset::Jobs),
            "audit" => Some(Dataset::Audit),
            _ => None,
        }
    }
}

/// Row counts at scale 1.
pub const CUSTOMERS: u64 = 15_000;
/// Batches at scale 1.
pub const BATCHES: u64 = 1_500;
/// People batches and jobs are assigned to (does not scale).
pub const ASSIGNEES: u64 = 50;
/// Jobs at scale 1.
pub const JOBS: u64 = 200;
/// Audit rows at scale 1.
pub const AUDIT_ROWS: u64 = 10_000;

/// A small xorshift64* generator: deterministic, no dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed (any value).
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15 | 1)
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// `len` lowercase letters and spaces.
    pub fn text(&mut self, len: usize) -> String {
        const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz    ";
        (0..len)
            .map(|_| CHARS[self.below(CHARS.len() as u64) as usize] as char)
            .collect()
    }
}

/// The name of assignee `i`.
pub fn assignee(i: u64) -> String {
    format!("agent-{i:02}")
}

const STATUSES: &[&str] = &["new", "active", "paused", "done"];

/// Creates the dataset's tables (if missing) and fills them when empty. Returns rows inserted.
pub fn generate(
    conn: &mut Connection,
    dataset: Dataset,
    seed: u64,
    scale: u32,
) -> rusqlite::Result<u64> {
    let scale = u64::from(scale.max(1));
    let mut rng = Rng::new(seed ^ dataset as u64);
    let tx = conn.transaction()?;
    let mut rows = 0;
    match dataset {
        Dataset::Customers => {
            tx.execute_batch(
                "CREATE TABLE IF NOT EXISTS batches(
                   id INTEGER PRIMARY KEY, status TEXT NOT NULL, assigned_to TEXT NOT NULL,
                   created_at INTEGER NOT NULL);
                 CREATE INDEX IF NOT EXISTS batches_assigned_to ON batches(assigned_to);
                 CREATE TABLE IF NOT EXISTS customers(
                   id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL,
                   status TEXT NOT NULL, batch_id INTEGER NOT NULL REFERENCES batches(id),
                   created_at INTEGER NOT NULL, notes TEXT NOT NULL);
                 CREATE INDEX IF NOT EXISTS customers_batch_id ON customers(batch_id);",
            )?;
            if empty(&tx, "customers")? {
                let batches = BATCHES * scale;
                let mut b = tx.prepare("INSERT INTO batches VALUES (?1, ?2, ?3, ?4)")?;
                for id in 1..=batches {
                    let status = STATUSES[rng.below(4) as usize];
                    b.execute(params![
                        id as i64,
                        status,
                        assignee(rng.below(ASSIGNEES)),
                        1_700_000_000 + id as i64
                    ])?;
                }
                let mut c =
                    tx.prepare("INSERT INTO customers VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")?;
                for id in 1..=CUSTOMERS * scale {
                    let name = rng.text(12);
                    let email = format!("customer{id}@example.com");
                    let status = STATUSES[rng.below(4) as usize];
                    let batch = rng.below(batches) as i64 + 1;
                    c.execute(params![
                        id as i64,
                        name,
                        email,
                        status,
                        batch,
                        1_700_000_000 + id as i64,
                        rng.text(200)
                    ])?;
                }
                rows = batches + CUSTOMERS * scale;
            }
        }
        Dataset::Jobs => {
            tx.execute_batch(
                "CREATE TABLE IF NOT EXISTS jobs(
                   id INTEGER PRIMARY KEY, status TEXT NOT NULL, assigned_to TEXT NOT NULL,
                   updated_at INTEGER NOT NULL);
                 CREATE INDEX IF NOT EXISTS jobs_assigned_to ON jobs(assigned_to);",
            )?;
            if empty(&tx, "jobs")? {
                let mut j = tx.prepare("INSERT INTO jobs VALUES (?1, ?2, ?3, ?4)")?;
                for id in 1..=JOBS * scale {
                    let status = STATUSES[rng.below(4) as usize];
                    j.execute(params![
                        id as i64,
                        status,
                        assignee(rng.below(ASSIGNEES)),
                        1_700_000_000 + id as i64
                    ])?;
                }
                rows = JOBS * scale;
            }
        }
        Dataset::Audit => {
            tx.execute_batch(
                "CREATE TABLE IF NOT EXISTS audit_log(
                   id INTEGER PRIMARY KEY, at INTEGER NOT NULL, actor TEXT NOT NULL,
                   action TEXT NOT NULL, details TEXT NOT NULL);",
            )?;
            if empty(&tx, "audit_log")? {
                let mut a = tx.prepare(
                    "INSERT INTO audit_log(at, actor, action, details) VALUES (?1, ?2, ?3, ?4)",
                )?;
                for i in 0..AUDIT_ROWS * scale {
                    let action = ["login", "update", "export", "delete"][rng.below(4) as usize];
                    a.execute(params![
                        1_700_000_000 + i as i64,
                        assignee(rng.below(ASSIGNEES)),
                        action,
                        rng.text(300)
                    ])?;
                }
                rows = AUDIT_ROWS * scale;
            }
        }
    }
    tx.commit()?;
    Ok(rows)
}

fn empty(conn: &Connection, table: &str) -> rusqlite::Result<bool> {
    // `table` is one of the fixed names above, never user input.
    conn.query_row(
        &format!("SELECT NOT EXISTS (SELECT 1 FROM {table})"),
        [],
        |r| r.get(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checksum(conn: &Connection, sql: &str) -> (i64, String) {
        conn.query_row(sql, [], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
    }

    #[test]
    fn generates_the_target_scale_deterministically() {
        let mut a = Connection::open_in_memory().unwrap();
        let mut b = Connection::open_in_memory().unwrap();
        assert_eq!(generate(&mut a, Dataset::Customers, 7, 1).unwrap(), 16_500);
        generate(&mut b, Dataset::Customers, 7, 1).unwrap();
        let sql = "SELECT count(*), group_concat(name || batch_id, ',') FROM (SELECT * FROM customers ORDER BY id LIMIT 50)";
        assert_eq!(checksum(&a, sql), checksum(&b, sql));
        let (n, avg): (i64, f64) = a
            .query_row(
                "SELECT count(*), avg(length(notes)) FROM customers",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((n, avg), (15_000, 200.0));
        let batches: i64 = a
            .query_row("SELECT count(*) FROM batches", [], |r| r.get(0))
            .unwrap();
        assert_eq!(batches, 1_500);
        // A second call leaves a filled table alone.
        assert_eq!(generate(&mut a, Dataset::Customers, 7, 1).unwrap(), 0);
        let mut c = Connection::open_in_memory().unwrap();
        generate(&mut c, Dataset::Customers, 8, 1).unwrap();
        assert_ne!(
            checksum(&a, sql),
            checksum(&c, sql),
            "another seed, other rows"
        );
    }

    #[test]
    fn scale_multiplies_row_counts() {
        let mut j = Connection::open_in_memory().unwrap();
        assert_eq!(generate(&mut j, Dataset::Jobs, 1, 3).unwrap(), 600);
        let mut a = Connection::open_in_memory().unwrap();
        assert_eq!(generate(&mut a, Dataset::Audit, 1, 1).unwrap(), 10_000);
        let avg: f64 = a
            .query_row("SELECT avg(length(details)) FROM audit_log", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(avg, 300.0);
    }
}
