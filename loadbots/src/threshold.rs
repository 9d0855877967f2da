//! Pass/fail thresholds over report fields: `rtt_ms.p99<100`.

use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
}

/// A parsed threshold: a report field path, a comparison and a bound.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    pub expr: String,
    path: Vec<String>,
    op: Op,
    bound: f64,
}

/// A threshold's outcome, as it appears in the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThresholdResult {
    pub expr: String,
    pub passed: bool,
    /// The field's value, `null` when the report has no such number.
    pub value: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("threshold {expr:?}: {reason}")]
pub struct ThresholdError {
    pub expr: String,
    pub reason: String,
}

/// A threshold over a path the report does not have: it could only ever
/// fail, so it is refused before the run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "--threshold {expr:?}: the report has no number at {path:?}; valid paths: {}",
    valid.join(", ")
)]
pub struct UnknownThresholdPath {
    pub expr: String,
    pub path: String,
    pub valid: Vec<String>,
}

impl std::str::FromStr for Threshold {
    type Err = ThresholdError;

    fn from_str(expr: &str) -> Result<Self, ThresholdError> {
        let err = |reason: &str| ThresholdError {
            expr: expr.to_owned(),
            reason: reason.to_owned(),
        };
        // Two-character operators first, so `<=` is not read as `<`.
        let ops = [
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("==", Op::Eq),
            ("<", Op::Lt),
            (">", Op::Gt),
        ];
        let (at, text, op) = ops
            .iter()
            .filter_map(|(text, op)| expr.find(text).map(|at| (at, *text, *op)))
            .min_by_key(|(at, text, _)| (*at, std::cmp::Reverse(text.len())))
            .ok_or_else(|| err("expected FIELD<NUMBER (operators < <= > >= ==)"))?;
        let (field, bound) = (expr[..at].trim(), expr[at + text.len()..].trim());
        if field.is_empty() {
            return Err(err("missing field"));
        }
        let bound: f64 = bound
            .parse()
            .map_err(|_| err("the bound is not a number"))?;
        Ok(Self {
            expr: expr.to_owned(),
            path: field.split('.').map(str::to_owned).collect(),
            op,
            bound,
        })
    }
}

impl Threshold {
    /// Evaluates the threshold against the report (as JSON). A path that
    /// names no number fails.
    pub fn evaluate(&self, report: &Value) -> ThresholdResult {
        let value = self
            .path
            .iter()
            .try_fold(report, |v, key| v.get(key))
            .and_then(Value::as_f64);
        let passed = value.is_some_and(|v| match self.op {
            Op::Lt => v < self.bound,
            Op::Le => v <= self.bound,
            Op::Gt => v > self.bound,
            Op::Ge => v >= self.bound,
            Op::Eq => v == self.bound,
        });
        ThresholdResult {
            expr: self.expr.clone(),
            passed,
            value,
        }
    }

    /// The report field it reads, `rtt_ms.p99`.
    pub fn field(&self) -> String {
        self.path.join(".")
    }

    /// Checks that the threshold reads one of `valid`, the report's paths.
    pub fn check_path(&self, valid: &[String]) -> Result<(), UnknownThresholdPath> {
        let field = self.field();
        if valid.contains(&field) {
            return Ok(());
        }
        Err(UnknownThresholdPath {
            expr: self.expr.clone(),
            path: field,
            valid: valid.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_and_evaluates() {
        let report = json!({ "rtt_ms": { "p99": 40.0 }, "disconnects": 0 });
        let t: Threshold = "rtt_ms.p99<100".parse().expect("parses");
        assert_eq!(
            t.evaluate(&report),
            ThresholdResult {
                expr: "rtt_ms.p99<100".into(),
                passed: true,
                value: Some(40.0)
            }
        );
        let t: Threshold = "rtt_ms.p99 >= 50".parse().expect("parses");
        assert!(!t.evaluate(&report).passed);
        let t: Threshold = "disconnects==0".parse().expect("parses");
        assert!(t.evaluate(&report).passed);
        let t: Threshold = "disconnects<=0".parse().expect("parses");
        assert!(t.evaluate(&report).passed);
        let missing: Threshold = "nope.p99<1".parse().expect("parses");
        assert_eq!(missing.evaluate(&report).value, None);
        assert!(!missing.evaluate(&report).passed);
        assert!("rtt_ms.p99".parse::<Threshold>().is_err());
        assert!("<5".parse::<Threshold>().is_err());
        assert!("x<fast".parse::<Threshold>().is_err());
    }

    #[test]
    fn a_path_outside_the_report_is_named_with_the_valid_ones() {
        let valid = vec!["rtt_ms.p99".to_owned(), "disconnects".to_owned()];
        let good: Threshold = "rtt_ms.p99 < 100".parse().expect("parses");
        assert_eq!(good.check_path(&valid), Ok(()));
        let bad: Threshold = "rtt.p99<100".parse().expect("parses");
        let error = bad.check_path(&valid).expect_err("no such path");
        assert_eq!(
            error.to_string(),
            "--threshold \"rtt.p99<100\": the report has no number at \"rtt.p99\"; \
             valid paths: rtt_ms.p99, disconnects"
        );
        // An object is not a number.
        let object: Threshold = "rtt_ms<100".parse().expect("parses");
        assert!(object.check_path(&valid).is_err());
    }
}
