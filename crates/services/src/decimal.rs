//! A small exact decimal number for the calculator.
//!
//! A value is `mantissa / 10^scale` with `|mantissa| <= 10^38 - 1` (38 significant digits, held
//! in an `i128`) and `scale <= 28` (decimal places). Addition, subtraction, multiplication and
//! `%` are exact whenever the exact result fits those bounds; division and powers of
//! non-integers are exact when the result terminates within 28 places. Anything with more
//! places is rounded half away from zero; anything with more than 38 integer digits is
//! `Overflow` ("number too large").
//!
//! Why not `rust_decimal`: its 96-bit mantissa and silent rounding rules are a different set of
//! edges than the ones we document, and the calculator needs only these five operations. Every
//! intermediate is computed in a 256-bit integer (`U256` below, ~120 lines), so a product of two
//! 38-digit numbers is exact before it is rounded once.
use std::cmp::Ordering;
use std::fmt;

/// Most decimal places a value keeps; more are rounded half away from zero.
pub const MAX_SCALE: u32 = 28;
/// Most significant digits a value holds.
pub const MAX_DIGITS: u32 = 38;

/// Why an operation has no value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    #[error("number too large")]
    Overflow,
    #[error("division by zero")]
    DivisionByZero,
    #[error("exponent must be an integer")]
    FractionalExponent,
}

/// An exact decimal number; see the module doc.
#[derive(Clone, Copy, Debug)]
pub struct Decimal {
    mant: i128,
    scale: u32,
}

// ---------------------------------------------------------------------------------------------
// 256-bit unsigned helper (little-endian u64 limbs).

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
struct U256([u64; 4]);

impl U256 {
    const ZERO: U256 = U256([0; 4]);

    fn from_u128(v: u128) -> Self {
        U256([v as u64, (v >> 64) as u64, 0, 0])
    }

    fn to_u128(self) -> Option<u128> {
        if self.0[2] == 0 && self.0[3] == 0 {
            Some(u128::from(self.0[0]) | (u128::from(self.0[1]) << 64))
        } else {
            None
        }
    }

    fn is_zero(self) -> bool {
        self.0 == [0; 4]
    }

    fn mul_u128(a: u128, b: u128) -> Self {
        let a = [a as u64, (a >> 64) as u64];
        let b = [b as u64, (b >> 64) as u64];
        let mut out = [0u64; 4];
        for (i, &ai) in a.iter().enumerate() {
            let mut carry: u128 = 0;
            for (j, &bj) in b.iter().enumerate() {
                let t = u128::from(ai) * u128::from(bj) + u128::from(out[i + j]) + carry;
                out[i + j] = t as u64;
                carry = t >> 64;
            }
            let mut k = i + 2;
            while carry != 0 && k < 4 {
                let t = u128::from(out[k]) + carry;
                out[k] = t as u64;
                carry = t >> 64;
                k += 1;
            }
        }
        U256(out)
    }

    fn mul_small(self, m: u64) -> Option<Self> {
        let mut out = [0u64; 4];
        let mut carry: u128 = 0;
        for (o, &limb) in out.iter_mut().zip(self.0.iter()) {
            let t = u128::from(limb) * u128::from(m) + carry;
            *o = t as u64;
            carry = t >> 64;
        }
        (carry == 0).then_some(U256(out))
    }

    fn add(self, o: Self) -> Option<Self> {
        let mut out = [0u64; 4];
        let mut carry = false;
        for (i, slot) in out.iter_mut().enumerate() {
            let (s1, c1) = self.0[i].overflowing_add(o.0[i]);
            let (s2, c2) = s1.overflowing_add(u64::from(carry));
            *slot = s2;
            carry = c1 || c2;
        }
        (!carry).then_some(U256(out))
    }

    /// `self - o`; callers guarantee `self >= o`.
    fn sub(self, o: Self) -> Self {
        let mut out = [0u64; 4];
        let mut borrow = false;
        for (i, slot) in out.iter_mut().enumerate() {
            let (d1, b1) = self.0[i].overflowing_sub(o.0[i]);
            let (d2, b2) = d1.overflowing_sub(u64::from(borrow));
            *slot = d2;
            borrow = b1 || b2;
        }
        U256(out)
    }

