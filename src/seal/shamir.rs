//! Shamir secret sharing over GF(2^8), byte-compatible with Vault's `shamir` package.
//!
//! Sits under the seal: `sys/init` splits the root key into unseal keys, `sys/unseal` combines
//! them again, and the barrier proves the result right or wrong by AEAD-opening the keyring
//! (shares carry no integrity check of their own).
//!
//! Format (Vault's): each share is `secret.len() + 1` bytes, the y values of one point per secret
//! byte followed by the x coordinate in the **last byte**. x coordinates are distinct, non-zero
//! and random. The field is GF(2^8) with the AES polynomial x^8 + x^4 + x^3 + x + 1, so shares
//! made by Vault combine here and vice versa.
//!
//! Arithmetic is done without lookup tables: `mul` is a fixed eight-round shift-and-add with
//! masks instead of branches, and the inverse is `a^254` by a fixed chain of multiplications.
//! Log/exp tables would be faster but index memory with secret bytes (a cache-timing channel);
//! at 32-byte secrets and a handful of shares the table-free version costs microseconds.
//! Validation branches only on public values (lengths, counts, x coordinates).

use rand::RngCore;
use rand::rngs::OsRng;
use rand::seq::SliceRandom;
use zeroize::Zeroizing;

/// Multiplication in GF(2^8) (AES polynomial), constant-time in both operands.
fn mul(a: u8, b: u8) -> u8 {
    let mut r: u8 = 0;
    for i in (0..8).rev() {
        // r = r*2 (reduced) + (bit i of b) * a, with masks instead of branches.
        let carry = 0u8.wrapping_sub(r >> 7);
        let bit = 0u8.wrapping_sub((b >> i) & 1);
        r = (r << 1) ^ (carry & 0x1b) ^ (bit & a);
    }
    r
}

/// Multiplicative inverse (`a^254`); `inv(0)` is 0, which callers never rely on.
fn inv(a: u8) -> u8 {
    // a^254 = a^(2+4+8+16+32+64+128): square-and-multiply with a fixed sequence.
    let mut sq = mul(a, a); // a^2
    let mut acc = sq;
    for _ in 0..6 {
        sq = mul(sq, sq); // a^4, a^8, ..., a^128
        acc = mul(acc, sq);
    }
    acc
}

/// Horner evaluation of the polynomial with coefficients `coeffs` (constant term first) at `x`.
fn eval(coeffs: &[u8], x: u8) -> u8 {
    coeffs.iter().rev().fold(0u8, |acc, &c| mul(acc, x) ^ c)
}

/// Splits `secret` into `shares` parts, any `threshold` of which reconstruct it.
///
/// `shares == 1 && threshold == 1` is accepted as a special case (Vault allows it at the
/// `sys/init` level): the polynomial is the constant `secret`, so the single share is the secret
/// followed by a random x byte, and [`combine`] of that one share returns the secret.
/// Errors use Vault's messages. Counts above 255 cannot be expressed as `u8`; callers taking
/// wider integers from a request must reject them with `parts cannot exceed 255` first.
pub fn split(secret: &[u8], shares: u8, threshold: u8) -> Result<Vec<Vec<u8>>, String> {
    let one_of_one = shares == 1 && threshold == 1;
    if shares < threshold {
        return Err("parts cannot be less than threshold".into());
    }
    if threshold < 2 && !one_of_one {
        return Err("threshold must be at least 2".into());
    }
    if secret.is_empty() {
        return Err("cannot split an empty secret".into());
    }

    // Distinct, non-zero, random x coordinates (Vault: a random permutation of 1..=255).
    let mut xs: Vec<u8> = (1..=255).collect();
    xs.shuffle(&mut OsRng);
    xs.truncate(usize::from(shares));

    let mut out: Vec<Vec<u8>> = xs
        .iter()
        .map(|&x| {
            let mut share = vec![0u8; secret.len() + 1];
            if let Some(last) = share.last_mut() {
                *last = x;
            }
            share
        })
        .collect();

    // One random polynomial of degree threshold-1 per secret byte, constant term = that byte.
    let mut coeffs = Zeroizing::new(vec![0u8; usize::from(threshold)]);
    for (idx, &byte) in secret.iter().enumerate() {
        if let Some((constant, rest)) = coeffs.split_first_mut() {
            *constant = byte;
            OsRng.fill_bytes(rest);
        }
        for (share, &x) in out.iter_mut().zip(&xs) {
            if let Some(y) = share.get_mut(idx) {
                *y = eval(&coeffs, x);
            }
        }
    }
    Ok(out)
}

