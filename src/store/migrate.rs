//! Applying the SQLite migrations so a kill at any instant leaves each one
//! either wholly applied and recorded or not applied at all.
//!
//! sqlx runs an ordinary migration and its `_sqlx_migrations` row in one
//! transaction. A `-- no-transaction` migration (the table rebuilds, which
//! must switch foreign keys off outside any transaction) it runs first and
//! records after: a kill between the two leaves the schema changed but the
//! migration unrecorded, and the next start applies it again and fails
//! ("duplicate column"), for good. Here such a migration's own
//! `BEGIN; … COMMIT;` is split at its `COMMIT;` line and the record is
//! written inside that transaction, so both commit together.
//!
//! Everything else (the table sqlx keeps, the dirty and checksum checks,
//! transactional migrations) is sqlx's own; PostgreSQL needs none of this,
//! as its DDL is transactional and no migration there opts out.

use std::collections::HashMap;

use sqlx::migrate::{Migrate, MigrateError, Migration, Migrator};
use sqlx::{AnyConnection, AssertSqlSafe, Executor};

/// sqlx's default bookkeeping table: existing state files already hold it.
const TABLE: &str = "_sqlx_migrations";

/// Apply every pending migration of `migrator` on `conn`, as
/// [`Migrator::run`] does but with no-transaction migrations recorded
/// atomically. The caller holds the state file's lock.
pub(super) async fn run(migrator: &Migrator, conn: &mut AnyConnection) -> Result<(), MigrateError> {
    conn.ensure_migrations_table(TABLE).await?;
    if let Some(version) = conn.dirty_version(TABLE).await? {
        return Err(MigrateError::Dirty(version));
    }
    let applied: HashMap<i64, Vec<u8>> = conn
        .list_applied_migrations(TABLE)
        .await?
        .into_iter()
        .map(|m| (m.version, m.checksum.into_owned()))
        .collect();
    if let Some(unknown) = applied
        .keys()
        .find(|v| !migrator.iter().any(|m| m.version == **v))
    {
        return Err(MigrateError::VersionMissing(*unknown));
    }
    for migration in migrator.iter() {
        if migration.migration_type.is_down_migration() {
            continue;
        }
        match applied.get(&migration.version) {
            Some(checksum) if *checksum != *migration.checksum => {
                return Err(MigrateError::VersionMismatch(migration.version));
            }
            Some(_) => {}
            None if migration.no_tx => apply_recorded_in_own_transaction(conn, migration).await?,
            None => {
                conn.apply(TABLE, migration).await?;
            }
        }
    }
    Ok(())
}

/// A no-transaction migration split at its one `COMMIT;` line: what comes
/// before (pragmas, `BEGIN;`, the statements) and what comes after.
fn split_at_commit(migration: &Migration) -> Result<(&str, &str), MigrateError> {
    let sql = migration.sql.as_str();
    let mut commits = sql.match_indices("\nCOMMIT;");
    match (commits.next(), commits.next()) {
        (Some((at, _)), None) => Ok((&sql[..at], &sql[at + "\nCOMMIT;".len()..])),
        _ => Err(MigrateError::ExecuteMigration(
            sqlx::Error::Protocol(format!(
                "no-transaction migration {} must hold exactly one `COMMIT;` line \
                 so it can be recorded inside its own transaction",
                migration.version
            )),
            migration.version,
        )),
    }
}

async fn apply_recorded_in_own_transaction(
    conn: &mut AnyConnection,
    migration: &Migration,
) -> Result<(), MigrateError> {
    let (body, after) = split_at_commit(migration)?;
    let failed = |e| MigrateError::ExecuteMigration(e, migration.version);
    let recorded = async {
        conn.execute(AssertSqlSafe(body.to_owned())).await?;
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {TABLE} (version, description, success, checksum, execution_time) \
             VALUES ($1, $2, TRUE, $3, -1)"
        )))
        .bind(migration.version)
        .bind(migration.description.to_string())
        .bind(migration.checksum.to_vec())
        .execute(&mut *conn)
        .await?;
        conn.execute("COMMIT").await?;
        Ok::<_, sqlx::Error>(())
    }
    .await;
    if let Err(e) = recorded {
        // Leave the connection clean for the pool; a kill would roll back
        // the same way when the file is next opened.
        let _ = conn.execute("ROLLBACK").await;
        let _ = conn.execute("PRAGMA foreign_keys = ON").await;
        return Err(failed(e));
    }
    if !after.trim().is_empty() {
        conn.execute(AssertSqlSafe(after.to_owned()))
            .await
            .map_err(failed)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_no_transaction_sqlite_migration_can_be_recorded_inside_its_transaction() {
        let migrator = sqlx::migrate!("./migrations/sqlite");
        let no_tx: Vec<_> = migrator.iter().filter(|m| m.no_tx).collect();
        assert!(!no_tx.is_empty(), "the table rebuilds are no-transaction");
        for m in no_tx {
            let (body, after) = split_at_commit(m).expect("one COMMIT line");
            assert!(
                body.contains("\nBEGIN;"),
                "{}: BEGIN before COMMIT",
                m.version
            );
            assert!(
                !after.contains("BEGIN"),
                "{}: nothing transactional after COMMIT",
                m.version
            );
        }
    }
}