    fn div_rem_small(self, d: u64) -> (Self, u64) {
        let mut out = [0u64; 4];
        let mut rem: u128 = 0;
        for i in (0..4).rev() {
            let cur = (rem << 64) | u128::from(self.0[i]);
            out[i] = (cur / u128::from(d)) as u64;
            rem = cur % u128::from(d);
        }
        (U256(out), rem as u64)
    }

    fn shl1(self) -> Self {
        let mut out = [0u64; 4];
        let mut carry = 0u64;
        for (o, &limb) in out.iter_mut().zip(self.0.iter()) {
            *o = (limb << 1) | carry;
            carry = limb >> 63;
        }
        U256(out)
    }

    fn bit(self, i: usize) -> bool {
        (self.0[i / 64] >> (i % 64)) & 1 == 1
    }

    /// Remainder of binary long division (divisor non-zero).
    fn rem(self, d: Self) -> Self {
        let mut r = U256::ZERO;
        for i in (0..256).rev() {
            r = r.shl1();
            if self.bit(i) {
                r.0[0] |= 1;
            }
            if r >= d {
                r = r.sub(d);
            }
        }
        r
    }

    fn pow10(n: u32) -> Option<Self> {
        let mut v = U256::from_u128(1);
        for _ in 0..n {
            v = v.mul_small(10)?;
        }
        Some(v)
    }
}

impl PartialOrd for U256 {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for U256 {
    fn cmp(&self, other: &Self) -> Ordering {
        for i in (0..4).rev() {
            match self.0[i].cmp(&other.0[i]) {
                Ordering::Equal => continue,
                o => return o,
            }
        }
        Ordering::Equal
    }
}

/// 10^38 - 1, the largest mantissa magnitude.
const LIMIT: u128 = 99_999_999_999_999_999_999_999_999_999_999_999_999;

/// Brings a wide magnitude into bounds: drops decimal places (rounding half away from zero)
/// while there are more than `MAX_SCALE` or the mantissa is above `LIMIT`.
fn reduce(mut mag: U256, mut scale: u32, negative: bool) -> Result<Decimal, DecimalError> {
    let limit = U256::from_u128(LIMIT);
    let mut round_digit = 0u64;
    loop {
        while scale > MAX_SCALE || mag > limit {
            if scale == 0 {
                return Err(DecimalError::Overflow);
            }
            let (q, r) = mag.div_rem_small(10);
            mag = q;
            round_digit = r;
            scale -= 1;
        }
        if round_digit >= 5 {
            // Half away from zero: only the first discarded digit decides.
            mag = mag.add(U256::from_u128(1)).ok_or(DecimalError::Overflow)?;
            round_digit = 0;
            continue; // 99.96 -> 100.0 may need one more step
        }
        break;
    }
    let m = mag.to_u128().ok_or(DecimalError::Overflow)? as i128; // <= LIMIT, fits
    Ok(Decimal {
        mant: if negative { -m } else { m },
        scale,
    })
}

impl Decimal {
    pub const ZERO: Decimal = Decimal { mant: 0, scale: 0 };
    pub const ONE: Decimal = Decimal { mant: 1, scale: 0 };

    /// An integer value.
    pub fn from_int(v: i64) -> Self {
        Decimal {
            mant: i128::from(v),
            scale: 0,
        }
    }

    /// Parses `digits [ "." digits ]` or `"." digits` (no sign). More than 38 integer digits is
    /// `Overflow`; more than 28 places are rounded. `None` if the text is not such a number.
    pub fn parse(text: &str) -> Option<Result<Self, DecimalError>> {
        let (int, frac) = match text.split_once('.') {
            Some((i, f)) => (i, f),
            None => (text, ""),
        };
        if int.is_empty() && frac.is_empty()
            || !int.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let int = int.trim_start_matches('0');
        if int.len() > MAX_DIGITS as usize {
            return Some(Err(DecimalError::Overflow));
        }
        // Keep one place beyond MAX_SCALE: the rounding digit.
        let frac = &frac[..frac.len().min(MAX_SCALE as usize + 1)];
        let mut mag = U256::ZERO;
        for b in int.bytes().chain(frac.bytes()) {
            mag = match mag
                .mul_small(10)
                .and_then(|m| m.add(U256::from_u128(u128::from(b - b'0'))))
            {
                Some(m) => m,
                None => return Some(Err(DecimalError::Overflow)),
            };
        }
        Some(reduce(mag, frac.len() as u32, false))
    }