/// Reconstructs the secret from `parts` by Lagrange interpolation at x = 0.
///
/// Callers must pass at least the threshold number of parts; fewer yield a wrong value, not an
/// error (Shamir shares carry no integrity check). One part is accepted as the degenerate
/// threshold-1 case produced by `split(secret, 1, 1)`; Vault would refuse it, but Coffer's seal
/// only combines once `threshold` parts are collected, so one part means threshold 1.
pub fn combine(parts: &[Vec<u8>]) -> Result<Vec<u8>, String> {
    let Some(first) = parts.first() else {
        return Err("less than two parts cannot be used to reconstruct the secret".into());
    };
    let len = first.len();
    if len < 2 {
        return Err("parts must be at least two bytes".into());
    }
    if parts.iter().any(|p| p.len() != len) {
        return Err("all parts must be the same length".into());
    }
    let xs: Vec<u8> = parts.iter().filter_map(|p| p.last().copied()).collect();
    for (i, x) in xs.iter().enumerate() {
        if xs.iter().skip(i + 1).any(|other| other == x) {
            return Err("duplicate part detected".into());
        }
    }

    // Lagrange basis at 0: l_j(0) = prod_{m != j} x_m / (x_m - x_j); subtraction is XOR.
    let basis: Vec<u8> = xs
        .iter()
        .enumerate()
        .map(|(j, &xj)| {
            xs.iter()
                .enumerate()
                .filter(|&(m, _)| m != j)
                .fold(1u8, |acc, (_, &xm)| mul(acc, mul(xm, inv(xm ^ xj))))
        })
        .collect();

    let mut secret = vec![0u8; len - 1];
    for (idx, out) in secret.iter_mut().enumerate() {
        *out = parts.iter().zip(&basis).fold(0u8, |acc, (p, &l)| {
            acc ^ mul(p.get(idx).copied().unwrap_or(0), l)
        });
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn field_arithmetic() {
        // Known AES-field products (FIPS-197 §4.2: {57}·{83} = {c1}, {57}·{13} = {fe}).
        assert_eq!(mul(0x57, 0x83), 0xc1);
        assert_eq!(mul(0x57, 0x13), 0xfe);
        for a in 1..=255u8 {
            assert_eq!(mul(a, inv(a)), 1, "inverse of {a}");
            assert_eq!(mul(a, 1), a);
            assert_eq!(mul(a, 0), 0);
        }
    }

    fn subsets(n: usize, k: usize) -> Vec<Vec<usize>> {
        (0u32..(1 << n))
            .filter(|m| m.count_ones() as usize == k)
            .map(|m| (0..n).filter(|i| m & (1 << i) != 0).collect())
            .collect()
    }

    #[test]
    fn every_threshold_subset_recombines() {
        let secret: Vec<u8> = (0..32).map(|_| rand::thread_rng().r#gen()).collect();
        let shares = split(&secret, 5, 3).unwrap();
        assert_eq!(shares.len(), 5);
        for s in &shares {
            assert_eq!(s.len(), 33);
            assert_ne!(*s.last().unwrap(), 0);
        }
        let mut xs: Vec<u8> = shares.iter().map(|s| *s.last().unwrap()).collect();
        xs.sort_unstable();
        xs.dedup();
        assert_eq!(xs.len(), 5, "x coordinates are distinct");
        for k in 3..=5 {
            for subset in subsets(5, k) {
                let parts: Vec<Vec<u8>> = subset.iter().map(|&i| shares[i].clone()).collect();
                assert_eq!(combine(&parts).unwrap(), secret, "subset {subset:?}");
            }
        }
        for subset in subsets(5, 2) {
            let parts: Vec<Vec<u8>> = subset.iter().map(|&i| shares[i].clone()).collect();
            assert_ne!(
                combine(&parts).unwrap(),
                secret,
                "two of 5/3 must not recombine"
            );
        }
    }

    #[test]
    fn random_round_trips() {
        let mut rng = rand::thread_rng();
        for _ in 0..200 {
            let len = rng.gen_range(1..=64);
            let secret: Vec<u8> = (0..len).map(|_| rng.r#gen()).collect();
            let threshold = rng.gen_range(2..=10u8);
            let shares = rng.gen_range(threshold..=12u8);
            let mut parts = split(&secret, shares, threshold).unwrap();
            parts.shuffle(&mut rng);
            parts.truncate(usize::from(threshold));
            assert_eq!(combine(&parts).unwrap(), secret);
        }
    }

    #[test]
    fn one_of_one_round_trips() {
        let secret = [7u8; 32];
        let parts = split(&secret, 1, 1).unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].len(), 33);
        assert_eq!(combine(&parts).unwrap(), secret);
    }

    #[test]
    fn max_shares() {
        let secret = b"root key".to_vec();
        let parts = split(&secret, 255, 255).unwrap();
        assert_eq!(combine(&parts).unwrap(), secret);
    }

    #[test]
    fn vault_validation_messages() {
        let err = |r: Result<Vec<Vec<u8>>, String>| r.unwrap_err();
        assert_eq!(
            err(split(b"k", 2, 3)),
            "parts cannot be less than threshold"
        );
        assert_eq!(err(split(b"k", 3, 1)), "threshold must be at least 2");
        assert_eq!(err(split(b"k", 0, 0)), "threshold must be at least 2");
        assert_eq!(err(split(b"", 3, 2)), "cannot split an empty secret");

        let c = |p: &[Vec<u8>]| combine(p).unwrap_err();
        assert_eq!(
            c(&[]),
            "less than two parts cannot be used to reconstruct the secret"
        );
        assert_eq!(
            c(&[vec![1, 2], vec![1, 2, 3]]),
            "all parts must be the same length"
        );
        assert_eq!(c(&[vec![1, 2], vec![3, 2]]), "duplicate part detected");
        assert_eq!(c(&[vec![1], vec![2]]), "parts must be at least two bytes");
    }
}
