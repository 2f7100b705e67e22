//! A pipeline expression (the Polars SQL of a feature or filter) printed in
//! an engine's SQL: parsed with sqlparser (which polars-sql parses it with
//! too), then written node by node, so every function is either mapped to
//! the engine's with Polars' meaning or refused with the feature and the
//! function named.
//!
//! Where Polars and SQL engines differ, the printed SQL follows Polars:
//! `sum` over values that are all missing is 0 (SQL: NULL), so it is
//! written `COALESCE(SUM(x), 0)`; `first`/`last` mean the earliest/latest
//! row by the source's time then file order; number literals are doubles
//! (Spark reads `6.0` as a decimal and would round `x / 6.0` to 6 places).

use sqlparser::ast::{
    BinaryOperator, DuplicateTreatment, Expr, FunctionArg, FunctionArgExpr, FunctionArguments,
    ObjectNamePart, UnaryOperator, Value,
};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;

use super::Dialect;

/// How names in an expression resolve, and what `first`/`last` order by.
pub struct Scope<'a> {
    /// A name to the SQL it stands for (an earlier feature's column), else
    /// the name quoted as a column.
    pub resolve: &'a dyn Fn(&str) -> Option<String>,
    /// `first`/`last` order: the time column (when the source has one)
    /// then the row number, already quoted.
    pub order: Option<&'a [String]>,
    pub dialect: Dialect,
}

/// `text` (one expression) in the dialect's SQL; the error says which
/// construct or function has no translation.
pub fn translate(text: &str, scope: &Scope) -> Result<String, String> {
    let e = Parser::new(&GenericDialect {})
        .try_with_sql(text)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| format!("cannot parse it: {e}"))?;
    print(&e, scope)
}

fn print(e: &Expr, s: &Scope) -> Result<String, String> {
    Ok(match e {
        Expr::Identifier(id) => match (s.resolve)(&id.value) {
            Some(sql) => sql,
            None => s.dialect.quote(&id.value),
        },
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => s.dialect.double(n),
            Value::SingleQuotedString(t) => format!("'{}'", t.replace('\'', "''")),
            Value::Null => "NULL".into(),
            Value::Boolean(b) => if *b { "TRUE" } else { "FALSE" }.into(),
            other => return Err(format!("the literal `{other}` has no translation")),
        },
        Expr::Nested(inner) => format!("({})", print(inner, s)?),
        Expr::UnaryOp { op, expr } => match op {
            UnaryOperator::Minus => format!("-{}", print(expr, s)?),
            UnaryOperator::Plus => print(expr, s)?,
            UnaryOperator::Not => format!("NOT {}", print(expr, s)?),
            other => return Err(format!("the operator `{other}` has no translation")),
        },
        Expr::BinaryOp { left, op, right } => {
            let sym = match op {
                BinaryOperator::Plus => "+",
                BinaryOperator::Minus => "-",
                BinaryOperator::Multiply => "*",
                BinaryOperator::Divide => "/",
                BinaryOperator::Gt => ">",
                BinaryOperator::Lt => "<",
                BinaryOperator::GtEq => ">=",
                BinaryOperator::LtEq => "<=",
                BinaryOperator::Eq => "=",
                BinaryOperator::NotEq => "<>",
                BinaryOperator::And => "AND",
                BinaryOperator::Or => "OR",
                other => return Err(format!("the operator `{other}` has no translation")),
            };
            format!("{} {sym} {}", print(left, s)?, print(right, s)?)
        }
        Expr::IsNull(x) => format!("{} IS NULL", print(x, s)?),
        Expr::IsNotNull(x) => format!("{} IS NOT NULL", print(x, s)?),
        Expr::Between {
            expr,
            negated,
            low,
            high,
        } => format!(
            "{} {}BETWEEN {} AND {}",
            print(expr, s)?,
            if *negated { "NOT " } else { "" },
            print(low, s)?,
            print(high, s)?
        ),
        Expr::InList {
            expr,
            list,
            negated,
        } => format!(
            "{} {}IN ({})",
            print(expr, s)?,
            if *negated { "NOT " } else { "" },
            list.iter()
                .map(|x| print(x, s))
                .collect::<Result<Vec<_>, _>>()?
                .join(", ")
        ),
        Expr::Case {
            operand,
            conditions,
            else_result,
            ..
        } => {
            let mut out = String::from("CASE");
            if let Some(o) = operand {
                out.push(' ');
                out.push_str(&print(o, s)?);
            }
            for c in conditions {
                out.push_str(&format!(
                    " WHEN {} THEN {}",
                    print(&c.condition, s)?,
                    print(&c.result, s)?
                ));
            }
            if let Some(x) = else_result {
                out.push_str(&format!(" ELSE {}", print(x, s)?));
            }
            out.push_str(" END");
            out
        }
        Expr::Function(f) => function(f, s)?,
        other => return Err(format!("`{other}` has no translation")),
    })
}