    pub fn is_zero(self) -> bool {
        self.mant == 0
    }

    fn is_negative(self) -> bool {
        self.mant < 0
    }

    fn mag(self) -> U256 {
        U256::from_u128(self.mant.unsigned_abs())
    }

    /// Magnitude scaled up to `scale` places (exact: at most 38 + 28 digits).
    fn mag_at(self, scale: u32) -> U256 {
        let mut m = self.mag();
        for _ in self.scale..scale {
            // < 10^66 < 2^256: cannot overflow.
            m = m.mul_small(10).unwrap_or(m);
        }
        m
    }

    /// Removes trailing zero places.
    fn normalized(self) -> Self {
        let mut d = self;
        while d.scale > 0 && d.mant % 10 == 0 {
            d.mant /= 10;
            d.scale -= 1;
        }
        d
    }

    pub fn checked_add(self, o: Self) -> Result<Self, DecimalError> {
        let s = self.scale.max(o.scale);
        let (a, b) = (self.mag_at(s), o.mag_at(s));
        if self.is_negative() == o.is_negative() {
            let sum = a.add(b).ok_or(DecimalError::Overflow)?;
            reduce(sum, s, self.is_negative())
        } else if a >= b {
            reduce(a.sub(b), s, self.is_negative())
        } else {
            reduce(b.sub(a), s, o.is_negative())
        }
    }

    pub fn checked_sub(self, o: Self) -> Result<Self, DecimalError> {
        self.checked_add(-o)
    }

    pub fn checked_mul(self, o: Self) -> Result<Self, DecimalError> {
        let p = U256::mul_u128(self.mant.unsigned_abs(), o.mant.unsigned_abs());
        let neg = self.is_negative() != o.is_negative() && !p.is_zero();
        reduce(p, self.scale + o.scale, neg)
    }

    pub fn checked_div(self, o: Self) -> Result<Self, DecimalError> {
        if o.is_zero() {
            return Err(DecimalError::DivisionByZero);
        }
        // a/b = (A/B) * 10^(sb - sa); long division produces the digits of A/B one by one
        // until it terminates, MAX_SCALE + 1 places exist (the last one is the rounding
        // digit), or there are more significant digits than a value can hold.
        let (a, b) = (self.mant.unsigned_abs(), o.mant.unsigned_abs());
        let divisor = U256::from_u128(b);
        let mut q = U256::from_u128(a / b);
        let mut r = U256::from_u128(a % b);
        let enough = U256::pow10(MAX_DIGITS + 1).ok_or(DecimalError::Overflow)?;
        let mut places: i64 = i64::from(self.scale) - i64::from(o.scale);
        while !r.is_zero() && places <= i64::from(MAX_SCALE) && q < enough {
            r = r.mul_small(10).ok_or(DecimalError::Overflow)?; // < 10^39
            let mut digit = 0u128;
            while r >= divisor {
                r = r.sub(divisor);
                digit += 1;
            }
            q = q
                .mul_small(10)
                .and_then(|x| x.add(U256::from_u128(digit)))
                .ok_or(DecimalError::Overflow)?;
            places += 1;
        }
        while places < 0 {
            // Still a factor 10^-places to apply: the quotient is an integer.
            q = q.mul_small(10).ok_or(DecimalError::Overflow)?;
            places += 1;
        }
        let neg = self.is_negative() != o.is_negative() && !q.is_zero();
        reduce(q, places as u32, neg)
    }

    /// Truncating remainder: the sign follows the dividend, as in C and Rust
    /// (`-7 % 3 = -1`, `7.5 % 2 = 1.5`). Always exact.
    pub fn checked_rem(self, o: Self) -> Result<Self, DecimalError> {
        if o.is_zero() {
            return Err(DecimalError::DivisionByZero);
        }
        let s = self.scale.max(o.scale);
        let r = self.mag_at(s).rem(o.mag_at(s));
        reduce(r, s, self.is_negative() && !r.is_zero())
    }

