//! Kubernetes resource quantities (`500m`, `1.5Gi`, `1e3`), parsed exactly: the one parser both
//! the environment model (load-time checks) and `ehs validate` (request ≤ limit) use.
//!
//! Follows the grammar in `k8s.io/apimachinery/pkg/api/resource`: a signed decimal number followed
//! by a binary SI suffix (`Ki`…`Ei`), a decimal SI suffix (`n u m k M G T P E`, or none) or a
//! decimal exponent (`e3`, `E-2`). Values are held as integer nano-units so that `1`, `1000m` and
//! `1e3m` compare equal without floating point. Like Kubernetes, precision finer than one nano-unit
//! rounds up, and magnitudes beyond 2^63-1 units are rejected.

use std::cmp::Ordering;

/// The grammar [`Quantity::parse`] accepts, as a regular expression: for JSON Schemas (the
/// environment schema editors see, and the Quantity fields of rendered objects), which cannot
/// call the parser. Only magnitude limits are beyond it; a test holds the two together.
pub(crate) const PATTERN: &str =
    "^[+-]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)([KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]+)?$";

/// A parsed quantity, in nano-units (10^-9 of the base unit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Quantity {
    nanos: i128,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum QuantityError {
    #[error("empty quantity")]
    Empty,
    #[error("`{0}` is not a number with an optional suffix (expected e.g. `500m`, `2`, `1.5Gi`)")]
    MalformedNumber(String),
    #[error(
        "`{quantity}` has the unknown suffix `{suffix}` (valid: Ki Mi Gi Ti Pi Ei, n u m k M G T P E, or an exponent like e3)"
    )]
    UnknownSuffix { quantity: String, suffix: String },
    #[error("`{0}` is out of range (at most 2^63-1 in magnitude)")]
    OutOfRange(String),
}

/// 2^63 - 1 whole units, the largest magnitude Kubernetes represents.
const MAX_NANOS: i128 = (i64::MAX as i128) * NANOS_PER_UNIT;
const NANOS_PER_UNIT: i128 = 1_000_000_000;

impl Quantity {
    pub(crate) fn parse(text: &str) -> Result<Self, QuantityError> {
        if text.is_empty() {
            return Err(QuantityError::Empty);
        }
        let (negative, unsigned) = match text.as_bytes()[0] {
            b'-' => (true, &text[1..]),
            b'+' => (false, &text[1..]),
            _ => (false, text),
        };
        let number_len = unsigned
            .bytes()
            .take_while(|b| b.is_ascii_digit() || *b == b'.')
            .count();
        let (number, suffix) = unsigned.split_at(number_len);
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
            return Err(QuantityError::MalformedNumber(text.to_owned()));
        }
        let scale = Scale::of_suffix(suffix).ok_or_else(|| QuantityError::UnknownSuffix {
            quantity: text.to_owned(),
            suffix: suffix.to_owned(),
        })?;
        let out_of_range = || QuantityError::OutOfRange(text.to_owned());

        let mut mantissa: i128 = 0;
        for digit in whole.bytes().chain(fraction.bytes()) {
            mantissa = mantissa
                .checked_mul(10)
                .and_then(|m| m.checked_add(i128::from(digit - b'0')))
                .ok_or_else(out_of_range)?;
        }
        let fraction_digits = i64::try_from(fraction.len()).map_err(|_| out_of_range())?;
        // value = mantissa × 10^(power_of_ten − fraction_digits) × 2^power_of_two, in nano-units:
        let power_of_ten = scale.power_of_ten - fraction_digits + 9;
        let magnitude = mantissa
            .checked_mul(pow(2, scale.power_of_two).ok_or_else(out_of_range)?)
            .ok_or_else(out_of_range)?;
        let nanos = if magnitude == 0 {
            0
        } else if power_of_ten >= 0 {
            let factor = u32::try_from(power_of_ten)
                .ok()
                .and_then(|p| pow(10, p))
                .ok_or_else(out_of_range)?;
            magnitude.checked_mul(factor).ok_or_else(out_of_range)?
        } else {
            match u32::try_from(-power_of_ten).ok().and_then(|p| pow(10, p)) {
                Some(divisor) => ceil_div(magnitude, divisor),
                // Smaller than any representable fraction of a nano-unit: rounds up to one.
                None => 1,
            }
        };
        if nanos > MAX_NANOS {
            return Err(out_of_range());
        }
        Ok(Self {
            nanos: if negative { -nanos } else { nanos },
        })
    }

    pub(crate) fn is_negative(self) -> bool {
        self.nanos < 0
    }

    pub(crate) fn compare(self, other: Self) -> Ordering {
        self.nanos.cmp(&other.nanos)
    }

    /// Whole base units (bytes, cores), the fraction dropped.
    pub(crate) fn whole_units(self) -> i128 {
        self.nanos / NANOS_PER_UNIT
    }
}

