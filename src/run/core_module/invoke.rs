//! `--invoke NAME [ARGS]`: call one export with arguments parsed by its signature,
//! and show its results; the REPL-style loop for a pure function.

use anyhow::{Context, Result, bail};
use wasmtime::{FuncType, Val, ValType};

/// Parses `args` (decimal or `0x` hex; floats as Rust reads them, `inf`, `nan`)
/// into the parameters of `ty`; errors name the export and its signature.
pub(super) fn parse_args(name: &str, ty: &FuncType, args: &[String]) -> Result<Vec<Val>> {
    let params: Vec<ValType> = ty.params().collect();
    let signature = params
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ");
    if params.len() != args.len() {
        bail!(
            "--invoke {name}: expects {} argument(s) ({signature}), got {}: pass them after `--`",
            params.len(),
            args.len()
        );
    }
    params
        .iter()
        .zip(args)
        .enumerate()
        .map(|(index, (param, arg))| {
            parse_one(param, arg).with_context(|| {
                format!(
                    "--invoke {name}: argument {} `{arg}` is not a valid {param} (signature: {signature})",
                    index + 1
                )
            })
        })
        .collect()
}

fn parse_one(ty: &ValType, text: &str) -> Result<Val> {
    Ok(match ty {
        ValType::I32 => Val::I32(parse_int(text, i64::from(i32::MIN), i64::from(u32::MAX))? as i32),
        ValType::I64 => Val::I64(parse_i64(text)?),
        ValType::F32 => Val::F32(text.parse::<f32>()?.to_bits()),
        ValType::F64 => Val::F64(text.parse::<f64>()?.to_bits()),
        other => bail!("{other} arguments cannot be given on the command line"),
    })
}

/// An integer in `[min, max]`, decimal or `0x` hex, with an optional `-`; an
/// i32 accepts the unsigned range too (`0xffffffff` is -1).
fn parse_int(text: &str, min: i64, max: i64) -> Result<i64> {
    let value = parse_i64(text)?;
    if value < min || value > max {
        bail!("out of range");
    }
    Ok(value)
}

fn parse_i64(text: &str) -> Result<i64> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let magnitude = match digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        Some(hex) => u64::from_str_radix(hex, 16)?,
        None => digits.parse::<u64>()?,
    };
    if negative {
        0i64.checked_sub_unsigned(magnitude).context("out of range")
    } else {
        // Above i64::MAX: the unsigned reading, as wasm's i64 is sign-agnostic.
        Ok(magnitude as i64)
    }
}

/// One line per result: integers in decimal, floats as Rust prints them.
pub(super) fn format_result(value: &Val) -> String {
    match value {
        Val::I32(v) => v.to_string(),
        Val::I64(v) => v.to_string(),
        Val::F32(bits) => f32::from_bits(*bits).to_string(),
        Val::F64(bits) => f64::from_bits(*bits).to_string(),
        Val::V128(v) => format!("{:#034x}", v.as_u128()),
        Val::FuncRef(None) | Val::ExternRef(None) | Val::AnyRef(None) | Val::ExnRef(None) => {
            "null".to_owned()
        }
        _ => "<reference>".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(params: &[ValType]) -> FuncType {
        FuncType::new(&wasmtime::Engine::default(), params.iter().cloned(), [])
    }

    #[test]
    fn arguments_follow_the_signature() {
        let sig = ty(&[ValType::I32, ValType::I64, ValType::F32, ValType::F64]);
        let args: Vec<String> = ["0x10", "-5", "1.5", "-inf"].map(String::from).to_vec();
        let vals = parse_args("f", &sig, &args).expect("valid");
        assert_eq!(vals[0].unwrap_i32(), 16);
        assert_eq!(vals[1].unwrap_i64(), -5);
        assert_eq!(vals[2].unwrap_f32(), 1.5);
        assert_eq!(vals[3].unwrap_f64(), f64::NEG_INFINITY);
        assert_eq!(
            parse_args("f", &ty(&[ValType::I32]), &["0xffffffff".into()]).expect("u32")[0]
                .unwrap_i32(),
            -1
        );
    }

    #[test]
    fn wrong_arity_and_bad_numbers_name_the_signature() {
        let sig = ty(&[ValType::I32, ValType::I32]);
        let err = parse_args("add", &sig, &["1".into()]).expect_err("arity");
        assert!(
            format!("{err:#}").contains("--invoke add: expects 2 argument(s) (i32 i32), got 1")
        );
        let err = parse_args("add", &sig, &["1".into(), "two".into()]).expect_err("not a number");
        assert!(
            format!("{err:#}").contains("argument 2 `two` is not a valid i32 (signature: i32 i32)")
        );
        let err = parse_args("add", &sig, &["1".into(), "0x1ffffffff".into()]).expect_err("range");
        assert!(format!("{err:#}").contains("argument 2"));
    }

    #[test]
    fn results_print_plainly() {
        assert_eq!(format_result(&Val::I32(-3)), "-3");
        assert_eq!(format_result(&Val::F64(2.5f64.to_bits())), "2.5");
    }
}