fn function(f: &sqlparser::ast::Function, s: &Scope) -> Result<String, String> {
    let name = match f.name.0.as_slice() {
        [ObjectNamePart::Identifier(id)] => id.value.to_ascii_lowercase(),
        _ => return Err(format!("the function `{}` has no translation", f.name)),
    };
    if f.over.is_some() || f.filter.is_some() || !f.within_group.is_empty() {
        return Err(format!(
            "`{name}` with OVER, FILTER or WITHIN GROUP has no translation"
        ));
    }
    let FunctionArguments::List(list) = &f.args else {
        return Err(format!("the function `{name}` has no translation"));
    };
    if !list.clauses.is_empty() {
        return Err(format!(
            "`{name}` with clauses inside its parentheses has no translation"
        ));
    }
    let distinct = matches!(list.duplicate_treatment, Some(DuplicateTreatment::Distinct));
    let star = matches!(
        list.args.as_slice(),
        [FunctionArg::Unnamed(FunctionArgExpr::Wildcard)] | []
    );
    let args: Vec<String> = if star {
        Vec::new()
    } else {
        list.args
            .iter()
            .map(|a| match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) => print(x, s),
                _ => Err(format!(
                    "`{name}` with named or wildcard arguments has no translation"
                )),
            })
            .collect::<Result<_, _>>()?
    };
    let one = |sql: &str| -> Result<String, String> {
        match args.as_slice() {
            [a] => Ok(format!("{sql}({a})")),
            _ => Err(format!("`{name}` takes one argument here")),
        }
    };
    Ok(match (name.as_str(), distinct) {
        ("count", false) if star => "COUNT(*)".into(),
        ("count", false) => one("COUNT")?,
        ("count", true) => match args.as_slice() {
            [a] => format!("COUNT(DISTINCT {a})"),
            _ => return Err("`count(distinct ...)` takes one argument here".into()),
        },
        // Polars: a sum over nothing but missing values is 0.
        ("sum", false) => format!("COALESCE({}, 0)", one("SUM")?),
        ("avg" | "mean", false) => one("AVG")?,
        ("min", false) => one("MIN")?,
        ("max", false) => one("MAX")?,
        ("median", false) => one("MEDIAN")?,
        ("var" | "variance" | "var_samp", false) => one("VAR_SAMP")?,
        ("stddev" | "std" | "stddev_samp", false) => one("STDDEV_SAMP")?,
        ("covar_samp" | "covar", false) | ("corr", false) => match args.as_slice() {
            [a, b] => format!(
                "{}({a}, {b})",
                if name == "corr" { "CORR" } else { "COVAR_SAMP" }
            ),
            _ => return Err(format!("`{name}` takes two arguments")),
        },
        ("first" | "last", false) => {
            let [a] = args.as_slice() else {
                return Err(format!("`{name}` takes one argument here"));
            };
            let order = s
                .order
                .ok_or_else(|| format!("`{name}` needs the source's rows in order"))?;
            s.dialect.ordered(name == "last", a, order)
        }
        ("nullif", false) | ("coalesce", false) | ("greatest", false) | ("least", false) => {
            format!("{}({})", name.to_ascii_uppercase(), args.join(", "))
        }
        ("abs" | "sqrt" | "exp" | "ln" | "floor" | "ceil" | "lower" | "upper", false) => {
            one(&name.to_ascii_uppercase())?
        }
        ("power" | "pow", false) => match args.as_slice() {
            [a, b] => format!("POWER({a}, {b})"),
            _ => return Err(format!("`{name}` takes two arguments")),
        },
        _ => {
            return Err(format!(
                "the function `{name}{}` has no {} translation (translated: count, sum, avg, min, max, median, var, stddev, covar_samp, corr, first, last, nullif, coalesce, greatest, least, abs, sqrt, exp, ln, floor, ceil, lower, upper, power)",
                if distinct { " distinct" } else { "" },
                s.dialect.name()
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(text: &str, d: Dialect) -> Result<String, String> {
        let order = ["\"t\"".to_string(), "__row".to_string()];
        translate(
            text,
            &Scope {
                resolve: &|n| (n == "arr").then(|| "f__arr".to_string()),
                order: Some(&order),
                dialect: d,
            },
        )
    }

    #[test]
    fn sums_count_polars_way_and_literals_are_doubles() {
        assert_eq!(
            t("sum(mrr) * 12", Dialect::DuckDb).unwrap(),
            "COALESCE(SUM(\"mrr\"), 0) * CAST(12 AS DOUBLE)"
        );
        assert_eq!(
            t("count(*) / 6.0", Dialect::Spark).unwrap(),
            "COUNT(*) / 6.0D"
        );
        assert_eq!(
            t("arr / nullif(x, 0) - 1", Dialect::Spark).unwrap(),
            "f__arr / NULLIF(`x`, 0D) - 1D"
        );
        assert_eq!(
            t("count(distinct UserId)", Dialect::DuckDb).unwrap(),
            "COUNT(DISTINCT \"UserId\")"
        );
    }

    #[test]
    fn last_orders_by_time_then_row() {
        assert_eq!(
            t("last(seats)", Dialect::DuckDb).unwrap(),
            "LAST(\"seats\" ORDER BY \"t\", __row)"
        );
        assert_eq!(
            t("first(seats)", Dialect::Spark).unwrap(),
            "MIN_BY(`seats`, STRUCT(\"t\", __row))"
        );
    }

    #[test]
    fn an_unknown_function_is_refused_by_name() {
        let e = t("regexp_count(x, 'a')", Dialect::DuckDb).unwrap_err();
        assert!(e.contains("`regexp_count`") && e.contains("DuckDB"), "{e}");
    }
}