fn pow(base: i128, exponent: u32) -> Option<i128> {
    base.checked_pow(exponent)
}

fn ceil_div(dividend: i128, divisor: i128) -> i128 {
    let quotient = dividend / divisor;
    if dividend % divisor == 0 {
        quotient
    } else {
        quotient + 1
    }
}

/// What a suffix multiplies the number by: 10^power_of_ten × 2^power_of_two.
struct Scale {
    power_of_ten: i64,
    power_of_two: u32,
}

impl Scale {
    fn of_suffix(suffix: &str) -> Option<Self> {
        let decimal = |power_of_ten| {
            Some(Self {
                power_of_ten,
                power_of_two: 0,
            })
        };
        let binary = |power_of_two| {
            Some(Self {
                power_of_ten: 0,
                power_of_two,
            })
        };
        match suffix {
            "" => decimal(0),
            "n" => decimal(-9),
            "u" => decimal(-6),
            "m" => decimal(-3),
            "k" => decimal(3),
            "M" => decimal(6),
            "G" => decimal(9),
            "T" => decimal(12),
            "P" => decimal(15),
            // A lone `E` is exa; `E` followed by digits is an exponent, handled below.
            "E" => decimal(18),
            "Ki" => binary(10),
            "Mi" => binary(20),
            "Gi" => binary(30),
            "Ti" => binary(40),
            "Pi" => binary(50),
            "Ei" => binary(60),
            _ => {
                let exponent = suffix.strip_prefix(['e', 'E'])?;
                let digits = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                // Exponents too large to hold are still exponents; parse() reports them out of range.
                let power_of_ten =
                    exponent
                        .parse::<i64>()
                        .unwrap_or(if exponent.starts_with('-') {
                            i64::MIN / 2
                        } else {
                            i64::MAX / 2
                        });
                decimal(power_of_ten)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nanos(text: &str) -> i128 {
        match Quantity::parse(text) {
            Ok(quantity) => quantity.nanos,
            Err(error) => panic!("{text}: {error}"),
        }
    }

    #[test]
    fn decimal_suffixes() {
        assert_eq!(nanos("1"), 1_000_000_000);
        assert_eq!(nanos("500m"), 500_000_000);
        assert_eq!(nanos("250u"), 250_000);
        assert_eq!(nanos("7n"), 7);
        assert_eq!(nanos("2k"), 2_000 * NANOS_PER_UNIT);
        assert_eq!(nanos("3M"), 3_000_000 * NANOS_PER_UNIT);
        assert_eq!(nanos("1G"), 1_000_000_000 * NANOS_PER_UNIT);
        assert_eq!(nanos("1T"), 1_000_000_000_000 * NANOS_PER_UNIT);
        assert_eq!(nanos("1P"), 10i128.pow(15) * NANOS_PER_UNIT);
        assert_eq!(nanos("1E"), 10i128.pow(18) * NANOS_PER_UNIT);
    }

    #[test]
    fn binary_suffixes() {
        assert_eq!(nanos("1Ki"), 1024 * NANOS_PER_UNIT);
        assert_eq!(nanos("512Mi"), 512 * 1024 * 1024 * NANOS_PER_UNIT);
        assert_eq!(nanos("1.5Gi"), 1536 * 1024 * 1024 * NANOS_PER_UNIT);
        assert_eq!(nanos("2Ti"), 2 * (1i128 << 40) * NANOS_PER_UNIT);
        assert_eq!(nanos("1Pi"), (1i128 << 50) * NANOS_PER_UNIT);
        assert_eq!(nanos("1Ei"), (1i128 << 60) * NANOS_PER_UNIT);
    }

    #[test]
    fn exponents_and_fractions() {
        assert_eq!(nanos("1e3"), 1000 * NANOS_PER_UNIT);
        assert_eq!(nanos("1E3"), 1000 * NANOS_PER_UNIT);
        assert_eq!(nanos("1e+3"), 1000 * NANOS_PER_UNIT);
        assert_eq!(nanos("15e-1"), 1_500_000_000);
        assert_eq!(nanos("0.5"), 500_000_000);
        assert_eq!(nanos(".5"), 500_000_000);
        assert_eq!(nanos("5."), 5 * NANOS_PER_UNIT);
        assert_eq!(nanos("+1"), NANOS_PER_UNIT);
        assert_eq!(nanos("-1.5"), -1_500_000_000);
        assert_eq!(nanos("0"), 0);
        assert_eq!(nanos("0e99999999999"), 0);
    }

    #[test]
    fn precision_below_a_nano_unit_rounds_up() {
        assert_eq!(nanos("0.1n"), 1);
        assert_eq!(nanos("1e-30"), 1);
        assert_eq!(nanos("1.0000000001"), 1_000_000_001);
    }

    #[test]
    fn equal_values_in_different_notations_compare_equal() {
        let forms = [
            "1",
            "1000m",
            "1e0",
            "0.001k",
            "1000000000n",
            "10e-1",
            "1E+0",
        ];
        for pair in forms.windows(2) {
            assert_eq!(nanos(pair[0]), nanos(pair[1]), "{pair:?}");
        }
        let gibibyte = Quantity {
            nanos: nanos("1Gi"),
        };
        assert_eq!(
            gibibyte.compare(Quantity {
                nanos: nanos("1100M")
            }),
            Ordering::Less
        );
        assert_eq!(
            gibibyte.compare(Quantity {
                nanos: nanos("1024Mi")
            }),
            Ordering::Equal
        );
    }

    #[test]
    fn malformed_quantities_are_rejected_with_a_reason() {
        for (text, expected) in [
            ("", QuantityError::Empty),
            ("Gi", QuantityError::MalformedNumber("Gi".into())),
            (".", QuantityError::MalformedNumber(".".into())),
            ("1.2.3", QuantityError::MalformedNumber("1.2.3".into())),
            (
                "10Gx",
                QuantityError::UnknownSuffix {
                    quantity: "10Gx".into(),
                    suffix: "Gx".into(),
                },
            ),
            (
                "1e",
                QuantityError::UnknownSuffix {
                    quantity: "1e".into(),
                    suffix: "e".into(),
                },
            ),
            (
                "1e3.5",
                QuantityError::UnknownSuffix {
                    quantity: "1e3.5".into(),
                    suffix: "e3.5".into(),
                },
            ),
            (
                "1 Gi",
                QuantityError::UnknownSuffix {
                    quantity: "1 Gi".into(),
                    suffix: " Gi".into(),
                },
            ),
            (
                "1gi",
                QuantityError::UnknownSuffix {
                    quantity: "1gi".into(),
                    suffix: "gi".into(),
                },
            ),
            (
                "10000000000E",
                QuantityError::OutOfRange("10000000000E".into()),
            ),
            (
                "1e99999999999",
                QuantityError::OutOfRange("1e99999999999".into()),
            ),
            (
                "99999999999999999999999999999999999999999",
                QuantityError::OutOfRange("99999999999999999999999999999999999999999".into()),
            ),
        ] {
            assert_eq!(Quantity::parse(text), Err(expected), "{text:?}");
        }
    }

    /// The pattern and the parser accept the same texts; only the parser knows magnitude limits.
    #[test]
    fn the_pattern_and_the_parser_agree() {
        let schema = serde_json::json!({"type": "string", "pattern": PATTERN});
        let pattern = jsonschema::validator_for(&schema).unwrap();
        let valid = [
            "0",
            "1",
            "+1",
            "-1",
            "500m",
            "2",
            "0.5",
            ".5",
            "5.",
            "1.5Gi",
            "10Gi",
            "512Mi",
            "1Ki",
            "1Ti",
            "1Pi",
            "1Ei",
            "7n",
            "250u",
            "2k",
            "3M",
            "1G",
            "1T",
            "1P",
            "1E",
            "1e3",
            "1E3",
            "2E-2",
            "1e+3",
            "15e-1",
            "+1k",
            "-1.5",
            // Syntax the pattern accepts; the parser refuses the magnitude.
            "1e99999999999",
            "10000000000E",
        ];
        let invalid = [
            "", ".", "Gi", "1.2.3", "10Gx", "1e", "1e3.5", "1 Gi", "10 Gi", "1gi", "10gi", "1K",
            "1mi", "e3", "1e+", "--1", "+", "1Gi ", " 1", "0x10", "1,5",
        ];
        for text in valid.iter().chain(&invalid) {
            let syntax_ok = !matches!(
                Quantity::parse(text),
                Err(QuantityError::Empty
                    | QuantityError::MalformedNumber(_)
                    | QuantityError::UnknownSuffix { .. })
            );
            assert_eq!(
                pattern.is_valid(&serde_json::json!(text)),
                syntax_ok,
                "{text:?}"
            );
            assert_eq!(syntax_ok, valid.contains(text), "{text:?}");
        }
    }

    #[test]
    fn the_largest_kubernetes_quantity_still_parses() {
        assert_eq!(nanos("9223372036854775807"), MAX_NANOS);
        assert!(Quantity::parse("9223372036854775808").is_err());
        assert!(Quantity::parse("-1").is_ok_and(Quantity::is_negative));
    }
}