    /// `self ^ exp` for an integer exponent (negative: the reciprocal).
    pub fn checked_pow(self, exp: Self) -> Result<Self, DecimalError> {
        let e = exp.normalized();
        if e.scale != 0 {
            return Err(DecimalError::FractionalExponent);
        }
        let n = e.mant.unsigned_abs();
        if e.mant >= 0 {
            return self.pow_u(n);
        }
        if self.is_zero() {
            return Err(DecimalError::DivisionByZero);
        }
        match self.pow_u(n) {
            // |p| > 10^38 so |1/p| < 10^-38, which rounds to 0 at 28 places.
            Err(DecimalError::Overflow) => Ok(Decimal::ZERO),
            // The power rounded to 0 but the base is not 0: the reciprocal is huge.
            Ok(p) if p.is_zero() => Err(DecimalError::Overflow),
            Ok(p) => Decimal::ONE.checked_div(p),
            Err(e) => Err(e),
        }
    }

    /// Square-and-multiply; exact while the result fits, rounded to 28 places otherwise.
    fn pow_u(self, mut n: u128) -> Result<Self, DecimalError> {
        let mut base = self;
        let mut acc = Decimal::ONE;
        while n > 0 {
            if n & 1 == 1 {
                acc = acc.checked_mul(base)?;
            }
            n >>= 1;
            if n > 0 {
                base = base.checked_mul(base)?;
            }
        }
        Ok(acc)
    }
}

impl std::ops::Neg for Decimal {
    type Output = Decimal;
    fn neg(self) -> Self {
        // |mant| <= 10^38 - 1, so negation cannot overflow.
        Decimal {
            mant: -self.mant,
            scale: self.scale,
        }
    }
}

impl PartialEq for Decimal {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (self.normalized(), other.normalized());
        a.mant == b.mant && a.scale == b.scale
    }
}

