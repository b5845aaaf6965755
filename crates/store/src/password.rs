//! Password hashing: argon2id (PHC string format). Plain text is never stored.
use argon2::password_hash::{
    rand_core::OsRng, Output, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::{Algorithm, Argon2, Block, Params, Version};

/// Hashes a password into a `$argon2id$...` PHC string.
pub fn hash_password(password: &str) -> Result<String, crate::StoreError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| crate::StoreError::Invalid(format!("cannot hash password: {e}")))
}

/// True when `password` matches the PHC string `hash`. A malformed hash never matches.
pub fn verify_password(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Checks passwords against PHC strings like [`verify_password`], but keeps its argon2 working
/// memory (19 MiB with the default parameters) from one check to the next instead of
/// allocating and faulting it in every time: a long-lived checker (one per password-checking
/// thread) costs a fixed amount of memory, and each check is cheaper.
#[derive(Default)]
pub struct Verifier {
    blocks: Vec<Block>,
}

impl Verifier {
    /// Memory kept between checks, in argon2 blocks of 1 KiB: enough for the default
    /// parameters (`m=19456`). A hash that asks for more gets its memory for one check only.
    pub const KEPT_BLOCKS: usize = Params::DEFAULT_M_COST as usize;

    pub fn new() -> Self {
        Verifier::default()
    }

    /// True when `password` matches the PHC string `hash` (argon2d, argon2i or argon2id, any
    /// parameters). A malformed hash never matches.
    pub fn verify(&mut self, password: &str, hash: &str) -> bool {
        self.check(password, hash).unwrap_or(false)
    }

    fn check(&mut self, password: &str, hash: &str) -> Option<bool> {
        let parsed = PasswordHash::new(hash).ok()?;
        let (salt, expected) = (parsed.salt?, parsed.hash?);
        let algorithm = Algorithm::try_from(parsed.algorithm).ok()?;
        let version = match parsed.version {
            Some(v) => Version::try_from(v).ok()?,
            None => Version::default(),
        };
        let params = Params::try_from(&parsed).ok()?;
        let mut salt_buf = [0u8; 64];
        let salt = salt.decode_b64(&mut salt_buf).ok()?;
        let need = params.block_count();
        let mut once = Vec::new();
        let blocks: &mut [Block] = if need <= Self::KEPT_BLOCKS {
            if self.blocks.len() < need {
                self.blocks.resize(need, Block::default());
            }
            &mut self.blocks[..need]
        } else {
            once.resize(need, Block::default());
            &mut once
        };
        let argon = Argon2::new(algorithm, version, params);
        let computed = Output::init_with(expected.len(), |out| {
            argon
                .hash_password_into_with_memory(password.as_bytes(), salt, out, &mut *blocks)
                .map_err(Into::into)
        })
        .ok()?;
        // Output's == is constant-time.
        Some(computed == expected)
    }

    /// Gives the kept memory back (an idle checker).
    pub fn release(&mut self) {
        self.blocks = Vec::new();
    }
}

/// True when the string is already an argon2 PHC hash (as config files may give it).
pub fn is_hash(s: &str) -> bool {
    s.starts_with("$argon2id$") || s.starts_with("$argon2i$") || s.starts_with("$argon2d$")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let h = hash_password("secret").unwrap();
        assert!(is_hash(&h));
        assert!(verify_password("secret", &h));
        assert!(!verify_password("Secret", &h));
        assert!(!verify_password("secret", "not a hash"));
    }

    #[test]
    fn verifier_agrees_with_verify_password() {
        let default = hash_password("secret").unwrap();
        // Small parameters, argon2i and argon2d, as a config file may hold them.
        let small = |alg: Algorithm| {
            let params = Params::new(64, 1, 1, None).unwrap();
            let salt = SaltString::generate(&mut OsRng);
            Argon2::new(alg, Version::V0x13, params)
                .hash_password(b"tiny", &salt)
                .unwrap()
                .to_string()
        };
        let (id, i, d) = (
            small(Algorithm::Argon2id),
            small(Algorithm::Argon2i),
            small(Algorithm::Argon2d),
        );
        let mut v = Verifier::new();
        let cases = [
            ("secret", default.as_str()),
            ("Secret", default.as_str()),
            ("tiny", id.as_str()),
            ("tiny", i.as_str()),
            ("tiny", d.as_str()),
            ("tinY", id.as_str()),
            ("secret", "not a hash"),
            ("secret", "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ"),
            // The same memory is reused in both directions (small after large and back).
            ("secret", default.as_str()),
            ("tiny", id.as_str()),
        ];
        for (pw, h) in cases {
            assert_eq!(v.verify(pw, h), verify_password(pw, h), "{pw} {h}");
        }
        assert!(v.verify("secret", &default));
        assert!(!v.verify("tiny", &default));
        v.release();
        assert!(v.verify("tiny", &d));
    }
}
