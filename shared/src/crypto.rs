//! Random tokens, token hashes and password hashing (argon2id, off the async executor).

use anyhow::Context as _;
use argon2::password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash};
use argon2::{Algorithm, Argon2, Params, Version};
use sha2::{Digest, Sha256};

use crate::domain::Password;

/// `bytes` bytes from the operating system's CSPRNG, hex-encoded.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    // The OS generator failing is not something a web app can recover from.
    getrandom::fill(&mut buf).expect("the operating system's random number generator failed");
    hex::encode(buf)
}

/// Whether `text` has the shape of the tokens this app hands out (sessions, API tokens, email
/// links: `random_token(32)`, 64 hex digits). Anything else cannot be one of ours, and is
/// refused without a lookup.
pub fn is_token_shaped(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// How tokens (sessions, API tokens, email links) are stored: a SHA-256 hex digest. The tokens
/// carry at least 128 random bits, so a fast hash is enough and lets us look them up by hash.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// argon2id at OWASP's minimum: 19 MiB of memory, 2 passes, 1 lane.
fn hasher() -> anyhow::Result<Argon2<'static>> {
    let params =
        Params::new(19_456, 2, 1, None).map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// The start of every hash made with today's parameters; a stored hash without it was made
/// with older ones and is replaced at the next successful login.
pub const CURRENT_HASH_PREFIX: &str = "$argon2id$v=19$m=19456,t=2,p=1$";

pub fn needs_rehash(stored: &str) -> bool {
    !stored.starts_with(CURRENT_HASH_PREFIX)
}

/// Runs an argon2 computation on a blocking thread, at most one per CPU at a time. Each takes
/// 19 MiB and tens of milliseconds of CPU: 200 sign-ups at once would otherwise start 200
/// (3.8 GiB), finish together late, and then all wait for the database pool at the same moment
/// (answering 503). Queued here, they finish one after another and reach the database spread
/// out. (A Lambda instance serves one request at a time; this matters to `cargo run` and to
/// anyone running the router in a long-lived server.)
async fn argon2_task<T: Send + 'static>(
    work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    let slots = SLOTS.get_or_init(|| {
        tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    });
    let _slot = slots
        .acquire()
        .await
        .context("the password hashing queue is closed")?;
    tokio::task::spawn_blocking(work)
        .await
        .context("password hashing task")?
}

/// Hashes a password to a PHC string on a blocking thread (tens of milliseconds of CPU).
pub async fn hash_password(password: &Password) -> anyhow::Result<String> {
    hash_secret(password.expose()).await
}

/// Hashes any secret, valid or not under today's password policy (re-hashing an old password).
pub async fn hash_secret(secret: &str) -> anyhow::Result<String> {
    let password = secret.to_owned();
    argon2_task(move || -> anyhow::Result<String> {
        let hash = hasher()?
            .hash_password(password.as_bytes())
            .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))?;
        Ok(hash.to_string())
    })
    .await
}

/// True when `candidate` matches the stored PHC string.
pub async fn verify_password(candidate: &str, stored: &str) -> anyhow::Result<bool> {
    let candidate = candidate.to_owned();
    let stored = stored.to_owned();
    argon2_task(move || -> anyhow::Result<bool> {
        let parsed = PasswordHash::new(&stored)
            .map_err(|e| anyhow::anyhow!("stored password hash is malformed: {e}"))?;
        Ok(hasher()?
            .verify_password(candidate.as_bytes(), &parsed)
            .is_ok())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_tokens_have_the_requested_entropy_and_differ() {
        let a = random_token(16);
        let b = random_token(16);
        assert_eq!(a.len(), 32, "16 bytes = 128 bits, hex-encoded");
        assert_ne!(a, b);
    }

    #[test]
    fn token_hashes_are_stable_sha256() {
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[tokio::test]
    async fn a_hashed_password_verifies_and_a_wrong_one_does_not() {
        let password = Password::parse("correct horse battery", None).unwrap();
        let hash = hash_password(&password).await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(
            verify_password("correct horse battery", &hash)
                .await
                .unwrap()
        );
        assert!(
            !verify_password("correct horse battery!", &hash)
                .await
                .unwrap()
        );
    }
}