impl fmt::Display for Decimal {
    /// Plain notation without trailing zeros: `3`, `-0.5`, `0.3333333333333333333333333333`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.normalized();
        let digits = d.mant.unsigned_abs().to_string();
        let sign = if d.mant < 0 { "-" } else { "" };
        let scale = d.scale as usize;
        if scale == 0 {
            return write!(f, "{sign}{digits}");
        }
        let padded = if digits.len() <= scale {
            format!("{}{digits}", "0".repeat(scale + 1 - digits.len()))
        } else {
            digits
        };
        let (int, frac) = padded.split_at(padded.len() - scale);
        write!(f, "{sign}{int}.{frac}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        let (neg, body) = match s.strip_prefix('-') {
            Some(b) => (true, b),
            None => (false, s),
        };
        let v = Decimal::parse(body).expect("a number").expect("in range");
        if neg {
            -v
        } else {
            v
        }
    }

    #[test]
    fn parse_and_display() {
        for (i, o) in [
            ("0", "0"),
            ("007", "7"),
            ("1.50", "1.5"),
            (".5", "0.5"),
            ("5.", "5"),
            ("0.000", "0"),
            ("12345678901234567890.123", "12345678901234567890.123"),
            (
                "99999999999999999999999999999999999999",
                "99999999999999999999999999999999999999",
            ),
            (
                "0.00000000000000000000000000015",
                "0.0000000000000000000000000002",
            ),
            (
                "0.00000000000000000000000000014",
                "0.0000000000000000000000000001",
            ),
        ] {
            assert_eq!(d(i).to_string(), o, "{i}");
        }
        assert_eq!(
            Decimal::parse("100000000000000000000000000000000000000"),
            Some(Err(DecimalError::Overflow))
        );
        assert!(Decimal::parse(".").is_none());
        assert!(Decimal::parse("").is_none());
        assert!(Decimal::parse("1.2.3").is_none());
        assert!(Decimal::parse("1e5").is_none());
    }

    #[test]
    fn exact_arithmetic() {
        type Op = fn(Decimal, Decimal) -> Result<Decimal, DecimalError>;
        let cases: &[(&str, Op, &str, &str)] = &[
            ("0.1", Decimal::checked_add, "0.2", "0.3"),
            ("1", Decimal::checked_sub, "0.9", "0.1"),
            ("-1.5", Decimal::checked_add, "1.5", "0"),
            ("1.1", Decimal::checked_mul, "1.1", "1.21"),
            ("-2", Decimal::checked_mul, "3", "-6"),
            (
                "1",
                Decimal::checked_div,
                "3",
                "0.3333333333333333333333333333",
            ),
            (
                "2",
                Decimal::checked_div,
                "3",
                "0.6666666666666666666666666667",
            ),
            ("1", Decimal::checked_div, "8", "0.125"),
            ("-7", Decimal::checked_div, "2", "-3.5"),
            ("10", Decimal::checked_div, "0.01", "1000"),
            ("0.5", Decimal::checked_div, "0.25", "2"),
            ("7", Decimal::checked_rem, "3", "1"),
            ("-7", Decimal::checked_rem, "3", "-1"),
            ("7", Decimal::checked_rem, "-3", "1"),
            ("7.5", Decimal::checked_rem, "2", "1.5"),
            ("0.3", Decimal::checked_rem, "0.1", "0"),
            ("2", Decimal::checked_pow, "10", "1024"),
            ("2", Decimal::checked_pow, "-2", "0.25"),
            ("-2", Decimal::checked_pow, "3", "-8"),
            ("1.5", Decimal::checked_pow, "2", "2.25"),
            ("0", Decimal::checked_pow, "0", "1"),
            ("10", Decimal::checked_pow, "-50", "0"),
            ("2", Decimal::checked_pow, "2.0", "4"),
        ];
        for (a, op, b, want) in cases {
            assert_eq!(
                op(d(a), d(b)).map(|v| v.to_string()),
                Ok(want.to_string()),
                "{a} op {b}"
            );
        }
    }

    #[test]
    fn big_values() {
        let max = d("99999999999999999999999999999999999999");
        assert_eq!(max.checked_add(Decimal::ONE), Err(DecimalError::Overflow));
        assert_eq!(max.checked_mul(d("10")), Err(DecimalError::Overflow));
        assert_eq!(
            (-max).checked_sub(Decimal::ONE),
            Err(DecimalError::Overflow)
        );
        assert_eq!(d("10").checked_pow(d("38")), Err(DecimalError::Overflow));
        assert_eq!(
            d("10").checked_pow(d("37")).map(|v| v.to_string()),
            Ok(format!("1{}", "0".repeat(37)))
        );
        // 38 significant digits with places: the product is rounded, not refused.
        let r = d("1234567890.1234567890")
            .checked_mul(d("1234567890.1234567890"))
            .expect("fits");
        assert_eq!(r.to_string(), "1524157875323883675.019051998750190521");
        assert_eq!(d("1e0".trim_end_matches("e0")).to_string(), "1");
        assert_eq!(
            d("1")
                .checked_div(d("0.0000000000000000000000000001"))
                .map(|v| v.to_string()),
            Ok(format!("1{}", "0".repeat(28)))
        );
        assert_eq!(max.checked_div(d("0.1")), Err(DecimalError::Overflow));
        assert_eq!(
            d("0.5").checked_pow(d("1000")).map(|v| v.to_string()),
            Ok("0".into())
        );
        assert_eq!(d("0.1").checked_pow(d("-40")), Err(DecimalError::Overflow));
        assert_eq!(
            d("2").checked_pow(d("0.5")),
            Err(DecimalError::FractionalExponent)
        );
        assert_eq!(
            d("0").checked_pow(d("-1")),
            Err(DecimalError::DivisionByZero)
        );
        assert_eq!(
            d("1").checked_div(Decimal::ZERO),
            Err(DecimalError::DivisionByZero)
        );
        assert_eq!(
            d("1").checked_rem(Decimal::ZERO),
            Err(DecimalError::DivisionByZero)
        );
        assert_eq!(
            d("-1")
                .checked_pow(d("1000000000000000000001"))
                .map(|v| v.to_string()),
            Ok("-1".into())
        );
    }

    #[test]
    fn rounding_carries() {
        // 0.99999...(29 nines) rounds up to 1.
        assert_eq!(d(&format!("0.{}", "9".repeat(29))).to_string(), "1");
        assert_eq!(
            d("2").checked_div(d("-3")).map(|v| v.to_string()),
            Ok("-0.6666666666666666666666666667".into())
        );
    }

    #[test]
    fn u256_basics() {
        let a = U256::mul_u128(u128::MAX, u128::MAX);
        let (q, r) = a.div_rem_small(10);
        assert_eq!(
            q.mul_small(10)
                .and_then(|x| x.add(U256::from_u128(r as u128))),
            Some(a)
        );
        assert_eq!(
            U256::from_u128(100).rem(U256::from_u128(7)),
            U256::from_u128(2)
        );
        assert!(U256::pow10(78).is_none());
        assert!(U256::pow10(77).is_some());
    }
}
