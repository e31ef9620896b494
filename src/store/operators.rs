//! The managers' console's operators: a name and the Argon2id hash of a password (a PHC
//! string: algorithm, parameters, salt and hash in one). Passwords are made here, shown once
//! by `bot operator add|reset`, and never stored. This file owns the `operators` table.

use super::tx::{Tx, on};
use super::{Store, StoreError};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use chrono::{DateTime, Utc};

/// An operator as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    pub id: i64,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A one-time password: 20 characters from an alphabet without look-alikes (about 100 bits).
pub fn new_password() -> Result<String, StoreError> {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 20];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::corrupt("random source", e))?;
    Ok(bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect())
}

/// The Argon2id hash of `password` with a fresh salt.
pub fn hash_password(password: &str) -> Result<String, StoreError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| StoreError::corrupt("random source", e))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| StoreError::corrupt("salt", e))?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| StoreError::corrupt("password hash", e))
}

/// Whether `password` matches the stored PHC string (false for a malformed one).
pub fn verify_password(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|parsed| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// An operator's row with their password hash.
type OperatorRow = (i64, String, DateTime<Utc>, DateTime<Utc>, String);

fn operator_from((id, name, created_at, updated_at, _): OperatorRow) -> Operator {
    Operator {
        id,
        name,
        created_at,
        updated_at,
    }
}

impl Store {
    /// Add operator `name` with `password` (hashed); false when the name is taken.
    pub async fn add_operator(
        &self,
        name: &str,
        password: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "INSERT INTO operators (name, password_hash, created_at, updated_at) \
             VALUES ($1, $2, $3, $3) ON CONFLICT (name) DO NOTHING";
        self.write_operator(SQL, name, Some((password, now))).await
    }

    /// Give operator `name` a new password; false when there is no such operator.
    pub async fn reset_operator(
        &self,
        name: &str,
        password: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        const SQL: &str =
            "UPDATE operators SET password_hash = $2, updated_at = $3 WHERE name = $1";
        self.write_operator(SQL, name, Some((password, now))).await
    }

    /// Remove operator `name`; false when there is no such operator.
    pub async fn remove_operator(&self, name: &str) -> Result<bool, StoreError> {
        const SQL: &str = "DELETE FROM operators WHERE name = $1";
        self.write_operator(SQL, name, None).await
    }

    /// Run one statement on operator `name` (`$1`), with the hash of a new password (`$2`)
    /// and the time it is set (`$3`) when it sets one; whether it changed a row.
    async fn write_operator(
        &self,
        sql: &'static str,
        name: &str,
        password: Option<(&str, DateTime<Utc>)>,
    ) -> Result<bool, StoreError> {
        let set = match password {
            Some((password, now)) => Some((hash_password(password)?, now)),
            None => None,
        };
        let mut tx = self.write().await?;
        let n = on!(&mut tx, |c| {
            let mut q = sqlx::query(sql).bind(name);
            if let Some((hash, now)) = &set {
                q = q.bind(hash).bind(now);
            }
            q.execute(c).await?.rows_affected()
        });
        tx.commit().await?;
        Ok(n == 1)
    }

    /// Every operator, by name.
    pub async fn operators(&self) -> Result<Vec<Operator>, StoreError> {
        const SQL: &str = "SELECT id, name, created_at, updated_at, password_hash \
             FROM operators ORDER BY name";
        let mut tx = self.read().await?;
        let rows = on!(&mut tx, |c| sqlx::query_as::<_, OperatorRow>(SQL)
            .fetch_all(c)
            .await?);
        tx.commit().await?;
        Ok(rows.into_iter().map(operator_from).collect())
    }

    /// The operator `name` when `password` is theirs (the console's login).
    pub async fn check_operator(
        &self,
        name: &str,
        password: &str,
    ) -> Result<Option<Operator>, StoreError> {
        const SQL: &str = "SELECT id, name, created_at, updated_at, password_hash \
             FROM operators WHERE name = $1";
        let mut tx = self.read().await?;
        let row = on!(&mut tx, |c| sqlx::query_as::<_, OperatorRow>(SQL)
            .bind(name)
            .fetch_optional(c)
            .await?);
        tx.commit().await?;
        Ok(row
            .filter(|r| verify_password(password, &r.4))
            .map(operator_from))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_argon2id_hash_only() {
        let password = new_password().unwrap();
        assert_eq!(password.chars().count(), 20);
        assert_ne!(password, new_password().unwrap());
        let hash = hash_password(&password).unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(!hash.contains(&password));
        assert!(verify_password(&password, &hash));
        assert!(!verify_password("wrong", &hash));
        assert!(!verify_password(&password, "not a hash"));
        assert_ne!(
            hash,
            hash_password(&password).unwrap(),
            "a fresh salt each time"
        );
    }
}
