//! Checking a YARA rule set before it is stored, with the engine the agent scans with, so
//! that every set an agent receives compiles there too.

/// Compiles `source` (includes refused, as on the agent); the names of its rules, or the
/// compiler's message.
pub fn check(source: &str) -> Result<Vec<String>, String> {
    let mut compiler = boreal::Compiler::new();
    compiler.set_params(
        boreal::compiler::CompilerParams::default()
            .disable_includes(true)
            .fail_on_warnings(false),
    );
    compiler.add_rules_str(source).map_err(|e| e.to_string())?;
    let scanner = compiler.finalize();
    let names: Vec<String> = scanner.rules().map(|r| r.name.to_owned()).collect();
    if names.is_empty() {
        return Err("the source defines no rule".into());
    }
    Ok(names)
}
